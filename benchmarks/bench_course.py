"""Time every notebook of the course, cold cache then warm, and print a Markdown table.

Cold: a fresh, empty data folder (VAELAB_DATA), so every model trains and every data file is
converted. Warm: the same folder again, so every checkpoint loads from the cache.

    python benchmarks/bench_course.py                     # full mode, what CI and a student run
    python benchmarks/bench_course.py --smoke             # SMOKE=1, a quick local check
    python benchmarks/bench_course.py --precision bf16    # the same with VAELAB_PRECISION=bf16
    python benchmarks/bench_course.py --only 03 04 --data-dir /tmp/lab-data

Targets (the README's table, 2-core CPU, full mode): the whole course <= 10 min cold and <= 2 min warm; each unit
<= 2 min cold (a model shared through the cache with an earlier unit counts once). The load average is
printed before and after: a busy machine inflates every number.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path: Path, env: dict, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="run in smoke mode (SMOKE=1), as CI does")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 03 04")
    p.add_argument("--data-dir", help="data folder to use (default: a fresh temporary one, removed afterwards)")
    p.add_argument("--warm-only", action="store_true", help="skip the cold pass (the data folder must be warm)")
    p.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="VAELAB_PRECISION for the notebooks (default fp32, the course's default)")
    args = p.parse_args(argv)

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in args.only)]
    if not notebooks:
        print("no notebooks matched", file=sys.stderr)
        return 2
    tmp = None if args.data_dir else tempfile.mkdtemp(prefix="vaelab-bench-")
    data_dir = args.data_dir or tmp
    env = {"VAELAB_DATA": data_dir, "SMOKE": "1" if args.smoke else "0", "VAELAB_OFFLINE": "1",
           "VAELAB_PRECISION": args.precision, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    load_before = os.getloadavg()
    passes = ["warm"] if args.warm_only else ["cold", "warm"]
    times: dict[str, dict[str, float]] = {nb.name: {} for nb in notebooks}
    try:
        for which in passes:
            for nb in notebooks:
                seconds = run_notebook(nb, env, args.timeout)
                times[nb.name][which] = seconds
                print(f"{which:>4}  {nb.name:<36} {seconds:7.1f} s", flush=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    mode = "smoke" if args.smoke else "full"
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}; precision {args.precision}")
    print(f"\n| notebook ({mode} mode, {os.cpu_count()} CPU cores) | " + " | ".join(f"{w} (s)" for w in passes) + " |")
    print("| --- |" + " ---: |" * len(passes))
    for name, row in times.items():
        print(f"| {name} | " + " | ".join(f"{row[w]:.1f}" for w in passes) + " |")
    totals = {w: sum(row[w] for row in times.values()) for w in passes}
    print("| **whole course** | " + " | ".join(f"**{totals[w]:.1f}**" for w in passes) + " |")
    if not args.smoke and "cold" in passes:
        over = [n for n, row in times.items() if row["cold"] > 120 and n[:2].isdigit()]
        print(f"\ncold: whole course {'within' if totals['cold'] <= 600 else 'OVER'} 10 min; units over 2 min: "
              f"{', '.join(over) or 'none'}")
    if not args.smoke and "warm" in passes:
        print(f"warm: whole course {'within' if totals['warm'] <= 120 else 'OVER'} 2 min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
