"""The terms of the VAE loss, each written once and tested against torch.distributions.

KL (notebook 01): ``kl_per_dim``, ``kl_terms``.
Reconstruction NLLs (notebook 02): ``bernoulli_nll``, ``gaussian_nll``, ``laplace_nll``.
Free bits and schedules (notebook 05): ``free_bits_kl``, ``Constant``, ``LinearWarmup``,
``Cyclical``, ``CapacitySchedule``.
Every value is in nats. Bad input raises ``ValueError``/``TypeError`` naming the argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "sum", "mean")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


def _check_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}; wrap it with torch.as_tensor(...)")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}; call .float() on it")
    return value


def _check_same_shape(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}; "
            f"reshape one of them (e.g. {b_name}.view_as({a_name}))"
        )


def _reduce(per_element: torch.Tensor, reduction: str) -> torch.Tensor:
    """Sum over all non-batch dimensions, then reduce over the batch."""
    per_example = per_element.flatten(1).sum(1) if per_element.dim() > 1 else per_element
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    return per_example.mean()


def _check_reduction(reduction) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


# --------------------------------------------------------------------------- KL (notebook 01)

def _check_mu_logvar(mu, logvar) -> None:
    _check_tensor("mu", mu)
    _check_tensor("logvar", logvar)
    _check_same_shape("mu", mu, "logvar", logvar)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise KL( N(mu, exp(logvar)) || N(0, 1) ) in nats, shaped like ``mu``.

    Written as ½(μ² + expm1(logvar) − logvar): ``expm1`` keeps full precision near
    σ = 1, where exp(logvar) − 1 − logvar would cancel to noise.
    """
    _check_mu_logvar(mu, logvar)
    return 0.5 * (mu.square() + torch.expm1(logvar) - logvar)


def kl_terms(mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """The four terms inside ``-0.5 * sum(1 + logvar - exp(logvar) - mu^2)``.

    Returns a dict with keys ``one``, ``logvar``, ``neg_var``, ``neg_mu_sq`` (shaped like ``mu``)
    such that ``-0.5 * (one + logvar + neg_var + neg_mu_sq) == kl_per_dim(mu, logvar)``.
    """
    _check_mu_logvar(mu, logvar)
    return {
        "one": torch.ones_like(mu),
        "logvar": logvar,
        "neg_var": -torch.exp(logvar),
        "neg_mu_sq": -mu.square(),
    }


# --------------------------------------------------------------- reconstruction (notebook 02)

def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """−log Bernoulli(x | sigmoid(logits)), summed over every non-batch dimension.

    ``reduction``: ``"none"`` one value per example, ``"sum"`` the batch total, ``"mean"`` the
    batch mean of per-example sums. Works from logits, so it stays finite for |logits| ≫ 100.
    """
    _check_tensor("logits", logits)
    _check_tensor("x", x)
    _check_same_shape("logits", logits, "x", x)
    _check_reduction(reduction)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"x must lie in [0, 1] for a Bernoulli likelihood, got values in [{x.min().item():.3g}, "
            f"{x.max().item():.3g}]; rescale the images (x / 255) or use gaussian_nll"
        )
    per_element = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return _reduce(per_element, reduction)


def _check_scale(name: str, value, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=like.dtype, device=like.device)
    _check_tensor(name, value)
    try:
        fits = torch.broadcast_shapes(value.shape, like.shape) == like.shape
    except RuntimeError:
        fits = False
    if not fits:  # a scale that enlarges x would silently change what counts as one example
        raise ValueError(
            f"{name} of shape {tuple(value.shape)} does not broadcast to x of shape {tuple(like.shape)}; "
            "pass a scalar, one value per pixel, or one per example shaped (batch, 1, ...)"
        )
    return value


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, log_sigma=0.0, reduction: str = "none") -> torch.Tensor:
    """−log N(x | mean, σ²) with σ = exp(log_sigma), constant ½log 2π included.

    ``log_sigma``: a number or a tensor broadcastable to ``x`` (per pixel, per image, learned).
    Equals ``-Normal(mean, exp(log_sigma)).log_prob(x)`` summed per example.
    """
    _check_tensor("mean", mean)
    _check_tensor("x", x)
    _check_same_shape("mean", mean, "x", x)
    _check_reduction(reduction)
    log_sigma = _check_scale("log_sigma", log_sigma, x)
    per_element = 0.5 * ((x - mean) * torch.exp(-log_sigma)).square() + log_sigma + _HALF_LOG_2PI
    return _reduce(per_element, reduction)


def laplace_nll(loc: torch.Tensor, x: torch.Tensor, log_scale=0.0, reduction: str = "none") -> torch.Tensor:
    """−log Laplace(x | loc, b) with b = exp(log_scale): |x − loc|/b + log b + log 2.

    Same conventions as :func:`gaussian_nll`; with a fixed scale it is L1 loss plus a constant.
    """
    _check_tensor("loc", loc)
    _check_tensor("x", x)
    _check_same_shape("loc", loc, "x", x)
    _check_reduction(reduction)
    log_scale = _check_scale("log_scale", log_scale, x)
    per_element = (x - loc).abs() * torch.exp(-log_scale) + log_scale + _LOG_2
    return _reduce(per_element, reduction)


# ---------------------------------------------------------- free bits, schedules (notebook 05)

def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Free bits (Kingma et al. 2016): Σ_j max(λ, mean over the batch of KL_j).

    The batch mean comes before the max, per latent dimension. Below λ a dimension's gradient
    is exactly zero; above it, the gradient is that of the plain batch-mean KL. ``free_bits=0``
    gives the plain batch-mean KL summed over dimensions. Returns a scalar (nats per example).
    """
    if isinstance(free_bits, bool) or not isinstance(free_bits, (int, float)):
        raise TypeError(f"free_bits must be a number (nats per latent dimension), got {type(free_bits).__name__}")
    if not math.isfinite(free_bits) or free_bits < 0:
        raise ValueError(f"free_bits must be a finite number >= 0 (nats per latent dimension), got {free_bits!r}")
    kl = kl_per_dim(mu, logvar)
    if kl.dim() < 2:
        raise ValueError(f"mu must be shaped (batch, latent_dim), got {tuple(mu.shape)}; add a batch dimension with mu[None]")
    per_dim = kl.flatten(1).mean(0)
    return torch.clamp(per_dim, min=float(free_bits)).sum()


def _check_positive(name: str, value, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def _check_step(step) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int (the optimiser step), got {step!r}")


@dataclass(frozen=True)
class Constant:
    """β(t) = beta for every step."""

    beta: float = 1.0

    def __post_init__(self):
        _check_positive("beta", self.beta, allow_zero=True)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.beta)


@dataclass(frozen=True)
class LinearWarmup:
    """KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): β rises linearly from
    ``beta_start`` to ``beta_max`` over ``warmup_steps`` steps, then stays there."""

    warmup_steps: int
    beta_max: float = 1.0
    beta_start: float = 0.0

    def __post_init__(self):
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 1:
            raise ValueError(f"warmup_steps must be an int >= 1, got {self.warmup_steps!r}")
        _check_positive("beta_max", self.beta_max, allow_zero=True)
        _check_positive("beta_start", self.beta_start, allow_zero=True)

    def __call__(self, step: int) -> float:
        _check_step(step)
        frac = min(step / self.warmup_steps, 1.0)
        return float(self.beta_start + frac * (self.beta_max - self.beta_start))


@dataclass(frozen=True)
class Cyclical:
    """Cyclical annealing (Fu et al. 2019): each of the cycles of ``period`` steps spends its
    first ``ramp_fraction`` rising linearly from 0 to ``beta_max``, the rest at ``beta_max``.
    After ``n_cycles`` cycles (if given) β stays at ``beta_max``."""

    period: int
    beta_max: float = 1.0
    ramp_fraction: float = 0.5
    n_cycles: int | None = None

    def __post_init__(self):
        if isinstance(self.period, bool) or not isinstance(self.period, int) or self.period < 1:
            raise ValueError(f"period must be an int >= 1 (steps per cycle), got {self.period!r}")
        _check_positive("beta_max", self.beta_max, allow_zero=True)
        if not (isinstance(self.ramp_fraction, (int, float)) and 0 < self.ramp_fraction <= 1):
            raise ValueError(f"ramp_fraction must be in (0, 1], got {self.ramp_fraction!r}")
        if self.n_cycles is not None and (not isinstance(self.n_cycles, int) or self.n_cycles < 1):
            raise ValueError(f"n_cycles must be None or an int >= 1, got {self.n_cycles!r}")

    def __call__(self, step: int) -> float:
        _check_step(step)
        if self.n_cycles is not None and step >= self.n_cycles * self.period:
            return float(self.beta_max)
        pos = (step % self.period) / self.period
        return float(self.beta_max * min(pos / self.ramp_fraction, 1.0))


@dataclass(frozen=True)
class CapacitySchedule:
    """Burgess et al. 2018: the target capacity C(t) rises linearly from 0 to ``c_max`` nats
    over ``steps`` steps; the loss uses γ·|KL − C(t)| (see :func:`capacity_penalty`)."""

    c_max: float
    steps: int
    gamma: float = 100.0

    def __post_init__(self):
        _check_positive("c_max", self.c_max, allow_zero=True)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {self.steps!r}")
        _check_positive("gamma", self.gamma)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.c_max * min(step / self.steps, 1.0))


def capacity_penalty(kl: torch.Tensor, capacity: float, gamma: float) -> torch.Tensor:
    """γ·|KL − C|: the capacity objective's replacement for β·KL (``kl`` in nats per example)."""
    _check_tensor("kl", kl)
    _check_positive("capacity", capacity, allow_zero=True)
    _check_positive("gamma", gamma)
    return gamma * (kl - capacity).abs()
