"""Files that are never half-written: every checkpoint and converted data file goes through ``atomic_save``.

The payload is written to a temporary file in the same folder and renamed over the target in one step, so a
reader sees the old file or the new one, never a mixture; a failed or interrupted write leaves no file behind.
Files are made readable by everyone the umask allows (0644 by default), so a shared cache can be read by others.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(path, payload) -> Path:
    """``torch.save(payload)`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: others could not read a shared cache
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
