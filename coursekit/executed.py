"""The executed course, made once and shared: the site, the decks and the checks read the same executed copies.

    python -m coursekit execute            # every unit and the app, into build/executed/ (skips what is current)

Each notebook runs with nbclient in its own folder, with the site's kernel extension (``coursekit.site``) so the
explorers describe themselves to the site. The copy is written to ``build/executed/<name>.ipynb`` with the hash
of the source it came from, the mode (full or smoke) and the precision in its metadata; while those match, the
copy is reused instead of run again. A failing notebook leaves no copy behind (writes are atomic).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import nbformat

from . import paths
from .i18n import notebook_language
from .notebooks import execute, read, strip, write_atomic

OUT = paths.ROOT / "build" / "executed"
KEY = "vaelab_executed"  # notebook metadata: what the copy was executed from
EXTRA_PAGES = ("beta_explorer_app.ipynb",)  # run after the units: the classroom dashboard


def course_notebooks(folder=paths.NOTEBOOKS) -> list[Path]:
    """The units in order, then the app (:data:`EXTRA_PAGES`) when it is there."""
    folder = Path(folder)
    return paths.units(folder) + [folder / n for n in EXTRA_PAGES if (folder / n).is_file()]


def _mode() -> dict:
    smoke = os.environ.get("SMOKE", "").strip().lower() in ("1", "true", "yes", "on")
    return {"mode": "smoke" if smoke else "full", "precision": os.environ.get("VAELAB_PRECISION", "") or "fp32"}


def source_hash(nb) -> str:
    """SHA-256 of the notebook as committed (stripped), so a change to any cell runs it again."""
    clean = strip(nbformat.from_dict(nb))
    clean.metadata.pop(KEY, None)
    return hashlib.sha256(nbformat.writes(clean).encode("utf-8")).hexdigest()


CATALOG = paths.ROOT / "vaeutils" / "locale" / "zh" / "LC_MESSAGES" / "vaeutils.po"  # what zh units print


def _stamp(nb) -> dict:
    stamp = {"source_sha256": source_hash(nb), **_mode()}
    if notebook_language(nb) == "zh" and CATALOG.is_file():
        # a Chinese unit's outputs are translated by vaeutils' catalog: a new translation runs it again
        stamp["catalog_sha256"] = hashlib.sha256(CATALOG.read_bytes()).hexdigest()
    return stamp


def is_current(copy_path: Path, nb) -> bool:
    """True when ``copy_path`` is an executed copy of ``nb`` made in the current mode and precision."""
    try:
        done = read(copy_path)
    except ValueError:
        return False
    return done.metadata.get(KEY, {}).get("stamp") == _stamp(nb)


def executed(path, out=OUT, timeout: int = 1800, force: bool = False) -> tuple[nbformat.NotebookNode, float]:
    """``(executed notebook, seconds it took)`` for the notebook at ``path``: the copy in ``out`` when it is
    current (0 seconds), else the notebook run now and its copy written."""
    from .site import KERNEL_ARGS

    path, out = Path(path), Path(out)
    nb = read(path)
    target = out / path.name
    if not force and is_current(target, nb):
        done = read(target)
        return done, float(done.metadata[KEY].get("seconds", 0.0))
    stamp = _stamp(nb)
    print(f"executing {path.name} ...", flush=True)
    start = time.perf_counter()
    execute(nb, path.parent, timeout=timeout, extra_arguments=KERNEL_ARGS)
    seconds = time.perf_counter() - start
    nb.metadata[KEY] = {"stamp": stamp, "seconds": round(seconds, 1)}
    write_atomic(target, nbformat.writes(nb))
    print(f"  done in {seconds:.1f} s", flush=True)
    return nb, seconds


def execute_course(notebooks=paths.NOTEBOOKS, out=OUT, timeout: int = 1800, force: bool = False,
                   only=None) -> list[tuple[Path, nbformat.NotebookNode, float]]:
    """Every course notebook (or those named in ``only``), executed or reused, in course order."""
    chosen = course_notebooks(notebooks)
    if only:
        chosen = [p for p in chosen if any(p.name.startswith(o) for o in only)]
    if not chosen:
        raise FileNotFoundError(f"no course notebooks in {notebooks}" + (f" matching {only}" if only else ""))
    return [(p, *executed(p, out, timeout, force)) for p in chosen]


def main(argv=None) -> int:
    import argparse

    from nbclient.exceptions import CellExecutionError

    from .notebooks import NotebookError

    parser = argparse.ArgumentParser(prog="python -m coursekit execute", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    parser.add_argument("out", nargs="?", default=OUT, type=Path)
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 03 04")
    parser.add_argument("--force", action="store_true", help="run every notebook again, even when current")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    args = parser.parse_args(argv)
    try:
        done = execute_course(args.notebooks, args.out, args.timeout, args.force, args.only)
    except (CellExecutionError, NotebookError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path, _, seconds in done:
        print(f"{path.name:<40} {seconds:7.1f} s")
    return 0
