"""Several models at once: ``sweep.train_many`` one model after the other (``VAELAB_WORKERS=1``) against
side by side in worker processes (``auto``), in alternating rounds, and the weights compared.

    python benchmarks/bench_many.py                  # 3 rounds, 4 and 7 models of the β-sweep recipe, 10 epochs
    python benchmarks/bench_many.py --models 2 8 --epochs 40 --rounds 2

Each round trains the same settings both ways from an empty cache (a temporary folder) on the offline MNIST
(4,000 images): the β-sweep's 784-400-20 VAE, dynamically binarized batches of 128, one β per model. Prints
seconds per way, the speed-up per round and its median, and whether the two ways gave the same weights (they
must: each model seeds its own weights and stream, and the products give the same bits on one thread or two).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import machine
import torch

from vaeutils import cache, config, cpu, data, sweep
from vaeutils.losses import ELBOLoss

BETAS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def run(n: int, epochs: int, workers: str, mnist) -> tuple[float, list]:
    os.environ[cpu.WORKERS_ENV] = workers
    cache.clear("bench-many*")
    settings = [dict(loss=ELBOLoss(beta=b), hidden=sweep.SWEEP_HIDDEN, latent_dim=sweep.SWEEP_LATENT_DIM,
                     epochs=epochs, binarize=True) for b in BETAS[:n]]
    t0 = time.perf_counter()
    results = sweep.train_many(settings, data=mnist, name="bench-many", progress=False)
    return time.perf_counter() - t0, results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, nargs="+", default=[4, 7], help="models per call (2 to 10)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per model")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if any(not 2 <= n <= len(BETAS) for n in args.models):
        p.error(f"--models takes numbers from 2 to {len(BETAS)}")
    print(machine.header("bench_many"))
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-many-") as tmp:
        config.DATA_DIR, config.CACHE_DIR = Path(tmp), Path(tmp) / "cache"
        os.environ["VAELAB_OFFLINE"] = "1"
        mnist = data.binarized(data.load("mnist", device="cpu"))
        auto_workers = cpu.worker_count(max(args.models))
        print(f"\nworkers the policy picks now for {max(args.models)} models: {auto_workers}\n")
        print("| models | round | one at a time (s) | side by side (s) | speed-up | same weights |")
        print("| --- | --- | --- | --- | --- | --- |")
        for n in args.models:
            gains = []
            for r in range(1, args.rounds + 1):
                order = ("1", "auto") if r % 2 else ("auto", "1")  # alternate which goes first
                seconds, models = {}, {}
                for w in order:
                    seconds[w], models[w] = run(n, args.epochs, w, mnist)
                same = all(torch.equal(a, b) for x, y in zip(models["1"], models["auto"])
                           for a, b in zip(x.model.state_dict().values(), y.model.state_dict().values()))
                gains.append(seconds["1"] / seconds["auto"])
                print(f"| {n} | {r} | {seconds['1']:.1f} | {seconds['auto']:.1f} | {gains[-1]:.2f}× | {same} |",
                      flush=True)
            print(f"| {n} | median | | | **{statistics.median(gains):.2f}×** ({min(gains):.2f}–{max(gains):.2f}) | |")
    print(f"\nload average after: {machine.load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
