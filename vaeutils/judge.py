"""Judging generated images offline, with no download (unit 09; unit 05 uses the first two):

* :func:`nearest_distance` and :func:`sample_realism`: how far a model's prior samples land from the
  nearest binary training image, and how varied they are;
* :func:`train_classifier`: the small CNN whose features replace Inception's (the FID recipe on
  local features);
* :func:`judge` measures a set of images: Fréchet distance (``metrics.frechet_distance``) on the
  classifier's features, the classifier score (the Inception-Score recipe), class coverage
  (``metrics.class_coverage``), sharpness, diversity, and nearest-neighbour distances to the
  training set compared with the real test set's own (:func:`nn_distances`, :func:`copy_fraction`).
  Numbers are comparable with each other at equal sample sizes, not with published FID/IS values.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import cache as _cache
from . import checks
from . import config as _config
from . import metrics as _metrics
from .i18n import N_, tr
from .models import SmallClassifier

CLASSIFIER = {"n_classes": 10, "channels": (16, 32), "feature_dim": 128}


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=tr(desc), unit="step", mininterval=0.5, disable=not progress)


# ----------------------------------------------------------------------- the local judge's features

def train_classifier(data, epochs: int | None = None, *, seed: int = 0, progress: bool = True):
    """The small CNN classifier of the judge (cached): returns ``(classifier, history, loaded)``;
    history ``test_accuracy`` per epoch. Default epochs: 6 (full mode), 1 (smoke)."""
    if epochs is None:
        epochs = _config.pick(full=6, smoke=1)
    epochs = checks.integer("epochs", epochs, low=1)
    key = {"data": data.key(), "args": CLASSIFIER, "epochs": epochs, "seed": seed, "batch_size": 64}

    def build():
        _config.seed_everything(seed)
        return SmallClassifier(in_shape=data.image_shape, **CLASSIFIER)

    def run(net):
        net = net.to(data.train_x.device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen, n = torch.Generator().manual_seed(seed), len(data.train_x)
        history = {"test_accuracy": []}
        with _bar(epochs * math.ceil(n / 64), N_("classifier"), progress) as bar:
            for _ in range(epochs):
                net.train()
                perm = torch.randperm(n, generator=gen).to(data.train_x.device)
                for i in range(0, n, 64):
                    idx = perm[i:i + 64]
                    loss = F.cross_entropy(net(data.train_x[idx]), data.train_y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    bar.update(1)
                history["test_accuracy"].append(accuracy(net, data.test_x, data.test_y))
        return history

    net, history, hit = _cache.load_or_train("classifier", key, build, run)
    return net.to(data.train_x.device).eval(), history, hit


@torch.no_grad()
def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of the images ``x`` whose label ``y`` (N,) the classifier gets right."""
    checks.images("x", x, finite=True)
    checks.model_dtype("x", x, classifier)
    checks.tensor("y", y, floating=False, dim=1)
    if len(y) != len(x):
        raise ValueError(f"y must hold one label per image of x: got {len(y)} labels for {len(x)} "
                         "images; pass the labels that belong to x (e.g. data.test_y)")
    classifier.eval()
    return float((classifier(x).argmax(1) == y).double().mean())


# --------------------------------------------------------------------------- judging images

@torch.no_grad()
def features(classifier: SmallClassifier, images: torch.Tensor,
             batch_size: int = 1000) -> torch.Tensor:
    """The classifier's penultimate-layer features of ``images`` (float64, CPU)."""
    checks.images("images", images, finite=True)
    checks.model_dtype("images", images, classifier)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    classifier.eval()
    parts = [classifier.features(images[i:i + batch_size])
             for i in range(0, len(images), batch_size)]
    return torch.cat(parts).double().cpu()


def sharpness(images: torch.Tensor) -> float:
    """Mean squared difference of neighbouring pixels (image-gradient energy); blur lowers it."""
    checks.images("images", images, finite=True)
    if min(images.shape[-2:]) < 2:
        raise ValueError(f"images must be at least 2x2 pixels to have neighbours, got "
                         f"{tuple(images.shape[-2:])}; pass the images themselves, not a summary")
    if images.dtype in (torch.float16, torch.bfloat16):
        images = images.float()  # their 3 digits would show in the mean
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return float(dx.square().mean() + dy.square().mean())


def diversity(images: torch.Tensor, n: int = 300) -> float:
    """Mean Euclidean distance between two of the first ``n`` images."""
    checks.images("images", images, finite=True)
    n = checks.integer("n", n, low=2, hint="how many images to compare: a distance needs two")
    if len(images) < 2:
        raise ValueError(f"images must hold at least 2 images to measure a distance, got "
                         f"{len(images)}; pass the whole set of samples")
    return float(torch.pdist(images[:n].flatten(1).double()).mean())


@torch.no_grad()
def nn_distances(images: torch.Tensor, reference: torch.Tensor,
                 exclude_self: bool = False) -> torch.Tensor:
    """Euclidean distance from each image to its nearest neighbour in ``reference`` (CPU, float64).

    ``exclude_self``: ignore matches closer than 1e-3, for images that are themselves in
    ``reference`` (two different 8-bit images differ by at least 1/255 in one pixel; rounding leaves
    about 1e-7 between copies)."""
    checks.images("images", images)
    checks.images("reference", reference)
    if images.shape[1:] != reference.shape[1:]:
        raise ValueError(f"images {tuple(images.shape[1:])} and reference "
                         f"{tuple(reference.shape[1:])} differ in shape")
    d = torch.cdist(images.flatten(1).double().cpu(), reference.flatten(1).double().cpu())
    if exclude_self:
        d = d.masked_fill(d < 1e-3, float("inf"))
    return d.min(1).values


def copy_fraction(sample_nn: torch.Tensor, real_nn: torch.Tensor, level: float = 0.05) -> float:
    """The fraction of samples closer to a training image than all but ``level`` of the real test
    images are: about ``level`` for a model that does not copy, near 1 for one that returns training
    images."""
    sample_nn, real_nn = _distances("sample_nn", sample_nn), _distances("real_nn", real_nn)
    checks.number("level", level, 0.0, 1.0, low_open=True, high_open=True)
    return float((sample_nn < torch.quantile(real_nn, level)).double().mean())


def _distances(name: str, value) -> torch.Tensor:
    """Nearest-neighbour distances (N,) as float64: a tensor or NumPy array, non-empty, finite, ≥ 0
    (what :func:`nn_distances` returns)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    checks.tensor(name, value, dim=1, nonempty=True)
    checks.finite(name, value, f"; distances must be finite: compute {name} with nn_distances")
    if bool((value < 0).any()):
        raise ValueError(f"{name} holds negative values, which are no distances; compute it with "
                         "nn_distances")
    return value.double()


@torch.no_grad()
def top_probability(classifier: SmallClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's probability of its own best guess, per image (CPU): low where an image is
    no clear digit."""
    feats = features(classifier, images)
    probs = F.softmax(classifier.head(feats.float().to(images.device)), 1)
    return probs.max(1).values.double().cpu()


@torch.no_grad()
def judge(images: torch.Tensor, classifier: SmallClassifier, test_x: torch.Tensor,
          train_x: torch.Tensor, *, n_nn: int = 300, real_nn: torch.Tensor | None = None,
          exclude_self: bool = False, test_feats: torch.Tensor | None = None) -> dict:
    """Every offline score of ``images`` (compare sets of equal size): ``FD`` against ``test_x`` on
    the classifier's features, ``score`` (exp E KL(p(y|x) ‖ p(y))), ``coverage``
    (``metrics.class_coverage``), ``confidence`` (mean top probability), ``sharpness``,
    ``diversity``, ``nn`` (mean distance of the first ``n_nn`` images to their nearest training
    image) and, given the test set's own ``real_nn``, ``nn_ratio`` (``nn`` over theirs) and
    ``copies`` (:func:`copy_fraction`). ``test_feats``: :func:`features` of ``test_x``, when already
    computed (judging many sets against one test set)."""
    checks.images("images", images)
    images = images.to(test_x.device)
    feats = features(classifier, images)
    probs = F.softmax(classifier.head(feats.float().to(test_x.device)), 1).double().cpu()
    p_y = probs.mean(0, keepdim=True)
    score = math.exp(float((probs * (probs.clamp_min(1e-12).log() - p_y.log())).sum(1).mean()))
    nearest = nn_distances(images[:n_nn], train_x, exclude_self=exclude_self)
    test_feats = features(classifier, test_x) if test_feats is None else test_feats
    out = {"FD": _metrics.frechet_distance(feats, test_feats), "score": score,
           "coverage": _metrics.class_coverage(probs.argmax(1), probs.shape[1]),
           "confidence": float(probs.max(1).values.mean()), "sharpness": sharpness(images),
           "diversity": diversity(images), "nn": float(nearest.mean())}
    if real_nn is not None:
        real_nn = _distances("real_nn", real_nn)
        out["nn_ratio"] = out["nn"] / float(real_nn.mean())
        out["copies"] = copy_fraction(nearest, real_nn)
    return out


# ------------------------------------------------------------- how real are prior samples (unit 05)

def nearest_distance(images: torch.Tensor, reference: torch.Tensor,
                     chunk: int = 1000) -> torch.Tensor:
    """For each image p of ``images`` (N, …, pixels in [0, 1]): Σ |p − t| over the pixels, for the
    nearest binary image t of ``reference`` (M, …). When p is binary this counts the pixels in which
    it differs from t (a Hamming distance); when p is a decoder's mean it is the expected number of
    pixels in which a binary image drawn from p would differ from t. Shape (N,), float64."""
    checks.images("images", images)
    checks.images("reference", reference)
    a, b = images.flatten(1).float(), reference.flatten(1).float().to(images.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"images and reference must have the same size, got {a.shape[1]} and "
                         f"{b.shape[1]} pixels")
    if not ((b == 0) | (b == 1)).all():
        raise ValueError("reference must be binary images (0/1): binarize them with "
                         "data.static_binarize")
    if a.min() < 0 or a.max() > 1:
        raise ValueError("images must lie in [0, 1]: pass decoded means (model.mean_image) or "
                         "binary images")
    b_ones = b.sum(1)  # for binary t, Σ|p − t| = Σp + Σt − 2 p·t: one matrix product per chunk
    out = [(ac.sum(1, keepdim=True) + b_ones - 2 * ac @ b.T).min(1).values for ac in a.split(chunk)]
    return torch.cat(out).double().cpu()


@torch.no_grad()
def sample_realism(model, reference: torch.Tensor, n: int = 2000, seed: int = 2,
                   n_diversity: int | None = None) -> dict:
    """How like the binary ``reference`` images (the statically binarized training set) ``n``
    prior samples are.

    Each sample is a code z ~ N(0, I) (the same ``seed`` gives the same codes to every model of a
    sweep) decoded to its mean image p. Returns ``distance`` (numpy, (n,)): :func:`nearest_distance`
    of each p, the expected number of pixels in which a binary draw from p differs from its nearest
    reference image (a blurred pixel costs half a pixel whatever the reference, so blur is not
    flattered); and ``diversity``: the mean Euclidean distance between two of the first
    ``n_diversity`` (default: 500, or n if fewer) decoded means (pixels in [0, 1])."""
    n = checks.integer("n", n, low=2)
    n_diversity = checks.integer("n_diversity", min(500, n) if n_diversity is None else n_diversity,
                                 low=2, high=n)
    model.eval()
    means = model.sample(n, generator=torch.Generator().manual_seed(seed))
    return {"distance": nearest_distance(means, reference).numpy(),
            "diversity": diversity(means, n_diversity)}
