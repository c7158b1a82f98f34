"""Objectives beside the β-weighted ELBO: GECO's automatic balance, the GAN losses, the energy view.

GECO (unit 08): ``geco_multiplier_update``, ``GECO`` and ``GECOELBO`` (the ELBO balanced by GECO, as
a loss ``train_vae`` trains and caches). The GAN losses (unit 09): ``gan_discriminator_loss``,
``gan_generator_loss``; the energy-based contrastive loss: ``energy_contrastive_loss``. All in nats,
batch means (an empty batch is refused; float16/bfloat16 are computed in float32).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import checks
from .losses import bernoulli_nll, kl_per_dim

GECO_MODES = ("multiplicative", "additive")


def geco_multiplier_update(lam: float, constraint: float, lr: float, mode: str = "multiplicative",
                           lambda_min: float = 1e-3, lambda_max: float = 1e3) -> float:
    """One update of GECO's Lagrange multiplier λ for the constraint C ≤ 0 (Rezende & Viola 2018).

    ``multiplicative``: λ ← λ·exp(lr·C) (the paper's rule, keeps λ > 0);
    ``additive``: λ ← λ + lr·C (plain dual ascent). The result is clamped to
    [lambda_min, lambda_max]. C > 0 (constraint violated) makes λ grow, C < 0 makes it shrink.
    """
    checks.choice("mode", mode, GECO_MODES)
    lam = checks.positive("lam", lam)
    lr = checks.positive("lr", lr)
    lambda_min = checks.positive("lambda_min", lambda_min)
    lambda_max = checks.positive("lambda_max", lambda_max)
    if lambda_min > lambda_max:
        raise ValueError(f"lambda_min ({lambda_min}) must not exceed lambda_max ({lambda_max})")
    constraint = checks.number("constraint", constraint, hint="nats")
    if mode == "multiplicative":
        # cap the exponent; the clamp below decides anyway
        new = lam * math.exp(min(lr * constraint, 50.0))
    else:
        new = lam + lr * constraint
    return float(min(max(new, lambda_min), lambda_max))


class GECO:
    """GECO (Rezende & Viola 2018): keep the reconstruction NLL near a target κ and let the
    Lagrange multiplier λ of the constraint C = rec − κ ≤ 0 set the balance.

    The paper minimises KL + λ·C. Dividing by λ gives rec + KL/λ − κ: the same parameters move the
    same way, and β(t) = 1/λ(t) reads as the β of a β-VAE that changes during training. Each
    :meth:`step` uses the current λ in the loss, then updates λ from the moving average of C
    (momentum ``alpha``) with :func:`geco_multiplier_update`. ``history`` keeps λ, β and C per step.
    A step whose ``rec`` is NaN or infinite updates nothing (λ, the average and ``history`` stay as
    they were): it warns, counts itself in ``skipped``, and returns the non-finite loss, so
    ``train.fit`` stops with the step and the term named, and one bad batch cannot spoil the average
    for good.

    ``kappa``: target reconstruction NLL (nats per example, the same units as ``rec``).
    """

    def __init__(self, kappa: float, lr: float = 1e-3, alpha: float = 0.99,
                 lambda_init: float = 1.0, mode: str = "multiplicative", lambda_min: float = 1e-3,
                 lambda_max: float = 1e3):
        checks.number("kappa", kappa, hint="target reconstruction NLL in nats")
        checks.number("alpha", alpha, 0.0, 1.0, high_open=True, hint="moving-average momentum")
        lambda_init = checks.positive("lambda_init", lambda_init, hint="the starting multiplier")
        # lr, mode and the λ bounds are checked by the update itself
        geco_multiplier_update(lambda_init, 0.0, lr, mode, lambda_min, lambda_max)
        checks.number("lambda_init", lambda_init, lambda_min, lambda_max,
                      hint="the starting multiplier, inside [lambda_min, lambda_max]: widen the "
                           "bounds or pass a λ inside them")
        self.kappa, self.lr, self.alpha, self.mode = float(kappa), float(lr), float(alpha), mode
        self.lambda_min, self.lambda_max = float(lambda_min), float(lambda_max)
        self.lam = float(min(max(lambda_init, lambda_min), lambda_max))
        self.constraint_ma: float | None = None
        self.skipped = 0  # steps whose rec was not finite: no update
        self.history: dict[str, list[float]] = {"lambda": [], "beta": [], "constraint": [],
                                                "constraint_ma": []}

    @property
    def beta(self) -> float:
        """β = 1/λ: the weight on KL when the loss is written as rec + β·KL."""
        return 1.0 / self.lam

    def step(self, rec: torch.Tensor, kl: torch.Tensor, update: bool = True) -> dict:
        """Loss rec + β·KL with the current β, then (if ``update``) one multiplier update.

        ``rec`` and ``kl``: batch means per example (scalars). Returns a dict for ``train.fit``:
        loss, rec, kl, beta, lambda, constraint."""
        for name, value in (("rec", rec), ("kl", kl)):
            checks.tensor(name, value)
            if value.numel() != 1:
                raise ValueError(f"{name} must be a single number, the batch mean per example, got "
                                 f"shape {tuple(value.shape)}; pass {name}.mean()")
        beta = self.beta
        loss = rec + beta * kl
        c = float(rec.detach()) - self.kappa
        if update and not math.isfinite(c):
            self.skipped += 1
            warnings.warn(f"GECO skipped the multiplier update: rec is {c + self.kappa} at this "
                          f"step, so λ stays {self.lam:.4g} (skipped so far: "
                          f"{self.skipped})", RuntimeWarning, stacklevel=2)
        elif update:
            # the average starts at C
            previous = c if self.constraint_ma is None else self.constraint_ma
            self.constraint_ma = self.alpha * previous + (1 - self.alpha) * c
            self.history["lambda"].append(self.lam)
            self.history["beta"].append(beta)
            self.history["constraint"].append(c)
            self.history["constraint_ma"].append(self.constraint_ma)
            self.lam = geco_multiplier_update(self.lam, self.constraint_ma, self.lr, self.mode,
                                              self.lambda_min, self.lambda_max)
        return {"loss": loss, "rec": rec, "kl": kl, "beta": beta, "lambda": 1.0 / beta,
                "constraint": c}


def _batch(name: str, value) -> torch.Tensor:
    """A non-empty float tensor (its batch mean is the loss); float16/bfloat16 become float32."""
    checks.tensor(name, value)
    if value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)}): the mean of an empty "
                         "batch has no value; pass at least one example")
    if not value.requires_grad:  # one from a network in training: train.fit names the term
        checks.finite(name, value)
    return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−E log D(x) − E log(1 − D(G(z))) from discriminator logits (D = sigmoid(logit)), batch means.

    Written with softplus: −log sigmoid(l) = softplus(−l), −log(1 − sigmoid(l)) = softplus(l),
    finite for any logit (``torch.log(D(x))`` after a Sigmoid gives −inf once D rounds to 0)."""
    real_logits = _batch("real_logits", real_logits)
    fake_logits = _batch("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


GAN_GENERATOR_LOSSES = ("non_saturating", "minimax")


def gan_generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """Generator loss from the discriminator's logits on generated samples (Goodfellow et al. 2014).

    ``"minimax"``: E log(1 − D(G(z))), the game's own term; its gradient per logit is −D, which
    vanishes when D rejects the samples. ``"non_saturating"``: −E log D(G(z)); gradient −(1 − D),
    strong exactly then."""
    fake_logits = _batch("fake_logits", fake_logits)
    checks.choice("kind", kind, GAN_GENERATOR_LOSSES)
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()
    return -F.softplus(fake_logits).mean()


def energy_contrastive_loss(energy_data: torch.Tensor, energy_model: torch.Tensor) -> torch.Tensor:
    """E_data[E(x)] − E_model[E(x)]: lower the energy of data, raise it on the model's own samples.

    With p(x) ∝ exp(−E(x)), its gradient equals that of the NLL E_data[E] + log Z when
    ``energy_model`` is evaluated on exact model samples (LeCun et al. 2006). Note the minus
    sign."""
    energy_data = _batch("energy_data", energy_data)
    energy_model = _batch("energy_model", energy_model)
    return energy_data.mean() - energy_model.mean()


@dataclass(frozen=True)
class GECOELBO:
    """The Bernoulli ELBO's two terms balanced by GECO (Rezende & Viola 2018) instead of a fixed β:
    each training step returns rec + β(t)·KL with β(t) = 1/λ(t), then updates λ from the constraint
    rec − κ (see ``GECO`` above). The settings are the fields; the multiplier lives in ``geco``
    (its ``history`` keeps λ, β and the constraint per step). Evaluation calls (``model.eval()``)
    leave λ alone."""

    kappa: float
    lr: float = 1e-2
    alpha: float = 0.9
    lambda_init: float = 1.0
    lambda_max: float = 100.0
    geco: GECO = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "geco", GECO(kappa=self.kappa, lr=self.lr, alpha=self.alpha,
                                              lambda_init=self.lambda_init,
                                              lambda_max=self.lambda_max))

    def describe(self) -> dict:
        return checks.plain_data(self, "the loss")

    def nll(self, model, out, x):
        return bernoulli_nll(out, x)

    def terms(self, model, x, step: int = 0, generator=None) -> dict:
        mu, logvar, _, out = model(x, generator)
        rec = self.nll(model, out, x).mean()
        return self.geco.step(rec, kl_per_dim(mu, logvar).sum(1).mean(), update=model.training)

    __call__ = terms

    def keep_history(self, epoch: int, history: dict) -> None:
        """A ``fit`` callback: stores the multiplier's per-step history in the training history (and
        so in the cache next to the weights)."""
        history["geco"] = {k: list(v) for k, v in self.geco.history.items()}
