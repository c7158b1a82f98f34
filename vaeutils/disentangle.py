"""Unit 06's tools: the total-correlation split of the KL term (Chen et al. 2018) with its
estimators, and how far each latent moves the two factors of the rectangles.

With p_data uniform over the N rows of ``x``, q(z) = (1/N) Σₙ q(z|xₙ) the aggregate posterior and
q(z_k) its marginals, the average KL term splits into three non-negative parts (each in nats):

    (1/N) Σₙ KL(q(z|xₙ) ‖ p(z)) =  I(x; z)                 index-code mutual information
                                 + KL(q(z) ‖ Πₖ q(z_k))    total correlation (TC)
                                 + Σₖ KL(q(z_k) ‖ p(z_k))  dimension-wise KL

The first part is unit 04's I(x; z); the other two split unit 04's KL(q(z) ‖ p(z)). Every part is an
average over z ~ q(z|xₙ) of a difference of log-densities, so the three telescope to log q(z|xₙ) −
log p(z) whatever estimate of log q(z) and log q(z_k) is used: :func:`tc_split` returns the sum and
its Monte Carlo standard error against the closed-form KL, and the estimators differ only in how
they share that sum out.

Estimators of log q(z) and log q(z_k) at a code drawn from q(z|xᵢ) (``estimator=``):

* ``"exact"``: the mixture over all N posteriors, as unit 04's ``surgery.kl_split`` does.
* ``"mss"``: minibatch stratified sampling (Chen et al. 2018, appendix), from the M posteriors of
  xᵢ's minibatch: weight 1/N on xᵢ's own posterior, (N − M')/(N M') on one other and 1/M' on the
  remaining M' − 1 (M' = M − 1). The weighted sum is an unbiased estimate of q(z); its log is biased
  low (Jensen), less so as M grows.
* ``"mws"``: minibatch weighted sampling (Chen et al. 2018, main text): log Σⱼ q(z|xⱼ) − log(N M)
  over the minibatch. Every term gets weight 1/(N M), the own posterior included, so log q(z) comes
  out between log M (posteriors that barely overlap: the own term dominates) and log N (posteriors
  that overlap) too low, and the one-dimensional marginals, which overlap, about log N too low each:
  the index-code MI is inflated by between log M and log N, the dimension-wise KL lowered by about
  d log N, and TC raised by the difference. The offsets are constants, harmless in a training loss
  (they have no gradient), not in a measurement.

:func:`codes` gives the posterior means and samples that MIG is fed; :func:`factor_moves` traverses
latents of a rectangles model and reads the drawn sides off with ``shapes.measure_rectangles``:
which factor each latent moves, in pixels.
"""

from __future__ import annotations

import math

import torch

from . import checks
from .losses import kl_per_dim
from .metrics import encode_all
from .models import traversal_images
from .shapes import measure_rectangles
from .surgery import log_q_per_dim

ESTIMATORS = ("exact", "mss", "mws")
_LOG_2PI = math.log(2 * math.pi)


def mss_log_weights(batch_size: int, n: int) -> torch.Tensor:
    """log of the (M, M) importance weights of minibatch stratified sampling for a minibatch of M of
    N rows: row i weighs the posteriors of the batch at the code drawn from row i's own posterior.
    Each row sums to 1."""
    m = checks.integer("batch_size", batch_size, low=2)
    n = checks.integer("n", n, low=m, hint="rows in the data set, at least batch_size")
    others = m - 1
    w = torch.full((m, m), 1.0 / others, dtype=torch.float64)
    idx = torch.arange(m)
    w[idx, (idx + 1) % m] = (n - others) / (n * others)  # one stratum element per row
    w[idx, idx] = 1.0 / n
    return w.log()


def _estimates(z, mu, logvar, estimator: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log q(z) (M,) and log q(z_k) (M, d) at codes z[i] ~ q(z|x_i) of one minibatch (or, exactly,
    of all rows)."""
    if estimator == "exact":  # one (chunk, N, d) pass serves the joint and the marginals
        joint, marginal = [], []
        for zc in z.split(64):
            lq = log_q_per_dim(zc, mu, logvar)
            joint.append(torch.logsumexp(lq.sum(-1), 1))
            marginal.append(torch.logsumexp(lq, 1))
        return torch.cat(joint) - math.log(n), torch.cat(marginal) - math.log(n)
    lq = log_q_per_dim(z, mu, logvar)                                   # (M, M, d), float64
    if estimator == "mws":
        offset = math.log(n * len(z))
        return torch.logsumexp(lq.sum(-1), 1) - offset, torch.logsumexp(lq, 1) - offset
    log_w = mss_log_weights(len(z), n).to(lq.device)
    return torch.logsumexp(log_w + lq.sum(-1), 1), torch.logsumexp(log_w[:, :, None] + lq, 1)


@torch.no_grad()
def tc_split_codes(mu: torch.Tensor, logvar: torch.Tensor, *, estimator: str = "mss",
                   batch_size: int = 128, seed: int = 0) -> dict:
    """The total-correlation split from posterior parameters (N, d); see :func:`tc_split`."""
    checks.tensor("mu", mu, dim=2, nonempty=True)
    checks.tensor("logvar", logvar, dim=2)
    checks.same_shape("mu", mu, "logvar", logvar)
    checks.finite("mu", mu)
    checks.finite("logvar", logvar)
    checks.choice("estimator", estimator, ESTIMATORS)
    seed = checks.integer("seed", seed, low=0)
    n, d = mu.shape
    if estimator != "exact":  # the exact mixture uses every row: no minibatch
        batch_size = checks.integer("batch_size", batch_size, low=2, high=n,
                                    hint="rows per minibatch")
    mu, logvar = mu.double(), logvar.double()
    gen = torch.Generator(device=mu.device).manual_seed(seed)
    eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q_own = (-0.5 * (eps.square() + logvar + _LOG_2PI)).sum(1)           # log q(z_n | x_n)
    log_p = (-0.5 * (z.square() + _LOG_2PI)).sum(1)                           # log N(z_n; 0, I)
    log_p_dims = -0.5 * (z.square() + _LOG_2PI)
    if estimator == "exact":
        log_qz, log_qk = _estimates(z, mu, logvar, "exact", n)
    else:
        log_qz, log_qk = torch.empty_like(log_p), torch.empty_like(z)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(mu.device)
        batches = list(order.split(batch_size))
        # a short last minibatch joins the one before
        if len(batches) > 1 and len(batches[-1]) < batch_size:
            batches[-2:] = [torch.cat(batches[-2:])]
        for rows in batches:
            log_qz[rows], log_qk[rows] = _estimates(z[rows], mu[rows], logvar[rows], estimator, n)
    kl_rows = kl_per_dim(mu, logvar).sum(1)
    sampled = log_q_own - log_p
    dims = (log_qk - log_p_dims).mean(0)
    return {
        "kl": float(kl_rows.mean()),
        "index_code_mi": float((log_q_own - log_qz).mean()),
        "total_correlation": float((log_qz - log_qk.sum(1)).mean()),
        "dimwise_kl": float(dims.sum()),
        "dimwise_kl_per_dim": dims.cpu().numpy(),
        "sampled_kl": float(sampled.mean()),
        "mc_se": math.sqrt(float((sampled - kl_rows).square().mean()) / n),
        "estimator": estimator,
        "batch_size": batch_size if estimator != "exact" else n,
        "n": n,
    }


@torch.no_grad()
def tc_split(model, x: torch.Tensor, *, estimator: str = "mss", batch_size: int = 128,
             seed: int = 0) -> dict:
    """The average KL term of ``model`` on the images ``x`` split into index-code MI, total
    correlation and dimension-wise KL (Chen et al. 2018), one code z ~ q(z|xₙ) per image (seeded by
    ``seed``).

    estimator: ``"mss"`` (minibatch stratified sampling over shuffled minibatches of
    ``batch_size``), ``"mws"`` (minibatch weighted sampling) or ``"exact"`` (the mixture over all N
    images); see the module docstring for their biases. Returns ``kl`` (the closed form),
    ``index_code_mi``, ``total_correlation``, ``dimwise_kl`` (and ``dimwise_kl_per_dim``),
    ``sampled_kl`` (their sum: the Monte Carlo KL) and ``mc_se`` (its standard error against
    ``kl``), ``estimator``, ``batch_size``, ``n``.
    """
    mu, logvar = encode_all(model, x)
    return tc_split_codes(mu, logvar, estimator=estimator, batch_size=batch_size, seed=seed)


@torch.no_grad()
def factor_moves(model, z0: torch.Tensor, dims, span: float = 2.0, steps: int = 9) -> torch.Tensor:
    """How far each latent in ``dims`` moves the rectangle's width and height: latent ``dims[r]`` of
    the code ``z0`` is swept over [−span, span] (the others held), each image decoded and measured
    (``shapes.measure_rectangles``). Returns (len(dims), 2): the range (max − min) of the width and
    of the height, in pixels, along each traversal."""
    images = traversal_images(model, z0, dims, span, steps)
    if not checks.all_finite(images):
        raise ValueError("model decoded NaN or inf images along the traversal of z0; check the "
                         "decoder's weights and that z0 is a code of this model")
    sides = measure_rectangles(images).view(len(dims), steps, 2)
    return sides.amax(1) - sides.amin(1)


@torch.no_grad()
def codes(model, x: torch.Tensor, seed: int = 0) -> dict:
    """The codes of the images ``x`` that MIG can be fed, as numpy arrays (N, d): ``means`` (the
    posterior means μ(x)) and ``samples`` (one draw z ~ q(z|x) each, seeded by ``seed``), with
    ``kl`` (numpy, (d,): the KL per latent dimension, averaged over x)."""
    seed = checks.integer("seed", seed, low=0)
    mu, logvar = encode_all(model, x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).to(mu.device)
    if float(logvar.max()) > 80.0:  # σ = exp(logvar / 2) and the KL overflow float32 beyond it
        raise ValueError(f"model gave log-variances up to {float(logvar.max()):.3g} for x: check "
                         "that x holds pixels in [0, 1] and the encoder's weights")
    return {"means": mu.cpu().numpy(),
            "samples": (mu + torch.exp(0.5 * logvar) * eps).cpu().numpy(),
            "kl": kl_per_dim(mu, logvar).mean(0).cpu().numpy()}
