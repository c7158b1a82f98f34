"""Reliability review v2, data and cache: nothing outside the cache folder changes whatever name or pattern is
passed; configs that could never hit are refused; a history with NumPy values loads; a shared folder the user
cannot enter is skipped; IDX labels are class indices; the rectangles' factor sizes are checked."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vaeutils import cache, checks, config, data, idx

ESCAPING = ["../*", "..", "../mnist_5k", "/etc/x", "/tmp/*", "a/../../b", "a/b", "a\\b", "*/..", "~/x", "~",
            "x\0y", "\0", "*\0", "a" * 300, "é" * 150, "", "**/*", "../../**"]


def _snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def guarded(tmp_path, monkeypatch):
    """A cache folder inside a data folder inside an outer folder, each holding a *.pt file that must survive."""
    outer = tmp_path / "outer"
    data_dir = outer / "data"
    cache_dir = data_dir / "cache"
    cache_dir.mkdir(parents=True)
    for folder in (outer, data_dir, cache_dir):
        (folder / "mnist_5k.pt").write_bytes(b"keep")
        (folder / "x-0.pt").write_bytes(b"keep")
    monkeypatch.setattr(config, "DATA_DIR", data_dir)
    monkeypatch.setattr(config, "CACHE_DIR", cache_dir)
    return outer, cache_dir


@pytest.mark.parametrize("bad", ESCAPING)
def test_escaping_patterns_and_names_are_refused_and_nothing_changes(guarded, bad):
    outer, cache_dir = guarded
    before = _snapshot(outer.parent)
    with pytest.raises(ValueError, match="pattern"):
        cache.clear(bad)
    with pytest.raises(ValueError, match="name"):
        cache.path_for(bad, {"a": 1})
    with pytest.raises(ValueError, match="name"):
        cache.load_or_train(bad, {"a": 1}, lambda: nn.Linear(2, 2), lambda m: {})
    assert _snapshot(outer.parent) == before


def test_a_pattern_deletes_only_matching_checkpoints_inside_the_cache(guarded):
    outer, cache_dir = guarded
    (cache_dir / "beta-1.pt").write_bytes(b"x")
    (cache_dir / "beta-dir.pt").mkdir()
    assert cache.clear("beta*") == 1 and (cache_dir / "beta-dir.pt").is_dir()
    assert cache.clear() == 2  # mnist_5k.pt and x-0.pt of the cache folder, not those above it
    assert (outer / "mnist_5k.pt").exists() and (outer / "data" / "mnist_5k.pt").exists()


@pytest.mark.parametrize("bad", [None, 3, b"x*", Path("x")])
def test_a_pattern_that_is_no_string_is_refused(guarded, bad):
    with pytest.raises(TypeError, match="pattern"):
        cache.clear(bad)


def test_a_nan_config_is_refused_before_training():
    trained = []
    for cfg in ({"lr": math.nan}, {"nested": {"beta": [1.0, math.inf]}}):
        with pytest.raises(ValueError, match=r"config holds .*at config\["):
            cache.load_or_train("x", cfg, lambda: nn.Linear(2, 2), trained.append)
    assert trained == []


def test_a_config_holding_a_lambda_is_refused_in_load_or_train_too(data_dir):
    with pytest.raises(TypeError, match=r"config holds .* \(at config\['f'\]\).*no stable description"):
        cache.load_or_train("x", {"f": lambda: 1}, lambda: nn.Linear(2, 2), lambda m: {})


def test_keys_of_valid_configs_are_unchanged():
    # the key of earlier versions: a shared cache built by them still hits
    assert cache.key({"model": "linear", "epochs": 2, "lr": 1e-3, "nested": {"b": (1, 2), "a": None}}) == \
        cache.key({"nested": {"a": None, "b": [1, 2]}, "lr": 0.001, "epochs": 2, "model": "linear"})
    assert cache.key({"a": 1}) == "015abd7f5cc57a2d"


def test_a_history_with_numpy_values_is_stored_and_loads(data_dir, capsys):
    runs = []

    def train(model):
        runs.append(1)
        return {"loss": [np.float32(1.5), np.float64(2.0)], "n": np.int64(3), "curve": np.arange(3),
                "t": torch.ones(2), "pair": (np.float32(0.25), "a")}

    first = cache.load_or_train("h", {"a": 1}, lambda: nn.Linear(2, 2), train)
    second = cache.load_or_train("h", {"a": 1}, lambda: nn.Linear(2, 2), train)
    assert (first[2], second[2], len(runs)) == (False, True, 1)
    assert second[1]["loss"] == [1.5, 2.0] and second[1]["n"] == 3 and second[1]["curve"] == [0, 1, 2]
    assert second[1]["pair"] == (0.25, "a") and torch.equal(second[1]["t"], torch.ones(2))
    assert "unreadable" not in capsys.readouterr().out


def test_a_history_that_cannot_be_stored_is_kept_for_the_session(data_dir, capsys):
    model, history, hit = cache.load_or_train("h", {"a": 2}, lambda: nn.Linear(2, 2), lambda m: {"f": object()})
    assert not hit and "history['f'] holds a object" in capsys.readouterr().out
    assert not cache.path_for("h", {"a": 2}).exists()


# ------------------------------------------------------------------------------------------------ data

def test_rectangles_with_one_factor_size_is_a_clear_error():
    for bad in [(3,), (3, 4, 5), 3, (0, 3), (2.5, 3)]:
        with pytest.raises(ValueError, match="factor_sizes"):
            data.rectangles(n=4, n_test=2, factor_sizes=bad, device="cpu")
    d = data.rectangles(n=4, n_test=2, factor_sizes=(3, 2), device="cpu")
    assert d.factor_sizes == (3, 2) and int(d.train_factors[:, 0].max()) < 3


@pytest.mark.parametrize("where", ["torchvision", "debian"])
def test_an_idx_label_outside_the_classes_is_refused(tmp_path, data_dir, monkeypatch, tiny_split, write_idx, where):
    monkeypatch.setattr(idx, "network_available", lambda *a, **k: False)
    folder = data_dir / "MNIST" / "raw" if where == "torchvision" else tmp_path / "debian"
    compress = where == "debian"
    tiny_split(folder, n_train=6, n_test=4, compress=compress)
    write_idx(folder / (data.IDX_FILES["test_y"] + (".gz" if compress else "")),
              torch.tensor([1, 200, 3, 4]), compress)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte(\.gz)? holds label 200"):
        if where == "torchvision":
            data.mnist(device="cpu", offline=True)
        else:
            data.fashion_mnist(device="cpu", system_dir=folder)


def test_mnist_loads_when_the_shared_cache_sits_in_a_folder_the_user_cannot_enter(data_dir, offline, monkeypatch,
                                                                                   tmp_path, capsys):
    locked = tmp_path / "locked"
    (locked / "cache").mkdir(parents=True)
    monkeypatch.setenv(cache.SHARED_ENV, str(locked / "cache"))
    real_stat = os.stat

    def stat(path, *args, **kw):  # what a 0700 folder of another user does to every look inside it
        if str(path).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kw)

    monkeypatch.setattr(os, "stat", stat)
    d = data.load("mnist", device="cpu")
    assert len(d.train_x) == 4000 and (data_dir / "mnist_5k.pt").exists()


# ------------------------------------------------------------------------------------------- properties

@settings(max_examples=200, deadline=None)
@given(name=st.text(alphabet=st.sampled_from(list("ab*?[]./\\~\0-_é ")), max_size=12)
       | st.text(min_size=150, max_size=260))
def test_any_name_either_stays_inside_the_cache_or_is_refused(name):
    try:
        path = cache.path_for(name, {"a": 1})
    except ValueError as err:
        assert "name must be a file name" in str(err)
        return
    assert path.parent == config.CACHE_DIR and path.name.startswith(name)
    assert "/" not in name and "\0" not in name and ".." not in name and len(name.encode()) <= checks.MAX_FILE_NAME
