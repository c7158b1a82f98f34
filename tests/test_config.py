"""vaeutils.config: the smoke switch, pick(), seeding, and the device choice."""

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeutils import config


@pytest.mark.parametrize(
    "env, smoke",
    [({}, False), ({"CI": "true"}, False), ({"SMOKE": "1"}, True), ({"SMOKE": "0"}, False), ({"SMOKE": "yes"}, True)],
)
def test_smoke_switch_reads_smoke_only_so_ci_runs_full_mode(monkeypatch, env, smoke):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SMOKE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config.is_smoke() is smoke
    assert config.pick(full=20, smoke=1) == (1 if smoke else 20)


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        g = config.seed_everything(7)
        return random.random(), np.random.rand(), torch.rand(3), torch.rand(3, generator=g)

    first, second = draw(), draw()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])
    config.seed_everything(8)
    assert not torch.equal(first[2], torch.rand(3))


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(seed)


def test_set_device_rejects_bad_names():
    with pytest.raises(ValueError, match="device="):
        config.set_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            config.set_device("cuda")


def test_set_device_overrides_and_none_goes_back_to_automatic(capsys):
    assert config.set_device("cpu") == torch.device("cpu")
    assert config.get_device() == torch.device("cpu")
    assert "set by hand" in capsys.readouterr().out
    assert config.set_device(None) == config._auto_device()


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="an accelerator is present")
def test_get_device_is_cpu_without_accelerator_and_prints_once(monkeypatch, capsys):
    monkeypatch.delenv("VAELAB_DEVICE", raising=False)
    assert config.get_device() == torch.device("cpu")
    assert config.get_device() == torch.device("cpu")
    assert capsys.readouterr().out.count("using device") == 1


def test_setup_seeds_and_returns_the_device(capsys):
    device = config.setup(seed=3)
    a = torch.rand(2)
    config.setup(seed=3)
    assert torch.equal(a, torch.rand(2))
    assert device == config.get_device()
    assert "mode" in capsys.readouterr().out


def test_the_tests_never_see_the_course_data_folder():
    """conftest.py points the data folder (and VAELAB_DATA, which kernels and command lines inherit) at a temporary
    folder and turns the network off, so no test reads or writes data/."""
    course_data = (config.ROOT / "data").resolve()
    assert config.DATA_DIR.resolve() != course_data and config.CACHE_DIR.resolve().parent != course_data
    assert Path(os.environ["VAELAB_DATA"]).resolve() != course_data and os.environ["VAELAB_OFFLINE"] == "1"
