"""The IDX files MNIST and Fashion-MNIST come in, and the one network check the data loaders make.

``read_idx`` checks every header against the file's size before trusting it; ``check_split`` checks
that the four files of a split fit together (images and labels where each belongs, as many labels as
images, at least one image, train and test images of one size). ``network_available`` asks once per
host and session, with a short timeout, so an offline machine falls back to the local data at once.
"""

from __future__ import annotations

import gzip
import math
import tempfile
import threading
import urllib.request
import zlib
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from . import checks

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _env_offline() -> bool:
    return checks.env_flag("VAELAB_OFFLINE")


# --------------------------------------------------------------- network (checked once per session)

_reachable: dict[str, bool] = {}


def network_available(url: str, timeout: float = 2.0) -> bool:
    """True if ``url`` answers an HTTP HEAD request with 200 within ``timeout`` seconds (per host,
    remembered).

    A real request, not just a connect: some networks accept every connection and answer 404 from a
    proxy. It runs in a thread, so even a slow name lookup cannot hold a notebook up for more than
    ``timeout`` seconds.
    """
    host = urlparse(url).hostname
    if host in _reachable:
        return _reachable[host]
    result = [False]

    def attempt():
        try:
            request = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                result[0] = reply.status == 200
        except Exception:  # any failure (DNS, refused, TLS, HTTP error): no download from here
            pass

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    _reachable[host] = result[0]
    return result[0]


def offline_reason(offline: bool | None, url) -> str | None:
    """Why there will be no download (None: go ahead). ``url``: the file to probe, or a function
    that returns it (called only when the network is to be tried)."""
    if offline:
        return "offline=True"
    if _env_offline():
        return "VAELAB_OFFLINE=1"
    url = url() if callable(url) else url
    if not network_available(url):
        return f"no network ({urlparse(url).hostname} unreachable)"
    return None


# ---------------------------------------------------------------- IDX files (the MNIST file format)

def _idx_header(head: bytes, size: int, path: Path, fix: str) -> tuple[int, ...]:
    """The shape an IDX header stores, once the header and the body's size (exactly that many bytes)
    are checked."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[3] not in (1, 3):
        raise ValueError(f"{path} is not an MNIST-style IDX file (bad magic number "
                         f"{head[:4].hex() or 'empty'}); {fix}")
    if head[2] != 0x08:
        raise ValueError(f"{path} holds IDX type 0x{head[2]:02x}, expected unsigned bytes (0x08); "
                         f"{fix}")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated inside its header; {fix}")
    shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + math.prod(shape)
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise ValueError(f"{path} is {what}: {size:,} bytes, expected {expected:,} for shape "
                         f"{shape}; {fix}")
    return shape


def _plain_idx_shape(path: Path, fix: str) -> tuple[int, ...]:
    """Shape of an uncompressed IDX file, checked against the file size without reading the body."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {fix}")
    with open(path, "rb") as f:
        return _idx_header(f.read(16), path.stat().st_size, path, fix)


def read_idx(path, fix: str = "download it again") -> torch.Tensor:
    """uint8 tensor from an IDX file (plain or gzip), parsed by torchvision's own MNIST reader.

    A missing, damaged or truncated file raises ``FileNotFoundError``/``ValueError`` naming the file
    and ``fix`` (what the reader should do about it).
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {fix}")
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if not compressed:
        shape = _plain_idx_shape(path, fix)
        if math.prod(shape) == 0:  # torchvision cannot parse an empty body; check_split names it
            return torch.zeros(shape, dtype=torch.uint8)
        return read_image_file(str(path)) if len(shape) == 3 else read_label_file(str(path))
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is a damaged gzip file ({err}); {fix}") from None
    shape = _idx_header(raw[:16], len(raw), path, fix)
    if math.prod(shape) == 0:
        return torch.zeros(shape, dtype=torch.uint8)
    with tempfile.TemporaryDirectory(prefix="vaelab-idx-") as tmp:
        plain = Path(tmp) / path.stem
        plain.write_bytes(raw)
        return read_image_file(str(plain)) if len(shape) == 3 else read_label_file(str(plain))


def check_split(shapes: dict, names: dict, fix: str = "") -> None:
    """Raise ``ValueError`` unless the four parts of a split fit together: images shaped (N, H, W)
    and labels (N,) (not swapped), as many labels as images, at least one image, train and test
    images of one size.

    ``shapes`` and ``names`` (what to call each part in the message, e.g. its file) are keyed like
    ``IDX_FILES``; ``fix`` (what to do about it) ends the message."""
    fix = f"; {fix}" if fix else ""
    shapes = {k: tuple(int(n) for n in v) for k, v in shapes.items()}
    for x, y in (("train_x", "train_y"), ("test_x", "test_y")):
        for key, dims, what in ((x, 3, "images"), (y, 1, "labels")):
            shape = shapes[key]
            if len(shape) != dims:
                holds = {3: "images", 1: "labels"}.get(len(shape), f"{len(shape)}-D data")
                raise ValueError(f"{names[key]} holds {holds} (shape {shape}), not {what}: are the "
                                 f"image and label files swapped?{fix}")
        if shapes[x][0] == 0:
            raise ValueError(f"{names[x]} holds no images{fix}")
        if shapes[x][0] != shapes[y][0]:
            raise ValueError(f"{names[x]} has {shapes[x][0]} images but {names[y]} has "
                             f"{shapes[y][0]} labels{fix}")
    (h, w), (th, tw) = shapes["train_x"][1:], shapes["test_x"][1:]
    if (h, w) != (th, tw):
        raise ValueError(f"train images are {h}x{w} but {names['test_x']} holds {th}x{tw} images: "
                         f"the train and test files come from different datasets{fix}")


N_CLASSES = 10  # MNIST's digits and Fashion-MNIST's garments


def check_labels(labels: dict, names: dict, fix: str = "") -> None:
    """Raise ``ValueError`` unless every label of ``labels`` (``{"train_y": tensor, ...}``) is a
    class index in [0, N_CLASSES): a valid header does not make label 200 a digit."""
    fix = f"; {fix}" if fix else ""
    for key, y in labels.items():
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= N_CLASSES):
            raise ValueError(f"{names[key]} holds label {int(y.max())} (labels must lie in [0, "
                             f"{N_CLASSES - 1}]): the file is damaged or from another dataset{fix}")


def idx_split(files: dict[str, Path], fix: str):
    """((train_x, train_y), (test_x, test_y)) from four IDX files checked against each other
    (``check_split``) and whose labels are class indices (``check_labels``)."""
    t = {k: read_idx(p, fix) for k, p in files.items()}
    check_split({k: v.shape for k, v in t.items()}, files, fix)
    check_labels({k: t[k] for k in ("train_y", "test_y")}, files, fix)
    return (t["train_x"], t["train_y"]), (t["test_x"], t["test_y"])


def dataset_class(name: str):
    """torchvision's dataset class ``name`` (``"MNIST"``, ``"FashionMNIST"``), imported only when
    its files are there or a download may run: importing torchvision costs a unit 1.5 to 3 s,
    which the offline MNIST sample never needs."""
    import torchvision.datasets

    return getattr(torchvision.datasets, name)


def torchvision_split(name: str, root: Path, offline: bool | None):
    """Images from ``root/<name>/raw`` (torchvision's layout for its dataset class ``name``),
    downloading them first if allowed.

    Returns ``(split, None)`` or ``(None, reason)`` when the files are absent and cannot be
    downloaded.
    """
    raw = root / name / "raw"
    files = {k: raw / file for k, file in IDX_FILES.items()}
    fix = f"delete {raw} and run again to download it, or copy the four IDX files there"
    if not all(p.exists() for p in files.values()):
        def probe():
            cls = dataset_class(name)
            return cls.mirrors[0] + cls.resources[0][0]

        reason = offline_reason(offline, probe)
        if reason:
            return None, reason
        cls = dataset_class(name)
        try:
            cls(str(root), train=True, download=True)
        except (RuntimeError, URLError, OSError) as err:
            _reachable[urlparse(cls.mirrors[0]).hostname] = False  # don't try again this session
            return None, f"download failed ({type(err).__name__}: {str(err).splitlines()[0]})"
    # clear errors before torchvision's own asserts can fire, from the headers alone
    check_split({k: _plain_idx_shape(p, fix) for k, p in files.items()}, files, fix)
    cls = dataset_class(name)
    train, test = cls(str(root), train=True), cls(str(root), train=False)
    check_labels({"train_y": train.targets, "test_y": test.targets}, files, fix)
    return ((train.data, train.targets), (test.data, test.targets)), None
