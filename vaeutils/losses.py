"""The VAE loss's terms, each written once and tested against torch.distributions, and ``ELBOLoss``.

KL (unit 01): ``kl_per_dim``, ``kl_terms``. Reconstruction NLLs (unit 02): ``bernoulli_nll``,
``gaussian_nll``, ``laplace_nll``. Free bits (unit 07): ``free_bits_kl``. The calibrated decoder
(unit 08): ``optimal_log_sigma``, ``optimal_log_laplace_scale``. ``ELBOLoss`` puts them together
(unit 03), with β, free bits, a schedule or a capacity. The schedules are in ``vaeutils.schedules``;
the other objectives (GECO, GAN, energy) in ``vaeutils.objectives``. Every value is in nats. Bad
input raises ``ValueError``/``TypeError`` naming the argument. float16 and bfloat16 inputs are
computed in float32 and give float32 results: their range ends inside the promised inputs (exp(12),
a sum over 784 pixels at logit −100). ``reduction="mean"`` of an empty batch is refused, not NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .schedules import CapacitySchedule, capacity_penalty

REDUCTIONS = ("none", "sum", "mean")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


_HALF = (torch.float16, torch.bfloat16)


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 as float32 (autograd passes through); other tensors unchanged."""
    return t.float() if t.dtype in _HALF else t


def _reduce(per_element: torch.Tensor, reduction: str) -> torch.Tensor:
    """Sum over all non-batch dimensions, then reduce over the batch."""
    per_example = per_element.flatten(1).sum(1) if per_element.dim() > 1 else per_element
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    if len(per_example) == 0:
        raise ValueError(f"reduction='mean' of an empty batch (shape {tuple(per_element.shape)}) "
                         "has no value; pass at least one example, or use reduction='sum'")
    return per_example.mean()


def _check_reduction(reduction) -> None:
    checks.choice("reduction", reduction, REDUCTIONS)


# --------------------------------------------------------------------------- KL (unit 01)

def _check_mu_logvar(mu, logvar) -> None:
    checks.tensor("mu", mu)
    checks.tensor("logvar", logvar)
    checks.same_shape("mu", mu, "logvar", logvar)
    for name, value in (("mu", mu), ("logvar", logvar)):
        if not value.requires_grad:  # an encoder in training: train.fit names a non-finite term
            checks.finite(name, value)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise KL( N(mu, exp(logvar)) || N(0, 1) ) in nats, shaped like ``mu``.

    Written as ½(μ² + expm1(logvar) − logvar). Near σ = 1 (logvar = ℓ → 0) the KL is about ℓ²/4
    while its terms are of size |ℓ|, so digits cancel. ``expm1`` removes the worse cancellation,
    that of exp(ℓ) − 1, but subtracting ℓ still cancels the leading term: for μ = 0 the relative
    error is about 2u/|ℓ|, u the unit roundoff (float32: u = 6e-8; measured 3e-4 at ℓ = 1e-4),
    against about 2u/ℓ² for exp(ℓ) − 1 − ℓ (over 100 % at ℓ = 1e-4). The absolute error stays near
    u·|ℓ|, far below any KL that matters in training; compute in float64 when a near-zero KL's
    relative digits matter. Unit 01 measures both forms.
    """
    _check_mu_logvar(mu, logvar)
    mu, logvar = _wide(mu), _wide(logvar)
    return 0.5 * (mu.square() + torch.expm1(logvar) - logvar)


def kl_terms(mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """The four terms inside ``-0.5 * sum(1 + logvar - exp(logvar) - mu^2)``.

    Returns a dict with keys ``one``, ``logvar``, ``neg_var``, ``neg_mu_sq`` (shaped like ``mu``)
    such that ``-0.5 * (one + logvar + neg_var + neg_mu_sq) == kl_per_dim(mu, logvar)``.
    """
    _check_mu_logvar(mu, logvar)
    mu, logvar = _wide(mu), _wide(logvar)
    return {
        "one": torch.ones_like(mu),
        "logvar": logvar,
        "neg_var": -torch.exp(logvar),
        "neg_mu_sq": -mu.square(),
    }


# --------------------------------------------------------------- reconstruction (unit 02)

def pixel_range_error(x: torch.Tensor) -> ValueError:
    """The error for Bernoulli targets outside [0, 1] (:func:`bernoulli_nll` and `train.fit`)."""
    return ValueError("x must lie in [0, 1] for a Bernoulli likelihood, got values in "
                      f"[{x.min().item():.3g}, {x.max().item():.3g}]; rescale the images (x / 255) "
                      "or use gaussian_nll")


def _finite_inputs(pred_name: str, pred: torch.Tensor, x: torch.Tensor) -> None:
    """Targets holding NaN or ±inf are refused: the NLL of a NaN pixel is NaN, not an error. So is
    a non-finite prediction that carries no gradient; one that does comes from a model in training,
    where ``train.fit`` names a non-finite loss term with its step."""
    checks.finite("x", x, "; the targets must be finite pixel values (find them with "
                          "x.isnan().nonzero())")
    if not pred.requires_grad:
        checks.finite(pred_name, pred, f" (find them with {pred_name}.isnan().nonzero())")


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """−log Bernoulli(x | sigmoid(logits)), summed over every non-batch dimension.

    ``reduction``: ``"none"`` one value per example, ``"sum"`` the batch total, ``"mean"`` the
    batch mean of per-example sums. Works from logits, so it stays finite for |logits| ≫ 100.
    """
    checks.tensor("logits", logits)
    checks.tensor("x", x)
    checks.same_shape("logits", logits, "x", x)
    _check_reduction(reduction)
    # one pass for both ends (15× cheaper than two comparisons and an all() on a batch); a NaN
    # makes both NaN, and NaN fails both comparisons
    lo_hi = torch.aminmax(x) if x.numel() and x.dtype != torch.bool else None
    if lo_hi is not None and not bool((lo_hi.min >= 0) & (lo_hi.max <= 1)):
        _finite_inputs("logits", logits, x)
        raise pixel_range_error(x)
    if not logits.requires_grad:
        checks.finite("logits", logits, " (find them with logits.isnan().nonzero())")
    per_element = F.binary_cross_entropy_with_logits(_wide(logits), _wide(x), reduction="none")
    return _reduce(per_element, reduction)


def _check_scale(name: str, value, like: torch.Tensor) -> torch.Tensor:
    """A log-scale as a tensor that broadcasts to ``like``; numbers (NumPy ones too) must be finite.
    A tensor that carries no gradient is checked for NaN/inf too; a learned one is not (``fit``
    names a non-finite loss term)."""
    if isinstance(value, Real) and not isinstance(value, (bool, np.bool_)):
        value = checks.number(name, value, hint="a log-scale: log σ or log b")
        return torch.tensor(value, dtype=like.dtype, device=like.device)
    checks.tensor(name, value)
    if value.dim() == 1 and like.dim() > 1 and len(value) == len(like) > 1:
        # (B,) broadcasts against the last dimension (the image width), not the batch
        raise ValueError(
            f"{name} of shape {tuple(value.shape)} has one value per example but would spread "
            f"across the last dimension of x {tuple(like.shape)}; pass it shaped (batch, 1, ...): "
            f"{name}.view(-1, {', '.join(['1'] * (like.dim() - 1))})"
        )
    if not value.requires_grad:
        checks.finite(name, value, " (a log-scale must be finite: σ = exp(log σ) > 0)")
    try:
        fits = torch.broadcast_shapes(value.shape, like.shape) == like.shape
    except RuntimeError:
        fits = False
    if not fits:  # a scale that enlarges x would silently change what counts as one example
        raise ValueError(
            f"{name} of shape {tuple(value.shape)} does not broadcast to x of shape "
            f"{tuple(like.shape)}; pass a scalar, one value per pixel, or one per example shaped "
            "(batch, 1, ...)"
        )
    return value


def _location_scale(loc_name: str, loc, x, scale_name: str, scale, reduction: str):
    """The checked inputs of a location–scale NLL, in float32 or wider: (loc, x, log-scale)."""
    checks.tensor(loc_name, loc)
    checks.tensor("x", x)
    checks.same_shape(loc_name, loc, "x", x)
    _check_reduction(reduction)
    _finite_inputs(loc_name, loc, x)
    loc, x = _wide(loc), _wide(x)
    return loc, x, _wide(_check_scale(scale_name, scale, x))


# exp(80) is finite in float32 (its limit is exp(88.7)); below −80 |x − loc|·exp(−log-scale) is
# computed in log space instead, where 0·exp(100) = 0·inf would give NaN
_SAFE_LOG_SCALE = 80.0


def _error_over_scale(diff: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """|diff| / exp(log_scale) for any finite log-scale. Everyday scales (log-scale ≥ −80) take the
    plain product, bit for bit the textbook formula; smaller ones exp(log|diff| − log_scale), so a
    zero error stays 0 and a tiny one is not lost to an overflowing exp(−log_scale)."""
    err = diff.abs()
    plain = err * torch.exp(-log_scale.clamp_min(-_SAFE_LOG_SCALE))
    tiny = log_scale < -_SAFE_LOG_SCALE
    if not bool(tiny.any()):
        return plain
    # log space only where needed: elsewhere exp(−inf) = 0, so no branch left out of the
    # result can put inf·0 = NaN into a gradient
    keep = (err > 0) & tiny
    safe_err = torch.where(keep, err, torch.ones_like(err))  # no log(0)
    exponent = torch.where(keep, torch.log(safe_err) - log_scale, -math.inf)
    return torch.where(tiny, torch.exp(exponent), plain)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, log_sigma=0.0,
                 reduction: str = "none") -> torch.Tensor:
    """−log N(x | mean, σ²) with σ = exp(log_sigma), constant ½log 2π included.

    ``log_sigma``: a number or a tensor broadcastable to ``x`` (per pixel, per image, learned).
    Equals ``-Normal(mean, exp(log_sigma)).log_prob(x)`` summed per example.
    """
    mean, x, log_sigma = _location_scale("mean", mean, x, "log_sigma", log_sigma, reduction)
    per_element = 0.5 * _error_over_scale(x - mean, log_sigma).square() + log_sigma + _HALF_LOG_2PI
    return _reduce(per_element, reduction)


def laplace_nll(loc: torch.Tensor, x: torch.Tensor, log_scale=0.0,
                reduction: str = "none") -> torch.Tensor:
    """−log Laplace(x | loc, b) with b = exp(log_scale): |x − loc|/b + log b + log 2.

    Same conventions as :func:`gaussian_nll`; with a fixed scale it is L1 loss plus a constant.
    """
    loc, x, log_scale = _location_scale("loc", loc, x, "log_scale", log_scale, reduction)
    per_element = _error_over_scale(x - loc, log_scale) + log_scale + _LOG_2
    return _reduce(per_element, reduction)


# ------------------------------------------------------------------- free bits (unit 07)

def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Free bits (Kingma et al. 2016): Σ_j max(λ, mean over the batch of KL_j).

    The batch mean comes before the max, per latent dimension. Below λ a dimension's gradient
    is exactly zero; above it, the gradient is that of the plain batch-mean KL. ``free_bits=0``
    gives the plain batch-mean KL summed over dimensions. Returns a scalar (nats per example).
    """
    free_bits = checks.positive("free_bits", free_bits, allow_zero=True,
                                hint="nats per latent dimension")
    kl = kl_per_dim(mu, logvar)
    if kl.dim() < 2:
        raise ValueError(
            f"mu must be shaped (batch, latent_dim), got {tuple(mu.shape)}; add a batch dimension "
            "with mu[None]"
        )
    if len(kl) == 0:
        raise ValueError(f"free_bits_kl of an empty batch (mu of shape {tuple(mu.shape)}) has no "
                         "value: the floor compares batch means; pass at least one example")
    per_dim = kl.flatten(1).mean(0)
    return torch.clamp(per_dim, min=float(free_bits)).sum()



# ------------------------------------------- the calibrated decoder's scale (unit 08)

_MIN_MSE = 1e-6  # floor on σ*² = MSE: a perfect reconstruction would send log σ* to −∞


def _per_image_error(name: str, mean, x, power: int) -> torch.Tensor:
    """Mean |x − mean|^power of each image, shaped (batch, 1, …), after checking the two tensors."""
    checks.tensor(name, mean)
    checks.tensor("x", x)
    checks.same_shape(name, mean, "x", x)
    if x.dim() < 2:
        raise ValueError(f"x must have a batch dimension, got shape {tuple(x.shape)}; "
                         "add one with x[None]")
    err = (_wide(x) - _wide(mean)).abs()
    return (err.square() if power == 2 else err).mean(tuple(range(1, x.dim())), keepdim=True)


def optimal_log_sigma(mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log σ* of the calibrated Gaussian decoder (σ-VAE, Rybkin et al. 2021): σ*² = MSE per image.

    Setting d/dσ of Σ_i [(x_i − mean_i)²/(2σ²) + log σ] to zero gives σ*² = mean squared error,
    so the σ that minimises :func:`gaussian_nll` needs no training. Returns one value per example,
    shaped ``(batch, 1, …)`` so it broadcasts against ``x``. The MSE is floored at 1e-6.
    """
    return 0.5 * torch.log(_per_image_error("mean", mean, x, 2).clamp_min(_MIN_MSE))


def optimal_log_laplace_scale(loc: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log b* of a Laplace decoder: b* = mean |x − loc| of each image (the same calculus as σ*, for
    the L1 term), floored at 1e-3 (the Gaussian's σ floor). Shaped ``(batch, 1, …)``."""
    return torch.log(_per_image_error("loc", loc, x, 1).clamp_min(math.sqrt(_MIN_MSE)))


# ------------------------------------------------------------------- the loss of a VAE (unit 03)

LIKELIHOODS = ("bernoulli", "gaussian", "laplace")


@dataclass(frozen=True)
class ELBOLoss:
    """Negative (β-weighted) ELBO per example: rec + β·KL, averaged over the batch.

    likelihood: ``"bernoulli"`` (decoder logits), ``"gaussian"`` or ``"laplace"``
    (mean = sigmoid(out)).
    beta: a number or a schedule ``step -> β`` (``LinearWarmup``, ``Cyclical``…).
    free_bits: λ in nats per latent dimension (:func:`free_bits_kl`); 0 turns it off.
    log_scale: Gaussian/Laplace only: a number (fixed log σ or log b), ``"learned"`` (the model's
        ``log_scale`` parameter) or ``"optimal"`` (closed-form per-image σ*, as in σ-VAE).
    capacity: a ``CapacitySchedule``; replaces β·KL by γ·|KL − C(t)| (Burgess et al. 2018).
    """

    likelihood: str = "bernoulli"
    beta: object = 1.0
    free_bits: float = 0.0
    log_scale: object = 0.0
    capacity: object = None

    def __post_init__(self):
        checks.choice("likelihood", self.likelihood, LIKELIHOODS)
        if not callable(self.beta):
            checks.positive("beta", self.beta, allow_zero=True)
        checks.positive("free_bits", self.free_bits, allow_zero=True)
        if isinstance(self.log_scale, str):
            checks.choice("log_scale", self.log_scale, ("learned", "optimal"))
        else:
            # |log σ| ≤ 20: σ from 2e-9 to 5e8 covers every image scale; beyond it the NLL
            # overflows float32
            checks.number("log_scale", self.log_scale, -20.0, 20.0,
                          hint="a number, 'learned' or 'optimal'")
        # np.float32(0.5) is stored, compared and keyed as 0.5
        for f in ("beta", "free_bits", "log_scale"):
            object.__setattr__(self, f, checks.plain(getattr(self, f)))
        if self.capacity is not None and not isinstance(self.capacity, CapacitySchedule):
            raise TypeError("capacity must be None or "
                            "a losses.CapacitySchedule(c_max, steps, gamma)")
        if self.capacity is not None and self.free_bits > 0:
            raise ValueError("capacity replaces β·KL, so free_bits would be ignored; set "
                             "free_bits=0 or capacity=None")

    def describe(self) -> dict:
        """The settings as plain data, for the cache key (``checks.plain_data``)."""
        return checks.plain_data(self, "the loss")

    def beta_at(self, step: int) -> float:
        """β at optimiser step ``step``; a schedule's value is checked (a finite number >= 0)."""
        if not callable(self.beta):
            return float(self.beta)
        value = self.beta(step)
        try:
            return checks.positive("beta", value, allow_zero=True)
        except (TypeError, ValueError):
            raise ValueError(f"beta(step) must return a finite number >= 0, got {value!r} at step "
                             f"{step}") from None

    def nll(self, model: nn.Module, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction NLL per example, in nats."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(out, x)
        mean = torch.sigmoid(out)
        if self.log_scale == "learned":
            if getattr(model, "log_scale", None) is None:
                raise ValueError("log_scale='learned' needs a model built with "
                                 "learned_scale='shared' or 'pixel'")
            log_scale = model.log_scale
        elif self.log_scale == "optimal":
            if self.likelihood == "gaussian":
                log_scale = optimal_log_sigma(mean, x)
            else:
                log_scale = optimal_log_laplace_scale(mean, x)
        else:
            log_scale = float(self.log_scale)
        if self.likelihood == "gaussian":
            return gaussian_nll(mean, x, log_scale)
        return laplace_nll(mean, x, log_scale)

    def terms(self, model: nn.Module, x: torch.Tensor, step: int = 0, generator=None) -> dict:
        """One forward pass: ``loss`` (minimised), ``rec``, ``kl`` (batch means, nats), ``beta``."""
        checks.tensor("x", x, nonempty=True)
        mu, logvar, _, out = model(x, generator)
        # the terms in float32 under bf16 autocast too
        mu, logvar, out = mu.float(), logvar.float(), out.float()
        rec = self.nll(model, out, x).mean()
        kl = kl_per_dim(mu, logvar).sum(1).mean()
        beta = self.beta_at(step)
        if self.capacity is not None:
            reg = capacity_penalty(kl, self.capacity(step), self.capacity.gamma)
        elif self.free_bits > 0:
            reg = beta * free_bits_kl(mu, logvar, float(self.free_bits))
        else:
            reg = beta * kl
        return {"loss": rec + reg, "rec": rec, "kl": kl, "beta": beta}

    __call__ = terms
