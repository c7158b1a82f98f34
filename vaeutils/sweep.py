"""Many models at once: one ``train_many`` loop, the β-sweep and the free-bits grid built on it.

* :func:`train_many` trains (or loads from the cache) one model per setting with one progress bar
  and prints one summary line: how many were loaded, how many trained, how long it took.
* :func:`train_beta_sweep` trains one MLP VAE per β in :data:`BETA_SWEEP` on binarized MNIST (units
  05, 07, 08 and the app share it through the cache); :func:`sweep_points` measures each with
  ``metrics.summary``.
* :func:`train_free_bits_grid` trains one model per (β, λ) for the free-bits explorer (unit 07).
* :func:`train_prior_vae`: the β-sweep's VAE (same data, epochs, seed and initial weights) with a
  learned prior from ``vaeutils.priors`` instead of N(0, I) (unit 08).
"""

from __future__ import annotations

import math
import time
from numbers import Real
from typing import NamedTuple

import torch

from . import cache as _cache
from . import checks
from . import config as _config
from . import cpu as _cpu
from . import data as _data
from . import metrics as _metrics
from . import priors as _priors
from .checks import distinct_values as _as_values
from .i18n import N_, tr
from .losses import ELBOLoss
from .models import MLPVAE
from .train import TrainResult, fit, prepare, train_vae
from .train import workers as _workers

BETA_SWEEP = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
"""The β values of the sweep shared by unit 05, the later units and :func:`beta_explorer`."""

SWEEP_NAME = "beta-sweep"
SWEEP_HIDDEN = (400,)
SWEEP_LATENT_DIM = 20


def sweep_epochs() -> int:
    """Epochs per model of the default sweep: 40 in full mode, 2 in smoke mode."""
    return _config.pick(full=40, smoke=2)


def sweep_recipe() -> dict:
    """The ``train_vae`` settings every model of the β-sweep shares (all but its loss): the
    784-400-20 MLP VAE, dynamically binarized batches, :func:`sweep_epochs`, seed 0 and the cache
    name. Written once here: :func:`train_beta_sweep` uses it, and so does any grid that wants to
    load the sweep's checkpoints instead of training them again
    (``train_free_bits_grid(λs, βs, data=data.binarized(), **sweep_recipe())``)."""
    return dict(model="mlp", hidden=SWEEP_HIDDEN, latent_dim=SWEEP_LATENT_DIM,
                epochs=sweep_epochs(), seed=0, binarize=True, name=SWEEP_NAME)


class SweepEntry(NamedTuple):
    """One trained model of a β-sweep (unpacks as ``beta, model, history``)."""

    beta: float
    model: torch.nn.Module
    history: dict


# --------------------------------------------------------------------------- many models, one loop

def train_many(settings, *, data, name: str, progress: bool = True,
               desc: str = N_("models")) -> list[TrainResult]:
    """``train_vae(data=data, name=name, **s)`` for every dict ``s`` in ``settings``, in order (a
    setting with its own ``name`` keeps it).

    One progress bar over the models (the per-model bars are off) and one summary line at the end.
    Each model is loaded from the cache when its checkpoint is there, so the same setting in two
    units trains once. The models to train are trained side by side in worker processes when the
    CPU has cores to spare (``vaeutils.train.workers``, ``vaeutils.cpu.worker_count``;
    ``VAELAB_WORKERS=1`` turns it off): the same weights, sooner.
    """
    settings = list(settings)
    if not settings or not all(isinstance(s, dict) for s in settings):
        raise TypeError("settings must be a non-empty list of dicts of train_vae arguments, e.g. "
                        "[{'loss': ...}]")
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    jobs = [prepare(data=data, **{"name": name, "progress": False, **s}) for s in settings]
    looked = [_cache.lookup(j.name, j.settings) if j.cache else (None, []) for j in jobs]
    todo = [i for i, (found, _) in enumerate(looked) if found is None]
    side_by_side = all(j.device.type == "cpu" and not s.get("callbacks")
                       for j, s in zip(jobs, settings))
    workers = _cpu.worker_count(len(todo)) if side_by_side else 1
    # whole rounds go to the workers (one thread each); the rest trains here with every thread
    side = todo[:len(todo) - len(todo) % workers] if workers > 1 else []
    bar = tqdm(total=len(settings), desc=tr(desc), unit="model", disable=not progress, leave=True)
    trained, results = {}, []
    try:
        bar.update(len(settings) - len(todo))
        if side:
            for i in side:
                for line in looked[i][1]:
                    print(f"{line}; retraining")
            for k, state, history in _workers.run([jobs[i] for i in side], workers):
                job = jobs[side[k]]
                if job.cache:
                    history = _cache.store(job.name, job.settings, state, history)
                trained[side[k]] = state, history
                bar.update(1)
        for i, (job, s) in enumerate(zip(jobs, settings)):
            results.append(_assemble(job, trained.get(i), *looked[i]) or
                           train_vae(data=data, **{"name": name, "progress": False, **s}))
            if i in todo and i not in trained:
                bar.update(1)
    finally:
        bar.close()
    if progress:
        loaded = sum(r.loaded for r in results)
        seconds = time.perf_counter() - t0
        if side:
            print(f"{desc}: {len(results)} models ({loaded} loaded from the cache, "
                  f"{len(results) - loaded} trained, {workers} side by side) in {seconds:.1f} s")
        else:
            print(f"{desc}: {len(results)} models ({loaded} loaded from the cache, "
                  f"{len(results) - loaded} trained) in {seconds:.1f} s")
    return results


def _assemble(job, trained, found, problems) -> TrainResult | None:
    """The model of ``job`` from the weights a worker ``trained`` or the cache ``found``, built
    here as ``train_vae`` builds it (so the global random state afterwards is the same); None when
    there are none (or the stored ones do not fit: ``train_vae`` then says so and retrains)."""
    if trained is None and found is None:
        return None
    model = job.build()
    try:
        model.load_state_dict(trained[0] if trained else found["state_dict"])
    except (RuntimeError, KeyError):
        if trained:
            raise
        return None
    if not trained:
        for line in problems:
            print(f"{line}; loaded the {found['label']} copy in {found['folder']} instead")
    history = trained[1] if trained else found["history"]
    return TrainResult(model.to(job.device).eval(), history, not trained)


# --------------------------------------------------------------------------- the β-sweep

def _check_betas(betas) -> tuple[float, ...]:
    try:
        values = tuple(betas)
    except TypeError:
        raise TypeError(f"betas must be a sequence of numbers such as {BETA_SWEEP}, got "
                        f"{betas!r}") from None
    if len(values) < 2:
        raise ValueError(f"betas needs at least two values to compare, got {values!r}")
    for b in values:
        if isinstance(b, bool) or not isinstance(b, Real) or not math.isfinite(b) or b <= 0:
            raise ValueError(f"every β must be a finite number > 0, got {b!r} in betas={values!r}")
    values = tuple(float(b) for b in values)
    if list(values) != sorted(set(values)):
        raise ValueError(f"betas must be strictly increasing, got {values!r}; "
                         "sort them and drop repeats")
    return values


def train_beta_sweep(data=None, betas=BETA_SWEEP, *, progress: bool = True, cache: bool = True,
                     **recipe) -> list[SweepEntry]:
    """One MLP VAE per β with the :func:`sweep_recipe` settings, trained (or loaded) by
    :func:`train_many`.

    data: an ImageData (default MNIST); its test set is binarized by ``data.binarized``. ``recipe``:
    settings that replace the recipe's (``epochs``, ``hidden``, ``latent_dim``, ``seed``…; a smaller
    sweep for a test). The first call trains, later calls load from the cache. Returns a list of
    :class:`SweepEntry` ``(beta, model, history)`` in the order of ``betas``.
    """
    betas = _check_betas(betas)
    settings = {**sweep_recipe(), **recipe}
    settings["epochs"] = checks.integer("epochs", settings["epochs"], low=1)
    name = settings.pop("name")
    data = _data.binarized(data)
    results = train_many([dict(loss=ELBOLoss(beta=b), cache=cache, **settings) for b in betas],
                         data=data, name=name, progress=progress, desc="β-sweep")
    return [SweepEntry(b, r.model, r.history) for b, r in zip(betas, results)]


def _check_sweep(sweep) -> list[SweepEntry]:
    try:
        entries = [SweepEntry(*e) for e in sweep]
    except TypeError:
        raise TypeError("sweep must be the list returned by train_beta_sweep(): "
                        "(beta, model, history) triples") from None
    _check_betas([e.beta for e in entries])
    return entries


def sweep_points(sweep, x: torch.Tensor, threshold: float = 0.01) -> list[dict]:
    """``metrics.summary`` of every model of ``sweep`` on the images ``x`` (the binarized test set),
    plus its ``beta``: rate, distortion, neg_elbo, active, latent_dim, kl_per_dim (nats per latent
    dimension)."""
    entries = _check_sweep(sweep)
    checks.images("x", x)
    return [{"beta": e.beta, **_metrics.summary(e.model, x, threshold=threshold)} for e in entries]


# --------------------------------------------------------------------- the free-bits grid (unit 07)

def train_free_bits_grid(free_bits, betas, *, data=None, loss_kw=None, epochs: int | None = None,
                         name: str = "free-bits", progress: bool = True, **train_kw) -> dict:
    """One model per (β, λ), trained with :func:`train_many`; ``{(beta, free_bits): model}``.

    loss_kw: extra ``ELBOLoss`` settings shared by the grid (e.g.
    ``likelihood="gaussian", log_scale=0.0``); ``train_kw`` go to ``train_vae`` (``latent_dim``,
    ``hidden``, ``batch_size``, ``seed``…). epochs: default 30 in full mode, 2 in smoke mode. The
    same ``name``, data and settings as a model trained elsewhere share its checkpoint."""
    free_bits = _as_values("free_bits", free_bits)
    betas = _as_values("betas", betas)
    if any(b == 0 for b in betas):
        raise ValueError("betas must be > 0: with β = 0 the KL "
                         "(and so the free-bits floor) plays no part")
    loss_kw = dict(loss_kw or {})
    for k in ("beta", "free_bits", "capacity"):
        if k in loss_kw:
            raise ValueError(f"loss_kw must not set {k!r}: the grid sets β and λ itself")
    if epochs is None:
        epochs = _config.pick(full=30, smoke=2)
    epochs = checks.integer("epochs", epochs, low=1)
    data = data if data is not None else _data.load("mnist")
    cells = [(b, f) for b in betas for f in free_bits]
    settings = [dict(loss=ELBOLoss(beta=b, free_bits=f, **loss_kw), epochs=epochs, **train_kw)
                for b, f in cells]
    results = train_many(settings, data=data, name=name, progress=progress, desc="free-bits grid")
    return {cell: r.model for cell, r in zip(cells, results)}


# ------------------------------------------------------------------------ a learned prior (unit 08)

def train_prior_vae(data=None, kind: str = "vamp", n_components: int = 100, *, beta: float = 1.0,
                    epochs: int | None = None, seed: int = 0, progress: bool = True) -> TrainResult:
    """The β-sweep's VAE (:func:`sweep_recipe`: 784-400-20, dynamically binarized training images,
    the same initial weights, epochs and seed) with a learned prior: ``kind`` ``"vamp"``
    (pseudo-inputs started at ``n_components`` random training images) or ``"mog"``. Trained with
    ``priors.LearnedPriorELBO``; returns ``TrainResult(model, history, loaded)`` with ``model`` a
    ``priors.PriorVAE``."""
    data = _data.binarized(data)
    recipe = sweep_recipe()
    epochs = recipe["epochs"] if epochs is None else checks.integer("epochs", epochs, low=1)
    loss = _priors.LearnedPriorELBO(beta=beta)
    key = {"data": data.key(), "hidden": recipe["hidden"], "latent_dim": recipe["latent_dim"],
           "prior": kind, "n_components": n_components, "loss": loss.describe(), "epochs": epochs,
           "seed": seed, "batch_size": 128, "lr": 1e-3, "binarize": True}

    def build():
        _config.seed_everything(seed)  # as train_vae does: the same initial VAE as the sweep's
        vae = MLPVAE(in_shape=data.image_shape, hidden=recipe["hidden"],
                     latent_dim=recipe["latent_dim"])
        order = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))
        pick = order[:n_components]
        init = data.train_x[pick.to(data.train_x.device)] if kind == "vamp" else None
        return _priors.build_prior_vae(kind, vae, n_components, init=init, seed=seed)

    def run(model):
        return fit(model, data.train_x, loss, epochs=epochs, seed=seed, progress=progress,
                   binarize=True)

    model, history, hit = _cache.load_or_train(f"prior-{kind}", key, build, run)
    return TrainResult(model.to(data.train_x.device).eval(), history, hit)
