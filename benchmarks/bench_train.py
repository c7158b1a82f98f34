"""Training speed of the 784-400-20 VAE on Fashion-MNIST (60,000 train / 10,000 test): our trainer
against the well-known PyTorch examples VAE, side by side in one process tree on the same machine.

Reference: ``pytorch/examples/vae/main.py`` re-implemented line for line (fc1/fc21/fc22/fc3/fc4, ReLU,
sigmoid output, ``F.binary_cross_entropy(..., reduction='sum')`` + KL, Adam lr 1e-3, batch 128, seed 1),
fed by a ``torch.utils.data.DataLoader`` over ``torchvision.datasets.FashionMNIST`` with
``transforms.ToTensor()``: the per-item path. The Debian IDX files are unpacked into a temporary root
where torchvision expects them. Left out of the reference: its log prints and the PNGs it saves each epoch.

Ours: ``python -m vaeutils.train --dataset fashion-mnist --hidden 400 --latent-dim 20 --epochs 7 --json`` with
its default speed settings: the data resident as one tensor, shuffled index batches of 256, fused Adam with a
peak learning rate of 6e-3 decayed linearly to zero over the 7 epochs, the output bias started at the log-odds
of the mean image. Same model, same loss, same data; one JSON line per epoch.

Measured: seconds per training epoch; the reference's test loss after its last epoch (per-image BCE-sum
+ KL over the test set, the example's own number); the time at which ours first reaches that test loss
(training time only; training plus the per-epoch evaluation; and the whole process from launch, with
Python start-up and data loading); the speed-up. Second goal: the achieved matrix-multiply rate of one
training epoch against the machine's sgemm rate (``torch.mm`` on a large square and on the model's own
shapes). With CUDA: the whole-epoch time on the GPU with the data resident there.

Timings are wall-clock: run it on a quiet machine (the load average is printed first).

    python benchmarks/bench_train.py                 # reference 10 epochs, ours 7: about 2.5 min on 2 cores
    python benchmarks/bench_train.py --quick         # 2 epochs each: a smoke check, not a measurement
    python benchmarks/bench_train.py --epochs-ours 6 --ours-args "--batch-size 128 --lr 4e-3"
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
GOAL_SPEEDUP = 5.0
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

def sgemm_gflops(m: int, k: int, n: int, seconds: float = 0.5, device: str = "cpu") -> float:
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    for _ in range(3):
        torch.mm(a, b)
    reps, elapsed = 0, 0.0
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    while elapsed < seconds:
        for _ in range(10):
            torch.mm(a, b)
        sync()
        reps += 10
        elapsed = time.perf_counter() - t0
    return 2 * m * k * n * reps / elapsed / 1e9


def model_matmuls(batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matmul of one training step of 784-400-20 (forward, input grads, weight grads)."""
    layers = [(784, 400), (400, 40), (20, 400), (400, 784)]
    shapes = []
    for i, (d_in, d_out) in enumerate(layers):
        shapes.append((batch, d_in, d_out))          # forward
        if i > 0:
            shapes.append((batch, d_out, d_in))      # gradient of the layer's input (not needed for x)
        shapes.append((d_out, batch, d_in))          # gradient of the weights
    return shapes


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs-ref", type=int, default=10, help="epochs of the reference (default 10)")
    p.add_argument("--epochs-ours", type=int, default=7,
                   help="epochs of ours, also the length of its learning-rate schedule (default 7)")
    p.add_argument("--quick", action="store_true", help="2 epochs each and short sgemm timings: a smoke check")
    p.add_argument("--ours-args", default="", help="extra CLI flags for ours, e.g. '--batch-size 256 --lr 8e-3'")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs_ref = args.epochs_ours = 2
    gemm_seconds = 0.2 if args.quick else 1.0

    sys.path.insert(0, str(ROOT))
    from vaeutils.train import cli as vtrain

    extra = args.ours_args.split()
    cfg = vtrain._parse(extra)
    ours_name = (f"batch {cfg.batch_size}, Adam lr {cfg.lr:g} ({cfg.lr_schedule}), "
                 f"{'output bias at the mean image' if cfg.init_bias else 'default init'}")
    load = os.getloadavg()
    print("# Training benchmark: 784-400-20 VAE on Fashion-MNIST (60,000 / 10,000)\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average before the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(a quiet machine is below ~0.3)\n")

    print(f"reference: {args.epochs_ref} epochs, per-item DataLoader, batch 128, Adam lr 0.001", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        ref = run_reference(torchvision_root(Path(tmp)), args.epochs_ref)
    target = ref[-1]["test_loss"]
    ref_train = sum(r["train_seconds"] for r in ref)
    ref_all = ref_train + sum(r["eval_seconds"] for r in ref)

    print(f"ours: {args.epochs_ours} epochs, {ours_name}; target test loss {target:.2f}", flush=True)
    ours, reached_wall = run_ours(args.epochs_ours, target, None, extra)
    hit, to_target_train, to_target_all = first_reaching(ours, target)
    if hit is None:
        to_target_train = to_target_all = None

    print("measuring sgemm throughput", flush=True)
    peak = sgemm_gflops(2048, 2048, 2048, gemm_seconds)
    shapes = model_matmuls(cfg.batch_size)
    shape_rates = [sgemm_gflops(m, k, n, gemm_seconds / 2) for m, k, n in shapes]
    # time-weighted rate of the model's own matmuls: what a trainer with zero overhead would reach
    shape_peak = sum(2 * m * k * n for m, k, n in shapes) / sum(
        2 * m * k * n / r for (m, k, n), r in zip(shapes, shape_rates))
    n_train = 60000
    flops_epoch = 3 * forward_flops_per_image() * n_train
    ours_epoch = statistics.median(r["train_seconds"] for r in (ours[1:] if len(ours) > 1 else ours))
    ref_epoch = statistics.median(r["train_seconds"] for r in ref)
    achieved = flops_epoch / ours_epoch / 1e9
    speedup = ref_train / to_target_train if to_target_train else None

    print("\n## Time to the reference's test loss\n")
    row("", "reference (PyTorch example)", "ours (`python -m vaeutils.train`)")
    row("---", "---:", "---:")
    row("settings", "batch 128, Adam lr 0.001, per-item DataLoader", ours_name + ", data in one tensor")
    row("seconds per training epoch (median)", f"{ref_epoch:.2f}", f"{ours_epoch:.2f}")
    row("seconds per test evaluation (median)", f"{statistics.median(r['eval_seconds'] for r in ref):.2f}",
        f"{statistics.median(r['eval_seconds'] for r in ours):.2f}")
    row("test loss after epoch 1", f"{ref[0]['test_loss']:.2f}", f"{ours[0]['test_loss']:.2f}")
    row(f"test loss after the last epoch ({args.epochs_ref} / {args.epochs_ours})", f"{target:.2f}",
        f"{ours[-1]['test_loss']:.2f}")
    row(f"epochs to reach {target:.2f}", args.epochs_ref, hit["epoch"] if hit else "not reached")
    row("training time to reach it", fmt_seconds(ref_train), fmt_seconds(to_target_train))
    row("training + per-epoch evaluation", fmt_seconds(ref_all), fmt_seconds(to_target_all))
    row("whole process (start-up and data loading included)", f"≥ {ref_all:.1f} s", fmt_seconds(reached_wall))
    row(f"**speed-up, training time** (goal ≥ {GOAL_SPEEDUP:g}×)", "1×", f"**{fmt_ratio(ref_train, to_target_train)}**")
    row("speed-up, training + evaluation", "1×", fmt_ratio(ref_all, to_target_all))
    row("speed-up, whole process", "1×", fmt_ratio(ref_all, reached_wall))
    row("speed-up per epoch (same work)", "1×", fmt_ratio(ref_epoch, ours_epoch))

    print("\n## One training epoch against the machine's matmul throughput\n")
    row("quantity", "value")
    row("---", "---:")
    row(f"matmul work per epoch (3 × forward, {n_train:,} images)", f"{flops_epoch / 1e9:.0f} GFLOP")
    row("sgemm, 2048 × 2048 × 2048 (`torch.mm`)", f"{peak:.0f} GFLOP/s")
    row(f"sgemm at the model's own shapes, batch {cfg.batch_size} (time-weighted)", f"{shape_peak:.0f} GFLOP/s")
    row(f"achieved by our training epoch ({ours_epoch:.2f} s)", f"{achieved:.0f} GFLOP/s")
    row(f"**achieved / large-square sgemm** (goal ≥ {GOAL_MATMUL:.0%})", f"**{achieved / peak:.0%}**")
    row("achieved / model-shape sgemm", f"{achieved / shape_peak:.0%}")
    row("reference epoch / large-square sgemm", f"{flops_epoch / ref_epoch / 1e9 / peak:.0%}")

    if torch.cuda.is_available():
        print(f"\n## GPU ({torch.cuda.get_device_name(0)}), data resident on the device\n", flush=True)
        gpu, _ = run_ours(args.epochs_ours, target, "cuda", extra)
        g_hit, g_train, _ = first_reaching(gpu, target)
        g_epoch = statistics.median(r["train_seconds"] for r in (gpu[1:] if len(gpu) > 1 else gpu))
        g_peak = sgemm_gflops(8192, 8192, 8192, gemm_seconds, device="cuda")
        row("quantity", "value")
        row("---", "---:")
        row("seconds per training epoch (median, whole epoch)", f"{g_epoch:.3f}")
        row(f"epochs to reach {target:.2f}", g_hit["epoch"] if g_hit else "not reached")
        row("training time to reach it", fmt_seconds(g_train if g_hit else None))
        row("speed-up over the CPU reference, training time", fmt_ratio(ref_train, g_train if g_hit else None))
        row(f"achieved / sgemm 8192³ ({g_peak / 1000:.0f} TFLOP/s fp32)", f"{flops_epoch / g_epoch / 1e9 / g_peak:.1%}")
    else:
        print("\n(no CUDA device here: the GPU table is printed when one is present)")

    met_speed = "met" if speedup and speedup >= GOAL_SPEEDUP else "NOT met"
    met_matmul = "met" if achieved / peak >= GOAL_MATMUL else "NOT met"
    print(f"\nGoals: speed-up ≥ {GOAL_SPEEDUP:g}× → {met_speed}; epoch at ≥ {GOAL_MATMUL:.0%} of sgemm → {met_matmul}"
          + (" (quick mode: a smoke check, not a measurement)" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
