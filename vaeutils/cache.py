"""Load the checkpoint if it exists, else train: checkpoints keyed by a hash of the whole config.

A checkpoint is looked for first in the shared, read-only layer(s) named by ``VAELAB_SHARED_CACHE``
(one folder, or several separated by ``os.pathsep``; on a class server the instructor's ``make
models`` folder), then in the user's own ``config.CACHE_DIR``. A model found nowhere is trained and
written to the user's layer only: nothing is ever written to, or deleted from, a shared folder. A
folder that is read-only or owned by someone else is read when it can be and otherwise skipped:
never an error, at worst a model kept for this session only (said in one line).

Writes are atomic (``files.atomic_save``: temporary file, then rename), so an interrupted run never
leaves a half-written checkpoint. A writer killed mid-save (SIGKILL) leaves its
``*.pt.<random>.tmp`` behind; the next save or clear in that folder removes such files once they are
older than any writer could still be busy with them (:data:`STALE_TMP_SECONDS`). A corrupt file or
one whose stored config differs is reported in one line and the next layer is tried, or the model
retrained.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checks
from . import config as _config
from .files import atomic_save, load_verified, same_path

FORMAT = 2  # 2: files carry a SHA-256 (files.load_verified)
SHARED_ENV = "VAELAB_SHARED_CACHE"
# A writer holds its temporary file only while it writes bytes it already has in memory and renames
# them: seconds even for 100 MB on a slow disk. Ten minutes later nobody can still be writing it.
STALE_TMP_SECONDS = 600.0
TMP_GLOB = "*.pt.*.tmp"  # files.atomic_save names them <target>.<random>.tmp


def _canonical(value):
    """A JSON-friendly, order-independent form of a config (dataclasses via repr)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.device):
        return str(value)
    return repr(value)


def key(config: dict) -> str:
    """Hex digest of the canonical config: same config, same key, on any machine. A config holding
    NaN (never equal to itself, so never a hit) or something without a stable description (a
    lambda: another key in every process) is refused (``checks.plain_data``)."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings, got {type(config).__name__}")
    checks.plain_data(config, "config")  # refuses; the key itself stays the one of earlier versions
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def path_for(name: str, config: dict) -> Path:
    """Where the user's layer keeps (or would keep) this checkpoint:
    ``config.CACHE_DIR/<name>-<key>.pt``. ``name`` is a file name, never a path
    (``checks.file_name``)."""
    checks.file_name("name", name)
    return _config.CACHE_DIR / f"{name}-{key(config)}.pt"


def shared_dirs() -> list[Path]:
    """The read-only layers, in the order they are searched (from ``VAELAB_SHARED_CACHE``, read on
    each call)."""
    value = os.environ.get(SHARED_ENV, "")
    return [Path(p).expanduser().absolute() for p in value.split(os.pathsep) if p.strip()]


def _is_shared(folder: Path) -> bool:
    folder = Path(folder).absolute()
    return any(folder == d or same_path(folder, d) for d in shared_dirs())


def layers() -> list[tuple[str, Path]]:
    """``[(label, folder), ...]``: every shared folder (label ``"shared"``), then the user's
    (``"user"``). When the user's cache is one of the shared folders it is listed once, as shared
    (read-only)."""
    found = [("shared", d) for d in shared_dirs()]
    if not _is_shared(_config.CACHE_DIR):
        found.append(("user", _config.CACHE_DIR))
    return found


def remove_stale_tmp(folder=None, older_than: float = STALE_TMP_SECONDS) -> int:
    """Delete the temporary files that killed writers left in ``folder`` (default the user's cache)
    once they are ``older_than`` seconds old; returns how many. Shared folders and files it may not
    delete are left alone."""
    folder = Path(_config.CACHE_DIR if folder is None else folder)
    if _is_shared(folder):
        return 0
    n, now = 0, time.time()
    try:
        candidates = list(folder.glob(TMP_GLOB))
    except OSError:
        return 0
    for p in candidates:
        try:
            if now - p.stat().st_mtime > older_than:
                p.unlink()
                n += 1
        except OSError:  # gone already, or not ours to delete
            continue
    return n


def save(path: Path, payload: dict) -> bool:
    """Atomic write (``files.atomic_save``): a reader never sees half a checkpoint. Returns False,
    after one line saying why, when the folder cannot be written (read-only, someone else's, full)
    or is a shared layer."""
    path = Path(path)
    if _is_shared(path.parent):
        print(f"cache: {path.parent} is a shared, read-only cache ({SHARED_ENV}); {path.name} is "
              "kept for this session only")
        return False
    remove_stale_tmp(path.parent)
    try:
        atomic_save(path, payload)
    except OSError as err:
        print(f"cache: cannot write {path} ({err.strerror or type(err).__name__}); the model is "
              "kept for this session only (point VAELAB_DATA at a folder you can write to keep it)")
        return False
    return True


def _storable(value, where: str = "history"):
    """``value`` as data a weights-only load reads back: NumPy scalars and arrays become Python
    numbers and lists; anything else but plain data and tensors is a TypeError naming where."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_storable(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: _storable(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{where} holds a {type(value).__name__}, which a checkpoint cannot store; "
                    "return numbers, strings, lists, dicts or tensors from train")


def _try_load(path: Path, config: dict):
    """Usable file: ``(payload, None)``; unusable one: ``(None, why)``; none: ``(None, None)``."""
    try:
        if not path.is_file():
            return None, None
        payload = load_verified(path)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError("unknown format")
    except Exception as err:  # any unreadable file is skipped or retrained, never fatal
        return None, f"is unreadable ({type(err).__name__})"
    if payload.get("config") != _canonical(config):
        return None, "was written for another config"
    return payload, None


def lookup(name: str, config: dict,
           model: nn.Module | None = None) -> tuple[dict | None, list[str]]:
    """The stored ``{"state_dict", "history", "label", "folder"}`` of this checkpoint from the first
    layer that has a usable copy, else None; with the lines that say which copies were unusable
    (for the caller to print once it knows whether a later layer had the model). Given a
    ``model``, the weights are loaded into it, and a copy that does not fit it is skipped too."""
    path = path_for(name, config)
    problems = []
    for label, folder in layers():
        candidate = folder / path.name
        payload, why = _try_load(candidate, config)
        if payload is not None and model is not None:
            try:
                model.load_state_dict(payload["state_dict"])
            except (RuntimeError, KeyError) as err:
                payload, why = None, f"does not fit the model ({type(err).__name__})"
        if payload is not None:
            return {"state_dict": payload["state_dict"], "history": payload["history"],
                    "label": label, "folder": folder}, problems
        if why:
            where = "" if label == "user" else "the shared copy of "
            problems.append(f"cache: {where}{candidate.name} {why}")
    return None, problems


def store(name: str, config: dict, state_dict: dict, history: dict) -> dict:
    """Write a trained model's weights and history to the user's layer (when it can be written);
    returns the history as stored (NumPy values as plain numbers). Used by :func:`load_or_train`
    and by ``vaeutils.sweep.train_many`` for the models its worker processes trained."""
    try:
        history = _storable(history)
    except TypeError as err:
        print(f"cache: {err}; the model is kept for this session only")
        return history
    state = {k: v.detach().cpu() for k, v in state_dict.items()}
    save(path_for(name, config), {"format": FORMAT, "config": _canonical(config),
                                  "state_dict": state, "history": history})
    return history


def load_or_train(
    name: str,
    config: dict,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], dict],
    enabled: bool = True,
):
    """Return ``(model, history, hit)``. On a hit the weights come from the first layer that has a
    usable checkpoint; else ``train(model)`` runs and its history (a JSON-like dict) is stored with
    the weights in the user's layer (when it can be written)."""
    path_for(name, config)  # checks the name and the config before anything is built
    model = build()
    found, problems = lookup(name, config, model) if enabled else (None, [])
    if found is not None:
        for line in problems:
            print(f"{line}; loaded the {found['label']} copy in {found['folder']} instead")
        return model, found["history"], True
    for line in problems:
        print(f"{line}; retraining")
    history = train(model)
    if enabled:
        history = store(name, config, model.state_dict(), history)
    return model, history, False


def clear(pattern: str = "*") -> int:
    """Delete the user's cached checkpoints matching ``pattern`` (e.g. ``"beta-sweep*"``); returns
    how many. Also removes stale temporary files of killed writers. Shared layers are never
    touched. ``pattern`` matches names inside the cache folder, never a path
    (``checks.file_name``): nothing outside the folder is ever deleted."""
    pattern = checks.file_name("pattern", pattern, pattern=True)
    folder = _config.CACHE_DIR
    if _is_shared(folder) or not folder.is_dir():
        return 0
    remove_stale_tmp(folder)
    n = 0
    for p in sorted(folder.iterdir()):
        if p.is_dir() or not fnmatch.fnmatchcase(p.name, pattern + ".pt"):
            continue
        try:
            p.unlink()
            n += 1
        except OSError as err:
            print(f"cache: cannot delete {p} ({err.strerror or type(err).__name__}); left in place")
    return n


def files(folder=None) -> list[Path]:
    """The checkpoints in ``folder`` (default the user's cache), sorted by name."""
    folder = Path(_config.CACHE_DIR if folder is None else folder)
    try:
        return sorted(folder.glob("*.pt"))
    except OSError:
        return []


if __name__ == "__main__":
    print(f"removed {clear()} cached checkpoints from {_config.CACHE_DIR}")
