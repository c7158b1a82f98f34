"""The app launcher behind `make app` (the page itself is tested in a browser by test_browser.py)."""

from __future__ import annotations

import os
import socket
import sys

import nbformat
import pytest

from coursekit import app
from vaeutils import config


def test_voila_command_serves_the_app_notebook_without_code():
    argv = app.voila_argv(port=8870)
    assert argv[:4] == [sys.executable, "-m", "voila", str(app.APP_NOTEBOOK)]
    assert "--port=8870" in argv and "--Voila.ip=127.0.0.1" in argv and "--Voila.port_retries=0" in argv
    assert "--strip_sources=True" in argv and "--no-browser" in argv
    assert app.url(8870) == "http://127.0.0.1:8870/"


def test_app_notebook_is_committed_clean_and_uses_the_widgets():
    nb = nbformat.read(app.APP_NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for name in ("kl_explorer()", "beta_explorer(", "live_beta_trainer()", ".slider.add_class"):
        assert name in code
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("port", [0, 70000, "8866", True, 8866.0])
def test_bad_port_is_refused(port):
    with pytest.raises(ValueError, match="port"):
        app.voila_argv(port=port)


def test_missing_notebook_is_refused(tmp_path):
    with pytest.raises(ValueError, match="notebook"):
        app.voila_argv(tmp_path / "nowhere.ipynb")


def test_server_env_makes_vaeutils_importable_from_anywhere():
    env = app.server_env({"PYTHONPATH": os.pathsep.join(["/elsewhere", str(config.ROOT)])})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(config.ROOT), "/elsewhere"]
    assert app.server_env({})["PYTHONPATH"] == str(config.ROOT)


def test_a_port_in_use_is_reported(capsys, monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert app.port_in_use(port)
        monkeypatch.setattr(app, "prepare", lambda progress=True: None)  # the sweep is not what this tests
        assert app.main(["--port", str(port)]) == 1
    assert f"port {port} is already in use" in capsys.readouterr().err
