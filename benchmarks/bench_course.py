"""Time every notebook of the course, cold cache then warm, and print a Markdown table.

Cold: a fresh, empty data folder (VAELAB_DATA), so every model trains and every data file is
converted. Warm: the same folder again, so every checkpoint loads from the cache.

    python benchmarks/bench_course.py                     # full mode, what CI and a student run
    python benchmarks/bench_course.py --smoke             # SMOKE=1, a quick local check
    python benchmarks/bench_course.py --precision bf16    # the same with VAELAB_PRECISION=bf16
    python benchmarks/bench_course.py --only 03 04 --data-dir /tmp/lab-data
    python benchmarks/bench_course.py --runs 3                # three cold-then-warm runs: median and spread

Targets (the README's table, 2-core CPU, full mode, float32): the whole course <= 300 s cold (the performance goal;
the course's budget is 10 min) and <= 90 s warm; each unit <= 2 min cold (a model shared through the cache with an
earlier unit counts once). It prints the machine first (CPU, its features, the measured matmul peaks) and the
load average before and after: a busy machine inflates every number.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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


COLD_TARGET_S, WARM_TARGET_S, UNIT_COLD_S, COURSE_BUDGET_S = 300, 90, 120, 600


def one_run(notebooks, env, passes, timeout, data_dir=None) -> dict[str, dict[str, float]]:
    """``{notebook name: {pass: seconds}}`` for one cold-then-warm run in ``data_dir`` (default: a fresh
    temporary folder, removed afterwards)."""
    tmp = None if data_dir else tempfile.mkdtemp(prefix="vaelab-bench-")
    env = {**env, "VAELAB_DATA": data_dir or tmp}
    times: dict[str, dict[str, float]] = {nb.name: {} for nb in notebooks}
    try:
        for which in passes:
            for nb in notebooks:
                seconds = run_notebook(nb, env, timeout)
                times[nb.name][which] = seconds
                print(f"{which:>4}  {nb.name:<36} {seconds:7.1f} s", flush=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="run in smoke mode (SMOKE=1), as CI does")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 03 04")
    p.add_argument("--data-dir", help="data folder to use (default: a fresh temporary one, removed afterwards)")
    p.add_argument("--warm-only", action="store_true", help="skip the cold pass (the data folder must be warm)")
    p.add_argument("--runs", type=int, default=1, help="cold-then-warm runs, each from a fresh data folder "
                   "(default 1); the table then gives the median and the spread")
    p.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="VAELAB_PRECISION for the notebooks (default fp32, the course's default)")
    args = p.parse_args(argv)
    if args.runs < 1 or (args.runs > 1 and args.data_dir):
        p.error("--runs must be >= 1, and several runs each need a fresh folder: leave out --data-dir")

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in args.only)]
    if not notebooks:
        print("no notebooks matched", file=sys.stderr)
        return 2
    import machine  # benchmarks/, on the path when run as `python benchmarks/bench_course.py`

    print(machine.header("The course, notebook by notebook (bench_course.py)"))
    env = {"SMOKE": "1" if args.smoke else "0", "VAELAB_OFFLINE": "1",
           "VAELAB_PRECISION": args.precision, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    load_before = os.getloadavg()
    passes = ["warm"] if args.warm_only else ["cold", "warm"]
    runs = []
    for r in range(args.runs):
        if args.runs > 1:
            print(f"\nrun {r + 1} of {args.runs}", flush=True)
        runs.append(one_run(notebooks, env, passes, args.timeout, args.data_dir))

    mode = "smoke" if args.smoke else "full"
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}; precision {args.precision}")

    def cell(values):  # one run: the value; several: the median and the range
        if len(values) == 1:
            return f"{values[0]:.1f}"
        return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"

    what = "" if args.runs == 1 else f", median (range) of {args.runs} runs"
    print(f"\n| notebook ({mode} mode, {os.cpu_count()} CPU cores{what}) | "
          + " | ".join(f"{w} (s)" for w in passes) + " |")
    print("| --- |" + " ---: |" * len(passes))
    for nb in notebooks:
        print(f"| {nb.name} | " + " | ".join(cell([t[nb.name][w] for t in runs]) for w in passes) + " |")
    totals = {w: [sum(row[w] for row in t.values()) for t in runs] for w in passes}
    print("| **whole course** | " + " | ".join(f"**{cell(totals[w])}**" for w in passes) + " |")
    if len(runs) > 1:
        for w in passes:
            print(f"{w}: runs {', '.join(f'{v:.1f}' for v in totals[w])} s")
    if not args.smoke and "cold" in passes:
        cold = statistics.median(totals["cold"])
        over = [nb.name for nb in notebooks
                if statistics.median(t[nb.name]["cold"] for t in runs) > UNIT_COLD_S and nb.name[:2].isdigit()]
        print(f"\ncold: whole course {cold:.0f} s, {'within' if cold <= COLD_TARGET_S else 'OVER'} the "
              f"{COLD_TARGET_S} s goal ({'within' if cold <= COURSE_BUDGET_S else 'OVER'} the "
              f"{COURSE_BUDGET_S // 60} min budget); units over "
              f"{UNIT_COLD_S} s: {', '.join(over) or 'none'}")
    if not args.smoke and "warm" in passes:
        warm = statistics.median(totals["warm"])
        print(f"warm: whole course {warm:.0f} s, {'within' if warm <= WARM_TARGET_S else 'OVER'} the "
              f"{WARM_TARGET_S} s goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
