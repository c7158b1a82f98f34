"""Ways to judge a VAE beyond its training loss, all in nats unless stated.

``summary`` measures one model in one pass (rate, distortion, −ELBO, KL per dimension, active
units): every unit and widget that reports those numbers calls it, and so does ``evaluate``, the
test row ``train.fit`` logs. ``encode_all`` is the one chunked encoder. Also the IWAE bound (unit
04), MIG (unit 06), and the Fréchet distance and class coverage used to judge samples (unit 09).
Nothing here trains a model.

Bad input is named, never measured: a missing model, a loss given by name, images with NaN pixels
(which would give NaN, or 0 active units), a model whose codes are not finite, one-hot labels,
statistics that do not fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import checks
from . import losses as L
from .losses import ELBOLoss


def _as_numpy(name, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    return value


def _check_threshold(threshold) -> float:
    return checks.positive("threshold", threshold, allow_zero=True, hint="nats of variance")


def _check_model(model) -> None:
    if not (callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None))):
        raise TypeError(f"model must be a VAE from vaeutils.models (with encode and decode), got "
                        f"{type(model).__name__}; train one with train.train_vae(...)")


def _check_loss(name: str, loss):
    """None (the Bernoulli ELBO) or a loss with an ``nll(model, out, x)`` method, such as
    ``losses.ELBOLoss``."""
    if loss is None:
        return ELBOLoss()
    if not callable(getattr(loss, "nll", None)):
        if isinstance(loss, str):
            hint = f"losses.ELBOLoss(likelihood={loss!r})"
        else:
            hint = "losses.ELBOLoss(...)"
        raise TypeError(f"{name} must be a loss with an nll(model, out, x) method, e.g. {hint}, "
                        f"got {loss!r}")
    return loss


def _check_images(model, x) -> torch.Tensor:
    """Finite images shaped as ``model`` expects (NaN pixels would be measured as NaN, or as zero
    active units)."""
    checks.images("x", x, finite=True)
    in_shape = getattr(model, "in_shape", None)
    if in_shape is not None and tuple(x.shape[1:]) != tuple(in_shape):
        raise ValueError(f"x must be shaped (batch, {', '.join(map(str, in_shape))}) for this "
                         f"model, got {tuple(x.shape)}")
    return checks.model_dtype("x", x, model)


def _check_codes(mu, logvar) -> None:
    if not (checks.all_finite(mu) and checks.all_finite(logvar)):
        raise ValueError("the encoder gave NaN or inf codes for finite images; check the model's "
                         "weights (e.g. [n for n, p in model.named_parameters() if not "
                         "p.isfinite().all()])")


def summary(model, x, loss=None, *, threshold: float = 0.01, batch_size: int = 1000, seed: int = 0,
            n_images: int = 0) -> dict:
    """Every per-model number the course reports, in one pass over ``x`` (each image encoded once).

    loss: the ``losses.ELBOLoss`` whose likelihood measures the distortion (β, free bits and
    capacity play no part: the numbers are those of the plain ELBO). One z per image from a
    generator seeded with ``seed``, so ``rate``/``distortion``/``neg_elbo`` are :func:`evaluate`'s
    ``kl``/``rec``/``loss``. The rate is the KL to the N(0, I) prior; a model with a learned prior
    is measured by ``priors.prior_summary``.
    Returns: ``rate`` (mean KL, nats), ``distortion`` (mean NLL, nats), ``neg_elbo`` (their sum),
    ``kl_per_dim`` (numpy, nats per latent dimension), ``active`` (units with Var_x μ_u >
    ``threshold``, Burda et al. 2016), ``mu_var`` (numpy, those variances), ``latent_dim``, ``mu``
    and ``logvar`` (CPU tensors), and with ``n_images`` > 0 ``originals``/``reconstructions`` (the
    first images and their decoded posterior means).
    """
    _check_model(model)
    _check_images(model, x)
    if len(x) < 2:
        raise ValueError("x must hold at least 2 images: the active units compare the variance of "
                         "the codes across images, undefined for one; pass more images (or use "
                         "evaluate() for the rate and distortion alone)")
    return _measure(model, x, loss, threshold, batch_size, seed, n_images)


@torch.no_grad()
def _measure(model, x, loss, threshold, batch_size, seed, n_images) -> dict:
    """:func:`summary` once ``model`` and ``x`` are checked (:func:`evaluate` takes one image)."""
    threshold = _check_threshold(threshold)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    n_images = checks.integer("n_images", n_images, low=0)
    loss = _check_loss("loss", loss)
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    mus, logvars, rec_sum = [], [], 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        mu, logvar, _, out = model(xb, gen)
        _check_codes(mu, logvar)  # a NaN encoder is named as such, before the decoder it feeds
        if not checks.all_finite(out):
            raise ValueError("model gave NaN or inf decoder outputs for finite images x; check "
                             "that x holds pixels in [0, 1] and the decoder's weights (e.g. [n for "
                             "n, p in model.named_parameters() if not p.isfinite().all()])")
        rec_sum += loss.nll(model, out, xb).sum().item()
        mus.append(mu)
        logvars.append(logvar)
    model.train(was_training)
    mu, logvar = torch.cat(mus), torch.cat(logvars)
    if not math.isfinite(rec_sum):
        raise ValueError("model gave a NaN or infinite reconstruction NLL for finite images; check "
                         "the decoder's weights (e.g. [n for n, p in model.named_parameters() if "
                         "not p.isfinite().all()])")
    kl = L.kl_per_dim(mu, logvar).mean(0)
    var = mu.var(0) if len(mu) > 1 else torch.full_like(kl, math.nan)
    rate, distortion = float(kl.sum()), rec_sum / len(x)
    out = {"rate": rate, "distortion": distortion, "neg_elbo": rate + distortion,
           "kl_per_dim": kl.cpu().numpy(), "active": int((var > threshold).sum()),
           "mu_var": var.cpu().numpy(), "latent_dim": int(mu.shape[1]), "mu": mu.cpu(),
           "logvar": logvar.cpu()}
    if n_images:
        out["originals"] = x[:n_images].detach().cpu()
        out["reconstructions"] = model.mean_image(model.decode(mu[:n_images])).cpu()
    return out


def evaluate(model, x, loss_fn=None, batch_size: int = 1000, seed: int = 0) -> dict:
    """Per-example means on ``x``: ``rec`` (NLL), ``kl`` and ``loss`` = rec + kl = −ELBO (β = 1), in
    nats: the test row ``train.fit`` logs after every epoch. One z per image from a generator seeded
    with ``seed``, so the numbers repeat exactly; they are :func:`summary`'s ``distortion``,
    ``rate`` and ``neg_elbo``."""
    _check_model(model)
    _check_images(model, x)
    s = _measure(model, x, loss_fn, 0.01, batch_size, seed, 0)
    return {"rec": s["distortion"], "kl": s["rate"], "loss": s["neg_elbo"]}


@torch.no_grad()
def encode_all(model, x, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) of every image of ``x``, ``batch_size`` images at a time, in eval mode (the
    model's mode is restored after). ``model``: anything with ``encode(x) -> (mu, logvar)``. The one
    chunked encoder of the package: ``surgery`` and ``disentangle`` call it too."""
    if not callable(getattr(model, "encode", None)):
        raise TypeError("model must have an encode(x) -> (mu, logvar) method, got "
                        f"{type(model).__name__}; train one with train.train_vae(...)")
    _check_images(model, x)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        parts = [model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    mu, logvar = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    _check_codes(mu, logvar)
    return mu, logvar


@torch.no_grad()
def iwae_bound(model, x, k: int, loss_fn=None, max_rows: int = 20000, seed: int = 0) -> float:
    """Importance-weighted bound (Burda et al. 2016) with k samples, as an NLL estimate in nats per
    example: −mean_x log (1/k) Σ_i p(x, z_i)/q(z_i|x). k = 1 is the ELBO; it tightens as k grows."""
    k = checks.integer("k", k, low=1, hint="importance samples")
    _check_model(model)
    _check_images(model, x)
    loss_fn = _check_loss("loss_fn", loss_fn)
    max_rows = checks.integer("max_rows", max_rows, low=1, hint="decoder rows per chunk")
    seed = checks.integer("seed", seed, low=0)
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    per_chunk = max(1, max_rows // k)
    total = 0.0
    for i in range(0, len(x), per_chunk):
        xb = x[i:i + per_chunk]
        b = len(xb)
        mu, logvar = model.encode(xb)
        _check_codes(mu, logvar)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((k, *mu.shape), generator=gen, device=x.device, dtype=mu.dtype)
        z = mu + std * eps                                           # (k, b, d)
        log_q = (-0.5 * eps.square() - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_pz = (-0.5 * z.square() - 0.5 * math.log(2 * math.pi)).sum(-1)
        out = model.decode(z.reshape(k * b, -1))
        xk = xb.unsqueeze(0).expand(k, *xb.shape).reshape(k * b, *xb.shape[1:])
        log_px = -loss_fn.nll(model, out, xk).view(k, b)
        log_w = log_px + log_pz - log_q
        total += (torch.logsumexp(log_w, 0) - math.log(k)).sum().item()
    model.train(was_training)
    if not math.isfinite(total):
        raise ValueError("the IWAE bound is not finite for finite images; check the model's "
                         "weights for NaN or inf")
    return -total / len(x)


def _discretize(z: np.ndarray, n_bins: int) -> np.ndarray:
    out = np.zeros_like(z, dtype=np.int64)
    for j in range(z.shape[1]):
        # latents near ±1e308 overflow the histogram's range (max − min): measured in a power of
        # two below their size instead (exact, so the bins are the same)
        size = float(np.abs(z[:, j]).max())
        col = z[:, j] / (math.ldexp(1.0, math.frexp(size)[1] - 1) if size > 1e300 else 1.0)
        edges = np.histogram_bin_edges(col, bins=n_bins)
        out[:, j] = np.digitize(col, edges[1:-1])
    return out


def _mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats for two integer-coded arrays (plug-in estimate)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def _entropy(a: np.ndarray) -> float:
    _, counts = np.unique(a, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mig(latents, factors, n_bins: int = 20) -> float:
    """Mutual Information Gap (Chen et al. 2018): mean over factors k of
    (I(z_(1); v_k) − I(z_(2); v_k)) / H(v_k), where z_(1), z_(2) are the two latents most
    informative about v_k.

    latents: (N, d) codes, discretised into ``n_bins`` histogram bins. Use samples z ~ q(z|x), as
    Chen et al. define it: posterior means make switched-off latents look informative;
    factors: (N, K) integer ground-truth factors. Factors with a single value are skipped.
    In [0, 1]."""
    z = _as_numpy("latents", latents).astype(np.float64)
    v = _as_numpy("factors", factors)
    if z.ndim != 2 or v.ndim != 2 or len(z) != len(v):
        raise ValueError(f"latents (N, d) and factors (N, K) must have matching N, got {z.shape} "
                         f"and {v.shape}")
    if z.shape[1] < 2:
        raise ValueError("mig needs at least 2 latent dimensions (the gap compares the top two)")
    n_bins = checks.integer("n_bins", n_bins, low=2, hint="histogram bins per latent")
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or inf; encode the data again or drop those rows")
    integer_codes = np.issubdtype(v.dtype, np.integer)
    if not integer_codes and not (np.isfinite(v).all() and (v == np.round(v)).all()):
        raise ValueError("factors must be integer codes (N, K) of discrete factors, e.g. "
                         "data.train_factors")
    zd = _discretize(z, n_bins)
    gaps = []
    for k in range(v.shape[1]):
        h = _entropy(v[:, k])
        if h <= 0:
            continue
        mi = sorted((_mutual_info(zd[:, j], v[:, k]) for j in range(z.shape[1])), reverse=True)
        gaps.append((mi[0] - mi[1]) / h)
    if not gaps:
        raise ValueError("factors are all constant (each column holds one value), so MIG is "
                         "undefined; pass factors that vary, e.g. data.train_factors")
    return float(np.mean(gaps))


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(m)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID recipe):
    ||μa − μb||² + Tr(Σa + Σb − 2 (Σa^{1/2} Σb Σa^{1/2})^{1/2}). Features (N, F); float64 inside."""
    a = torch.as_tensor(_as_numpy("feats_a", feats_a), dtype=torch.float64)
    b = torch.as_tensor(_as_numpy("feats_b", feats_b), dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(
            "feats_a and feats_b must be (N, F) with the same F and N >= 2, "
            f"got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    if a.shape[1] == 0:
        raise ValueError("feats_a and feats_b must have at least one feature (F >= 1), got F = 0")
    if not (checks.all_finite(a) and checks.all_finite(b)):
        raise ValueError("feats_a and feats_b must be finite; drop the rows with NaN/inf features "
                         "first")
    # features as large as 1e100 overflow the covariances' products: measure in units of their size
    # (a power of two, so exact) and scale the distance back (it grows with the square of the unit)
    unit = _power_of_two(max(float(a.abs().max()), float(b.abs().max())))
    a, b = a / unit, b / unit
    fd = frechet_from_stats(a.mean(0), torch.cov(a.T).reshape(a.shape[1], -1),
                            b.mean(0), torch.cov(b.T).reshape(b.shape[1], -1))
    return _scaled_back(fd, unit)


def _power_of_two(size: float) -> float:
    """1 for everyday feature sizes, else the power of two nearest ``size`` (exact to divide by)."""
    return 1.0 if 1e-30 < size < 1e30 or size == 0 else math.ldexp(1.0, math.frexp(size)[1])


def _scaled_back(fd: float, unit: float) -> float:
    try:
        out = fd * unit * unit
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ValueError(f"the Fréchet distance is too large for float64 ({fd:.3g} × {unit:.3g}²); "
                         "rescale the features (the distance scales with the square of their unit)")
    return out


def _stat(name: str, value, dims: int) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}") from err
    if t.dim() != dims:
        want = "a vector (F,)" if dims == 1 else "a matrix (F, F)"
        raise ValueError(f"{name} must be {want}, got shape {tuple(t.shape)}")
    if not checks.all_finite(t):
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    return t


def frechet_from_stats(mu_a, cov_a, mu_b, cov_b) -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    Means (F,), covariances (F, F), symmetric (to rounding) and positive semi-definite. Computed in
    float64."""
    mu_a, mu_b = _stat("mu_a", mu_a, 1), _stat("mu_b", mu_b, 1)
    cov_a, cov_b = _stat("cov_a", cov_a, 2), _stat("cov_b", cov_b, 2)
    f = len(mu_a)
    if len(mu_b) != f or f == 0:
        raise ValueError(f"mu_a and mu_b must have the same size F >= 1, got {f} and {len(mu_b)}")
    for name, cov in (("cov_a", cov_a), ("cov_b", cov_b)):
        if cov.shape != (f, f):
            raise ValueError(f"{name} must be shaped ({f}, {f}) to match the means, got "
                             f"{tuple(cov.shape)}")
    unit = _power_of_two(max(float(mu_a.abs().max()), float(mu_b.abs().max()),
                             math.sqrt(float(cov_a.abs().max())),
                             math.sqrt(float(cov_b.abs().max()))))
    mu_a, mu_b, cov_a, cov_b = mu_a / unit, mu_b / unit, cov_a / unit**2, cov_b / unit**2
    for name, cov in (("cov_a", cov_a), ("cov_b", cov_b)):
        scale = float(cov.abs().max())
        if not torch.allclose(cov, cov.T, rtol=1e-6, atol=1e-9 * scale):
            raise ValueError(f"{name} must be symmetric (a covariance matrix); got one that "
                             "differs from its transpose by up to "
                             f"{float((cov - cov.T).abs().max()):.3g}")
        if float(torch.linalg.eigvalsh((cov + cov.T) / 2).min()) < -1e-6 * max(scale, 1e-300):
            raise ValueError(f"{name} is not positive semi-definite (a negative eigenvalue), so it "
                             "is no covariance")
    cov_a, cov_b = (cov_a + cov_a.T) / 2, (cov_b + cov_b.T) / 2  # eigh reads one triangle: use both
    s = _sqrt_psd(cov_a)
    cross = torch.linalg.eigvalsh(s @ cov_b @ s).clamp_min(0).sqrt().sum()
    fd = float((mu_a - mu_b).square().sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross)
    return _scaled_back(fd, unit)


def class_coverage(pred_labels, n_classes: int) -> dict:
    """How generated samples spread over classes (mode collapse shows as low entropy).

    Returns counts, frequencies, entropy (nats), normalised entropy H/log K (1 = uniform) and
    classes covered."""
    raw = _as_numpy("pred_labels", pred_labels)
    if raw.ndim != 1:
        one_hot = (raw.ndim == 2 and raw.size and np.isin(raw, (0, 1)).all()
                   and (raw.sum(1) == 1).all())
        what = "one-hot rows" if one_hot else "class indices"
        raise ValueError("pred_labels must be shaped (N,) with one class index per sample, got "
                         f"shape {raw.shape}{' of ' + what if one_hot else ''}; pass "
                         "labels.argmax(1) for one-hot rows or logits")
    if raw.dtype.kind not in "iub" and not np.all(np.mod(raw, 1) == 0):
        raise ValueError("pred_labels must be integer class indices (e.g. logits.argmax(1)), got "
                         "non-integer values")
    y = raw.astype(np.int64)
    n_classes = checks.integer("n_classes", n_classes, low=2)
    if len(y) == 0:
        raise ValueError("pred_labels is empty")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"pred_labels must lie in [0, {n_classes - 1}], got [{y.min()}, "
                         f"{y.max()}]")
    counts = np.bincount(y, minlength=n_classes)
    freqs = counts / counts.sum()
    nz = freqs > 0
    entropy = float(-(freqs[nz] * np.log(freqs[nz])).sum())
    return {"counts": counts, "freqs": freqs, "entropy": entropy,
            "normalized_entropy": entropy / math.log(n_classes), "covered": int(nz.sum())}
