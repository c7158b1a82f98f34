"""vaeutils.cache: load the checkpoint if it exists, else train; keyed by the config; atomic; never fatal."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


# ------------------------------------------------------------------- layers: shared (read-only), then the user's

@pytest.fixture
def shared(tmp_path, monkeypatch, cache_dir):
    """A shared cache holding one checkpoint (CFG), named by VAELAB_SHARED_CACHE; the user's cache is empty."""
    folder = tmp_path / "shared" / "cache"
    monkeypatch.setattr(config, "CACHE_DIR", folder)
    cache.load_or_train("nb03-t", CFG, Counter().build, Counter().train)
    monkeypatch.setattr(config, "CACHE_DIR", cache_dir)
    monkeypatch.setenv(cache.SHARED_ENV, str(folder))
    return folder


def snapshot(folder):
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_a_model_in_the_shared_layer_is_loaded_and_nothing_is_written(shared, cache_dir):
    before, c = snapshot(shared), Counter()
    model, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    assert hit and c.trained == 0 and torch.all(model.weight == 1)
    assert snapshot(shared) == before and not cache_dir.exists()
    assert [label for label, _ in cache.layers()] == ["shared", "user"]


def test_a_model_missing_from_the_shared_layer_is_trained_into_the_users(shared, cache_dir):
    before, c = snapshot(shared), Counter()
    _, _, hit = cache.load_or_train("nb03-t", {**CFG, "epochs": 3}, c.build, c.train)
    assert not hit and c.trained == 1
    assert cache.path_for("nb03-t", {**CFG, "epochs": 3}).exists() and snapshot(shared) == before
    _, _, hit = cache.load_or_train("nb03-t", {**CFG, "epochs": 3}, c.build, c.train)
    assert hit and c.trained == 1


def test_a_damaged_shared_copy_falls_through_to_the_users_layer(shared, cache_dir, capsys):
    c = Counter()
    (shared / cache.path_for("nb03-t", CFG).name).write_bytes(b"rotten" * 20)
    before = snapshot(shared)
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)  # trained into the user's layer
    assert not hit and c.trained == 1 and "shared copy" in capsys.readouterr().out
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    out = capsys.readouterr().out
    assert hit and c.trained == 1 and out.count("\n") == 1 and "loaded the user copy" in out
    assert snapshot(shared) == before


def test_when_the_users_cache_is_the_shared_folder_nothing_is_written(shared, monkeypatch, capsys):
    monkeypatch.setattr(config, "CACHE_DIR", shared)
    before, c = snapshot(shared), Counter()
    _, _, hit = cache.load_or_train("nb03-t", {**CFG, "epochs": 5}, c.build, c.train)
    assert not hit and c.trained == 1 and snapshot(shared) == before
    assert "shared, read-only" in capsys.readouterr().out
    assert cache.clear() == 0 and snapshot(shared) == before


def test_a_folder_that_cannot_be_written_is_not_an_error(cache_dir, monkeypatch, capsys):
    # (the real permission check runs as an unprivileged user in test_shared_cache.py; root ignores mode bits)
    def refuse(path, payload):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache, "atomic_save", refuse)
    c = Counter()
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)
    out = capsys.readouterr().out
    assert not hit and c.trained == 1 and "cannot write" in out and "this session only" in out


# --------------------------------------------------------------------------- writers killed mid-save (SIGKILL)

STALLED_WRITER = """
import os, sys, time
from pathlib import Path
import torch
from vaeutils import cache

def stall(src, dst):  # the bytes are in the temporary file; stop before the rename, as a killed writer would
    Path(sys.argv[2]).write_text(src)
    time.sleep(120)

os.replace = stall
cache.save(Path(sys.argv[1]), {"format": cache.FORMAT, "weights": torch.zeros(1_000_000)})
"""


def kill_a_writer_mid_save(target, tmp_path):
    marker = tmp_path / f"{target.name}.marker"
    proc = subprocess.Popen([sys.executable, "-c", STALLED_WRITER, str(target), str(marker)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the writer never reached the rename"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    orphan = Path(marker.read_text())
    assert orphan.exists() and orphan.stat().st_size > 4_000_000 and not target.exists()
    return orphan


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_orphans_of_killed_writers_are_removed_by_the_next_save_once_stale(cache_dir, tmp_path):
    target = cache.path_for("nb03-t", CFG)
    orphan = kill_a_writer_mid_save(target, tmp_path)
    assert orphan.parent == cache_dir and orphan.name.startswith(target.name + ".") and orphan.suffix == ".tmp"
    c = Counter()
    _, _, hit = cache.load_or_train("nb03-t", CFG, c.build, c.train)  # never mistaken for a checkpoint
    assert not hit and c.trained == 1
    assert orphan.exists()  # young: a writer could still be busy with it
    age(orphan, cache.STALE_TMP_SECONDS + 60)
    cache.load_or_train("nb03-other", CFG, c.build, c.train)  # the next save in that folder
    assert not orphan.exists()
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted(
        [target.name, cache.path_for("nb03-other", CFG).name])


def test_clear_removes_stale_orphans_too(cache_dir, tmp_path):
    orphan = kill_a_writer_mid_save(cache_dir / "nb03-x-0000000000000000.pt", tmp_path)
    age(orphan, cache.STALE_TMP_SECONDS + 60)
    young = cache_dir / "nb03-y.pt.abcd1234.tmp"
    young.write_bytes(b"a writer that is still alive")
    assert cache.clear() == 0
    assert not orphan.exists() and young.exists()
    assert cache.remove_stale_tmp(older_than=0) == 1 and not young.exists()
