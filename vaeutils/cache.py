"""Load the checkpoint if it exists, else train: checkpoints keyed by a hash of the full config.

Files live in ``config.CACHE_DIR`` (git-ignored), one per (name, config). Writes are atomic
(temporary file, then rename), so an interrupted run never leaves a half-written checkpoint.
A corrupt file or one whose stored config differs is reported in one line and retrained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from . import config as _config
from .files import atomic_save, load_verified

FORMAT = 2  # 2: files carry a SHA-256 (files.load_verified)


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
    """Hex digest of the canonical config: same config, same key, on any machine."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings, got {type(config).__name__}")
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def path_for(name: str, config: dict) -> Path:
    if not isinstance(name, str) or not name or any(c in name for c in "/\\"):
        raise ValueError(f"name must be a non-empty file-name-safe string, got {name!r}")
    return _config.CACHE_DIR / f"{name}-{key(config)}.pt"


def save(path: Path, payload: dict) -> None:
    """Atomic write (``files.atomic_save``): a reader never sees half a checkpoint."""
    atomic_save(path, payload)


def _try_load(path: Path, config: dict):
    """The stored payload, or None after one line saying why it can't be used."""
    if not path.exists():
        return None
    try:
        payload = load_verified(path)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError("unknown format")
    except Exception as err:  # any unreadable file is retrained, never fatal
        print(f"cache: {path.name} is unreadable ({type(err).__name__}); retraining")
        return None
    if payload.get("config") != _canonical(config):
        print(f"cache: {path.name} was written for another config; retraining")
        return None
    return payload


def load_or_train(
    name: str,
    config: dict,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], dict],
    enabled: bool = True,
):
    """Return ``(model, history, hit)``. On a hit the weights come from disk; else ``train(model)`` runs
    and its history (a JSON-like dict) is stored with the weights."""
    path = path_for(name, config)
    model = build()
    payload = _try_load(path, config) if enabled else None
    if payload is not None:
        try:
            model.load_state_dict(payload["state_dict"])
            return model, payload["history"], True
        except (RuntimeError, KeyError) as err:
            print(f"cache: {path.name} does not fit the model ({type(err).__name__}); retraining")
    history = train(model)
    if enabled:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save(path, {"format": FORMAT, "config": _canonical(config), "state_dict": state, "history": history})
    return model, history, False


def clear(pattern: str = "*") -> int:
    """Delete cached checkpoints matching ``pattern`` (e.g. ``"beta-sweep*"``); returns how many."""
    n = 0
    if _config.CACHE_DIR.exists():
        for p in _config.CACHE_DIR.glob(pattern + ".pt"):
            p.unlink()
            n += 1
    return n


if __name__ == "__main__":
    print(f"removed {clear()} cached checkpoints from {_config.CACHE_DIR}")
