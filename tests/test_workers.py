"""sweep.train_many side by side (vaeutils.train.workers, cpu.worker_count): the same weights, histories and
global random state as one model after the other; checkpoints written by the parent; a worker's error raised
in the parent with its own message; the worker policy and its override."""

import sys

import pytest
import torch

from vaeutils import cache, cpu, sweep
from vaeutils.losses import ELBOLoss
from vaeutils.train import NonFiniteLossError

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked, on Linux only")


def _settings():
    return [dict(loss=ELBOLoss(beta=b), hidden=(32,), latent_dim=4, epochs=2, seed=s, binarize=True)
            for b, s in ((0.5, 0), (1.0, 1), (4.0, 0))]


def _without_seconds(history):
    return {**history, "train": [{k: v for k, v in row.items() if k != "seconds"} for row in history["train"]]}


@linux_only
def test_side_by_side_gives_the_weights_histories_and_random_state_of_one_at_a_time(
        mnist_tiny, data_dir, monkeypatch, capsys):
    runs = {}
    for workers in ("1", "2"):
        monkeypatch.setenv(cpu.WORKERS_ENV, workers)
        results = sweep.train_many(_settings(), data=mnist_tiny, name=f"side{workers}", desc="test")
        runs[workers] = results, torch.rand(3)  # the global stream after the call
        printed = capsys.readouterr().out
        assert ("3 trained, 2 side by side" in printed) == (workers == "2"), printed
        assert len(list(cache.files())) == (3 if workers == "1" else 6)  # the parent wrote each checkpoint
    (one, after_one), (two, after_two) = runs["1"], runs["2"]
    assert torch.equal(after_one, after_two)
    for a, b in zip(one, two, strict=True):
        assert not a.loaded and not b.loaded and not b.model.training
        assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))
        assert _without_seconds(a.history) == _without_seconds(b.history)
    again = sweep.train_many(_settings(), data=mnist_tiny, name="side2", desc="test")
    assert all(r.loaded for r in again) and "3 loaded from the cache, 0 trained)" in capsys.readouterr().out


@linux_only
def test_a_cached_model_loads_and_the_rest_train_side_by_side(mnist_tiny, data_dir, monkeypatch):
    monkeypatch.setenv(cpu.WORKERS_ENV, "2")
    first = sweep.train_many(_settings()[:1], data=mnist_tiny, name="mix", progress=False)
    mixed = sweep.train_many(_settings(), data=mnist_tiny, name="mix", progress=False)
    assert [r.loaded for r in mixed] == [True, False, False]
    assert all(torch.equal(p, q) for p, q in zip(first[0].model.parameters(), mixed[0].model.parameters()))


@linux_only
def test_a_failing_worker_raises_its_own_error_and_writes_nothing(mnist_tiny, data_dir, monkeypatch):
    monkeypatch.setenv(cpu.WORKERS_ENV, "2")
    bad = [dict(loss=ELBOLoss(), hidden=(32,), latent_dim=4, epochs=2, lr=lr) for lr in (1e-3, 1e9)]
    with pytest.raises(NonFiniteLossError) as err:
        sweep.train_many(bad, data=mnist_tiny, name="boom", progress=False)
    assert err.value.step >= 1 and err.value.term in ("rec", "kl", "loss", "gradient")
    left = sorted(p.name for p in (data_dir / "cache").glob("*")) if (data_dir / "cache").exists() else []
    assert len(left) <= 1 and all(n.startswith("boom-") and n.endswith(".pt") for n in left), left  # the good one


def test_worker_count_policy(monkeypatch):
    monkeypatch.delenv(cpu.WORKERS_ENV, raising=False)
    monkeypatch.delenv(cpu.ENV, raising=False)
    monkeypatch.setattr(cpu, "_ceiling", lambda: 2)
    assert cpu.worker_count(1, sample=0.01) == 1  # one model: no workers
    monkeypatch.setattr(cpu.platform, "system", lambda: "Linux")
    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr(cpu, "_own_seconds", lambda: 0.0)
    monkeypatch.setattr(cpu.time, "perf_counter", lambda: float(next(clock)))  # one second per reading
    monkeypatch.setattr(cpu.time, "sleep", lambda s: None)
    for others, expected in ((0.0, 2), (0.3, 2), (1.0, 1), (2.0, 1)):
        busy = iter([10.0, 10.0 + others])
        monkeypatch.setattr(cpu, "_busy_seconds", busy.__next__)
        assert cpu.worker_count(5) == expected, others
    monkeypatch.setenv(cpu.ENV, "1")  # a class server that fixes each kernel's threads: no workers
    assert cpu.worker_count(5) == 1
    monkeypatch.setenv(cpu.WORKERS_ENV, "3")
    assert cpu.worker_count(5) == 3 and cpu.worker_count(2) == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_worker_count_is_named(monkeypatch, value):
    monkeypatch.setenv(cpu.WORKERS_ENV, value)
    with pytest.raises(ValueError, match="VAELAB_WORKERS"):
        cpu.worker_count(4)


def test_an_error_from_a_worker_survives_the_trip_back():
    import pickle

    again = pickle.loads(pickle.dumps(NonFiniteLossError(7, "kl", float("nan"))))
    assert (again.step, again.term) == (7, "kl") and "non-finite kl" in str(again)
