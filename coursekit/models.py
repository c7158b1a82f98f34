"""`make models` (``python -m coursekit models``): train every model of the course once, into a data folder
a class can share read-only.

Runs every unit notebook (``notebooks/NN_*.ipynb``, whatever units there are) in full mode, then the app's
β-sweep (``python -m coursekit app --prepare-only``), all with ``VAELAB_DATA`` pointed at the folder to fill, so
each ``train_vae`` / ``load_or_train`` writes its checkpoint to ``<folder>/cache`` (and the MNIST sample to
``<folder>/mnist_5k.pt``). No list of models is kept here: the notebooks are the list. A progress bar runs
over the notebooks; the summary says how many models were trained, how long it took and the disk used.
A second run loads everything and trains nothing.

    python -m coursekit models --data-dir /srv/vaelab/data      # what `make models MODELS_DIR=...` runs

Then share it: ``chmod -R a+rX /srv/vaelab`` and give students' kernels
``VAELAB_SHARED_CACHE=/srv/vaelab/data/cache`` (classroom/jupyterhub_config.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .paths import ROOT


def _files(cache: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime in ns) of every checkpoint in the cache folder."""
    if not cache.is_dir():
        return {}
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.glob("*.pt")}


def _environment(data_dir: Path) -> dict:
    env = dict(os.environ)
    for k in ("VAELAB_SHARED_CACHE", "VAELAB_SHARED_DATA", "CI"):  # fill this folder in full, in full mode
        env.pop(k, None)
    paths = [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(VAELAB_DATA=str(data_dir), SMOKE="0", PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
               MPLBACKEND="module://matplotlib_inline.backend_inline", PYTHONUNBUFFERED="1")
    return env


def _run_notebook(path: Path, env: dict, timeout: int) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{int(s // 60)} min {s % 60:02.0f} s"


def make_models(data_dir: Path, notebooks: list[Path], app: bool = True, timeout: int = 3600,
                progress: bool = True) -> dict:
    """Run ``notebooks`` (and the app's sweep when ``app``) with VAELAB_DATA=``data_dir``; returns the summary."""
    from tqdm.auto import tqdm

    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    cache = data_dir / "cache"
    env = _environment(data_dir)
    before, t0 = _files(cache), time.perf_counter()
    steps = [(nb.name, nb) for nb in notebooks] + ([("app β-sweep", None)] if app else [])
    failures = []
    bar = tqdm(steps, desc="make models", unit="notebook", disable=not progress, leave=True)
    for label, nb in bar:
        bar.set_postfix_str(label)
        try:
            if nb is None:
                subprocess.run([sys.executable, "-m", "coursekit", "app", "--prepare-only"], env=env, cwd=ROOT,
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            else:
                _run_notebook(nb, env, timeout)
        except Exception as err:  # say which notebook failed, go on with the others
            detail = getattr(err, "stderr", None) or str(err)
            failures.append(f"{label}: {type(err).__name__}: {detail.strip().splitlines()[-1] if detail else ''}")
    bar.close()
    after = _files(cache)
    trained = sorted(name for name, stat in after.items() if before.get(name) != stat)
    summary = {
        "folder": str(cache), "notebooks": len(notebooks), "app": app, "seconds": time.perf_counter() - t0,
        "trained": len(trained), "already_cached": len(after) - len(trained), "models": len(after),
        "bytes": sum(s for s, _ in after.values()), "bytes_added": sum(after[n][0] for n in trained)
        - sum(before[n][0] for n in trained if n in before), "failures": failures, "trained_names": trained,
    }
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m coursekit models", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT / "data"), help="the data folder to fill (its cache/ gets the "
                   "checkpoints; default data/)")
    p.add_argument("--notebooks", default=str(ROOT / "notebooks"), help="folder of the unit notebooks NN_*.ipynb")
    p.add_argument("--no-app", action="store_true", help="skip the app's β-sweep")
    p.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    p.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = p.parse_args(argv)
    notebooks = sorted(Path(args.notebooks).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks and args.no_app:
        print(f"make models: no unit notebooks in {args.notebooks}", file=sys.stderr)
        return 2
    s = make_models(Path(args.data_dir), notebooks, app=not args.no_app, timeout=args.timeout)
    what = f"{s['notebooks']} notebooks" + (" and the app's β-sweep" if s["app"] else "")
    print(f"make models: {what} in {_duration(s['seconds'])}; {s['trained']} models trained, "
          f"{s['already_cached']} already cached; {s['models']} in {s['folder']}, {_size(s['bytes'])} on disk "
          f"({'+' if s['bytes_added'] >= 0 else '-'}{_size(abs(s['bytes_added']))} this run)")
    for line in s["failures"]:
        print(f"make models: FAILED {line}", file=sys.stderr)
    if not s["failures"]:
        print(f"share it read-only: chmod -R a+rX {Path(s['folder']).parent}; students' kernels need "
              f"VAELAB_SHARED_CACHE={s['folder']} (classroom/jupyterhub_config.py sets it)")
    if args.json:
        print(json.dumps({k: v for k, v in s.items() if k != "trained_names"}))
    return 1 if s["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
