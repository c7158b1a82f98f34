"""ELBO surgery (Hoffman & Johnson 2016): the average KL term split into what the code says about x
and how far the codes as a whole are from the prior. Taught in unit 04; units 05–08 reuse it.

With p_data uniform over the N rows of ``x`` and the aggregate posterior q(z) = (1/N) Σₙ q(z|xₙ),

    (1/N) Σₙ KL(q(z|xₙ) ‖ p(z))  =  I(x; z)  +  KL(q(z) ‖ p(z)),      0 ≤ I(x; z) ≤ log N,

where I(x; z) is the mutual information between the row index and the code under
q(x, z) = p_data(x) q(z|x).

* :func:`log_q_per_dim` — log N(z[m, k]; μ[n, k], σ²[n, k]) for every code m, posterior n and
  dimension k: the building block of every aggregate-posterior estimator (unit 06's
  total-correlation split uses it too).
* :func:`log_aggregate` — log q(z) (or, with ``per_dim=True``, the log marginals log q(z_k)), by a
  logsumexp over all N posteriors, in float64.
* :func:`kl_split_codes` — the split from posterior parameters (μ, log σ²); :func:`kl_split` encodes
  ``x`` first.
* :func:`moment_matched` — the Gaussian with the aggregate posterior's mean and covariance, and
  its KL to N(0, I): a lower bound on KL(q(z) ‖ p(z)) that, unlike the split, no log N caps.
"""

from __future__ import annotations

import math

import torch

from . import checks
from .losses import kl_per_dim
from .metrics import encode_all

_LOG_2PI = math.log(2 * math.pi)


def _codes(mu, logvar) -> tuple[torch.Tensor, torch.Tensor]:
    checks.tensor("mu", mu, dim=2, nonempty=True)
    checks.tensor("logvar", logvar, dim=2)
    checks.same_shape("mu", mu, "logvar", logvar)
    if not (checks.all_finite(mu) and checks.all_finite(logvar)):
        raise ValueError("mu and logvar must be finite; the encoder gave NaN or inf (check x for "
                         "NaN pixels)")
    return mu, logvar


def log_q_per_dim(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z[m, k]; mu[n, k], exp(logvar[n, k])) for codes ``z`` (M, d) and posteriors ``mu``,
    ``logvar`` (N, d): a tensor of shape (M, N, d), in nats, in the dtype of the inputs (pass
    float64 for sums of many)."""
    checks.tensor("z", z, dim=2)
    checks.finite("z", z)
    mu, logvar = _codes(mu, logvar)
    if z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must have the latent size of mu ({mu.shape[1]}), got shape "
                         f"{tuple(z.shape)}")
    diff = z[:, None, :] - mu[None, :, :]
    return -0.5 * (_LOG_2PI + logvar[None] + diff.square() * torch.exp(-logvar[None]))


# the size of one (chunk, N, d) block when batch_size is None: 16 MiB of float64
CHUNK_NUMBERS = 2**21


def _chunk(batch_size, n: int, d: int) -> int:
    if batch_size is None:
        return max(1, CHUNK_NUMBERS // (n * d))
    return checks.integer("batch_size", batch_size, low=1,
                          hint="codes z per chunk of the (chunk, N, d) tensor, or None: automatic")


def log_aggregate(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, per_dim: bool = False,
                  batch_size: int | None = None) -> torch.Tensor:
    """log q(z) for the aggregate posterior q(z) = (1/N) Σₙ N(z; μₙ, diag σₙ²) of the N rows of
    (mu, logvar).

    Returns (M,) float64; with ``per_dim=True`` the log marginals
    log q(z_k) = log (1/N) Σₙ N(z_k; μₙₖ, σₙₖ²), shaped (M, d). The mixture is summed exactly (a
    logsumexp over all N posteriors, in float64), ``batch_size`` codes at a time so that memory
    stays at batch_size·N·d numbers (None: about 2 million, 16 MiB).
    """
    per_dim = checks.boolean("per_dim", per_dim)
    mu, logvar = _codes(mu, logvar)
    checks.tensor("z", z, dim=2)
    checks.finite("z", z)
    batch_size = _chunk(batch_size, *mu.shape)
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    log_n = math.log(len(mu))
    out = []
    for i in range(0, len(z), batch_size):
        lq = log_q_per_dim(z[i:i + batch_size], mu, logvar)           # (b, N, d)
        out.append(torch.logsumexp(lq if per_dim else lq.sum(-1), dim=1) - log_n)
    return torch.cat(out) if out else z.new_zeros((0, z.shape[1]) if per_dim else (0,))


def _standard_normal(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.square() + _LOG_2PI).sum(-1)


def _call_prior(log_prior, z: torch.Tensor, dtype) -> torch.Tensor:
    value = log_prior(z.to(dtype))
    if not isinstance(value, torch.Tensor) or value.shape != (len(z),):
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"log_prior must map codes z ({len(z)}, d) to log p(z) shaped "
                         f"({len(z)},), got {got}")
    value = value.detach().double()
    if not checks.all_finite(value):
        raise ValueError("log_prior returned NaN or inf for some codes; check the prior's "
                         "parameters")
    return value


def _row_se(v: torch.Tensor, centre: torch.Tensor | None) -> float:
    """Monte Carlo standard error of the mean of v (N, S): from the deviations from each row's known
    mean when ``centre`` is given, else from the within-row spread (S ≥ 2), else from the spread
    over all rows (an upper bound: it also counts how the rows differ)."""
    n, s = v.shape
    if centre is not None:
        var = (v - centre[:, None]).square().sum() / (n * s)
    elif s >= 2:
        var = v.var(1, unbiased=True).mean()
    else:
        var = v.var(unbiased=True) if n > 1 else v.new_zeros(())
    return math.sqrt(float(var) / (n * s))


@torch.no_grad()
def kl_split_codes(mu: torch.Tensor, logvar: torch.Tensor, *, n_samples: int = 1, log_prior=None,
                   seed: int = 0, batch_size: int | None = None) -> dict:
    """ELBO surgery from the posterior parameters of N data points; :func:`kl_split` explains it."""
    mu, logvar = _codes(mu, logvar)
    n_samples = checks.integer("n_samples", n_samples, low=1, hint="codes drawn from each q(z|x_n)")
    seed = checks.integer("seed", seed, low=0)
    batch_size = _chunk(batch_size, *mu.shape)
    if log_prior is not None and not callable(log_prior):
        raise TypeError("log_prior must be None (the prior N(0, I)) or a function "
                        f"z (M, d) -> log p(z) (M,), got {log_prior!r}")
    n, d = mu.shape
    gen = torch.Generator(device=mu.device).manual_seed(seed)

    def draw():
        eps = torch.randn((n, n_samples, d), generator=gen, device=mu.device,
                          dtype=mu.dtype).double()
        z = mu.double()[:, None] + torch.exp(0.5 * logvar.double())[:, None] * eps  # (N, S, d)
        # log q(z|x_n), shaped (N, S)
        log_q_own = (-0.5 * (eps.square() + logvar.double()[:, None] + _LOG_2PI)).sum(-1)
        flat = z.reshape(n * n_samples, d)
        if log_prior is None:
            log_p = _standard_normal(flat)
        else:
            log_p = _call_prior(log_prior, flat, mu.dtype)
        return flat, log_q_own, log_p.view(n, n_samples)

    z, log_q_own, log_p = draw()
    if not checks.all_finite(z):
        raise ValueError("mu and logvar are too large: codes drawn from them overflow float64 "
                         "(|mu| or exp(logvar / 2) near 1e308); check the encoder")
    log_q_agg = log_aggregate(z, mu, logvar, batch_size=batch_size).view(n, n_samples)
    if log_prior is None:   # the closed form of unit 01, independent of the samples
        kl_rows = kl_per_dim(mu.double(), logvar.double()).sum(1)
        kl, kl_se = float(kl_rows.mean()), 0.0
    else:                   # no closed form: a Monte Carlo estimate from a second, independent draw
        _, log_q2, log_p2 = draw()
        kl_rows = None
        kl, kl_se = float((log_q2 - log_p2).mean()), _row_se(log_q2 - log_p2, None)
    return {
        "kl": kl,
        "mutual_information": float((log_q_own - log_q_agg).mean()),
        "marginal_kl": float((log_q_agg - log_p).mean()),
        "log_n": math.log(n),
        "mc_se": _row_se(log_q_own - log_p, kl_rows),
        "kl_se": kl_se,
        "n": n,
        "n_samples": n_samples,
    }


@torch.no_grad()
def moment_matched(mu: torch.Tensor, logvar: torch.Tensor) -> dict:
    """The Gaussian N(m, S) with the mean and covariance of the aggregate posterior
    q(z) = (1/N) Σₙ N(μₙ, diag σₙ²) of the N rows of (mu, logvar), and its KL to N(0, I), in nats.

    m is the mean of the μₙ; S is the covariance of the μₙ (divided by N) plus the mean of diag σₙ².
    Because log N(z; m, S) − log N(z; 0, I) is quadratic in z, its average under q(z) equals its
    average under N(m, S), so

        KL(q(z) ‖ N(0, I)) = KL(q(z) ‖ N(m, S)) + KL(N(m, S) ‖ N(0, I)) ≥ KL(N(m, S) ‖ N(0, I)):

    a lower bound on the marginal KL built from two moments, which N rows estimate well, and not
    capped by log N as the mixture estimate of :func:`kl_split` is. Returns ``mean`` (d,) and
    ``cov`` (d, d), float64, and ``kl`` = ½(tr S + m·m − d − log det S).
    """
    mu, logvar = _codes(mu, logvar)
    mu, var = mu.double(), torch.exp(logvar.double())
    mean = mu.mean(0)
    centred = mu - mean
    cov = centred.T @ centred / len(mu) + torch.diag(var.mean(0))
    kl = 0.5 * (torch.trace(cov) + mean @ mean - len(mean) - torch.logdet(cov))
    return {"mean": mean, "cov": cov, "kl": float(kl)}


@torch.no_grad()
def kl_split(model, x: torch.Tensor, *, n_samples: int = 1, log_prior=None, seed: int = 0,
             batch_size: int | None = None) -> dict:
    """ELBO surgery on the N images ``x``: the average KL term = I(x; z) + KL(q(z) ‖ p(z)), in nats.

    model: anything with ``encode(x) -> (mu, logvar)`` (every VAE of ``vaeutils.models``).
    log_prior: None for p(z) = N(0, I), else a function z (M, d) -> log p(z) (M,) (a learned prior,
        unit 08); it receives z in the encoder's dtype.
    Returns a dict: ``kl`` (the average KL(q(z|xₙ) ‖ p(z)): the closed form for N(0, I), else a
    Monte Carlo estimate from a second, independent draw, with standard error ``kl_se``),
    ``mutual_information``, ``marginal_kl``, ``log_n`` (log N, the upper bound of I), ``mc_se`` (the
    Monte Carlo standard error of ``mutual_information + marginal_kl``), ``kl_se``, ``n`` and
    ``n_samples``.

    The estimator. For each row n, draw ``n_samples`` codes z ~ q(z|xₙ) (reparameterised, seeded by
    ``seed``). For each z, log q(z) is the exact log of the mixture (1/N) Σₘ q(z|xₘ) over all N
    posteriors (a logsumexp in float64, ``batch_size`` codes at a time), and

        I(x; z)        ≈ mean over z of  log q(z|xₙ) − log q(z),
        KL(q(z) ‖ p(z)) ≈ mean over z of  log q(z) − log p(z).

    Their sum is the sampled KL, mean of log q(z|xₙ) − log p(z), so it agrees with ``kl`` up to
    Monte Carlo error (``mc_se``), which is the check a caller should make. For the distribution
    this defines (p_data uniform over these N rows) nothing is approximated except the draw of z: I
    is the mutual information between the row index and z, hence within [0, log N]. As an estimate
    of the mutual information under the population the rows were drawn from, it is biased downward:
    the mixture contains the code's own posterior q(z|xₙ), which is large exactly where z was drawn,
    so q(z) comes out too large there, I too small (it saturates near log N once the posteriors
    barely overlap) and KL(q(z) ‖ p(z)) too large by the same amount. More rows lessen the bias.
    """
    if batch_size is not None:
        checks.integer("batch_size", batch_size, low=1,
                       hint="codes z per chunk, or None: automatic")
    mu, logvar = encode_all(model, x)
    return kl_split_codes(mu, logvar, n_samples=n_samples, log_prior=log_prior, seed=seed,
                          batch_size=batch_size)
