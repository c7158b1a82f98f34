"""The terms of the VAE loss, each written once and tested against torch.distributions.

KL (notebook 01): ``kl_per_dim``, ``kl_terms``.
Reconstruction NLLs (notebook 02): ``bernoulli_nll``, ``gaussian_nll``, ``laplace_nll``.
Free bits and schedules (notebook 05): ``free_bits_kl``, ``Constant``, ``LinearWarmup``,
``Cyclical``, ``CapacitySchedule``.
Balancing and other generative losses (notebook 06): ``optimal_log_sigma``, ``GECO``,
``geco_multiplier_update``, ``gan_discriminator_loss``, ``gan_generator_loss``, ``energy_contrastive_loss``.
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

    Written as ½(μ² + expm1(logvar) − logvar): near σ = 1 the naive exp(logvar) − 1 − logvar
    cancels most of its digits; ``expm1`` keeps the error at the rounding of logvar itself.
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
        raise ValueError(
            f"mu must be shaped (batch, latent_dim), got {tuple(mu.shape)}; add a batch dimension with mu[None]"
        )
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
        if isinstance(self.ramp_fraction, bool) or not (
            isinstance(self.ramp_fraction, (int, float)) and 0 < self.ramp_fraction <= 1
        ):
            raise ValueError(f"ramp_fraction must be in (0, 1], got {self.ramp_fraction!r}")
        if self.n_cycles is not None and (
            isinstance(self.n_cycles, bool) or not isinstance(self.n_cycles, int) or self.n_cycles < 1
        ):
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


# ------------------------------------- balancing the terms, other generative losses (notebook 06)

OPTIMAL_SIGMA_PER = ("image", "batch")
_MIN_MSE = 1e-6  # floor on σ*² = MSE: a perfect reconstruction would send log σ* to −∞


def optimal_log_sigma(mean: torch.Tensor, x: torch.Tensor, per: str = "image") -> torch.Tensor:
    """log σ* of the calibrated Gaussian decoder (σ-VAE, Rybkin et al. 2021): σ*² = MSE.

    Setting d/dσ of Σ_i [(x_i − mean_i)²/(2σ²) + log σ] to zero gives σ*² = mean squared error,
    so the σ that minimises :func:`gaussian_nll` needs no training. ``per="image"`` returns one
    value per example, shaped ``(batch, 1, …)``; ``per="batch"`` one value for the whole batch,
    shaped ``(1, 1, …)``. Both broadcast against ``x``. The MSE is floored at 1e-6.
    """
    _check_tensor("mean", mean)
    _check_tensor("x", x)
    _check_same_shape("mean", mean, "x", x)
    if per not in OPTIMAL_SIGMA_PER:
        raise ValueError(f"per must be one of {OPTIMAL_SIGMA_PER}, got {per!r}")
    if x.dim() < 2:
        raise ValueError(f"x must have a batch dimension, got shape {tuple(x.shape)}; add one with x[None]")
    sq = (x - mean).square()
    if per == "image":
        mse = sq.mean(tuple(range(1, x.dim())), keepdim=True)
    else:
        mse = sq.mean().reshape((1,) * x.dim())
    return 0.5 * torch.log(mse.clamp_min(_MIN_MSE))


GECO_MODES = ("multiplicative", "additive")


def geco_multiplier_update(lam: float, constraint: float, lr: float, mode: str = "multiplicative",
                           lambda_min: float = 1e-3, lambda_max: float = 1e3) -> float:
    """One update of GECO's Lagrange multiplier λ for the constraint C ≤ 0 (Rezende & Viola 2018).

    ``multiplicative``: λ ← λ·exp(lr·C) (the paper's rule, keeps λ > 0);
    ``additive``: λ ← λ + lr·C (plain dual ascent). The result is clamped to [lambda_min, lambda_max].
    C > 0 (constraint violated) makes λ grow, C < 0 makes it shrink.
    """
    if mode not in GECO_MODES:
        raise ValueError(f"mode must be one of {GECO_MODES}, got {mode!r}")
    _check_positive("lam", lam)
    _check_positive("lr", lr)
    _check_positive("lambda_min", lambda_min)
    _check_positive("lambda_max", lambda_max)
    if lambda_min > lambda_max:
        raise ValueError(f"lambda_min ({lambda_min}) must not exceed lambda_max ({lambda_max})")
    if isinstance(constraint, bool) or not isinstance(constraint, (int, float)) or not math.isfinite(constraint):
        raise ValueError(f"constraint must be a finite number (nats), got {constraint!r}")
    if mode == "multiplicative":
        new = lam * math.exp(min(lr * constraint, 50.0))  # cap the exponent; the clamp below decides anyway
    else:
        new = lam + lr * constraint
    return float(min(max(new, lambda_min), lambda_max))


class GECO:
    """GECO (Rezende & Viola 2018): keep the reconstruction NLL near a target κ and let the
    Lagrange multiplier λ of the constraint C = rec − κ ≤ 0 set the balance.

    The paper minimises KL + λ·C. Dividing by λ gives rec + KL/λ − κ: the same parameters move
    the same way, and β(t) = 1/λ(t) reads as the β of a β-VAE that changes during training.
    Each :meth:`step` uses the current λ in the loss, then updates λ from the moving average of C
    (momentum ``alpha``) with :func:`geco_multiplier_update`. ``history`` keeps λ, β and C per step.

    ``kappa``: target reconstruction NLL (nats per example, the same units as ``rec``).
    """

    def __init__(self, kappa: float, lr: float = 1e-3, alpha: float = 0.99, lambda_init: float = 1.0,
                 mode: str = "multiplicative", lambda_min: float = 1e-3, lambda_max: float = 1e3):
        if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not math.isfinite(kappa):
            raise ValueError(f"kappa must be a finite number (target reconstruction NLL in nats), got {kappa!r}")
        if not (isinstance(alpha, (int, float)) and 0 <= alpha < 1):
            raise ValueError(f"alpha must be in [0, 1) (moving-average momentum), got {alpha!r}")
        geco_multiplier_update(lambda_init, 0.0, lr, mode, lambda_min, lambda_max)  # validates the rest
        self.kappa, self.lr, self.alpha, self.mode = float(kappa), float(lr), float(alpha), mode
        self.lambda_min, self.lambda_max = float(lambda_min), float(lambda_max)
        self.lam = float(min(max(lambda_init, lambda_min), lambda_max))
        self.constraint_ma: float | None = None
        self.history: dict[str, list[float]] = {"lambda": [], "beta": [], "constraint": [], "constraint_ma": []}

    @property
    def beta(self) -> float:
        """β = 1/λ: the weight on KL when the loss is written as rec + β·KL."""
        return 1.0 / self.lam

    def step(self, rec: torch.Tensor, kl: torch.Tensor, update: bool = True) -> dict:
        """Loss rec + β·KL with the current β, then (if ``update``) one multiplier update.

        ``rec`` and ``kl``: batch means per example (scalars). Returns a dict for ``train.fit``:
        loss, rec, kl, beta, lambda, constraint."""
        _check_tensor("rec", rec)
        _check_tensor("kl", kl)
        beta = self.beta
        loss = rec + beta * kl
        c = float(rec.detach()) - self.kappa
        if update:
            previous = c if self.constraint_ma is None else self.constraint_ma  # the average starts at C
            self.constraint_ma = self.alpha * previous + (1 - self.alpha) * c
            self.history["lambda"].append(self.lam)
            self.history["beta"].append(beta)
            self.history["constraint"].append(c)
            self.history["constraint_ma"].append(self.constraint_ma)
            self.lam = geco_multiplier_update(self.lam, self.constraint_ma, self.lr, self.mode,
                                              self.lambda_min, self.lambda_max)
        return {"loss": loss, "rec": rec, "kl": kl, "beta": beta, "lambda": 1.0 / beta, "constraint": c}


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−E log D(x) − E log(1 − D(G(z))) from discriminator logits (D = sigmoid(logit)), batch means.

    Written with softplus: −log sigmoid(l) = softplus(−l), −log(1 − sigmoid(l)) = softplus(l),
    finite for any logit (the seed's ``torch.log(D(x))`` after a Sigmoid gives −inf once D rounds to 0)."""
    _check_tensor("real_logits", real_logits)
    _check_tensor("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


GAN_GENERATOR_LOSSES = ("non_saturating", "minimax")


def gan_generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """Generator loss from the discriminator's logits on generated samples (Goodfellow et al. 2014).

    ``"minimax"``: E log(1 − D(G(z))), the game's own term; its gradient per logit is −D, which
    vanishes when D rejects the samples. ``"non_saturating"``: −E log D(G(z)); gradient −(1 − D),
    strong exactly then."""
    _check_tensor("fake_logits", fake_logits)
    if kind not in GAN_GENERATOR_LOSSES:
        raise ValueError(f"kind must be one of {GAN_GENERATOR_LOSSES}, got {kind!r}")
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()
    return -F.softplus(fake_logits).mean()


def energy_contrastive_loss(energy_data: torch.Tensor, energy_model: torch.Tensor) -> torch.Tensor:
    """E_data[E(x)] − E_model[E(x)]: lower the energy of data, raise it on the model's own samples.

    With p(x) ∝ exp(−E(x)), its gradient equals that of the NLL E_data[E] + log Z when
    ``energy_model`` is evaluated on exact model samples (LeCun et al. 2006). Note the minus sign."""
    _check_tensor("energy_data", energy_data)
    _check_tensor("energy_model", energy_model)
    return energy_data.mean() - energy_model.mean()
