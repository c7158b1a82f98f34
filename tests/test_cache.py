"""vaeutils.cache: load the checkpoint if it exists, else train; keyed by the config; atomic; never fatal."""

import pytest
import torch
from torch import nn

from vaeutils import cache, config


@pytest.fixture
def cache_dir(data_dir):
    return config.CACHE_DIR


class Counter:
    """build/train callables that count how often training ran."""

    def __init__(self):
        self.trained = 0

    def build(self):
        torch.manual_seed(0)
        return nn.Linear(3, 2)

    def train(self, model):
        self.trained += 1
        with torch.no_grad():
            model.weight.fill_(float(self.trained))
        return {"train": [{"epoch": 1, "loss": 1.5}], "test": [], "steps": [1.5]}


CFG = {"model": "linear", "epochs": 2, "lr": 1e-3, "nested": {"b": (1, 2), "a": None}}


def test_miss_then_hit_returns_the_stored_weights_and_history(cache_dir):
    c = Counter()
    m1, h1, hit1 = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    m2, h2, hit2 = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    assert (hit1, hit2) == (False, True) and c.trained == 1
    assert torch.equal(m1.weight, m2.weight) and h1 == h2
    assert cache.path_for("nb03-t", CFG).exists()


def test_any_config_change_is_a_miss_and_key_ignores_dict_order(cache_dir):
    c = Counter()
    cache.load_or_train("nb03-t", CFG, c.build, c.train)
    _, _, hit = cache.load_or_train("nb03-t", {**CFG, "epochs": 3}, c.build, c.train)
    assert not hit and c.trained == 2
    assert cache.key(dict(reversed(list(CFG.items())))) == cache.key(CFG)
    assert cache.key({**CFG, "lr": 2e-3}) != cache.key(CFG)


def test_corrupt_file_is_reported_in_one_line_and_retrained(cache_dir, capsys):
    c = Counter()
    cache.load_or_train("nb03-t", CFG, c.build, c.train)
    path = cache.path_for("nb03-t", CFG)
    path.write_bytes(b"\x00garbage, not a checkpoint\xff" * 10)
    capsys.readouterr()
    model, history, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    out = capsys.readouterr().out
    assert not hit and c.trained == 2 and torch.all(model.weight == 2)
    assert out.count("\n") == 1 and path.name in out and "retraining" in out
    # the retrained checkpoint replaced the garbage and is used next time
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    assert hit and c.trained == 2


def test_truncated_file_is_retrained(cache_dir, capsys):
    c = Counter()
    cache.load_or_train("nb03-t", CFG, c.build, c.train)
    path = cache.path_for("nb03-t", CFG)
    path.write_bytes(path.read_bytes()[:50])
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    assert not hit and "unreadable" in capsys.readouterr().out


def test_file_written_for_another_config_is_reported_and_retrained(cache_dir, capsys):
    c = Counter()
    path = cache.path_for("nb03-t", CFG)
    cache.save(path, {"format": cache.FORMAT, "config": cache._canonical({**CFG, "epochs": 99}),
                      "state_dict": c.build().state_dict(), "history": {}})
    capsys.readouterr()
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    out = capsys.readouterr().out
    assert not hit and c.trained == 1
    assert out.count("\n") == 1 and "another config" in out


def test_weights_that_do_not_fit_the_model_are_retrained(cache_dir, capsys):
    c = Counter()
    cache.save(cache.path_for("nb03-t", CFG), {"format": cache.FORMAT, "config": cache._canonical(CFG),
                                               "state_dict": nn.Linear(5, 5).state_dict(), "history": {}})
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    assert not hit and c.trained == 1 and "does not fit" in capsys.readouterr().out


def test_disabled_cache_always_trains_and_writes_nothing(cache_dir):
    c = Counter()
    for _ in range(2):
        _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train, enabled=False)
        assert not hit
    assert c.trained == 2 and not cache.path_for("nb03-t", CFG).exists()


def test_atomic_write_leaves_nothing_behind_when_saving_fails(cache_dir):
    path = cache_dir / "nb03-atomic.pt"
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises, the folder must stay clean
        cache.save(path, {"format": cache.FORMAT, "unpicklable": lambda: None})
    assert list(cache_dir.iterdir()) == []
    # an existing good checkpoint survives a failed overwrite untouched
    cache.save(path, {"format": cache.FORMAT, "value": 1})
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017
        cache.save(path, {"format": cache.FORMAT, "unpicklable": lambda: None})
    assert path.read_bytes() == before and [p.name for p in cache_dir.iterdir()] == [path.name]


def test_training_that_raises_writes_no_checkpoint(cache_dir):
    def broken(model):
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        cache.load_or_train("nb03-t", CFG, Counter().build, broken)
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []


def test_clear_removes_only_matching_checkpoints(cache_dir):
    c = Counter()
    cache.load_or_train("nb03-a", CFG, c.build, c.train)
    cache.load_or_train("nb03-b", CFG, c.build, c.train)
    cache.load_or_train("other", CFG, c.build, c.train)
    assert cache.clear("nb03-*") == 2
    assert [p.name.split("-")[0] for p in cache_dir.iterdir()] == ["other"]


@pytest.mark.parametrize("name", ["", "a/b", None])
def test_bad_names_and_configs(name):
    with pytest.raises(ValueError, match="name"):
        cache.path_for(name, CFG)
    with pytest.raises(TypeError, match="config"):
        cache.key(["not", "a", "dict"])
