"""The command line of the trainer: ``python -m vaeutils.train --dataset fashion-mnist --hidden 400
--latent-dim 20 --epochs 10 --beta 1 --json`` prints one JSON object per epoch (``epoch``,
``train_seconds``, ``test_loss``…).

Every flag is checked by the argument parser: a bad value exits with code 2 naming the flag, before
any data is loaded. The speed defaults (batch 256, a linear learning-rate schedule, the output bias
at the mean image) were chosen with ``benchmarks/bench_train.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import torch
from torch import nn

from .. import config as _config
from .. import data as _data
from .. import precision as _precision
from ..losses import ELBOLoss
from ..metrics import evaluate
from ..models import build_model
from . import fit

# Speed defaults of the command line, chosen with benchmarks/bench_train.py (see
# benchmarks/README.md). The learning rate warms up for a quarter epoch and falls linearly to zero
# at the last step, so the run is designed for its own length: with --epochs 3, batch 128 and a peak
# rate of 1.2e-2 (12 times the example's), and the output bias started at the mean image, the
# 784-400-20 VAE passes the PyTorch example's 10-epoch test loss on Fashion-MNIST after 3 epochs
# (243.5 against 244.4 nats). Batch 256 at any rate tried needed more epochs than it saves per
# epoch; batch 64 needs 2 epochs that each cost about as much as 3 at batch 128.
CLI_BATCH_SIZE = 128
CLI_LR = 1.2e-2
CLI_LR_SCHEDULE = "linear"


@torch.no_grad()
def init_output_bias(model: nn.Module, train_x: torch.Tensor) -> None:
    """Start the decoder's output bias at the log-odds of the mean training image, so the untrained
    model already predicts the average pixel instead of ½ everywhere (saving the first epoch most
    of its work)."""
    last = model.decoder[-1]
    linear = isinstance(last, nn.Linear) and last.bias is not None
    if not linear or last.out_features != train_x[0].numel():
        raise TypeError("init_output_bias needs an MLPVAE, whose decoder ends in a Linear layer "
                        "over the pixels")
    last.bias.copy_(torch.logit(train_x.mean(0).flatten().clamp(1e-3, 1 - 1e-3)))


def _count(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            message = f"must be a whole number >= {low}, got {text!r}"
            raise argparse.ArgumentTypeError(message) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _real(low: float, strict: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not (value > low if strict else value >= low) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number {'>' if strict else '>='} "
                                             f"{low:g}, got {text}")
        return value
    return parse


def _parse(argv):
    """The CLI's arguments, each checked here: a bad value exits with code 2 and names the flag,
    before any data is loaded."""
    p = argparse.ArgumentParser(prog="python -m vaeutils.train",
                                description="Train the MLP VAE and report per epoch.")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "sprites"))
    p.add_argument("--hidden", type=_count(1), nargs="+", default=[400],
                   help="hidden layer sizes (default 400)")
    p.add_argument("--latent-dim", type=_count(1), default=20)
    p.add_argument("--epochs", type=_count(1), default=10)
    p.add_argument("--beta", type=_real(0.0, strict=False), default=1.0)
    p.add_argument("--batch-size", type=_count(1), default=CLI_BATCH_SIZE,
                   help=f"examples per step (default {CLI_BATCH_SIZE}; see benchmarks/README.md)")
    p.add_argument("--lr", type=_real(0.0, strict=True), default=CLI_LR,
                   help=f"Adam (peak) learning rate (default {CLI_LR:g})")
    p.add_argument("--lr-schedule", choices=("constant", "linear"), default=CLI_LR_SCHEDULE,
                   help="linear: warm up for a quarter epoch, then decay to zero at the last epoch "
                        "(default)")
    p.add_argument("--no-init-bias", dest="init_bias", action="store_false",
                   help="keep PyTorch's default output bias instead of the log-odds of the "
                        "mean image")
    p.add_argument("--precision", choices=_precision.PRECISIONS, default=None,
                   help="fp32, bf16 (autocast matmuls) or auto (bf16 where fast); default "
                        "$VAELAB_PRECISION or fp32")
    p.add_argument("--seed", type=_count(0), default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: automatic)")
    p.add_argument("--threads", type=_count(1), default=None,
                   help="CPU threads for torch (default: torch's choice, one per physical core)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per epoch on stdout (other messages go to stderr)")
    args = p.parse_args(argv)
    try:
        _precision.requested(args.precision)
        if args.device:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for the JSON lines
                _config.set_device(args.device)
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # with --json, stdout carries nothing but the JSON lines: device and data notes go to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        d = _data.load(args.dataset)
    _config.seed_everything(args.seed)
    model = build_model("mlp", in_shape=tuple(d.train_x.shape[1:]), hidden=tuple(args.hidden),
                        latent_dim=args.latent_dim)
    if args.init_bias:
        init_output_bias(model, d.train_x)
    loss = ELBOLoss(beta=args.beta)
    test_loss_fn = ELBOLoss()

    def report(epoch, history):
        row = history["train"][-1]
        t0 = time.perf_counter()
        test = evaluate(model, d.test_x, test_loss_fn, seed=args.seed)
        out = {"epoch": epoch, "train_seconds": round(row["seconds"], 4),
               "train_loss": round(row["loss"], 4), "test_loss": round(test["loss"], 4),
               "test_rec": round(test["rec"], 4), "test_kl": round(test["kl"], 4),
               "eval_seconds": round(time.perf_counter() - t0, 4),
               "batch_size": args.batch_size, "lr": args.lr, "lr_schedule": args.lr_schedule,
               "init_bias": args.init_bias, "device": str(d.train_x.device),
               "precision": _precision.resolve(args.precision, d.train_x.device)}
        if args.json:
            print(json.dumps(out), flush=True)
        else:
            print(f"epoch {epoch}: train {row['loss']:.2f}  test {test['loss']:.2f}  "
                  f"({row['seconds']:.2f} s)", flush=True)

    fit(model, d.train_x, loss, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, progress=False, callbacks=[report], lr_schedule=args.lr_schedule,
        precision=args.precision)
    return 0
