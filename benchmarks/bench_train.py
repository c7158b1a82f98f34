"""Training speed of the 784-400-20 VAE on Fashion-MNIST (60,000 train / 10,000 test): our trainer
against the well-known PyTorch examples VAE, side by side in one process tree on the same machine.

Reference: ``pytorch/examples/vae/main.py`` re-implemented line for line (fc1/fc21/fc22/fc3/fc4, ReLU,
sigmoid output, ``F.binary_cross_entropy(..., reduction='sum')`` + KL, Adam lr 1e-3, batch 128, seed 1),
fed by a ``torch.utils.data.DataLoader`` over ``torchvision.datasets.FashionMNIST`` with
``transforms.ToTensor()``: the per-item path. The Debian IDX files are unpacked into a temporary root
where torchvision expects them. Left out of the reference: its log prints and the PNGs it saves each epoch.

Ours: ``python -m vaeutils.train --dataset fashion-mnist --hidden 400 --latent-dim 20 --epochs 7 --json
--precision auto`` with its default speed settings: the data resident as one tensor, shuffled index batches of
256, the fused MLP-VAE step (``vaeutils.fused``), fused Adam with a peak learning rate of 6e-3 decayed linearly to
zero over the 7 epochs, the output bias started at the log-odds of the mean image, and bfloat16 matrix multiplies
where the CPU runs them fast (AVX512-BF16 or AMX; float32 elsewhere). Same model, same loss, same data; one JSON
line per epoch (see benchmarks/README.md for what each setting is worth).

Rounds: the reference and ours run alternately (``--rounds``, default 3; the order flips every round), and the
table reports every round, then the median speed-up with its min and max, and the load average before and after.
Measured per round: the reference's test loss after its last epoch (the example's own number) and its training
time; the training time at which ours first reaches that test loss. Second goal: the achieved matrix-multiply
rate of one training epoch against ``torch.mm`` in the precision the epoch multiplies in (bf16 or fp32), on a
large square and at the model's own shapes. With CUDA: the whole-epoch time on the GPU.

Timings are wall-clock: run it on a quiet machine.

    python benchmarks/bench_train.py                 # 3 rounds: about 5 min on 2 cores
    python benchmarks/bench_train.py --quick         # 1 round of 2 epochs each: a smoke check, not a measurement
    python benchmarks/bench_train.py --ours-args "--precision fp32"   # the float32 path
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
GOAL_SPEEDUP = 8.0
GOAL_MATMUL = 0.60


# ------------------------------------------------------------------ the reference, as in pytorch/examples

class ReferenceVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def reference_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def torchvision_root(tmp: Path) -> Path:
    """A dataset root laid out as torchvision's FashionMNIST expects: <root>/FashionMNIST/raw/<IDX files>."""
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX:
        plain, packed = DEBIAN_DIR / name, DEBIAN_DIR / (name + ".gz")
        if plain.exists():
            shutil.copyfile(plain, raw / name)
        elif packed.exists():
            with gzip.open(packed, "rb") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            sys.exit(f"{plain}[.gz] is missing: install it with `apt-get install dataset-fashion-mnist`")
    return tmp


def run_reference(root: Path, epochs: int) -> list[dict]:
    from torchvision import datasets, transforms

    torch.manual_seed(1)
    device = torch.device("cpu")
    train_loader = torch.utils.data.DataLoader(
        datasets.FashionMNIST(str(root), train=True, download=False, transform=transforms.ToTensor()),
        batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(
        datasets.FashionMNIST(str(root), train=False, transform=transforms.ToTensor()),
        batch_size=128, shuffle=False)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        train_loss = 0.0
        for data, _ in train_loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = reference_loss(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        t1 = time.perf_counter()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test_loader:
                data = data.to(device)
                recon_batch, mu, logvar = model(data)
                test_loss += reference_loss(recon_batch, data, mu, logvar).item()
        test_loss /= len(test_loader.dataset)
        t2 = time.perf_counter()
        rows.append({"epoch": epoch, "train_seconds": t1 - t0, "eval_seconds": t2 - t1,
                     "train_loss": train_loss / len(train_loader.dataset), "test_loss": test_loss})
        print(f"  reference epoch {epoch:2d}: {t1 - t0:6.2f} s train + {t2 - t1:5.2f} s test, "
              f"test loss {test_loss:.2f}", flush=True)
    return rows


# ------------------------------------------------------------------ ours, through the command line

def run_ours(epochs: int, target: float, device: str | None, extra: list[str]) -> tuple[list[dict], float | None]:
    """Per-epoch rows of the CLI and the process wall time at which the target test loss first appeared."""
    cmd = [sys.executable, "-m", "vaeutils.train", "--dataset", "fashion-mnist", "--hidden", "400",
           "--latent-dim", "20", "--epochs", str(epochs), "--json", *extra]
    if device:
        cmd += ["--device", device]
    env = {**os.environ, "VAELAB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    rows, reached_wall = [], None
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            row = json.loads(line)
            row["wall"] = time.perf_counter() - t0
            rows.append(row)
            if reached_wall is None and row["test_loss"] <= target:
                reached_wall = row["wall"]
            print(f"  ours      epoch {row['epoch']:2d}: {row['train_seconds']:6.2f} s train + "
                  f"{row['eval_seconds']:5.2f} s test, test loss {row['test_loss']:.2f}", flush=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return rows, reached_wall


# ------------------------------------------------------------------ matmul throughput

def gemm_gflops(m: int, k: int, n: int, seconds: float = 0.5, device: str = "cpu",
                dtype: torch.dtype = torch.float32) -> float:
    """Achieved GFLOP/s of ``torch.mm`` at (m, k) @ (k, n) in ``dtype`` (float32: sgemm; bfloat16: the precision
    our bf16 epoch multiplies in)."""
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else None
    return call_gflops(2 * m * k * n, lambda: torch.mm(a, b), seconds, sync)


def step_matmuls(batch: int, dtype: torch.dtype) -> list[tuple[int, object]]:
    """(flops, call) for every matrix multiply of one training step of 784-400-20, shaped and laid out as the
    fused step calls them (``vaeutils.fused``): forward ``addmm(b, a, Wᵀ)``, the input gradient ``g @ W`` (not
    needed for the images) and the weight gradient ``gᵀ @ a``."""
    layers = [(784, 400), (400, 40), (20, 400), (400, 784)]
    calls = []
    for i, (d_in, d_out) in enumerate(layers):
        a, w = torch.randn(batch, d_in, dtype=dtype), torch.randn(d_out, d_in, dtype=dtype)
        b, g = torch.randn(d_out, dtype=dtype), torch.randn(batch, d_out, dtype=dtype)
        flops = 2 * batch * d_in * d_out
        calls.append((flops, lambda a=a, w=w, b=b: torch.addmm(b, a, w.t())))
        if i > 0:
            calls.append((flops, lambda g=g, w=w: g @ w))
        calls.append((flops, lambda g=g, a=a: g.t() @ a))
    return calls


def call_gflops(flops: int, call, seconds: float, sync=None) -> float:
    """GFLOP/s of ``call()`` (``flops`` of work each) repeated for about ``seconds``; ``sync`` waits for a GPU."""
    sync = sync or (lambda: None)
    for _ in range(3):
        call()
    sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            call()
        sync()
        reps += 10
    return flops * reps / (time.perf_counter() - t0) / 1e9


def forward_flops_per_image() -> int:
    return 2 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784)


# ------------------------------------------------------------------ report

def first_reaching(rows: list[dict], target: float):
    cum_train = cum_all = 0.0
    for row in rows:
        cum_train += row["train_seconds"]
        cum_all += row["train_seconds"] + row["eval_seconds"]
        if row["test_loss"] <= target:
            return row, cum_train, cum_all
    return None, cum_train, cum_all


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}×" if a is not None and b else "not reached"


def fmt_seconds(s: float | None) -> str:
    return f"{s:.1f} s" if s is not None else "not reached"


def row(*cells) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def spread(values) -> str:
    values = sorted(values)
    return f"{statistics.median(values):.2f} (min {values[0]:.2f}, max {values[-1]:.2f})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs-ref", type=int, default=10, help="epochs of the reference (default 10)")
    p.add_argument("--epochs-ours", type=int, default=7,
                   help="epochs of ours, also the length of its learning-rate schedule (default 7)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of reference and ours (default 3)")
    p.add_argument("--quick", action="store_true", help="1 round of 2 epochs each, short gemm timings: a smoke check")
    p.add_argument("--ours-args", default="--precision auto",
                   help="CLI flags for ours (default '--precision auto': bf16 matmuls where the CPU runs them fast)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs_ref = args.epochs_ours = 2
        args.rounds = 1
    gemm_seconds = 0.2 if args.quick else 1.0

    from vaeutils import precision as vprecision
    from vaeutils.train import cli as vcli

    extra = args.ours_args.split()
    cfg = vcli._parse(extra)
    ours_precision = vprecision.resolve(cfg.precision, "cpu")
    ours_name = (f"batch {cfg.batch_size}, Adam lr {cfg.lr:g} ({cfg.lr_schedule}), "
                 f"{'output bias at the mean image' if cfg.init_bias else 'default init'}, {ours_precision}")
    load_before = os.getloadavg()
    print("# Training benchmark: 784-400-20 VAE on Fashion-MNIST (60,000 / 10,000)\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} (a quiet machine is below ~0.3)\n")
    print(f"reference: {args.epochs_ref} epochs, per-item DataLoader, batch 128, Adam lr 0.001, float32")
    print(f"ours: {args.epochs_ours} epochs, {ours_name}")
    print(f"{args.rounds} rounds; the order alternates (reference first in odd rounds), so a slow phase of the "
          "machine hits both\n", flush=True)

    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = torchvision_root(Path(tmp))
        for r in range(1, args.rounds + 1):
            print(f"round {r}", flush=True)
            if r % 2:
                ref = run_reference(root, args.epochs_ref)
                ours, wall = run_ours(args.epochs_ours, ref[-1]["test_loss"], None, extra)
            else:
                ours, _ = run_ours(args.epochs_ours, float("-inf"), None, extra)
                ref = run_reference(root, args.epochs_ref)
                wall = None
            target = ref[-1]["test_loss"]
            ref_train = sum(x["train_seconds"] for x in ref)
            hit, to_target, _ = first_reaching(ours, target)
            rounds.append({"round": r, "target": target, "ref_train": ref_train,
                           "ref_epoch": statistics.median(x["train_seconds"] for x in ref),
                           "ours_epoch": statistics.median(x["train_seconds"] for x in (ours[1:] or ours)),
                           "epochs": hit["epoch"] if hit else None, "to_target": to_target if hit else None,
                           "ours_last": ours[-1]["test_loss"], "wall": wall})
    load_after = os.getloadavg()

    print("\n## Time to the reference's test loss, round by round\n")
    row("round", "reference: 10-epoch test loss", "reference training (s)", "ours: epochs to reach it",
        "ours training to reach it (s)", "speed-up")
    row("---", "---:", "---:", "---:", "---:", "---:")
    for x in rounds:
        row(x["round"], f"{x['target']:.2f}", f"{x['ref_train']:.1f}", x["epochs"] or "not reached",
            fmt_seconds(x["to_target"]), fmt_ratio(x["ref_train"], x["to_target"]))
    speedups = [x["ref_train"] / x["to_target"] for x in rounds if x["to_target"]]
    print()
    row("summary", "value")
    row("---", "---:")
    row("seconds per training epoch, reference (median of rounds, min, max)", spread(x["ref_epoch"] for x in rounds))
    row("seconds per training epoch, ours", spread(x["ours_epoch"] for x in rounds))
    row(f"**speed-up to the reference's test loss** (goal ≥ {GOAL_SPEEDUP:g}×; median, min, max)",
        f"**{spread(speedups)}**" if len(speedups) == len(rounds) else f"reached in {len(speedups)} of {len(rounds)}")
    walls = [x["ref_train"] / x["wall"] for x in rounds if x["wall"]]
    if walls:
        row("speed-up counting our whole process (start-up, data loading, evaluation)", spread(walls))
    row("load average before / after", f"{load_before[0]:.2f} / {load_after[0]:.2f}")

    print("\nmeasuring matmul throughput", flush=True)
    dtype = torch.bfloat16 if ours_precision == "bf16" else torch.float32
    peak = gemm_gflops(2048, 2048, 2048, gemm_seconds, dtype=dtype)
    calls = step_matmuls(cfg.batch_size, dtype)
    shape_peak = sum(f for f, _ in calls) / sum(f / call_gflops(f, c, gemm_seconds / 2) for f, c in calls)
    flops_epoch = 3 * forward_flops_per_image() * 60000
    ours_epoch = statistics.median(x["ours_epoch"] for x in rounds)
    achieved = flops_epoch / ours_epoch / 1e9
    name = "bf16 gemm" if dtype == torch.bfloat16 else "sgemm"
    print(f"\n## One training epoch against the machine's {name} throughput (the precision it multiplies in)\n")
    row("quantity", "value")
    row("---", "---:")
    row("matmul work per epoch (3 × forward, 60,000 images)", f"{flops_epoch / 1e9:.0f} GFLOP")
    row(f"{name}, 2048 × 2048 × 2048 (`torch.mm`)", f"{peak:.0f} GFLOP/s")
    row(f"{name} at the step's own shapes and layouts, batch {cfg.batch_size} (the 11 products of a step, "
        "time-weighted)", f"{shape_peak:.0f} GFLOP/s")
    row(f"achieved by our training epoch ({ours_epoch:.2f} s, median)", f"{achieved:.0f} GFLOP/s")
    row(f"**achieved / large-square {name}** (goal ≥ {GOAL_MATMUL:.0%})", f"**{achieved / peak:.0%}**")
    row(f"achieved / {name} at the step's shapes (the ceiling for this model and batch)",
        f"{achieved / shape_peak:.0%}")

    if torch.cuda.is_available():
        print(f"\n## GPU ({torch.cuda.get_device_name(0)}), data resident on the device\n", flush=True)
        target = statistics.median(x["target"] for x in rounds)
        gpu, _ = run_ours(args.epochs_ours, target, "cuda", extra)
        g_hit, g_train, _ = first_reaching(gpu, target)
        g_epoch = statistics.median(x["train_seconds"] for x in (gpu[1:] or gpu))
        row("quantity", "value")
        row("---", "---:")
        row("seconds per training epoch (median, whole epoch)", f"{g_epoch:.3f}")
        row(f"epochs to reach {target:.2f}", g_hit["epoch"] if g_hit else "not reached")
        row("training time to reach it", fmt_seconds(g_train if g_hit else None))
    else:
        print("\n(no CUDA device here: the GPU table is printed when one is present)")

    median = statistics.median(speedups) if len(speedups) == len(rounds) else 0.0
    print(f"\nGoals: median speed-up ≥ {GOAL_SPEEDUP:g}× → {'met' if median >= GOAL_SPEEDUP else 'NOT met'}; "
          f"epoch at ≥ {GOAL_MATMUL:.0%} of {name} → {'met' if achieved / peak >= GOAL_MATMUL else 'NOT met'} "
          f"(large square), {'met' if achieved / shape_peak >= GOAL_MATMUL else 'NOT met'} (the step's shapes)"
          + (" (quick mode: a smoke check, not a measurement)" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
