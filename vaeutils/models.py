"""VAE models: an MLP VAE (the 784-400-20 of the PyTorch example is
``MLPVAE(hidden=(400,), latent_dim=20)``) and a small convolutional VAE.

Both return ``VAEOutput(mu, logvar, z, out)`` where ``out`` is the decoder's raw output shaped like
the input: Bernoulli logits, or, for Gaussian/Laplace decoders, the pre-sigmoid mean. The
image-space mean is ``sigmoid(out)`` for every likelihood (``mean_image``). A learned decoder scale
(log σ or log b) lives in ``model.log_scale`` when asked for (``learned_scale="shared"`` or
``"pixel"``).
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import NamedTuple

import torch
from torch import nn

from . import checks


class VAEOutput(NamedTuple):
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    out: torch.Tensor


def _check_shape(in_shape) -> tuple[int, ...]:
    try:
        sizes = tuple(in_shape)
    except TypeError as err:
        raise TypeError(f"in_shape must be a tuple like (1, 28, 28), got {in_shape!r}") from err
    if len(sizes) != 3:
        raise ValueError("in_shape must be (channels, height, width) with positive sizes, got "
                         f"{in_shape!r}")
    try:  # ints only: int(28.5) would quietly build a model for 28-pixel images
        return tuple(checks.integer("in_shape", s, low=1) for s in sizes)
    except ValueError:
        raise ValueError("in_shape must be (channels, height, width) with positive int sizes, got "
                         f"{in_shape!r}; pass data.image_shape") from None


def _check_latent(latent_dim) -> int:
    return checks.integer("latent_dim", latent_dim, low=1)


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, Integral) and not isinstance(hidden, bool):
        sizes = (hidden,)
    elif isinstance(hidden, (bool, str)) or not hasattr(hidden, "__iter__"):
        raise TypeError("hidden must be a positive int or a tuple of them such as (400,), got "
                        f"{hidden!r}")
    else:
        sizes = tuple(hidden)
    if not sizes:
        raise ValueError("hidden must be a non-empty tuple of positive ints such as (400,), got ()")
    return tuple(checks.integer("hidden", h, low=1, hint="each layer's size") for h in sizes)


class _VAEBase(nn.Module):
    in_shape: tuple[int, ...]
    latent_dim: int

    def _init_scale(self, learned_scale):
        if learned_scale not in (None, "shared", "pixel"):
            raise ValueError("learned_scale must be None, 'shared' or 'pixel', got "
                             f"{learned_scale!r}")
        self.learned_scale = learned_scale
        if learned_scale == "shared":
            self.log_scale = nn.Parameter(torch.zeros(()))
        elif learned_scale == "pixel":
            self.log_scale = nn.Parameter(torch.zeros(self.in_shape))
        else:
            self.log_scale = None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z|x): the encoder's features through one linear layer, split in two."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=-1)
        return mu, logvar

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor,
                       generator=None) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I): the sample is a differentiable function of (μ, log σ²)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, generator=None) -> VAEOutput:
        if x.shape[1:] != self.in_shape:
            raise ValueError(
                f"x must be shaped (batch, {', '.join(map(str, self.in_shape))}), got "
                f"{tuple(x.shape)}"
            )
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return VAEOutput(mu, logvar, z, self.decode(z))

    @staticmethod
    def mean_image(out: torch.Tensor) -> torch.Tensor:
        """Image-space mean of the decoder: sigmoid of its output (Bernoulli p, Gaussian mean)."""
        return torch.sigmoid(out)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean μ(x): the usual picture of a reconstruction."""
        mu, _ = self.encode(x)
        return self.mean_image(self.decode(mu))

    @torch.no_grad()
    def sample(self, n: int, generator=None) -> torch.Tensor:
        """Decode n draws from the prior N(0, I); returns image-space means."""
        n = checks.integer("n", n, low=1, hint="how many samples")
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator,
                        device=p.device if generator is None else "cpu")
        return self.mean_image(self.decode(z.to(p.device)))


class MLPVAE(_VAEBase):
    """Fully connected VAE: x → hidden… → (μ, log σ²) → z → …hidden → logits."""

    def __init__(self, in_shape=(1, 28, 28), hidden=(400,), latent_dim: int = 20,
                 learned_scale=None):
        super().__init__()
        self.in_shape = _check_shape(in_shape)
        self.latent_dim = _check_latent(latent_dim)
        self.hidden = hidden = _check_hidden(hidden)
        d_in = math.prod(self.in_shape)
        enc, width = [], d_in
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.encoder = nn.Sequential(nn.Flatten(), *enc)
        self.to_stats = nn.Linear(width, 2 * latent_dim)
        dec, width = [], latent_dim
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.decoder = nn.Sequential(*dec, nn.Linear(width, d_in))
        self._init_scale(learned_scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.in_shape)


class ConvVAE(_VAEBase):
    """Small convolutional VAE for square images whose side is divisible by 4 (28, 32, 64)."""

    def __init__(self, in_shape=(1, 28, 28), latent_dim: int = 10, channels=(32, 64),
                 hidden: int = 256, learned_scale=None):
        super().__init__()
        self.in_shape = _check_shape(in_shape)
        self.latent_dim = _check_latent(latent_dim)
        c, h, w = self.in_shape
        if h % 4 or w % 4:
            raise ValueError(f"ConvVAE needs height and width divisible by 4, got {in_shape!r}; "
                             "use MLPVAE instead")
        c1, c2 = channels
        self.feat = (c2, h // 4, w // 4)
        n_feat = math.prod(self.feat)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(n_feat, hidden), nn.ReLU(),
        )
        self.to_stats = nn.Linear(hidden, 2 * latent_dim)
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                        nn.Linear(hidden, n_feat), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(c1, c, 4, 2, 1),
        )
        self._init_scale(learned_scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.decoder_fc(z).view(-1, *self.feat))


@torch.no_grad()
def traversal_images(model, z0: torch.Tensor, dims=None, span: float = 3.0,
                     steps: int = 7) -> torch.Tensor:
    """Decode the code ``z0`` with one latent dimension at a time swept over [−span, span] (prior σ
    units), the others held. Returns (len(dims) * steps, C, H, W) image-space means, ``steps``
    images per dimension in ``dims`` (default: every dimension). Unit 05 draws them
    (``plots.traversal``), unit 06 measures them."""
    checks.tensor("z0", z0)
    span = checks.positive("span", span, hint="prior standard deviations")
    steps = checks.integer("steps", steps, low=2)
    checks.finite("z0", z0)
    checks.model_dtype("z0", z0, model)
    z0 = z0.reshape(-1)
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is not None and z0.numel() != latent_dim:
        raise ValueError(f"z0 must be one code of the model's {latent_dim} latent dimensions, got "
                         f"shape {tuple(z0.shape)}; pass e.g. torch.zeros({latent_dim})")
    dims = list(range(z0.numel())) if dims is None else [
        checks.integer("dims", d, 0, z0.numel() - 1) for d in dims]
    values = torch.linspace(-span, span, steps, device=z0.device)
    z = z0.repeat(len(dims) * steps, 1)
    for r, d in enumerate(dims):
        z[r * steps:(r + 1) * steps, d] = values
    if hasattr(model, "eval"):
        model.eval()
    return model.mean_image(model.decode(z))


def build_model(kind: str = "mlp", **kwargs) -> _VAEBase:
    """``build_model("mlp", hidden=(400,), latent_dim=20)`` or ``build_model("conv", ...)``."""
    if kind == "mlp":
        return MLPVAE(**kwargs)
    if kind == "conv":
        return ConvVAE(**kwargs)
    raise ValueError(f"model kind must be 'mlp' or 'conv', got {kind!r}")


# ------------------------------------------ a small GAN and a local feature extractor (unit 09)



class MLPGenerator(nn.Module):
    """GAN generator: z ~ N(0, I) → hidden… → image in [0, 1] (sigmoid, as the VAE's mean image)."""

    def __init__(self, out_shape=(1, 28, 28), latent_dim: int = 64, hidden=(256, 512),
                 batchnorm: bool = True):
        super().__init__()
        self.out_shape = _check_shape(out_shape)
        self.latent_dim = _check_latent(latent_dim)
        layers, width = [], self.latent_dim
        for h in _check_hidden(hidden):
            layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if batchnorm else []),
                       nn.LeakyReLU(0.2)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, math.prod(self.out_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be shaped (batch, {self.latent_dim}), got {tuple(z.shape)}")
        return torch.sigmoid(self.net(z)).view(-1, *self.out_shape)

    @torch.no_grad()
    def sample(self, n: int, generator=None) -> torch.Tensor:
        """n images from n prior draws (``generator``: a CPU ``torch.Generator``, for repeatable
        draws)."""
        n = checks.integer("n", n, low=1, hint="how many samples")
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator,
                        device="cpu" if generator is not None else p.device)
        return self(z.to(p.device))


class MLPDiscriminator(nn.Module):
    """GAN discriminator: image → hidden… → one logit per image (D(x) = sigmoid(logit))."""

    def __init__(self, in_shape=(1, 28, 28), hidden=(512, 256), dropout: float = 0.3):
        super().__init__()
        self.in_shape = _check_shape(in_shape)
        dropout = checks.number("dropout", dropout, 0.0, 1.0, high_open=True,
                                hint="the chance to drop a unit")
        layers, width = [nn.Flatten()], math.prod(self.in_shape)
        for h in _check_hidden(hidden):
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2),
                       *([nn.Dropout(dropout)] if dropout else [])]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"x must be shaped (batch, {', '.join(map(str, self.in_shape))}), got "
                             f"{tuple(x.shape)}")
        return self.net(x).squeeze(1)


class SmallClassifier(nn.Module):
    """A small CNN classifier whose penultimate layer serves as a local feature extractor (the role
    Inception-v3 plays for FID): ``features(x)`` → (batch, feature_dim), ``forward(x)`` → logits."""

    def __init__(self, in_shape=(1, 28, 28), n_classes: int = 10, channels=(32, 64),
                 feature_dim: int = 128):
        super().__init__()
        self.in_shape = _check_shape(in_shape)
        c, h, w = self.in_shape
        if h % 4 or w % 4:
            raise ValueError("SmallClassifier needs height and width divisible by 4, got "
                             f"{in_shape!r}")
        checks.integer("n_classes", n_classes, low=2)
        checks.integer("feature_dim", feature_dim, low=1)
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"x must be shaped (batch, {', '.join(map(str, self.in_shape))}), got "
                             f"{tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
