"""What the hand-written training step of version 2 was worth: one epoch with it and without it.

Version 2 trained the course's most-trained pair (an ``MLPVAE`` with a Bernoulli ``ELBOLoss``) with a
fused step whose backward pass was written out by hand (``vaeutils/fused.py``) and a lean Adam
(``vaeutils/optim.py``); version 3 deleted both and trains with autograd and ``Adam(fused=True)``.
This script checks out the last commit that still had them into a temporary git worktree and, in
one process there, times one epoch of 60,000 Fashion-MNIST images at batch 256 both ways, the two
alternating round by round, in float32 and bfloat16:

    python benchmarks/bench_handwritten.py [--rounds 3] [--commit f51b593^]

It prints the median and the range per path and precision, after the machine's header. Run it on a
quiet machine: every other process on the cores shows up in the spread.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import machine

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the old tree: both paths share the model, data, loss and batches; only the step differs.
_TIMER = r'''
import statistics, sys, time
import torch
from vaeutils import data, fused, losses, optim, train
from vaeutils.models import build_model

rounds = int(sys.argv[1])
x = data.load("fashion-mnist").train_x


def epoch(path, precision):
    torch.manual_seed(0)
    model = build_model("mlp", in_shape=(1, 28, 28), hidden=(400,), latent_dim=20)
    loss, params = losses.ELBOLoss(), list(model.parameters())
    if path == "hand-written":
        opt = optim.LeanAdam(params, lr=1e-3)
    else:
        opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    supports = fused.supports
    if path != "hand-written":
        fused.supports = lambda *a, **k: False
    try:
        perm, step = torch.randperm(len(x)), 0
        for i in range(0, 20 * 256, 256):  # warm-up: allocation, thread start
            train.train_step(model, opt, loss, x.index_select(0, perm[i:i + 256]), step,
                             precision=precision)
            step += 1
        t0 = time.perf_counter()
        for i in range(0, len(x), 256):
            train.train_step(model, opt, loss, x.index_select(0, perm[i:i + 256]), step,
                             precision=precision)
            step += 1
        return time.perf_counter() - t0
    finally:
        fused.supports = supports


print("| precision | path | epoch (s), median (min–max) | runs |\n| --- | --- | --- | --- |")
for precision in ("fp32", "bf16"):
    times = {"hand-written": [], "autograd": []}
    for r in range(rounds):
        for path in (("hand-written", "autograd") if r % 2 == 0 else ("autograd", "hand-written")):
            times[path].append(epoch(path, precision))
            print(f"  {precision} {path}: {times[path][-1]:.2f} s", file=sys.stderr, flush=True)
    for path, ts in times.items():
        print(f"| {precision} | {path} | {statistics.median(ts):.2f} ({min(ts):.2f}–{max(ts):.2f}) |"
              f" {len(ts)} |", flush=True)
'''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--commit", default="f51b593^",
                        help="the last commit with vaeutils/fused.py (default f51b593^)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    print(machine.header("bench_handwritten"))
    with tempfile.TemporaryDirectory(prefix="vaelab-v2-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree),
                        args.commit], check=True)
        try:
            env = {"PYTHONPATH": str(tree), "VAELAB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
            return subprocess.run([sys.executable, "-c", _TIMER, str(args.rounds)], cwd=tree,
                                  env=env).returncode
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False)


if __name__ == "__main__":
    sys.exit(main())
