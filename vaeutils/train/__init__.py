"""Training: ``fit()`` with one shared ``train_step``, cached ``train_vae()`` and a command line.

Data stay in memory as tensors on the device; batches are shuffled index slices (no per-item
DataLoader), which is most of why this trainer is several times faster than the usual example.
Taught in unit 03; β, free bits, schedules and capacity plug into ``losses.ELBOLoss``.

The command line lives in ``vaeutils.train.cli`` (``python -m vaeutils.train --dataset fashion-mnist
--hidden 400 --latent-dim 20 --epochs 10 --beta 1 --json`` prints one JSON object per epoch).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import platform
import time
from typing import NamedTuple

import torch
from torch import nn

from .. import cache as _cache
from .. import checks
from .. import config as _config
from .. import cpu as _cpu
from .. import data as _data
from .. import precision as _precision
from ..i18n import tr
from ..losses import ELBOLoss
from ..metrics import evaluate
from ..models import build_model

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


@functools.cache
def tune_allocator() -> bool:
    """Let glibc's malloc keep freed blocks of up to 32 MB for reuse, not hand them back to the OS.

    A training step frees and re-allocates the same few-MB tensors hundreds of times a second; by
    default glibc hands each one back with ``munmap`` and the next step pays page faults to get it
    again, which made a CPU step of the 784-400-20 VAE up to twice as slow
    (``benchmarks/bench_train.py``). Costs at most about 128 MB of memory kept mapped. Called by
    :func:`train_step` (it acts once); a no-op off glibc (macOS, Windows, musl) or with
    ``VAELAB_TUNE_MALLOC=0``. Returns whether the setting took effect.
    """
    asked_off = os.environ.get("VAELAB_TUNE_MALLOC", "1").strip() == "0"
    if asked_off or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return (bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20))
            and bool(mallopt(_M_TRIM_THRESHOLD, 128 << 20)))


class NonFiniteLossError(RuntimeError):
    """A NaN/inf loss term stopped training; the model keeps the last weights with a finite loss."""

    def __init__(self, step: int, term: str, value: float):
        self.step, self.term, self.value = step, term, value
        super().__init__(
            f"non-finite {term} ({value}) at step {step}; training stopped and the last good "
            "weights were kept. Lower the learning rate, check the data range, or clamp logvar."
        )

    def __reduce__(self):  # rebuilt from its fields when a worker process sends it back
        return type(self), (self.step, self.term, self.value)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn, xb: torch.Tensor,
               step: int, generator: torch.Generator | None = None, on_finite=None,
               precision: str = "fp32") -> dict[str, float]:
    """One optimiser step on the batch ``xb``: forward, backward with autograd, a check that every
    term and the gradient are finite, then the update.

    ``loss_fn(model, xb, step)`` returns a dict with ``loss`` (minimised) and other terms; a
    generator, if given, is passed on for the reparameterisation noise. Returns every term as a
    float (one host sync for all). A non-finite term raises :class:`NonFiniteLossError` before the
    weights change; ``on_finite()``, if given, runs once the terms are known to be finite, before
    the update (``fit`` keeps a copy of the good weights there).
    ``precision``: ``"bf16"`` runs the forward pass under bfloat16 autocast
    (``vaeutils.precision``); the weights, the gradients, the loss terms and the optimiser stay
    float32. A non-finite gradient raises :class:`NonFiniteLossError` (term ``"gradient"``) at the
    step that made it, before the update. Used by :func:`fit` and by the live β trainer, so both
    train the same way.
    """
    tune_allocator()
    with _precision.autocast(xb.device, precision):
        if generator is None:
            terms = loss_fn(model, xb, step)
        else:
            terms = loss_fn(model, xb, step, generator=generator)
    if not isinstance(terms, dict) or not isinstance(terms.get("loss"), torch.Tensor):
        missing = " without a loss tensor" if isinstance(terms, dict) else ""
        raise TypeError("loss_fn must return a dict with a tensor under 'loss' (and other terms to "
                        f"log), got {type(terms).__name__}{missing}")
    names = [k for k, v in terms.items() if isinstance(v, torch.Tensor)]
    optimizer.zero_grad(set_to_none=True)
    # before the checks: nothing changes the weights until optimizer.step()
    terms["loss"].backward()
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]
             if p.grad is not None]
    # one host sync for every term and a sum that is finite iff the gradient is (or overflowed:
    # checked below)
    extra = [torch.stack([g.sum(dtype=torch.float32) for g in grads]).sum()] if grads else []
    values = torch.stack([terms[k].detach().float().reshape(()) for k in names] + extra).tolist()
    grad_sum = values.pop() if grads else 0.0
    bad = [(k, v) for k, v in zip(names, values, strict=True) if not math.isfinite(v)]
    if bad:
        # the culprit, not the total it spoils
        term, value = min(bad, key=lambda kv: kv[0] == "loss")
        raise NonFiniteLossError(step, term, value)
    if not math.isfinite(grad_sum) and not all(bool(g.isfinite().all()) for g in grads):
        norm = float(torch.stack(torch._foreach_norm(grads)).norm())
        raise NonFiniteLossError(step, "gradient", norm)
    if on_finite is not None:
        on_finite()
    optimizer.step()
    out = dict(zip(names, values, strict=True))
    out.update({k: float(v) for k, v in terms.items() if not isinstance(v, torch.Tensor)})
    return out


def make_optimizer(params, lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused kernel (one pass over all weights per step) where the
    device has one, else the for-each version."""
    params = list(params)
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
        def factor(step):
            value = schedule(step, total_steps)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not is_number or not 0 <= value < float("inf"):
                raise ValueError(f"lr_schedule returned {value!r} at step {step}; it must return a "
                                 "factor >= 0 that multiplies lr (a negative rate would climb the "
                                 "loss)")
            return float(value)
        return factor
    raise ValueError("lr_schedule must be None, 'constant', 'linear' or a function f(step, "
                     f"total_steps), got {schedule!r}")


def fit(model: nn.Module, train_x: torch.Tensor, loss_fn=None, *, epochs: int = 10,
        batch_size: int = 128, lr: float = 1e-3, test_x: torch.Tensor | None = None, seed: int = 0,
        progress: bool = True, callbacks=(), binarize: bool = False, lr_schedule=None,
        precision: str | None = None) -> dict:
    """Train ``model`` on in-memory ``train_x`` with Adam; returns the history.

    loss_fn(model, x, step) -> dict with ``loss`` (minimised) and other terms (logged), default
    ``ELBOLoss()``.
    binarize: draw a fresh Bernoulli sample of each batch (dynamic binarization).
    lr_schedule: None (constant ``lr``), ``"linear"`` (warm up over the first quarter epoch, then
        fall linearly to zero at the last step: a lower loss after a fixed number of epochs than a
        constant rate), or ``f(step, total_steps)`` returning the factor that multiplies ``lr``.
    callbacks: functions ``cb(epoch, history)`` called after every epoch (live plots, printing).
    precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (default: ``VAELAB_PRECISION``, else fp32); see
        ``vaeutils.precision``. The history's ``precision`` says which one ran.
    History: ``{"train": [per-epoch means + seconds], "test": [...], "steps": [loss per step],
    "epochs": the number asked for}`` (callbacks read it to know the last epoch). A
    non-finite term raises NonFiniteLossError naming the step and the term; the weights are the last
    good ones. The global random state is the same after ``fit`` as before: training draws from its
    own seeded stream.
    """
    for name, x in (("train_x", train_x), ("test_x", test_x)):
        # a sum of finite pixels is finite unless it overflows; only then (or for NaN/inf) look at
        # each pixel
        if name == "test_x" and x is None:
            continue
        if not bool(torch.isfinite(checks.images(name, x).sum())) and not bool(
                torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().flatten()[:5].tolist()
            raise ValueError(f"{name} contains NaN or inf pixels (images {bad}…); clean or drop "
                             "them before training")
    epochs = checks.integer("epochs", epochs, low=1)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    lr = checks.positive("lr", lr)
    seed = checks.integer("seed", seed, low=0)
    binarize = checks.boolean("binarize", binarize)
    checks.model_dtype("train_x", train_x, model)
    bernoulli = getattr(loss_fn or ELBOLoss(), "likelihood", None) == "bernoulli"
    why = ("binarize=True (each pixel is the chance of a 1)" if binarize else
           "a Bernoulli likelihood" if bernoulli else "")
    if why and not bool(((train_x >= 0) & (train_x <= 1)).all()):
        raise ValueError(f"train_x must lie in [0, 1] for {why}, got values in "
                         f"[{train_x.min().item():.3g}, {train_x.max().item():.3g}]; rescale the "
                         "images (x / 255)" + (" or pass binarize=False" if binarize else ""))
    if not callable(loss_fn) and loss_fn is not None:
        raise TypeError("loss_fn must be a loss such as losses.ELBOLoss(...) or a function (model, "
                        f"x, step) -> dict, got {loss_fn!r}")
    if isinstance(callbacks, (str, bytes)) or not all(
            callable(cb) for cb in _iterable("callbacks", callbacks)):
        raise TypeError("callbacks must be a list of functions cb(epoch, history), got "
                        f"{callbacks!r}")
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

    # the test rows are the −ELBO under the loss's own likelihood; a plain function gets the
    # Bernoulli one
    eval_loss = loss_fn if hasattr(loss_fn, "nll") else None
    run_precision = _precision.resolve(precision, train_x.device)
    history = {"train": [], "test": [], "steps": [], "precision": run_precision, "epochs": epochs}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * steps_per_epoch, desc=tr("training"), unit="step",
                   mininterval=0.5,
                   leave=True)
    step = 0
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    # fewer threads on a busy machine
    threads = _cpu.ThreadPolicy() if device.type == "cpu" else None
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                perm = torch.randperm(n, generator=gen).to(device)
                sums: dict[str, float] = {}
                for i in range(0, n, batch_size):
                    # ~20× faster than train_x[idx] here
                    xb = train_x.index_select(0, perm[i:i + batch_size])
                    if binarize:
                        xb = torch.bernoulli(xb)
                    if lr_factor is not None:
                        opt.param_groups[0]["lr"] = lr * lr_factor(step)
                    if threads is not None:
                        threads.tick()
                    try:
                        values = train_step(model, opt, loss_fn, xb, step, on_finite=keep_good,
                                            precision=run_precision)
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
                row = {"epoch": epoch, **{k: v / n for k, v in sums.items()},
                       "seconds": time.perf_counter() - t0}
                history["train"].append(row)
                if test_x is not None:
                    history["test"].append({"epoch": epoch,
                                            **evaluate(model, test_x, eval_loss, seed=seed)})
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
        if threads is not None:
            threads.restore()
    model.eval()
    return history


def _iterable(name: str, value):
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list or tuple, got {value!r}") from None


class TrainResult(NamedTuple):
    """What :func:`train_vae` returns: the model (in eval mode), its training history, and whether
    it was ``loaded`` from the cache (True) or trained now (False)."""

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
                raise ValueError(f"hidden={hidden!r}: the conv model has one fully connected "
                                 "layer; pass one size, e.g. hidden=256")
            args["hidden"] = sizes[0]
    else:
        raise ValueError(f"model must be 'mlp' or 'conv', got {model!r}")
    return args


class TrainJob(NamedTuple):
    """One model of :func:`train_vae` (made by :func:`prepare`): cache ``name`` and ``settings``
    (the key), ``build()`` (seeded initial weights), ``run(model)`` (``fit``: the history)."""

    name: str
    settings: dict
    build: object
    run: object
    cache: bool
    device: torch.device


def prepare(dataset: str = "mnist", model: str = "mlp", *, hidden=None, latent_dim: int = 20,
            loss=None, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
            seed: int = 0, data=None, cache: bool = True,
            progress: bool = True, binarize: bool = False, name: str = "vae", callbacks=(),
            lr_schedule=None, precision: str | None = None, **model_kw) -> TrainJob:
    """``train_vae``'s :class:`TrainJob` for the same arguments, checked; nothing built yet."""
    loss = loss or ELBOLoss()
    if not callable(loss) or not callable(getattr(loss, "describe", None)):
        raise TypeError("loss must be a losses.ELBOLoss(...) or a callable loss with a describe() "
                        f"method (plain data for the cache key), got {loss!r}")
    if data is None:
        data = _data.load(dataset)
    model_args = _model_args(model, tuple(data.train_x.shape[1:]), hidden, latent_dim, model_kw)
    settings = {
        "data": {"name": data.name, "source": data.source, "n_train": len(data.train_x),
                 "n_test": len(data.test_x)},
        "model": model, "model_args": model_args,
        "loss": loss.describe() if cache else None, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "seed": seed, "binarize": binarize,
        "precision": _precision.resolve(precision, data.train_x.device),
    }
    if lr_schedule is not None:
        if not isinstance(lr_schedule, str):
            raise TypeError("lr_schedule in train_vae must be None, 'constant' or 'linear' (a "
                            "function has no stable cache key; call fit() directly for a custom "
                            "one)")
        settings["lr_schedule"] = lr_schedule

    def build():
        _config.seed_everything(seed)
        return build_model(model, **model_args)

    def run(m):
        return fit(m, data.train_x, loss, epochs=epochs, batch_size=batch_size, lr=lr,
                   test_x=data.test_x, seed=seed, progress=progress, callbacks=callbacks,
                   binarize=binarize, lr_schedule=lr_schedule, precision=settings["precision"])

    return TrainJob(name, settings, build, run, bool(cache), data.train_x.device)


def train_vae(dataset: str = "mnist", model: str = "mlp", *, hidden=None, latent_dim: int = 20,
              loss=None, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
              seed: int = 0, data=None, cache: bool = True,
              progress: bool = True, binarize: bool = False, name: str = "vae", callbacks=(),
              lr_schedule=None, precision: str | None = None, **model_kw) -> TrainResult:
    """Load the checkpoint if cached, else train: returns ``TrainResult(model, history, loaded)``.

    hidden: the hidden sizes (MLP: a tuple, default (400,); conv: one size, default 256).
    loss: ``losses.ELBOLoss(...)`` (default) or any loss that is callable as ``loss(model, x,
        step)`` and has a ``describe()`` method returning plain data for the cache key.
    The cache key covers data (name, source, size), model, loss (β, schedule, free bits…), seed,
    epochs, batch size, lr and its schedule, binarization and the precision (``vaeutils.precision``;
    fp32 unless asked), so any change retrains. ``data``: an ImageData from ``vaeutils.data.load``
    (loaded from ``dataset`` when omitted).
    """
    job = prepare(dataset, model, hidden=hidden, latent_dim=latent_dim, loss=loss, epochs=epochs,
                  batch_size=batch_size, lr=lr, seed=seed, data=data, cache=cache,
                  progress=progress, binarize=binarize, name=name, callbacks=callbacks,
                  lr_schedule=lr_schedule, precision=precision, **model_kw)
    net, history, hit = _cache.load_or_train(job.name, job.settings, job.build, job.run,
                                             enabled=cache)
    if hit and progress:
        print(f"loaded '{name}' from the cache ({_cache.path_for(name, job.settings).name}); "
              f"test -ELBO {history['test'][-1]['loss']:.2f} nats")
    return TrainResult(net.to(job.device).eval(), history, hit)
