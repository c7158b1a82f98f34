"""Training: ``fit()`` with one shared ``train_step``, ``evaluate()``, cached ``train_vae()`` and a CLI.

Data stay in memory as tensors on the device; batches are shuffled index slices (no per-item
DataLoader), which is most of why this trainer is several times faster than the usual example.
Taught in unit 03; β, free bits, schedules and capacity plug into ``losses.ELBOLoss``.

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
from typing import NamedTuple

import torch
from torch import nn

from . import cache as _cache
from . import checks
from . import config as _config
from . import data as _data
from .losses import ELBOLoss, kl_per_dim
from .models import build_model


class NonFiniteLossError(RuntimeError):
    """Training met a NaN/inf loss term; the model holds the last weights that gave a finite loss."""

    def __init__(self, step: int, term: str, value: float):
        self.step, self.term, self.value = step, term, value
        super().__init__(
            f"non-finite {term} ({value}) at step {step}; training stopped and the last good weights were kept. "
            "Lower the learning rate, check the data range, or clamp logvar."
        )


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn, xb: torch.Tensor, step: int,
               generator: torch.Generator | None = None, on_finite=None) -> dict[str, float]:
    """One optimiser step on the batch ``xb``: forward, a check that every term is finite, backward, update.

    ``loss_fn(model, xb, step)`` returns a dict with ``loss`` (minimised) and other terms; a generator, if given,
    is passed on for the reparameterisation noise. Returns every term as a float (one host sync for all).
    A non-finite term raises :class:`NonFiniteLossError` before the weights change; ``on_finite()``, if given, runs
    once the terms are known to be finite, before the update (``fit`` keeps a copy of the good weights there).
    Used by :func:`fit` and by the live β trainer, so both train the same way.
    """
    terms = loss_fn(model, xb, step) if generator is None else loss_fn(model, xb, step, generator=generator)
    if not isinstance(terms, dict) or not isinstance(terms.get("loss"), torch.Tensor):
        raise TypeError("loss_fn must return a dict with a tensor under 'loss' (and other terms to log), "
                        f"got {type(terms).__name__}{' without a loss tensor' if isinstance(terms, dict) else ''}")
    names = [k for k, v in terms.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([terms[k].detach().float().reshape(()) for k in names]).tolist()
    bad = [(k, v) for k, v in zip(names, values, strict=True) if not math.isfinite(v)]
    if bad:
        term, value = min(bad, key=lambda kv: kv[0] == "loss")  # the culprit, not the total it spoils
        raise NonFiniteLossError(step, term, value)
    if on_finite is not None:
        on_finite()
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    optimizer.step()
    out = dict(zip(names, values, strict=True))
    out.update({k: float(v) for k, v in terms.items() if not isinstance(v, torch.Tensor)})
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, loss_fn: ELBOLoss | None = None, batch_size: int = 1000,
             seed: int = 0) -> dict:
    """Per-example means on ``x``: ``rec`` (NLL), ``kl`` and ``loss`` = rec + kl = −ELBO (β = 1), in nats.

    One z sample per example from a fixed-seed generator, so the number repeats exactly."""
    checks.images("x", x)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    loss_fn = loss_fn or ELBOLoss()
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    rec_sum = kl_sum = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        mu, logvar, _, out = model(xb, gen)
        rec_sum += loss_fn.nll(model, out, xb).sum().item()
        kl_sum += kl_per_dim(mu, logvar).sum().item()
    model.train(was_training)
    n = len(x)
    return {"rec": rec_sum / n, "kl": kl_sum / n, "loss": (rec_sum + kl_sum) / n}


def make_optimizer(params, lr: float) -> torch.optim.Adam:
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
    The global random state is the same after ``fit`` as before: training draws from its own seeded stream.
    """
    checks.images("train_x", train_x)
    if test_x is not None:
        checks.images("test_x", test_x)
    epochs = checks.integer("epochs", epochs, low=1)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    lr = checks.positive("lr", lr)
    if not callable(loss_fn) and loss_fn is not None:
        raise TypeError(f"loss_fn must be a loss such as losses.ELBOLoss(...) or a function (model, x, step) -> dict, "
                        f"got {loss_fn!r}")
    if isinstance(callbacks, (str, bytes)) or not all(callable(cb) for cb in _iterable("callbacks", callbacks)):
        raise TypeError(f"callbacks must be a list of functions cb(epoch, history), got {callbacks!r}")
    loss_fn = loss_fn or ELBOLoss()
    n = len(train_x)
    steps_per_epoch = math.ceil(n / batch_size)
    lr_factor = _lr_factor(lr_schedule, steps_per_epoch, epochs * steps_per_epoch)
    device = train_x.device
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, lr)
    last_good = [p.detach().clone() for p in params]

    def keep_good():  # the weights that just gave a finite loss, restored if a later step does not
        with torch.no_grad():
            torch._foreach_copy_(last_good, params)

    # the test rows are the −ELBO under the loss's own likelihood; a plain function gets the Bernoulli one
    eval_loss = loss_fn if hasattr(loss_fn, "nll") else None
    history = {"train": [], "test": [], "steps": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * steps_per_epoch, desc="training", unit="step", mininterval=0.5, leave=True)
    step = 0
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                perm = torch.randperm(n, generator=gen).to(device)
                sums: dict[str, float] = {}
                for i in range(0, n, batch_size):
                    xb = train_x[perm[i:i + batch_size]]
                    if binarize:
                        xb = torch.bernoulli(xb)
                    if lr_factor is not None:
                        opt.param_groups[0]["lr"] = lr * lr_factor(step)
                    try:
                        values = train_step(model, opt, loss_fn, xb, step, on_finite=keep_good)
                    except NonFiniteLossError:
                        with torch.no_grad():
                            torch._foreach_copy_(params, last_good)
                        raise
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + v * len(xb)
                    history["steps"].append(values["loss"])
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


def _iterable(name: str, value):
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list or tuple, got {value!r}") from None


class TrainResult(NamedTuple):
    """What :func:`train_vae` returns: the model (in eval mode), its training history, and whether it was
    ``loaded`` from the cache (True) or trained now (False)."""

    model: nn.Module
    history: dict
    loaded: bool


def _model_args(model: str, in_shape, hidden, latent_dim: int, model_kw: dict) -> dict:
    args = {"in_shape": in_shape, "latent_dim": latent_dim, **model_kw}
    if model == "mlp":
        hidden = (400,) if hidden is None else hidden
        args["hidden"] = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    elif model == "conv":
        if hidden is not None:
            sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
            if len(sizes) != 1:
                raise ValueError(f"hidden={hidden!r}: the conv model has one fully connected layer; "
                                 "pass one size, e.g. hidden=256")
            args["hidden"] = sizes[0]
    else:
        raise ValueError(f"model must be 'mlp' or 'conv', got {model!r}")
    return args


def train_vae(dataset: str = "mnist", model: str = "mlp", *, hidden=None, latent_dim: int = 20,
              loss=None, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
              seed: int = 0, data=None, cache: bool = True, progress: bool = True, binarize: bool = False,
              name: str = "vae", callbacks=(), lr_schedule=None, **model_kw) -> TrainResult:
    """Load the checkpoint if it exists, else train: returns ``TrainResult(model, history, loaded)``.

    hidden: the hidden sizes (MLP: a tuple, default (400,); conv: one size, default 256).
    loss: ``losses.ELBOLoss(...)`` (default) or any loss that is callable as ``loss(model, x, step)`` and has a
        ``describe()`` method returning plain data for the cache key.
    The cache key covers data (name, source, size), model, loss (β, schedule, free bits…), seed, epochs,
    batch size, lr and its schedule, and binarization, so any change retrains. ``data``: an ImageData from
    ``vaeutils.data.load`` (loaded from ``dataset`` when omitted).
    """
    loss = loss or ELBOLoss()
    if not callable(loss) or not callable(getattr(loss, "describe", None)):
        raise TypeError("loss must be a losses.ELBOLoss(...) or a callable loss with a describe() method "
                        f"(plain data for the cache key), got {loss!r}")
    if data is None:
        data = _data.load(dataset)
    model_args = _model_args(model, tuple(data.train_x.shape[1:]), hidden, latent_dim, model_kw)
    settings = {
        "data": {"name": data.name, "source": data.source, "n_train": len(data.train_x), "n_test": len(data.test_x)},
        "model": model, "model_args": model_args, "loss": loss.describe() if cache else None, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed, "binarize": binarize,
    }
    if lr_schedule is not None:
        if not isinstance(lr_schedule, str):
            raise TypeError("lr_schedule in train_vae must be None, 'constant' or 'linear' (a function has no "
                            "stable cache key; call fit() directly for a custom one)")
        settings["lr_schedule"] = lr_schedule

    def build():
        _config.seed_everything(seed)
        return build_model(model, **model_args)

    def run(m):
        return fit(m, data.train_x, loss, epochs=epochs, batch_size=batch_size, lr=lr, test_x=data.test_x,
                   seed=seed, progress=progress, callbacks=callbacks, binarize=binarize, lr_schedule=lr_schedule)

    net, history, hit = _cache.load_or_train(name, settings, build, run, enabled=cache)
    if hit and progress:
        print(f"loaded '{name}' from the cache ({_cache.path_for(name, settings).name}); "
              f"test -ELBO {history['test'][-1]['loss']:.2f} nats")
    return TrainResult(net.to(data.train_x.device).eval(), history, hit)


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
