"""Models trained outside ``train_vae`` (a small GAN, a local classifier, a VAE with a learned prior), each
cached like ``train_vae``'s, and the helpers that judge generated images offline (unit 09; the learned prior is
unit 08's).

* :func:`gan_training` is the GAN loop written out (discriminator step on *detached* fakes, then the generator
  step); :func:`train_gan` caches it; :func:`generator_at` rebuilds a snapshot taken during training.
* :func:`train_classifier`: the small CNN whose features replace Inception's (the FID recipe on local features).
* :func:`train_prior_vae`: the 784-400-20 VAE of the β-sweep (same data, epochs, seed and initial weights) with a
  learned prior from ``vaeutils.priors`` instead of N(0, I).
* :func:`judge` measures a set of images: Fréchet distance (``metrics.frechet_distance``) on the classifier's
  features, the classifier score (the Inception-Score recipe), class coverage (``metrics.class_coverage``),
  sharpness, diversity, and nearest-neighbour distances to the training set compared with the real test set's own
  (:func:`nn_distances`, :func:`copy_fraction`). Numbers are comparable with each other at equal sample sizes,
  not with published FID/IS values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import cache as _cache
from . import checks
from . import config as _config
from . import metrics as _metrics
from . import priors as _priors
from .models import MLPVAE, MLPDiscriminator, MLPGenerator, SmallClassifier
from .objectives import gan_discriminator_loss, gan_generator_loss
from .sweep import SWEEP_HIDDEN, SWEEP_LATENT_DIM, prepare_data, sweep_epochs
from .train import TrainResult, fit

GAN_G = {"latent_dim": 64, "hidden": (128, 256)}
GAN_D = {"hidden": (256, 128), "dropout": 0.3}
CLASSIFIER = {"n_classes": 10, "channels": (16, 32), "feature_dim": 128}


def _data_key(data) -> dict:
    return {"name": data.name, "source": data.source, "n_train": len(data.train_x), "n_test": len(data.test_x)}


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", mininterval=0.5, disable=not progress)


# --------------------------------------------------------------------------- a small GAN

def gan_training(gan: nn.ModuleDict, train_x: torch.Tensor, kind: str, steps: int, *, snapshot_every: int = 0,
                 batch_size: int = 64, lr: float = 2e-4, seed: int = 0, progress: bool = True) -> dict:
    """Train ``gan["G"]`` and ``gan["D"]`` for ``steps`` alternating steps with Adam (β₁ = 0.5, as in DCGAN).

    ``kind``: the generator loss, ``"non_saturating"`` or ``"minimax"`` (``objectives.gan_generator_loss``).
    The discriminator sees ``fake.detach()``: its backward pass stops at the samples, so it neither runs through G
    nor leaves gradients in G's parameters. History per step: ``d_loss``, ``g_loss``, ``d_fake`` (mean D(G(z))),
    ``g_grad_norm``; ``snapshots``: G's weights every ``snapshot_every`` steps (0: none)."""
    checks.choice("kind", kind, ("non_saturating", "minimax"))
    steps = checks.integer("steps", steps, low=1)
    snapshot_every = checks.integer("snapshot_every", snapshot_every, low=0)
    G, D = gan["G"].train(), gan["D"].train()
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    history = {"d_loss": [], "g_loss": [], "d_fake": [], "g_grad_norm": [], "snapshots": {}}
    device = train_x.device
    with torch.random.fork_rng(devices=[]), _bar(steps, f"GAN ({kind})", progress) as bar:
        torch.manual_seed(seed)  # dropout draws
        for step in range(1, steps + 1):
            real = train_x[torch.randint(0, len(train_x), (batch_size,), generator=gen).to(device)]
            fake = G(torch.randn(batch_size, G.latent_dim, generator=gen).to(device))
            d_loss = gan_discriminator_loss(D(real), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            fake_logits = D(fake)
            g_loss = gan_generator_loss(fake_logits, kind)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            norm = torch.sqrt(sum(p.grad.square().sum() for p in G.parameters()))
            opt_g.step()
            values = (d_loss, g_loss, torch.sigmoid(fake_logits).mean(), norm)
            for key, value in zip(("d_loss", "g_loss", "d_fake", "g_grad_norm"), values):
                history[key].append(value.item())
            if snapshot_every and step % snapshot_every == 0:
                history["snapshots"][str(step)] = {k: v.detach().cpu().clone() for k, v in G.state_dict().items()}
            bar.update(1)
    G.eval()
    D.eval()
    return history


def train_gan(data, kind: str = "non_saturating", steps: int = 3000, *, snapshot_every: int = 0, seed: int = 0,
              progress: bool = True):
    """Load the GAN if cached, else train it with :func:`gan_training`: returns ``(G, D, history, loaded)``."""
    key = {"data": _data_key(data), "kind": kind, "steps": steps, "snapshot_every": snapshot_every, "seed": seed,
           "G": GAN_G, "D": GAN_D, "batch_size": 64, "lr": 2e-4}
    shape = data.image_shape

    def build():
        _config.seed_everything(seed)
        return nn.ModuleDict({"G": MLPGenerator(out_shape=shape, **GAN_G), "D": MLPDiscriminator(shape, **GAN_D)})

    def run(gan):
        gan.to(data.train_x.device)
        return gan_training(gan, data.train_x, kind, steps, snapshot_every=snapshot_every, seed=seed,
                            progress=progress)

    gan, history, hit = _cache.load_or_train("gan", key, build, run)
    gan = gan.to(data.train_x.device).eval()
    return gan["G"], gan["D"], history, hit


def generator_at(history: dict, step: int, shape=(1, 28, 28), device=None) -> MLPGenerator:
    """The generator as it was after ``step`` steps (a snapshot of :func:`gan_training`)."""
    if str(step) not in history.get("snapshots", {}):
        raise ValueError(f"no snapshot at step {step}; snapshots at {sorted(map(int, history.get('snapshots', {})))}")
    G = MLPGenerator(out_shape=shape, **GAN_G)
    G.load_state_dict(history["snapshots"][str(step)])
    return G.to(device or _config.get_device()).eval()


# --------------------------------------------------------------------------- the local judge's features

def train_classifier(data, epochs: int | None = None, *, seed: int = 0, progress: bool = True):
    """The small CNN classifier of the judge (cached): returns ``(classifier, history, loaded)``; history
    ``test_accuracy`` per epoch. Default epochs: 6 (full mode), 1 (smoke)."""
    epochs = _config.pick(full=6, smoke=1) if epochs is None else checks.integer("epochs", epochs, low=1)
    key = {"data": _data_key(data), "args": CLASSIFIER, "epochs": epochs, "seed": seed, "batch_size": 64}

    def build():
        _config.seed_everything(seed)
        return SmallClassifier(in_shape=data.image_shape, **CLASSIFIER)

    def run(net):
        net = net.to(data.train_x.device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen, n = torch.Generator().manual_seed(seed), len(data.train_x)
        history = {"test_accuracy": []}
        with _bar(epochs * math.ceil(n / 64), "classifier", progress) as bar:
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
    classifier.eval()
    return float((classifier(x).argmax(1) == y).double().mean())


# --------------------------------------------------------------------------- a VAE with a learned prior (unit 08)

def train_prior_vae(data=None, kind: str = "vamp", n_components: int = 100, *, beta: float = 1.0,
                    epochs: int | None = None, seed: int = 0, progress: bool = True) -> TrainResult:
    """The β-sweep's VAE (784-400-20, dynamically binarized training images, the same initial weights, epochs and
    seed) with a learned prior: ``kind`` ``"vamp"`` (pseudo-inputs started at ``n_components`` random training
    images) or ``"mog"``. Trained with ``priors.LearnedPriorELBO``; returns ``TrainResult(model, history, loaded)``
    with ``model`` a ``priors.PriorVAE``."""
    data = prepare_data(data)
    epochs = sweep_epochs() if epochs is None else checks.integer("epochs", epochs, low=1)
    loss = _priors.LearnedPriorELBO(beta=beta)
    key = {"data": _data_key(data), "hidden": SWEEP_HIDDEN, "latent_dim": SWEEP_LATENT_DIM, "prior": kind,
           "n_components": n_components, "loss": loss.describe(), "epochs": epochs, "seed": seed,
           "batch_size": 128, "lr": 1e-3, "binarize": True}

    def build():
        _config.seed_everything(seed)  # as train_vae does: the same initial VAE as the sweep's
        vae = MLPVAE(in_shape=data.image_shape, hidden=SWEEP_HIDDEN, latent_dim=SWEEP_LATENT_DIM)
        pick = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))[:n_components]
        init = data.train_x[pick.to(data.train_x.device)] if kind == "vamp" else None
        return _priors.build_prior_vae(kind, vae, n_components, init=init, seed=seed)

    def run(model):
        return fit(model, data.train_x, loss, epochs=epochs, seed=seed, progress=progress, binarize=True)

    model, history, hit = _cache.load_or_train(f"prior-{kind}", key, build, run)
    return TrainResult(model.to(data.train_x.device).eval(), history, hit)


# --------------------------------------------------------------------------- judging images

@torch.no_grad()
def features(classifier: SmallClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The classifier's penultimate-layer features of ``images`` (float64, CPU)."""
    checks.images("images", images)
    classifier.eval()
    return torch.cat([classifier.features(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
                     ).double().cpu()


def sharpness(images: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels (image-gradient energy); blur lowers it."""
    checks.images("images", images)
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return float(dx.square().mean() + dy.square().mean())


def diversity(images: torch.Tensor, n: int = 300) -> float:
    """Mean Euclidean distance between two of the first ``n`` images."""
    checks.images("images", images)
    return float(torch.pdist(images[:n].flatten(1).double()).mean())


@torch.no_grad()
def nn_distances(images: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """Euclidean distance from each image to its nearest neighbour in ``reference`` (CPU, float64).

    ``exclude_self``: ignore matches closer than 1e-3, for images that are themselves in ``reference`` (two
    different 8-bit images differ by at least 1/255 in one pixel; rounding leaves about 1e-7 between copies)."""
    checks.images("images", images)
    checks.images("reference", reference)
    if images.shape[1:] != reference.shape[1:]:
        raise ValueError(f"images {tuple(images.shape[1:])} and reference {tuple(reference.shape[1:])} differ in shape")
    d = torch.cdist(images.flatten(1).double().cpu(), reference.flatten(1).double().cpu())
    if exclude_self:
        d = d.masked_fill(d < 1e-3, float("inf"))
    return d.min(1).values


def copy_fraction(sample_nn: torch.Tensor, real_nn: torch.Tensor, level: float = 0.05) -> float:
    """The fraction of samples closer to a training image than all but ``level`` of the real test images are:
    about ``level`` for a model that does not copy, near 1 for one that returns training images."""
    checks.number("level", level, 0.0, 1.0, low_open=True, high_open=True)
    return float((sample_nn < torch.quantile(real_nn.double(), level)).double().mean())


@torch.no_grad()
def top_probability(classifier: SmallClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's probability of its own best guess, per image (CPU): low where an image is no clear digit."""
    feats = features(classifier, images)
    return F.softmax(classifier.head(feats.float().to(images.device)), 1).max(1).values.double().cpu()


@torch.no_grad()
def judge(images: torch.Tensor, classifier: SmallClassifier, test_x: torch.Tensor, train_x: torch.Tensor, *,
          n_nn: int = 300, real_nn: torch.Tensor | None = None, exclude_self: bool = False,
          test_feats: torch.Tensor | None = None) -> dict:
    """Every offline score of ``images`` (compare sets of equal size): ``FD`` against ``test_x`` on the
    classifier's features, ``score`` (exp E KL(p(y|x) ‖ p(y))), ``coverage`` (``metrics.class_coverage``),
    ``confidence`` (mean top probability), ``sharpness``, ``diversity``, ``nn`` (mean distance of the first
    ``n_nn`` images to their nearest training image) and, given the test set's own ``real_nn``, ``nn_ratio``
    (``nn`` over theirs) and ``copies`` (:func:`copy_fraction`). ``test_feats``: :func:`features` of ``test_x``,
    when already computed (judging many sets against one test set)."""
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
        out["nn_ratio"] = out["nn"] / float(real_nn.mean())
        out["copies"] = copy_fraction(nearest, real_nn)
    return out
