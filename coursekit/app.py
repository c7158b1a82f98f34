"""The β explorer app: ``notebooks/beta_explorer_app.ipynb`` served by Voila as a dashboard (no code shown).

    python -m coursekit app                 # what `make app` runs: http://127.0.0.1:8866/
    python -m coursekit app --port 8870     # another port
    python -m coursekit app --prepare-only  # train (or load) the β-sweep and exit

Before serving, the β-sweep of unit 05 is loaded from the cache, or trained with a progress bar in
the terminal when the cache lacks it, so the page opens on cached models in seconds. Everything runs
on this machine (CPU, or the GPU when there is one); nothing is fetched from the network.
The browser tests start Voila with :func:`voila_argv` too, so they test exactly what ``make app`` serves.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

from vaeutils import config

from . import paths

APP_NOTEBOOK = paths.APP_NOTEBOOK
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866


def _check_port(port) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an int in 1..65535, got {port!r}; the default is {DEFAULT_PORT}")
    return port


def url(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> str:
    """The address the app answers on."""
    return f"http://{host}:{_check_port(port)}/"


def voila_argv(notebook=APP_NOTEBOOK, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> list[str]:
    """The Voila command line: one notebook, code cells hidden, tracebacks shown (it runs on your own
    machine), no browser opened, and exactly ``port`` (no silent move to another port).

    A preheated kernel runs the notebook as soon as the server starts, so the page opens in a few seconds
    instead of waiting for the explorer to be built; after each page is served Voila preheats the next."""
    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise ValueError(f"notebook must be an existing .ipynb file, got {str(notebook)!r}")
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={_check_port(port)}",
            f"--Voila.ip={host}", "--Voila.port_retries=0", "--strip_sources=True", "--show_tracebacks=True",
            "--preheat_kernel=True"]


def server_env(base=None) -> dict:
    """The environment for Voila and its kernels: ``vaeutils`` importable from this checkout even
    without an editable install (the kernel's working folder is ``notebooks/``)."""
    env = dict(os.environ if base is None else base)
    found = [str(paths.ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(found))
    return env


def port_in_use(port: int, host: str = DEFAULT_HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, _check_port(port)))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def prepare(progress: bool = True) -> None:
    """Load the β-sweep the app shows, training it first (with a progress bar) if the cache lacks it."""
    from vaeutils.sweep import train_beta_sweep

    train_beta_sweep(progress=progress)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit app", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--prepare-only", action="store_true", help="train or load the β-sweep, then exit")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be in 1..65535, got {args.port}")

    config.setup(seed=0)
    prepare()
    if args.prepare_only:
        return 0
    if port_in_use(args.port, args.host):
        print(f"port {args.port} is already in use (another app still running?); "
              f"stop it, or choose another port: make app PORT={args.port + 1}", file=sys.stderr)
        return 1
    print(f"\nThe β explorer: open {url(args.port, args.host)} in a browser (Ctrl-C stops the server)\n", flush=True)
    command = voila_argv(port=args.port, host=args.host)
    os.execve(command[0], command, server_env())  # Voila takes over this process, Ctrl-C included


if __name__ == "__main__":
    sys.exit(main())
