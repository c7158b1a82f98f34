"""How long one redraw of the KL explorer (unit 01) takes in the kernel.

Builds the widget inside an IPython shell (so ``display`` runs the real formatter, as in a
notebook), then sets slider values one at a time and times each complete update: the state,
the redraw, the PNG and its display. Prints p50 / p95 / max in ms against the 100 ms target:
wall-clock time, and the CPU time of this process (steadier when other jobs share the cores).

    python benchmarks/bench_kl_explorer.py [--updates 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import time

import numpy as np

TARGET_MS = 100.0


def _percentiles(times_ms: list[float]) -> tuple[float, float, float]:
    return (float(np.percentile(times_ms, 50)), float(np.percentile(times_ms, 95)), max(times_ms))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200, help="slider changes to time (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance()  # display() now formats the PNG into a mime bundle, as in Jupyter

    from vaeutils.widgets import kl_explorer
    from vaeutils.widgets.kl import draw_kl_explorer, kl_explorer_state, render_png

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        start = time.perf_counter()
        explorer = kl_explorer(mu=0.0, sigma=1.0)
        build_ms = (time.perf_counter() - start) * 1e3

        rng = np.random.default_rng(args.seed)
        sliders = {"mu": [], "sigma": [], "logvar": []}
        cpu = []
        renders_before = explorer.n_renders
        for i in range(args.updates):
            if i == args.updates // 2:
                explorer.logvar_toggle.value = True  # second half: log σ² is the input
            if i % 2 == 0:
                name, slider, value = "mu", explorer.mu_slider, round(rng.uniform(-4, 4), 2)
            elif explorer.logvar_toggle.value:
                name, slider, value = "logvar", explorer.logvar_slider, round(rng.uniform(-9, 3), 2)
            else:
                name, slider, value = "sigma", explorer.sigma_slider, 10 ** rng.uniform(-2, math.log10(5))
            t0, c0 = time.perf_counter(), time.process_time()
            slider.value = value
            sliders[name].append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
        renders = explorer.n_renders - renders_before

        # The parts of one update, timed on their own.
        fig = explorer.figure
        parts = {"state": [], "draw (artists)": [], "png (blit + encode)": []}
        for _ in range(50):
            mu, sigma = rng.uniform(-4, 4), 10 ** rng.uniform(-2, 0.7)
            t0 = time.perf_counter()
            state = kl_explorer_state(mu, sigma=sigma)
            t1 = time.perf_counter()
            draw_kl_explorer(state, fig)
            t2 = time.perf_counter()
            render_png(fig)
            t3 = time.perf_counter()
            parts["state"].append((t1 - t0) * 1e3)
            parts["draw (artists)"].append((t2 - t1) * 1e3)
            parts["png (blit + encode)"].append((t3 - t2) * 1e3)
        full = []
        for _ in range(10):
            state = kl_explorer_state(rng.uniform(-4, 4), sigma=10 ** rng.uniform(-2, 0.7))
            t0 = time.perf_counter()
            buf = io.BytesIO()
            draw_kl_explorer(state, fig).savefig(buf, format="png")
            full.append((time.perf_counter() - t0) * 1e3)

    everything = [t for ts in sliders.values() for t in ts]
    print(f"KL explorer: {args.updates} slider updates ({renders} PNGs rendered), widget built in {build_ms:.0f} ms")
    print(f"{'what':<28}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    rows = [(f"update via {k} slider", v) for k, v in sliders.items() if v]
    rows += [("all updates", everything), ("all updates, CPU time", cpu)]
    for name, times in rows:
        p50, p95, worst = _percentiles(times)
        print(f"{name:<28}{len(times):>5}{p50:>9.1f}{p95:>9.1f}{worst:>9.1f}")
    for name, times in parts.items():
        p50, p95, worst = _percentiles(times)
        print(f"{'  part: ' + name:<28}{len(times):>5}{p50:>9.1f}{p95:>9.1f}{worst:>9.1f}")
    p50, p95, worst = _percentiles(full)
    print(f"{'  for contrast: full draw':<28}{len(full):>5}{p50:>9.1f}{p95:>9.1f}{worst:>9.1f}")
    over = sum(t >= TARGET_MS for t in everything)
    print(f"target: every update < {TARGET_MS:.0f} ms -> {'met' if over == 0 else f'{over} updates over'}"
          f" (mean {statistics.fmean(everything):.1f} ms wall, {statistics.fmean(cpu):.1f} ms CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
