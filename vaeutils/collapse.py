"""Posterior collapse and its fixes (unit 07): the measurements and small exact examples it reuses.

* :func:`input_dependence` and :func:`diagnose`: the three collapse diagnostics of one model (KL per
  dimension, active units, reconstructions that ignore the input), from one ``metrics.summary``
  pass.
* :data:`FREE_BITS_VARIANTS` and :func:`variant_gradients`: the free-bits terms people write (Kingma
  et al.'s batch mean then floor, a floor per example, a batch-summed line, one floor on the total,
  a soft floor), each a function of ``(mu, logvar, lam, tau)``, with their values and exact
  gradients with respect to ``mu``.
* :func:`source_line_loss`, :func:`kl_weight_in_gradient`, :func:`adam_steps`: a free-bits line
  summed over the batch next to a reconstruction averaged or summed over it, the KL weight β it
  amounts to (read off the gradients of a real model), and the Adam steps it takes.
* :func:`train_test_rows`: −ELBO of each model of a sweep on training and on test images (the "does
  a small β overfit?" measurement).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from . import checks, metrics
from . import losses as L
from .losses import ELBOLoss

# --------------------------------------------------------------------------- diagnostics


@torch.no_grad()
def input_dependence(model, x: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of the data's pixel variance that survives in the reconstructions x̂(x) = decoder mean
    at z = μ(x): Σ_pixels Var_x x̂ / Σ_pixels Var_x x. About 1 for a good autoencoder, 0 when the
    output ignores the input."""
    checks.images("x", x)
    if len(x) < 2:
        raise ValueError("x needs at least two images to have a variance; pass a batch such as "
                         "data.test_x")
    batch_size = checks.integer("batch_size", batch_size, low=1)
    model.eval()
    recon = torch.cat([model.reconstruct(x[i:i + batch_size])
                       for i in range(0, len(x), batch_size)])
    return float(recon.var(0).sum() / x.var(0).sum())


def diagnose(model, x: torch.Tensor, loss: ELBOLoss | None = None) -> dict:
    """``metrics.summary(model, x, loss)`` plus ``dependence`` (:func:`input_dependence`) and
    ``dead`` (dimensions whose mean KL is below 0.005 nats: by Var_x μ_j ≤ 2·KL_j they cannot be
    active)."""
    out = metrics.summary(model, x, loss)
    out["dependence"] = input_dependence(model, x)
    out["dead"] = int((out["kl_per_dim"] < 0.005).sum())
    return out


# --------------------------------------------------------------------------- the free-bits variants


def _kingma(mu, logvar, lam, tau):
    return L.free_bits_kl(mu, logvar, lam)


def _per_example(mu, logvar, lam, tau):
    return torch.clamp(L.kl_per_dim(mu, logvar), min=lam).sum(1).mean()


def _source_line(mu, logvar, lam, tau):
    # the line as it runs once the threshold is a tensor: an elementwise max per example, summed
    # over the batch
    return torch.sum(torch.max(L.kl_per_dim(mu, logvar),
                               torch.tensor(lam, dtype=mu.dtype, device=mu.device)))


def _total(mu, logvar, lam, tau):
    return torch.clamp(L.kl_per_dim(mu, logvar).sum(1).mean(), min=lam * mu.shape[1])


def _soft(mu, logvar, lam, tau):
    return (lam + tau * F.softplus((L.kl_per_dim(mu, logvar).mean(0) - lam) / tau)).sum()


def _plain(mu, logvar, lam, tau):
    return L.kl_per_dim(mu, logvar).sum(1).mean()


FREE_BITS_VARIANTS = {
    "Kingma et al.": _kingma,          # Σ_j max(λ, mean_i KL_ij)
    "clamp per example": _per_example,  # mean_i Σ_j max(λ, KL_ij)
    "source line": _source_line,        # Σ_i Σ_j max(λ, KL_ij): per-example clamp, batch-summed
    "floor on the total": _total,       # max(dλ, mean_i Σ_j KL_ij)
    "soft floor": _soft,                # Σ_j λ + τ softplus((mean_i KL_ij − λ)/τ)
    "plain KL": _plain,                 # mean_i Σ_j KL_ij
}
"""Each variant as ``f(mu, logvar, lam, tau) -> scalar`` (nats); ``tau`` is used by the soft floor
only."""


def variant_gradients(mu: torch.Tensor, logvar: torch.Tensor, lam: float,
                      tau: float = 0.05) -> dict:
    """Value and gradient with respect to ``mu`` of every variant of :data:`FREE_BITS_VARIANTS`:
    ``{name: (value, grad)}`` with ``grad`` shaped like ``mu`` (computed in ``mu``'s dtype, float64
    for exact checks). ``mu`` and ``logvar`` are (batch, latent_dim)."""
    checks.tensor("mu", mu, dim=2, nonempty=True)
    checks.tensor("logvar", logvar)
    checks.same_shape("mu", mu, "logvar", logvar)
    lam = checks.positive("lam", lam, allow_zero=True,
                          hint="the floor λ in nats per latent dimension")
    tau = checks.positive("tau", tau, hint="the soft floor's temperature in nats")
    out = {}
    for name, fn in FREE_BITS_VARIANTS.items():
        m = mu.detach().clone().requires_grad_(True)
        value = fn(m, logvar.detach(), lam, tau)
        (grad,) = torch.autograd.grad(value, m)
        out[name] = (float(value.detach()), grad)
    return out


# --------------------------------------------------------------------------- the batch-size claim


def _line_terms(model, x, loss, lam, generator):
    """Per image: the reconstruction NLL and the per-example floor Σ_j max(λ, KL_ij), for one z per
    image."""
    mu, logvar, _, out = model(x, generator)
    return loss.nll(model, out, x), torch.clamp(L.kl_per_dim(mu, logvar), min=lam).sum(1)


def source_line_loss(model, x: torch.Tensor, loss: ELBOLoss | None = None, *, lam: float = 0.1,
                     rec_reduction: str = "sum", kl_reduction: str = "sum",
                     generator=None) -> torch.Tensor:
    """The reconstruction NLL (``loss``'s likelihood) reduced over the batch by ``rec_reduction``
    plus the per-example floor Σ_j max(λ, KL_ij) reduced by ``kl_reduction`` (``"sum"``: the
    batch-summed line of unit 07 §4.3; ``"mean"``: the same floor averaged, the β = 1 reference).
    One z per image from ``generator``."""
    checks.images("x", x)
    checks.choice("rec_reduction", rec_reduction, ("mean", "sum"))
    checks.choice("kl_reduction", kl_reduction, ("mean", "sum"))
    lam = checks.positive("lam", lam, allow_zero=True,
                          hint="the floor λ in nats per latent dimension")
    rec, kl = _line_terms(model, x, loss or ELBOLoss(), lam, generator)
    rec = rec.mean() if rec_reduction == "mean" else rec.sum()
    return rec + (kl.mean() if kl_reduction == "mean" else kl.sum())


def kl_weight_in_gradient(model, x: torch.Tensor, loss: ELBOLoss | None = None, *, lam: float = 0.1,
                          rec_reduction: str = "mean", seed: int = 0) -> dict:
    """The β that :func:`source_line_loss` (``kl_reduction="sum"``: a free-bits line summed over the
    batch) amounts to on the batch ``x``, measured on the gradient of every parameter of ``model``.

    With one z per image (seeded), the gradient ``g`` of that loss is split by least squares as
    ``g = a·∇rec_mean + b·∇KL_mean``, where ``rec_mean`` is the batch mean of the reconstruction NLL
    and ``KL_mean`` the batch mean of Σ_j max(λ, KL_ij): the loss acts as
    ``a·(rec_mean + β·KL_mean)`` with ``β = b / a``. Since Adam ignores the common factor ``a``, β
    is what training feels. Returns ``beta``, ``scale`` (a) and ``residual`` (relative size of the
    part of g the two directions do not explain)."""
    checks.images("x", x)
    checks.choice("rec_reduction", rec_reduction, ("mean", "sum"))
    lam = checks.positive("lam", lam, allow_zero=True,
                          hint="the floor λ in nats per latent dimension")
    params = [p for p in model.parameters() if p.requires_grad]
    rec, kl = _line_terms(model, x, loss or ELBOLoss(), lam,
                          torch.Generator(device=x.device).manual_seed(seed))
    total = (rec.mean() if rec_reduction == "mean" else rec.sum()) + kl.sum()

    def flat(value):
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                          for g, p in zip(grads, params)])

    directions = torch.stack([flat(rec.mean()), flat(kl.mean())], 1).double()
    if not directions[:, 1].any():
        raise ValueError(f"every KL_ij of this batch is below lam={lam:g}, so the line has no KL "
                         "gradient to weigh; pass a smaller lam or a model whose code is in use")
    g = flat(total).double()
    coef = torch.linalg.lstsq(directions, g[:, None]).solution[:, 0]
    residual = float((directions @ coef - g).norm() / g.norm())
    a, b = float(coef[0]), float(coef[1])
    return {"beta": b / a, "scale": a, "residual": residual}


def adam_steps(model, x: torch.Tensor, loss_fn, *, steps: int = 5, lr: float = 1e-3,
               seed: int = 0) -> torch.Tensor:
    """How far ``steps`` Adam steps on the batch ``x`` move the parameters of a copy of ``model``
    (``model`` itself is untouched): the flattened change. ``loss_fn(model, x, generator)`` returns
    the scalar to minimise; the noise of step k comes from a generator seeded ``seed + k``, so two
    losses can be compared on the same draws."""
    checks.images("x", x)
    steps = checks.integer("steps", steps, low=1)
    lr = checks.positive("lr", lr)
    net = copy.deepcopy(model).train()
    params = [p for p in net.parameters() if p.requires_grad]
    start = torch.cat([p.detach().flatten() for p in params])
    opt = torch.optim.Adam(params, lr=lr)
    for k in range(steps):
        opt.zero_grad()
        loss_fn(net, x, torch.Generator(device=x.device).manual_seed(seed + k)).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in params]) - start


# -------------------------------------------------------------------------- does a small β overfit?


def train_test_rows(entries, train_x: torch.Tensor, test_x: torch.Tensor,
                    loss: ELBOLoss | None = None) -> list[dict]:
    """For each ``(beta, model, history)`` of a sweep: ``beta``, the −ELBO and the distortion on
    ``train_x`` and on ``test_x`` (``metrics.summary``, one z per image), and ``gap`` = test −ELBO −
    train −ELBO (nats)."""
    checks.images("train_x", train_x)
    checks.images("test_x", test_x)
    rows = []
    for beta, model, _ in entries:
        tr, te = metrics.summary(model, train_x, loss), metrics.summary(model, test_x, loss)
        rows.append({"beta": float(beta), "train": tr["neg_elbo"], "test": te["neg_elbo"],
                     "train_distortion": tr["distortion"], "test_distortion": te["distortion"],
                     "train_rate": tr["rate"], "test_rate": te["rate"],
                     "gap": te["neg_elbo"] - tr["neg_elbo"]})
    return rows
