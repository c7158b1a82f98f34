"""How fast the β tools of unit 05 answer, measured inside a real Jupyter kernel.

A kernel is started (as JupyterLab or Voila would), the widgets are built and displayed there, and:

1. ``beta_explorer``: the β slider is set from Python, one value after another, and each complete
   update is timed in the kernel (the observer, the image and HTML swap and the comm messages that
   carry them to the front end). Printed: p50 / p95 / max in ms against the 50 ms target.
2. ``live_beta_trainer``: it trains for ``--seconds`` (default 10) while β changes every second;
   printed: view updates per second against the 5 per second target, and training steps per second.
3. The kernel stays usable meanwhile: the round trip of a trivial cell (``1 + 1``) sent by the client,
   p50 / p95, while the trainer runs and, for contrast, while it does not.

The explorer uses the default sweep from the cache (unit 05 trains it; a cold cache trains it
here first, which takes minutes). ``--tiny`` uses a 2-β sweep trained in seconds instead: a smoke check.
Timings are wall-clock; the load average is printed first, because other jobs on the cores count.

    python benchmarks/bench_widgets.py [--moves 400] [--seconds 10] [--tiny]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import statistics
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

EXPLORER_TARGET_MS = 50.0
LIVE_TARGET_PER_S = 5.0

SETUP_EXPLORER = """
import json, time, numpy as np
from vaeutils import config
config.setup(seed=0)
from vaeutils import sweep as S
from vaeutils.widgets import beta as B
from IPython.display import display
t0 = time.perf_counter()
if {tiny}:
    data = S.prepare_data()
    explorer = B.beta_explorer(data, betas=(0.5, 4.0), epochs=1, cache=False, progress=False)
else:
    explorer = B.beta_explorer(progress=False)
build_s = time.perf_counter() - t0
display(explorer)
"""

MOVE_SLIDER = """
rng = np.random.default_rng(0)
betas = explorer.betas
times = []
index = explorer.current_index
for _ in range({moves}):
    index = (index + int(rng.integers(1, len(betas)))) % len(betas)  # always a different β
    t0 = time.perf_counter()
    explorer.slider.value = betas[index]
    times.append((time.perf_counter() - t0) * 1e3)
    assert explorer.current_beta == betas[index]
result = json.dumps({{"times": times, "build_s": build_s, "n_betas": len(betas),
                     "png_kb": [len(p) / 1024 for p in explorer.panels]}})
"""

SETUP_LIVE = """
from vaeutils.widgets import live_beta_trainer
trainer = live_beta_trainer()
display(trainer)
trainer.start()
"""

CHANGE_BETA = "trainer.beta_slider.value = {beta}"

REPORT_LIVE = """
stopped = trainer.stop(timeout=5.0)
h = trainer.history
result = json.dumps({"updates": trainer.updates, "steps": trainer.steps, "stopped": stopped,
                     "alive": trainer.thread.is_alive(), "device": str(trainer.device), "threads": trainer.threads,
                     "first_s": h[0]["seconds"] if h else None, "last_s": h[-1]["seconds"] if h else None})
"""


def _percentiles(values) -> tuple[float, float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95)), float(max(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=400, help="slider moves to time (default 400)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the live trainer runs (default 10)")
    parser.add_argument("--tiny", action="store_true", help="a 2-β, 1-epoch sweep instead of the cached default")
    args = parser.parse_args()

    from jupyter_client.manager import start_new_kernel

    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores")
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        def drain_iopub() -> None:
            # Nobody reads the outputs; take what has arrived (get_msgs() would wait for one more message).
            while True:
                try:
                    kc.get_iopub_msg(timeout=0)
                except queue.Empty:
                    return

        def run(code: str, timeout: float = 900, result: bool = False):
            """Execute ``code``; wait for its reply on the shell channel (not for printed output, whose
            arrival order on iopub is not guaranteed). ``result``: return the kernel's ``result`` string."""
            expressions = {"result": "result"} if result else {}
            msg_id = kc.execute(textwrap.dedent(code), user_expressions=expressions)
            while True:
                reply = kc.get_shell_msg(timeout=timeout)
                drain_iopub()
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            content = reply["content"]
            if content["status"] != "ok":
                raise RuntimeError("kernel cell failed:\n" + "\n".join(content.get("traceback", [str(content)])))
            if result:
                return json.loads(ast.literal_eval(content["user_expressions"]["result"]["data"]["text/plain"]))
            return None

        def round_trips(n: int = 40, pause: float = 0.05) -> list[float]:
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                run("1 + 1", timeout=60)
                times.append((time.perf_counter() - t0) * 1e3)
                time.sleep(pause)
            return times

        print("building the explorer in the kernel (a cold cache trains the sweep first)...", flush=True)
        run(SETUP_EXPLORER.format(tiny=args.tiny))
        result = run(MOVE_SLIDER.format(moves=args.moves), result=True)
        times = result["times"]
        p50, p95, worst = _percentiles(times)
        print(f"\nbeta_explorer: {result['n_betas']} β values, built in {result['build_s']:.1f} s, "
              f"panels {min(result['png_kb']):.0f}-{max(result['png_kb']):.0f} kB each")
        print(f"{'what':<36}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}")
        print(f"{'slider update in the kernel (ms)':<36}{len(times):>6}{p50:>9.2f}{p95:>9.2f}{worst:>9.2f}")
        print(f"target: p95 < {EXPLORER_TARGET_MS:.0f} ms -> {'met' if p95 < EXPLORER_TARGET_MS else 'MISSED'}")

        idle = round_trips()
        run(SETUP_LIVE)
        t_start = time.perf_counter()
        busy, beta, changes = [], 1.0, 0
        while time.perf_counter() - t_start < args.seconds:
            busy += round_trips(n=10)
            beta = 8.0 if beta == 1.0 else 1.0
            run(CHANGE_BETA.format(beta=beta))
            changes += 1
        live = run(REPORT_LIVE, result=True)
        span = (live["last_s"] or 0) - (live["first_s"] or 0)
        rate = (live["updates"] - 1) / span if span > 0 else 0.0
        print(f"\nlive_beta_trainer on {live['device']} ({live['threads']} training thread(s)), "
              f"{args.seconds:g} s, β changed {changes} times")
        print(f"  view updates: {live['updates']} -> {rate:.1f} per second "
              f"(target >= {LIVE_TARGET_PER_S:g}: {'met' if rate >= LIVE_TARGET_PER_S else 'MISSED'})")
        print(f"  training steps: {live['steps']} -> {live['steps'] / args.seconds:.0f} per second")
        print(f"  stopped cleanly: {live['stopped'] and not live['alive']}")
        print(f"{'kernel round trip of `1 + 1` (ms)':<36}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}")
        for name, values in (("  trainer idle", idle), ("  trainer running", busy)):
            p50, p95, worst = _percentiles(values)
            print(f"{name:<36}{len(values):>6}{p50:>9.1f}{p95:>9.1f}{worst:>9.1f}")
        print(f"  (mean while running {statistics.fmean(busy):.1f} ms)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
