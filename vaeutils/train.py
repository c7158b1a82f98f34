"""Training: the pluggable VAE loss, ``fit()``, evaluation, cached ``train_vae()`` and a CLI.

Data stay in memory as tensors on the device; batches are shuffled index slices (no per-item
DataLoader), which is most of why this trainer is several times faster than the usual example.
Taught in notebook 03; β, free bits, schedules and capacity (notebooks 04–05) plug into ``ELBOLoss``.

CLI (used by the benchmarks): ``python -m vaeutils.train --dataset fashion-mnist --hidden 400
--latent-dim 20 --epochs 10 --beta 1 --json`` prints one JSON object per epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from . import cache as _cache
from . import config as _config
from . import losses as L
from .models import build_model

LIKELIHOODS = ("bernoulli", "gaussian", "laplace")


class NonFiniteLossError(RuntimeError):
    """Training met a NaN/inf loss term; the model holds the last weights that gave a finite loss."""

    def __init__(self, step: int, term: str, value: float):
        self.step, self.term, self.value = step, term, value
        super().__init__(
            f"non-finite {term} ({value}) at step {step}; training stopped and the last good weights were kept. "
            "Lower the learning rate, check the data range, or clamp logvar."
        )


@dataclass(frozen=True)
class ELBOLoss:
    """Negative (β-weighted) ELBO per example: rec + β·KL, averaged over the batch.

    likelihood: ``"bernoulli"`` (decoder logits), ``"gaussian"`` or ``"laplace"`` (mean = sigmoid(out)).
    beta: a number or a schedule ``step -> β`` (``losses.LinearWarmup``, ``losses.Cyclical``…).
    free_bits: λ in nats per latent dimension (``losses.free_bits_kl``); 0 turns it off.
    log_scale: Gaussian/Laplace only: a number (fixed log σ or log b), ``"learned"`` (the model's
        ``log_scale`` parameter) or ``"optimal"`` (closed-form per-image σ*, as in σ-VAE).
    capacity: a ``losses.CapacitySchedule``; replaces β·KL by γ·|KL − C(t)| (Burgess et al. 2018).
    """

    likelihood: str = "bernoulli"
    beta: object = 1.0
    free_bits: float = 0.0
    log_scale: object = 0.0
    capacity: object = None

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if not callable(self.beta):
            L._check_positive("beta", self.beta, allow_zero=True)
        L._check_positive("free_bits", self.free_bits, allow_zero=True)
        if isinstance(self.log_scale, str):
            if self.log_scale not in ("learned", "optimal"):
                raise ValueError(f"log_scale must be a number, 'learned' or 'optimal', got {self.log_scale!r}")
        elif isinstance(self.log_scale, bool) or not isinstance(self.log_scale, (int, float)):
            raise ValueError(f"log_scale must be a number, 'learned' or 'optimal', got {self.log_scale!r}")
        if self.capacity is not None and not isinstance(self.capacity, L.CapacitySchedule):
            raise TypeError("capacity must be None or a losses.CapacitySchedule(c_max, steps, gamma)")
        if self.capacity is not None and self.free_bits > 0:
            raise ValueError("capacity replaces β·KL, so free_bits would be ignored; set free_bits=0 or capacity=None")

    def beta_at(self, step: int) -> float:
        return float(self.beta(step)) if callable(self.beta) else float(self.beta)

    def nll(self, model: nn.Module, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction NLL per example, in nats."""
        if self.likelihood == "bernoulli":
            return L.bernoulli_nll(out, x)
        mean = torch.sigmoid(out)
        if self.log_scale == "learned":
            if getattr(model, "log_scale", None) is None:
                raise ValueError("log_scale='learned' needs a model built with learned_scale='shared' or 'pixel'")
            log_scale = model.log_scale
        elif self.log_scale == "optimal":
            dims = tuple(range(1, x.dim()))
            if self.likelihood == "gaussian":
                log_scale = L.optimal_log_sigma(mean, x, per="image")
            else:
                log_scale = torch.log((x - mean).abs().mean(dims, keepdim=True).clamp_min(1e-3))
        else:
            log_scale = float(self.log_scale)
        if self.likelihood == "gaussian":
            return L.gaussian_nll(mean, x, log_scale)
        return L.laplace_nll(mean, x, log_scale)

    def __call__(self, model: nn.Module, x: torch.Tensor, step: int = 0, generator=None) -> dict:
        mu, logvar, _, out = model(x, generator)
        rec = self.nll(model, out, x).mean()
        kl = L.kl_per_dim(mu, logvar).sum(1).mean()
        beta = self.beta_at(step)
        if self.capacity is not None:
            reg = L.capacity_penalty(kl, self.capacity(step), self.capacity.gamma)
        elif self.free_bits > 0:
            reg = beta * L.free_bits_kl(mu, logvar, float(self.free_bits))
        else:
            reg = beta * kl
        return {"loss": rec + reg, "rec": rec, "kl": kl, "beta": beta}


def _check_data(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4:
        raise ValueError(f"{name} must be a float tensor shaped (N, C, H, W); load it with vaeutils.data.load()")
    if len(x) == 0:
        raise ValueError(f"{name} is empty")
    return x


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, loss_fn: ELBOLoss | None = None, batch_size: int = 1000,
             seed: int = 0) -> dict:
    """Per-example means on ``x``: ``rec`` (NLL), ``kl`` and ``loss`` = rec + kl = −ELBO (β = 1), in nats.

    One z sample per example from a fixed-seed generator, so the number repeats exactly."""
    _check_data("x", x)
    loss_fn = loss_fn or ELBOLoss()
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    rec_sum = kl_sum = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        mu, logvar, _, out = model(xb, gen)
        rec_sum += loss_fn.nll(model, out, xb).sum().item()
        kl_sum += L.kl_per_dim(mu, logvar).sum().item()
    model.train(was_training)
    n = len(x)
    return {"rec": rec_sum / n, "kl": kl_sum / n, "loss": (rec_sum + kl_sum) / n}


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where the device has one (one pass over the weights per step, about three
    times less optimiser time than the for-each version on a CPU), the for-each version elsewhere."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def _lr_factor(schedule, steps_per_epoch: int, total_steps: int):
    """``step -> factor`` for ``fit(lr_schedule=...)``; None for a constant learning rate."""
    if schedule is None or schedule == "constant":
        return None
    if schedule == "linear":
        warmup = max(1, steps_per_epoch // 4)
        return lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1.0 - step / total_steps)
    if callable(schedule):
        return lambda step: float(schedule(step, total_steps))
    raise ValueError(f"lr_schedule must be None, 'constant', 'linear' or a function f(step, total_steps), "
                     f"got {schedule!r}")


def fit(model: nn.Module, train_x: torch.Tensor, loss_fn=None, *, epochs: int = 10, batch_size: int = 128,
        lr: float = 1e-3, test_x: torch.Tensor | None = None, seed: int = 0, progress: bool = True,
        callbacks=(), binarize: bool = False, lr_schedule=None) -> dict:
    """Train ``model`` on in-memory ``train_x`` with Adam; returns the history.

    loss_fn(model, x, step) -> dict with ``loss`` (minimised) and other terms (logged), default ``ELBOLoss()``.
    binarize: draw a fresh Bernoulli sample of each batch (dynamic binarization).
    lr_schedule: None (constant ``lr``), ``"linear"`` (warm up over the first quarter epoch, then fall linearly
        to zero at the last step: a lower loss after a fixed number of epochs than a constant rate), or
        ``f(step, total_steps)`` returning the factor that multiplies ``lr``.
    callbacks: functions ``cb(epoch, history)`` called after every epoch (live plots, printing).
    History: ``{"train": [per-epoch means + seconds], "test": [...], "steps": [loss per step]}``.
    A non-finite term raises NonFiniteLossError naming the step and the term; the weights are the last good ones.
    """
    _check_data("train_x", train_x)
    if test_x is not None:
        _check_data("test_x", test_x)
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    L._check_positive("lr", lr)
    loss_fn = loss_fn or ELBOLoss()
    n = len(train_x)
    steps_per_epoch = math.ceil(n / batch_size)
    lr_factor = _lr_factor(lr_schedule, steps_per_epoch, epochs * steps_per_epoch)
    device = train_x.device
    model.to(device).train()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _adam(params, lr)
    last_good = [p.detach().clone() for p in params]
    # the test rows are the −ELBO under the loss's own likelihood; a plain function gets the Bernoulli one
    eval_loss = loss_fn if hasattr(loss_fn, "nll") else None
    history = {"train": [], "test": [], "steps": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * steps_per_epoch, desc="training", unit="step", mininterval=0.5, leave=True)
    step = 0
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen).to(device)
            sums: dict[str, float] = {}
            for i in range(0, n, batch_size):
                xb = train_x[perm[i:i + batch_size]]
                if binarize:
                    xb = torch.bernoulli(xb)
                terms = loss_fn(model, xb, step)
                names = [k for k, v in terms.items() if isinstance(v, torch.Tensor)]
                values = torch.stack([terms[k].detach().float().reshape(()) for k in names]).tolist()
                bad = [(k, v) for k, v in zip(names, values, strict=True) if not math.isfinite(v)]
                if bad:
                    term, value = min(bad, key=lambda kv: kv[0] == "loss")  # the culprit, not the total it spoils
                    with torch.no_grad():
                        torch._foreach_copy_(params, last_good)
                    raise NonFiniteLossError(step, term, value)
                with torch.no_grad():
                    torch._foreach_copy_(last_good, params)
                if lr_factor is not None:
                    opt.param_groups[0]["lr"] = lr * lr_factor(step)
                opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                opt.step()
                m = len(xb)
                for k, v in zip(names, values, strict=True):
                    sums[k] = sums.get(k, 0.0) + v * m
                for k, v in terms.items():
                    if not isinstance(v, torch.Tensor):
                        sums[k] = sums.get(k, 0.0) + float(v) * m
                history["steps"].append(values[names.index("loss")])
                step += 1
                if bar is not None:
                    bar.update(1)
            row = {"epoch": epoch, **{k: v / n for k, v in sums.items()}, "seconds": time.perf_counter() - t0}
            history["train"].append(row)
            if test_x is not None:
                history["test"].append({"epoch": epoch, **evaluate(model, test_x, eval_loss, seed=seed)})
            if bar is not None:
                shown = {"loss": f"{row['loss']:.2f}"}
                if history["test"]:
                    shown["test"] = f"{history['test'][-1]['loss']:.2f}"
                bar.set_postfix(shown)
            for cb in callbacks:
                cb(epoch, history)
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


def train_vae(dataset: str = "mnist", model: str = "mlp", *, hidden=(400,), latent_dim: int = 20,
              loss: ELBOLoss | None = None, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
              seed: int = 0, data=None, cache: bool = True, progress: bool = True, binarize: bool = False,
              name: str = "vae", callbacks=(), **model_kw):
    """Load the checkpoint if it exists, else train: returns ``(model, history)``.

    The cache key covers data (name, source, size), model, loss (β, schedule, free bits…), seed,
    epochs, batch size, lr and binarization, so any change retrains. ``data``: an ImageData from
    ``vaeutils.data.load`` (loaded from ``dataset`` when omitted).
    """
    from . import data as _data

    loss = loss or ELBOLoss()
    if not isinstance(loss, ELBOLoss):
        raise TypeError("loss must be a vaeutils.train.ELBOLoss(...)")
    if data is None:
        data = _data.load(dataset)
    in_shape = tuple(data.train_x.shape[1:])
    model_args = {"in_shape": in_shape, "latent_dim": latent_dim, **model_kw}
    if model == "mlp":
        model_args["hidden"] = tuple(hidden) if not isinstance(hidden, int) else (hidden,)
    settings = {
        "data": {"name": data.name, "source": data.source, "n_train": len(data.train_x), "n_test": len(data.test_x)},
        "model": model, "model_args": model_args, "loss": loss, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "seed": seed, "binarize": binarize,
    }

    def build():
        _config.seed_everything(seed)
        return build_model(model, **model_args)

    def run(m):
        return fit(m, data.train_x, loss, epochs=epochs, batch_size=batch_size, lr=lr, test_x=data.test_x,
                   seed=seed, progress=progress, callbacks=callbacks, binarize=binarize)

    net, history, hit = _cache.load_or_train(name, settings, build, run, enabled=cache)
    if hit:
        print(f"loaded '{name}' from the cache ({_cache.path_for(name, settings).name}); "
              f"test -ELBO {history['test'][-1]['loss']:.2f} nats")
    return net.to(data.train_x.device).eval(), history


# Speed defaults of the command line, chosen with benchmarks/bench_train.py (see benchmarks/README.md). On
# Fashion-MNIST, batch 256 with a 6x larger peak learning rate, decayed linearly to zero, and the output bias
# started at the mean image reach the PyTorch example's 10-epoch test loss in about 6 epochs; batch 128 needs
# one epoch fewer but each takes longer, batch 512 needs more epochs than it saves, and batch 256 runs the
# matrix multiplies closer to the machine's peak.
CLI_BATCH_SIZE = 256
CLI_LR = 6e-3
CLI_LR_SCHEDULE = "linear"


@torch.no_grad()
def init_output_bias(model: nn.Module, train_x: torch.Tensor) -> None:
    """Start the decoder's output bias at the log-odds of the mean training image, so the untrained model
    already predicts the average pixel instead of ½ everywhere (saves the first epoch most of its work)."""
    last = model.decoder[-1]
    if not isinstance(last, nn.Linear) or last.bias is None or last.out_features != train_x[0].numel():
        raise TypeError("init_output_bias needs an MLPVAE, whose decoder ends in a Linear layer over the pixels")
    last.bias.copy_(torch.logit(train_x.mean(0).flatten().clamp(1e-3, 1 - 1e-3)))


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m vaeutils.train", description="Train the MLP VAE and report per epoch.")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "sprites"))
    p.add_argument("--hidden", type=int, nargs="+", default=[400], help="hidden layer sizes (default 400)")
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=CLI_BATCH_SIZE,
                   help=f"examples per step (default {CLI_BATCH_SIZE}; see benchmarks/README.md)")
    p.add_argument("--lr", type=float, default=CLI_LR, help=f"Adam (peak) learning rate (default {CLI_LR:g})")
    p.add_argument("--lr-schedule", choices=("constant", "linear"), default=CLI_LR_SCHEDULE,
                   help="linear: warm up for a quarter epoch, then decay to zero at the last epoch (default)")
    p.add_argument("--no-init-bias", dest="init_bias", action="store_false",
                   help="keep PyTorch's default output bias instead of the log-odds of the mean image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: automatic)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice, one per physical core)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per epoch on stdout (other messages go to stderr)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    from . import data as _data

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    # with --json, stdout carries nothing but the JSON lines: device and data notes go to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        if args.device:
            _config.set_device(args.device)
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
        out = {"epoch": epoch, "train_seconds": round(row["seconds"], 4), "train_loss": round(row["loss"], 4),
               "test_loss": round(test["loss"], 4), "test_rec": round(test["rec"], 4), "test_kl": round(test["kl"], 4),
               "eval_seconds": round(time.perf_counter() - t0, 4), "batch_size": args.batch_size, "lr": args.lr,
               "lr_schedule": args.lr_schedule, "init_bias": args.init_bias, "device": str(d.train_x.device)}
        if args.json:
            print(json.dumps(out), flush=True)
        else:
            print(f"epoch {epoch}: train {row['loss']:.2f}  test {test['loss']:.2f}  ({row['seconds']:.2f} s)",
                  flush=True)

    fit(model, d.train_x, loss, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        progress=False, callbacks=[report], lr_schedule=args.lr_schedule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
