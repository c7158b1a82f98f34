"""vaeutils.cpu: how many threads training uses (ThreadPolicy's choice for a given load, with the load faked),
the VAELAB_THREADS override and its bad values, the ceiling from OMP_NUM_THREADS and a cgroup quota, and the
promise the module makes: the same weights whatever the thread count."""

import pytest
import torch

from vaeutils import cpu
from vaeutils import train as T


@pytest.fixture(autouse=True)
def _threads_back():
    """Every test leaves torch's thread count as it found it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def policy(monkeypatch):
    """``policy(ceiling)``: an adaptive ThreadPolicy that may use ``ceiling`` threads and looks at every tick."""
    monkeypatch.delenv(cpu.ENV, raising=False)

    def make(ceiling):
        p = cpu.ThreadPolicy(interval=0.0)
        p.ceiling = ceiling
        return p

    return make


@pytest.mark.parametrize("ceiling, others, threads", [
    (2, 0.0, 2), (2, 0.4, 2),               # the cores are ours (up to the threshold)
    (2, 0.5, 1), (2, 1.0, 1), (2, 1.4, 1),  # one busy core takes one thread away
    (2, 3.0, 1), (1, 2.0, 1),               # never fewer than one
    (4, 1.5, 2), (4, 2.41, 1), (8, 0.41, 7),
])
def test_choose_gives_up_one_thread_per_busy_core(policy, ceiling, others, threads):
    assert policy(ceiling).choose(others) == threads


def test_tick_follows_the_load_and_restore_goes_back(policy, monkeypatch):
    torch.set_num_threads(1)
    before = torch.get_num_threads()
    p = policy(2)
    loads = iter([0.0, 1.2, 0.1])
    monkeypatch.setattr(p, "others", lambda: next(loads))
    assert [p.tick() for _ in range(3)] == [2, 1, 2]
    assert [threads for _, _, threads in p.history] == [2, 1, 2]
    assert [others for _, others, _ in p.history] == [0.0, 1.2, 0.1]
    assert torch.get_num_threads() == 2
    p.restore()
    assert torch.get_num_threads() == before


def test_an_unreadable_load_changes_nothing(policy, monkeypatch):
    p = policy(2)
    monkeypatch.setattr(p, "others", lambda: None)
    assert p.tick() == p.threads and p.history == []


def test_ticks_within_the_interval_do_not_look(policy, monkeypatch):
    p = policy(2)
    p.interval = 3600.0

    def look():
        raise AssertionError("the load was read before the interval was up")

    monkeypatch.setattr(p, "others", look)
    assert p.tick() == p.threads


def test_others_is_the_machines_busy_time_less_our_own(policy, monkeypatch):
    p = policy(2)
    if p._busy is None:
        pytest.skip("no /proc/stat here: the load cannot be read")
    p._last -= 2.0  # the last look was two seconds ago
    monkeypatch.setattr(cpu, "_busy_seconds", lambda: p._busy + 3.0)  # 3 core-seconds busy since
    monkeypatch.setattr(cpu, "_own_seconds", lambda: p._own + 1.0)    # 1 of them ours
    assert p.others() == pytest.approx(1.0, rel=1e-2)


@pytest.mark.parametrize("value, expected", [("3", 3), (" 1 ", 1), ("auto", None), ("AUTO", None), ("", None)])
def test_vaelab_threads_fixes_the_count_or_adapts(monkeypatch, value, expected):
    monkeypatch.setenv(cpu.ENV, value)
    assert cpu.requested_threads() == expected
    p = cpu.ThreadPolicy()
    assert p.fixed == expected
    if expected is not None:
        assert p.threads == expected == torch.get_num_threads()
        p.choose = lambda others: pytest.fail("a fixed count is never re-chosen")
        p.interval = 0.0
        assert p.tick() == expected
    p.restore()


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "2 threads"])
def test_bad_vaelab_threads_values_are_named(monkeypatch, value):
    monkeypatch.setenv(cpu.ENV, value)
    with pytest.raises(ValueError, match=r"VAELAB_THREADS=.*whole number >= 1 or to 'auto'"):
        cpu.requested_threads()
    with pytest.raises(ValueError, match="VAELAB_THREADS"):
        cpu.ThreadPolicy()


def test_the_ceiling_is_the_usable_cores_or_omp_num_threads(monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu._ceiling() == 4
    for omp, ceiling in (("2", 2), ("8", 4), ("0", 4), ("many", 4)):
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
        assert cpu._ceiling() == ceiling, omp


def test_a_cgroup_quota_caps_the_usable_cores(monkeypatch):
    cores = len(cpu.os.sched_getaffinity(0))
    monkeypatch.setattr(cpu, "_cgroup_quota", lambda: 0.5)
    assert cpu.usable_cores() == 1
    monkeypatch.setattr(cpu, "_cgroup_quota", lambda: None)
    assert cpu.usable_cores() == cores
    assert f"{cores} usable cores" in cpu.describe()


def test_fit_gives_the_same_weights_with_one_thread_and_two(monkeypatch, tiny_vae, random_image_data):
    """The module's promise: only the time depends on the thread count, not the numbers."""
    train_x = random_image_data.train_x
    runs = {}
    for threads in ("1", "2"):
        monkeypatch.setenv(cpu.ENV, threads)
        model = tiny_vae(hidden=(32,), latent_dim=4, seed=5)
        history = T.fit(model, train_x, epochs=2, batch_size=32, seed=3, progress=False)
        runs[threads] = ([p.detach().clone() for p in model.parameters()], history["steps"])
    (w1, s1), (w2, s2) = runs["1"], runs["2"]
    assert s1 == s2
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))
