"""Priors beyond N(0, I) (unit 08): a Gaussian mixture and the VampPrior (Tomczak & Welling 2018).

With a learned prior the KL term has no closed form, so it is estimated by Monte Carlo from the same
z that the decoder sees: KL(q(z|x) ‖ p(z)) ≈ log q(z|x) − log p(z) with z ~ q(z|x) (:func:`mc_kl`,
unbiased).

* :func:`log_normal_diag`, :func:`log_standard_normal`, :func:`log_mixture`: log-densities, summed
  over the latent dimensions; :func:`log_mixture` also gives the aggregate posterior
  q(z) = (1/N) Σ_n q(z|x_n).
* :class:`StandardNormalPrior`, :class:`MixturePrior` (K free Gaussians), :class:`VampPrior` (the
  encoder's own posteriors at K learned pseudo-inputs): ``log_prob(z, vae)`` and
  ``sample(n, vae, generator)``.
* :class:`PriorVAE` wraps an ``MLPVAE`` and a prior (it reads like a VAE: ``encode``, ``decode``,
  ``forward``, ``sample``, ``log_prior``); :class:`LearnedPriorELBO` is its loss for ``train.fit``
  (a frozen dataclass with ``describe()``); :func:`prior_summary` measures rate (MC, with its
  standard error), distortion and −ELBO.

Everything is in nats. ``metrics.summary`` assumes N(0, I): for a :class:`PriorVAE` use
:func:`prior_summary`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import distributions as D
from torch import nn

from . import checks
from .losses import bernoulli_nll

PRIOR_KINDS = ("standard", "mog", "vamp")


def _normal(mu: torch.Tensor, logvar: torch.Tensor) -> D.Independent:
    """N(μ, diag exp(logvar)) as a torch distribution over the last dimension."""
    return D.Independent(D.Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag exp(logvar)) by torch.distributions, summed over the last dimension
    (broadcasting)."""
    return _normal(mu, logvar).log_prob(z)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return _normal(torch.zeros_like(z), torch.zeros_like(z)).log_prob(z)


def log_mixture(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor, log_weights=None,
                chunk: int = 256) -> torch.Tensor:
    """log Σ_k w_k N(z; m_k, diag v_k) for z (B, d) and components (K, d); uniform weights when None
    (``torch.distributions.MixtureSameFamily``).

    With the encoder's (μ_n, logvar_n) of N images as components it is the aggregate posterior
    q(z) = (1/N) Σ_n q(z|x_n). Computed in chunks of ``chunk`` rows of z (memory B·K·d)."""
    checks.tensor("z", z, dim=2)
    checks.tensor("means", means, dim=2)
    checks.same_shape("means", means, "logvars", logvars)
    chunk = checks.integer("chunk", chunk, low=1, hint="rows of z at a time")
    if z.shape[1] != means.shape[1]:
        raise ValueError(f"z has {z.shape[1]} latent dimensions but the components have "
                         f"{means.shape[1]}")
    if log_weights is None:
        log_weights = torch.zeros(len(means), dtype=z.dtype, device=z.device)
    elif log_weights.shape != (len(means),):
        raise ValueError(f"log_weights must be shaped ({len(means)},), got "
                         f"{tuple(log_weights.shape)}")
    mixture = D.MixtureSameFamily(D.Categorical(logits=log_weights, validate_args=False),
                                  _normal(means, logvars), validate_args=False)
    return torch.cat([mixture.log_prob(z[i:i + chunk]) for i in range(0, len(z), chunk)])


def _sample_mixture(n: int, means, logvars, log_weights, generator=None) -> torch.Tensor:
    gen_device = "cpu" if generator is not None else means.device
    k = torch.multinomial(log_weights.detach().exp().to(gen_device), n, replacement=True,
                          generator=generator)
    eps = torch.randn(n, means.shape[1], generator=generator, device=gen_device).to(means.device)
    k = k.to(means.device)
    return means[k] + torch.exp(0.5 * logvars[k]) * eps


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I): the VAE's usual prior, with the same interface as the learned ones."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = checks.integer("latent_dim", latent_dim, low=1)

    def log_prob(self, z: torch.Tensor, vae=None) -> torch.Tensor:
        return log_standard_normal(z)

    @torch.no_grad()
    def sample(self, n: int, vae=None, generator=None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z if vae is None else z.to(next(vae.parameters()).device)


class _Mixture(nn.Module):
    def components(self, vae) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log weights, means, log-variances) of the mixture; each prior below says where from."""
        raise TypeError(f"{type(self).__name__} is a mixture without components; use MixturePrior "
                        "or VampPrior")

    def log_prob(self, z: torch.Tensor, vae=None) -> torch.Tensor:
        """log p(z), one value per row of z."""
        return log_mixture(z, *self.components(vae))

    @torch.no_grad()
    def sample(self, n: int, vae=None, generator=None) -> torch.Tensor:
        """n draws: a component by its weight, then a Gaussian draw from it."""
        return _sample_mixture(checks.integer("n", n, low=1), *self.components(vae),
                               generator=generator)


class MixturePrior(_Mixture):
    """p(z) = Σ_k w_k N(m_k, diag v_k), K free components: means, log-variances and weights learned.

    The means start as N(0, I) draws (seeded), the variances at 1, the weights equal."""

    def __init__(self, latent_dim: int, n_components: int = 10, seed: int = 0):
        super().__init__()
        self.latent_dim = checks.integer("latent_dim", latent_dim, low=1)
        k = checks.integer("n_components", n_components, low=1)
        gen = torch.Generator().manual_seed(checks.integer("seed", seed, low=0))
        self.means = nn.Parameter(torch.randn(k, self.latent_dim, generator=gen))
        self.logvars = nn.Parameter(torch.zeros(k, self.latent_dim))
        self.logits = nn.Parameter(torch.zeros(k))

    def components(self, vae=None):
        return self.means, self.logvars, torch.log_softmax(self.logits, 0)


class VampPrior(_Mixture):
    """The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) Σ_k q(z | u_k), the encoder's own
    posteriors at K learned pseudo-inputs u_k = sigmoid(a_k), images like the data. ``init``: K
    images to start from (e.g. a random subset of the training set); otherwise the pseudo-inputs
    start grey with a little noise."""

    def __init__(self, in_shape=(1, 28, 28), n_components: int = 100,
                 init: torch.Tensor | None = None, seed: int = 0):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        k = checks.integer("n_components", n_components, low=1)
        if init is None:
            gen = torch.Generator().manual_seed(checks.integer("seed", seed, low=0))
            raw = 0.01 * torch.randn(k, *self.in_shape, generator=gen)
        else:
            checks.images("init", init)
            if tuple(init.shape) != (k, *self.in_shape):
                raise ValueError(f"init must be {k} images shaped {self.in_shape}, got "
                                 f"{tuple(init.shape)}")
            raw = torch.logit(init.detach().float().cpu().clamp(0.05, 0.95))
        self.raw = nn.Parameter(raw)

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        return torch.sigmoid(self.raw)

    def components(self, vae):
        if vae is None:
            raise ValueError("the VampPrior is made of the encoder's posteriors: pass the VAE, "
                             "log_prob(z, vae)")
        mu, logvar = vae.encode(self.pseudo_inputs)
        return mu, logvar, torch.full((len(mu),), -math.log(len(mu)), dtype=mu.dtype,
                                      device=mu.device)


class PriorVAE(nn.Module):
    """A VAE (``vae``: an ``MLPVAE`` or ``ConvVAE``) with a learned prior; it reads like that VAE.

    ``log_prior(z)`` is log p(z); ``sample(n)`` decodes draws from the prior (not from N(0, I))."""

    def __init__(self, vae: nn.Module, prior: nn.Module):
        super().__init__()
        if not hasattr(vae, "encode") or not hasattr(prior, "log_prob"):
            raise TypeError("PriorVAE(vae, prior) needs a VAE with encode/decode and a prior with "
                            "log_prob")
        self.vae, self.prior = vae, prior
        self.in_shape, self.latent_dim = vae.in_shape, vae.latent_dim
        self.log_scale = None

    def encode(self, x):
        return self.vae.encode(x)

    def decode(self, z):
        return self.vae.decode(z)

    def forward(self, x, generator=None):
        return self.vae(x, generator)

    mean_image = staticmethod(torch.sigmoid)

    def reconstruct(self, x):
        return self.vae.reconstruct(x)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior.log_prob(z, self.vae)

    @torch.no_grad()
    def sample_latent(self, n: int, generator=None) -> torch.Tensor:
        return self.prior.sample(n, self.vae, generator)

    @torch.no_grad()
    def sample(self, n: int, generator=None) -> torch.Tensor:
        return self.mean_image(self.decode(self.sample_latent(n, generator)))


def build_prior_vae(kind: str, vae: nn.Module, n_components: int = 100, init=None,
                    seed: int = 0) -> PriorVAE:
    """``PriorVAE`` around ``vae`` with prior ``kind``: ``"standard"``, ``"mog"`` or ``"vamp"``."""
    checks.choice("kind", kind, PRIOR_KINDS)
    if kind == "standard":
        prior = StandardNormalPrior(vae.latent_dim)
    elif kind == "mog":
        prior = MixturePrior(vae.latent_dim, n_components, seed=seed)
    else:
        prior = VampPrior(vae.in_shape, n_components, init=init, seed=seed)
    return PriorVAE(vae, prior)


def mc_kl(mu: torch.Tensor, logvar: torch.Tensor, log_prior, z: torch.Tensor | None = None,
          n_samples: int = 1, generator=None) -> torch.Tensor:
    """Monte Carlo KL(q(z|x) ‖ p(z)) = E_q[log q(z|x) − log p(z)], one estimate per row, averaged
    over ``n_samples`` draws (or at the given ``z``, shaped like ``mu``). ``log_prior``:
    z (B, d) → (B,)."""
    checks.tensor("mu", mu, dim=2)
    checks.same_shape("mu", mu, "logvar", logvar)
    if not callable(log_prior):
        raise TypeError("log_prior must be a function z -> log p(z), e.g. model.log_prior or "
                        "log_standard_normal")
    if z is not None:
        checks.same_shape("z", z, "mu", mu)
        return log_normal_diag(z, mu, logvar) - log_prior(z)
    n_samples = checks.integer("n_samples", n_samples, low=1)
    total = torch.zeros(len(mu), dtype=mu.dtype, device=mu.device)
    for _ in range(n_samples):
        eps = torch.randn(mu.shape, generator=generator,
                          device="cpu" if generator is not None else mu.device)
        draw = mu + torch.exp(0.5 * logvar) * eps.to(mu.device)
        total = total + log_normal_diag(draw, mu, logvar) - log_prior(draw)
    return total / n_samples


@dataclass(frozen=True)
class LearnedPriorELBO:
    """Negative ELBO of a :class:`PriorVAE` with a Bernoulli decoder: rec + β·KL, the KL by Monte
    Carlo from the decoder's own z (one draw per image, as in Tomczak & Welling 2018). Callable as
    ``loss(model, x, step)`` for ``train.fit``; ``describe()`` gives the cache key its settings."""

    beta: float = 1.0

    def __post_init__(self):
        checks.positive("beta", self.beta, allow_zero=True)

    def describe(self) -> dict:
        return checks.plain_data(self, "the loss")

    def nll(self, model, out, x):
        return bernoulli_nll(out, x)

    def terms(self, model, x, step: int = 0, generator=None) -> dict:
        mu, logvar, z, out = model(x, generator)
        rec = self.nll(model, out, x).mean()
        kl = mc_kl(mu, logvar, model.log_prior, z=z).mean()
        return {"loss": rec + float(self.beta) * kl, "rec": rec, "kl": kl}

    __call__ = terms


@torch.no_grad()
def prior_summary(model: PriorVAE, x: torch.Tensor, *, n_samples: int = 16, seed: int = 0,
                  batch_size: int = 500) -> dict:
    """Rate (MC KL to the model's prior), distortion (Bernoulli NLL) and −ELBO on ``x``, nats/image.

    The distortion uses one z per image from a generator seeded with ``seed`` (as
    ``metrics.summary`` does). The rate averages ``n_samples`` replicate estimates; ``rate_se`` is
    their standard error (std / √n_samples), the Monte Carlo error of ``rate``. Also returns ``mu``
    and ``logvar`` (CPU)."""
    checks.images("x", x)
    n_samples = checks.integer("n_samples", n_samples, low=2,
                               hint="replicates, for the standard error")
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    draws = torch.Generator().manual_seed(seed + 1)
    rec_sum, replicate, mus, logvars = 0.0, torch.zeros(n_samples, dtype=torch.float64), [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        mu, logvar, _, out = model(xb, gen)
        rec_sum += bernoulli_nll(out, xb).sum().item()
        for r in range(n_samples):
            replicate[r] += mc_kl(mu, logvar, model.log_prior, generator=draws).sum().item()
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    rates = replicate / len(x)
    rate, distortion = float(rates.mean()), rec_sum / len(x)
    return {"rate": rate, "rate_se": float(rates.std() / math.sqrt(n_samples)),
            "distortion": distortion, "neg_elbo": rate + distortion, "mu": torch.cat(mus),
            "logvar": torch.cat(logvars)}
