"""The executed course, made once and shared: the site, the decks and the checks read the same executed copies.

    python -m coursekit execute            # every unit and the app, into build/executed/ (skips what is current)
    python -m coursekit execute --jobs 2   # two at a time: for a warm model cache (each would train its own)

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
from .notebooks import NotebookError, execute, read, strip, write_atomic

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


def _execute_one(path: Path, out: Path, timeout: int, force: bool) -> str | None:
    """:func:`executed` in a worker process: None, or what went wrong (nbclient's errors do not pickle)."""
    try:
        executed(path, out, timeout, force)
    except Exception as err:  # noqa: BLE001 - reported by the parent, which raises
        return f"{type(err).__name__}: {err}"
    return None


def execute_side_by_side(pairs, timeout: int = 1800, force: bool = False, jobs: int = 2) -> int:
    """Run the stale notebooks of ``pairs`` (``(notebook path, out folder)``) ``jobs`` at a time, each in its own
    process and kernel; returns how many ran. Most of a unit run on a warm model cache is a kernel starting and
    importing, which runs on one core: two cores run two units in about the time of one. Meant for a warm cache
    (after nbmake, or a first run): two units that need the same missing model would both train it.

    A failing notebook raises :class:`~coursekit.notebooks.NotebookError` naming it, after the ones already
    running finish; those not started are not run. Its copy is not written."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    stale = [(Path(p), Path(o)) for p, o in pairs if force or not is_current(Path(o) / Path(p).name, read(p))]
    if jobs == 1 or len(stale) < 2:
        for path, out in stale:
            executed(path, out, timeout, force)
        return len(stale)
    # spawn, not fork: the parent may hold ZeroMQ sockets and threads that a fork would copy half-way
    with ProcessPoolExecutor(min(jobs, len(stale)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_execute_one, path, out, timeout, force) for path, out in stale]
        for (path, _), future in zip(stale, futures):
            if problem := future.result():
                for later in futures:
                    later.cancel()
                raise NotebookError(f"{path}: {problem}")
    return len(stale)


def execute_course(notebooks=paths.NOTEBOOKS, out=OUT, timeout: int = 1800, force: bool = False,
                   only=None, jobs: int = 1) -> list[tuple[Path, nbformat.NotebookNode, float]]:
    """Every course notebook (or those named in ``only``), executed or reused, in course order; ``jobs`` > 1
    runs the stale ones that many at a time (:func:`execute_side_by_side`)."""
    chosen = course_notebooks(notebooks)
    if only:
        chosen = [p for p in chosen if any(p.name.startswith(o) for o in only)]
    if not chosen:
        raise FileNotFoundError(f"no course notebooks in {notebooks}" + (f" matching {only}" if only else ""))
    if jobs > 1:
        execute_side_by_side([(p, out) for p in chosen], timeout, force, jobs)
        force = False  # run just now
    return [(p, *executed(p, out, timeout, force)) for p in chosen]


def jobs_arg(text: str) -> int:
    """``--jobs``: a whole number >= 1, or argparse's error naming the option and the fix."""
    import argparse

    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1 (e.g. --jobs 2)")
    return jobs


def main(argv=None) -> int:
    import argparse

    from nbclient.exceptions import CellExecutionError

    parser = argparse.ArgumentParser(prog="python -m coursekit execute", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    parser.add_argument("out", nargs="?", default=OUT, type=Path)
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 03 04")
    parser.add_argument("--force", action="store_true", help="run every notebook again, even when current")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    parser.add_argument("--jobs", type=jobs_arg, default=1,
                        help="notebooks run at a time (default 1; 2 on a warm model cache saves time)")
    args = parser.parse_args(argv)
    try:
        done = execute_course(args.notebooks, args.out, args.timeout, args.force, args.only, args.jobs)
    except (CellExecutionError, NotebookError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path, _, seconds in done:
        print(f"{path.name:<40} {seconds:7.1f} s")
    return 0
