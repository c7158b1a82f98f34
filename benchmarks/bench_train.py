"""Training speed of the 784-400-20 VAE on Fashion-MNIST (60,000 train / 10,000 test): our trainer
against the well-known PyTorch examples VAE, side by side in one process tree on the same machine.

Reference: ``pytorch/examples/vae/main.py`` re-implemented line for line (fc1/fc21/fc22/fc3/fc4, ReLU,
sigmoid output, ``F.binary_cross_entropy(..., reduction='sum')`` + KL, Adam lr 1e-3, batch 128, seed 1),
fed by a ``torch.utils.data.DataLoader`` over ``torchvision.datasets.FashionMNIST`` with
``transforms.ToTensor()``: the per-item path. The Debian IDX files are unpacked into a temporary root
where torchvision expects them. Left out of the reference: its log prints and the PNGs it saves each epoch.

Ours: ``python -m vaeutils.train --dataset fashion-mnist --hidden 400 --latent-dim 20 --epochs 3 --json
--precision auto`` and ``... --precision fp32`` with the command line's speed settings: the data resident as
one tensor, shuffled index batches of 128, autograd and ``torch.optim.Adam(fused=True)``, a peak learning
rate of 1.2e-2 warmed up for a quarter epoch and decayed linearly to zero over the run's 3 epochs, the output
bias started at the log-odds of the mean image, and (``auto``) bfloat16 matrix multiplies where the CPU runs
them fast (AVX512-BF16 or AMX; float32 elsewhere, so on such a CPU ``auto`` and ``fp32`` are the same run).
Same model, same loss, same data; one JSON line per epoch.

Rounds: the reference and ours run alternately (``--rounds``, default 3; the order rotates every round), and
the tables report every round, then the median speed-up with its min and max per precision, and the load
average before and after. Measured per round: the reference's test loss after its last epoch (the example's
own number) and its training time; the training time at which ours first reaches that test loss. Goals: at
least 8× with ``auto`` and 5× in float32. ``--levers`` adds what each setting is worth (epochs and seconds to
the target, one lever added at a time). Second table: one float32 epoch against the matmul work it does.
With CUDA: the whole-epoch time on the GPU. The header names the CPU and its measured matmul peaks.

Timings are wall-clock: run it on a quiet machine.

    python benchmarks/bench_train.py                 # 3 rounds: about 6 min on 2 cores
    python benchmarks/bench_train.py --levers        # and the gain of each lever (about 3 min more)
    python benchmarks/bench_train.py --quick         # 1 round of 2 epochs each: a smoke check, not a measurement
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
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
GOALS = {"auto": 8.0, "fp32": 5.0}  # speed-up to the example's 10-epoch test loss, per precision


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
    """(flops, call) for every matrix multiply of one training step of 784-400-20, shaped and laid out as
    ``nn.Linear`` and autograd call them: forward ``addmm(b, a, Wᵀ)``, the input gradient ``g @ W`` (not
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


# the settings of the command line added one at a time, each row a run of ours in float32
LEVERS = (
    ("our trainer with the example's settings (resident data, index batches, one host sync a step, fused "
     "Adam; batch 128, lr 1e-3 constant, default initialisation)",
     ["--batch-size", "128", "--lr", "1e-3", "--lr-schedule", "constant", "--no-init-bias", "--epochs", "10"]),
    ("+ the output bias started at the mean image",
     ["--batch-size", "128", "--lr", "1e-3", "--lr-schedule", "constant", "--epochs", "10"]),
    ("+ a schedule for 3 epochs: warm-up, peak lr 1.2e-2, linear decay to zero (the defaults)",
     ["--epochs", "3"]),
    ("the same with batch 256 (peak lr 1.5e-2)", ["--epochs", "3", "--batch-size", "256", "--lr", "1.5e-2"]),
)


def run_round(r: int, root: Path, args, configs: dict) -> dict:
    """One round: the reference and each of ours, in an order that rotates with ``r``."""
    jobs = ["reference", *configs]
    jobs = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
    out = {}
    for job in jobs:
        print(f"  {job}", flush=True)
        if job == "reference":
            out[job] = run_reference(root, args.epochs_ref)
        else:
            out[job], _ = run_ours(args.epochs_ours, float("-inf"), None, configs[job])
    return out


def summarize(rounds: list[dict], configs: dict) -> dict:
    """Per precision: the speed-up of every round, and the epochs and seconds to each round's target."""
    result = {name: {"speedups": [], "epochs": [], "seconds": [], "epoch_s": []} for name in configs}
    for rnd in rounds:
        ref = rnd["reference"]
        target, ref_train = ref[-1]["test_loss"], sum(x["train_seconds"] for x in ref)
        rnd["target"], rnd["ref_train"] = target, ref_train
        rnd["ref_epoch"] = statistics.median(x["train_seconds"] for x in ref)
        for name in configs:
            hit, to_target, _ = first_reaching(rnd[name], target)
            res = result[name]
            res["epoch_s"].append(statistics.median(x["train_seconds"] for x in rnd[name]))
            if hit:
                res["speedups"].append(ref_train / to_target)
                res["epochs"].append(hit["epoch"])
                res["seconds"].append(to_target)
    return result


def print_rounds(rounds: list[dict], configs: dict, result: dict) -> None:
    print("\n## Time to the reference's test loss, round by round\n")
    row("round", "reference: 10-epoch test loss", "reference training (s)",
        *[f"ours, {n}: epochs, seconds to reach it, speed-up" for n in configs])
    row("---", "---:", "---:", *["---:" for _ in configs])
    for i, rnd in enumerate(rounds, 1):
        cells = []
        for name in configs:
            hit, to_target, _ = first_reaching(rnd[name], rnd["target"])
            cells.append(f"{hit['epoch']}, {to_target:.1f} s, {rnd['ref_train'] / to_target:.1f}×" if hit
                         else "not reached")
        row(i, f"{rnd['target']:.2f}", f"{rnd['ref_train']:.1f}", *cells)
    print()
    row("summary (median, min, max over the rounds)", "value")
    row("---", "---:")
    row("seconds per training epoch, reference", spread(r["ref_epoch"] for r in rounds))
    for name in configs:
        res = result[name]
        row(f"seconds per training epoch, ours ({name})", spread(res["epoch_s"]))
        goal = GOALS[name.split()[0]]
        value = (f"**{spread(res['speedups'])}**" if len(res["speedups"]) == len(rounds)
                 else f"reached in {len(res['speedups'])} of {len(rounds)} rounds")
        row(f"**speed-up to the reference's test loss, {name}** (goal ≥ {goal:g}×)", value)


def print_levers(root: Path, args, target: float, ref_train: float) -> None:
    """Each lever added in turn (float32), against the median reference of the rounds."""
    print(f"\n## What each setting is worth (float32; target {target:.2f}, reference {ref_train:.1f} s)\n")
    row("ours", "epochs to the target", "training seconds to it", "seconds per epoch", "speed-up")
    row("---", "---:", "---:", "---:", "---:")
    for name, flags in LEVERS:
        epochs = int(flags[flags.index("--epochs") + 1])
        rows, _ = run_ours(epochs, float("-inf"), None, [*flags, "--precision", "fp32"])
        hit, to_target, _ = first_reaching(rows, target)
        per_epoch = statistics.median(x["train_seconds"] for x in rows)
        row(name, hit["epoch"] if hit else f"not in {epochs}", fmt_seconds(to_target if hit else None),
            f"{per_epoch:.2f}", fmt_ratio(ref_train, to_target if hit else None))


def print_floor(batch: int, epoch_s: float, seconds: float) -> None:
    """One float32 epoch against the matrix-product work it does."""
    peak = gemm_gflops(2048, 2048, 2048, seconds)
    calls = step_matmuls(batch, torch.float32)
    shape_peak = sum(f for f, _ in calls) / sum(f / call_gflops(f, c, seconds / 2) for f, c in calls)
    flops = sum(f for f, _ in calls) * (60000 / batch)
    print(f"\n## One float32 epoch against its matrix products (batch {batch})\n")
    row("quantity", "value")
    row("---", "---:")
    row("matrix-product work per epoch (the step's 11 products, 60,000 images)", f"{flops / 1e9:.0f} GFLOP")
    row("sgemm, 2048 × 2048 × 2048 (`torch.mm`)", f"{peak:.0f} GFLOP/s")
    row(f"sgemm at the step's own shapes and layouts, batch {batch} (time-weighted)", f"{shape_peak:.0f} GFLOP/s")
    row("the epoch's floor: its products at that rate", f"{flops / shape_peak / 1e9:.2f} s")
    row("our float32 epoch (median of the rounds)", f"{epoch_s:.2f} s "
        f"({flops / epoch_s / 1e9:.0f} GFLOP/s, {flops / shape_peak / 1e9 / epoch_s:.0%} of the floor's rate)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs-ref", type=int, default=10, help="epochs of the reference (default 10)")
    p.add_argument("--epochs-ours", type=int, default=3,
                   help="epochs of ours, also the length of its learning-rate schedule (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of reference and ours (default 3)")
    p.add_argument("--levers", action="store_true", help="also measure what each setting is worth")
    p.add_argument("--quick", action="store_true", help="1 round of 2 epochs each: a smoke check")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs_ref = args.epochs_ours = 2
        args.rounds = 1
    import machine

    from vaeutils import precision as vprecision

    print(machine.header("Training: 784-400-20 VAE on Fashion-MNIST (bench_train.py)"))
    auto = vprecision.resolve("auto", "cpu")
    configs = {"auto (bf16 here)": ["--precision", "auto"], "fp32": ["--precision", "fp32"]}
    if auto == "fp32":  # one run stands for both: auto is float32 on this CPU
        configs = {"auto = fp32 on this CPU": ["--precision", "fp32"]}
    print(f"reference: {args.epochs_ref} epochs, per-item DataLoader, batch 128, Adam lr 0.001, float32")
    print(f"ours: {args.epochs_ours} epochs, the command line's defaults; {', '.join(configs)}")
    print(f"{args.rounds} rounds; the order rotates every round, so a slow phase of the machine hits all\n",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = torchvision_root(Path(tmp))
        rounds = []
        for r in range(args.rounds):
            print(f"round {r + 1}", flush=True)
            rounds.append(run_round(r, root, args, configs))
        result = summarize(rounds, configs)
        print_rounds(rounds, configs, result)
        target = statistics.median(r["target"] for r in rounds)
        ref_train = statistics.median(r["ref_train"] for r in rounds)
        if args.levers:
            print_levers(root, args, target, ref_train)
    fp32 = next(n for n in configs if "fp32" in n)
    print_floor(128, statistics.median(result[fp32]["epoch_s"]), 0.2 if args.quick else 1.0)
    if torch.cuda.is_available():
        print(f"\n## GPU ({torch.cuda.get_device_name(0)}), data resident on the device\n", flush=True)
        gpu, _ = run_ours(args.epochs_ours, target, "cuda", ["--precision", "auto"])
        g_hit, g_train, _ = first_reaching(gpu, target)
        row("quantity", "value")
        row("---", "---:")
        row("seconds per training epoch (median)", f"{statistics.median(x['train_seconds'] for x in gpu):.3f}")
        row(f"epochs to reach {target:.2f}", g_hit["epoch"] if g_hit else "not reached")
        row("training time to reach it", fmt_seconds(g_train if g_hit else None))
    else:
        print("\n(no CUDA device here: the GPU table is printed when one is present)")
    print(f"\nload average after: {machine.load()}")
    for name in configs:
        goals = sorted({GOALS[n.split()[0]] for n in ([name] if "=" not in name else ["auto", "fp32"])})
        speed = statistics.median(result[name]["speedups"]) if result[name]["speedups"] else 0.0
        verdict = ", ".join(f"≥ {g:g}× {'met' if speed >= g else 'NOT met'}" for g in goals)
        print(f"Goal, {name}: median {speed:.1f}× → {verdict}" + (" (quick: not a measurement)" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
