"""Training on a shared machine: one epoch of the 784-400-20 VAE (Fashion-MNIST, 60,000 images, batch 256,
float32) on a quiet machine, with one busy competing process and with two, for three thread settings:

* ``auto``: what ``train.fit`` does by default (``vaeutils.cpu.ThreadPolicy``: all usable cores, one fewer for
  every core other processes keep busy, looked at every half second);
* ``all``: every usable core the whole time (torch's default, what training did before the policy);
* ``1``: one thread the whole time.

A competitor is a Python process that spins (one busy core). The settings alternate within each condition
(``--rounds`` times, the order rotating), and the table gives the median epoch with its min–max, and each
median over the quiet ``auto`` median. The goal: with one competitor an epoch takes at most 2.2× its quiet
time, and ``auto`` loses nothing against ``all`` on a quiet machine. Run it with nothing else running.

    python benchmarks/bench_threads.py               # 3 rounds: about 4 minutes on 2 cores
    python benchmarks/bench_threads.py --rounds 1 --images 10000    # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import machine
import torch

from vaeutils import cpu
from vaeutils import data as D
from vaeutils.models import build_model
from vaeutils.train import fit

SETTINGS = ("auto", "all", "1")


def one_epoch(x: torch.Tensor, setting: str) -> float:
    """Seconds of one epoch of ``fit`` with the thread ``setting``."""
    env = {"auto": "auto", "all": str(cpu.usable_cores()), "1": "1"}[setting]
    os.environ[cpu.ENV] = env
    try:
        torch.manual_seed(0)
        model = build_model("mlp", in_shape=tuple(x.shape[1:]), hidden=(400,), latent_dim=20)
        t0 = time.perf_counter()
        fit(model, x, epochs=1, batch_size=256, lr=6e-3, progress=False, precision="fp32")
        return time.perf_counter() - t0
    finally:
        os.environ.pop(cpu.ENV, None)


def competitors(n: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(1.0)  # let them get going, and the policy see them
    return procs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=60000, help="training images per epoch (default 60,000)")
    p.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    print(machine.header("Training on a shared machine (bench_threads.py)"))
    x = D.load("fashion-mnist").train_x[: args.images]
    one_epoch(x[:5000], "auto")  # warm-up: allocator, thread pool
    times: dict[tuple[int, str], list[float]] = {}
    for n in args.competitors:
        procs = competitors(n)
        try:
            for r in range(args.rounds):
                order = SETTINGS[r % 3:] + SETTINGS[:r % 3]
                for setting in order:
                    seconds = one_epoch(x, setting)
                    times.setdefault((n, setting), []).append(seconds)
                    print(f"  {n} competitor(s), threads {setting:>4}: {seconds:6.2f} s", flush=True)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    quiet = statistics.median(times.get((0, "auto"), [float("nan")]))
    print("\n| competitors | threads | epoch (s), median (min–max) | × quiet auto |\n| --- | --- | --- | --- |")
    for (n, setting), ts in sorted(times.items()):
        med = statistics.median(ts)
        print(f"| {n} | {setting} | {med:.2f} ({min(ts):.2f}–{max(ts):.2f}) | {med / quiet:.2f} |")
    print(f"\n{len(x):,} images per epoch, {args.rounds} rounds; load average after: {machine.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
