"""Fixtures shared by the unit tests: a throw-away data folder, forced offline mode, and a device choice
that starts fresh in every test, so no test touches data/ or leaks state into another."""

import pytest

from vaeutils import config


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
