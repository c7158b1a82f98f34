"""One place for the switches every notebook reads: device, seed, smoke mode, paths.

Full mode is the default, in CI too: every claim is checked on the trained models. Smoke mode
(``SMOKE=1`` in the environment) shrinks epochs and data for a quick local run while writing a unit.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from . import checks, i18n

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VAELAB_DATA", ROOT / "data")).resolve()
CACHE_DIR = DATA_DIR / "cache"

def is_smoke() -> bool:
    """True when the user asks for the shrunken run (``SMOKE=1``); CI runs full mode."""
    return checks.env_flag("SMOKE")


def pick(full, smoke):
    """``full`` normally, ``smoke`` in smoke mode: ``epochs = config.pick(full=20, smoke=1)``."""
    return smoke if is_smoke() else full


_device: torch.device | None = None


def _auto_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device`` that exists here, or a ValueError naming it and the fix."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a device name; use 'cpu', 'cuda', 'cuda:0' or 'mps'"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA GPU is visible; "
                         "use 'cpu' or leave it automatic")
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and not (mps and mps.is_available()):
        raise ValueError("device='mps' but MPS is not available here; "
                         "use 'cpu' or leave it automatic")
    return dev


def set_device(device: str | torch.device | None) -> torch.device:
    """Override the device for this session (``None`` goes back to automatic choice)."""
    global _device
    if device is None:
        _device = None
        return get_device()
    dev = check_device(device)
    _device = dev
    print(f"vaeutils: using device {dev} (set by hand)")
    return dev


def get_device() -> torch.device:
    """CUDA, then MPS, then CPU; ``VAELAB_DEVICE`` overrides. Printed once per session."""
    global _device
    if _device is None:
        wanted = os.environ.get("VAELAB_DEVICE")
        _device = torch.device(wanted) if wanted else _auto_device()
        name = torch.cuda.get_device_name(_device) if _device.type == "cuda" else ""
        print(f"vaeutils: using device {_device}{' (' + name + ')' if name else ''}")
    return _device


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a CPU ``torch.Generator`` seeded the same way.

    On CPU the same seed gives the same numbers run to run.
    """
    seed = checks.integer("seed", seed, low=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def setup(seed: int = 0, lang: str | None = None) -> torch.device:
    """The setup cell of every notebook: seed, print mode and paths, return the device.

    ``lang="zh"`` (the Chinese units' setup cells) makes vaeutils print and draw in Chinese (see
    ``vaeutils.i18n``); ``None`` keeps the language already chosen (``VAELAB_LANG``, else English).
    """
    if lang is not None:
        i18n.set_language(lang)
    seed_everything(seed)
    device = get_device()
    mode = "SMOKE (shrunken: SMOKE=1)" if is_smoke() else "full"
    print(f"vaeutils: mode {mode}; torch {torch.__version__}; data in {DATA_DIR}")
    return device
