"""Files never half-written and never silently rotten: checkpoints and converted data files.

``atomic_save`` writes the payload to a temporary file in the same folder and renames it over the
target in one step, so a reader sees the old file or the new one, never a mixture; a failed or
interrupted write leaves no file behind. Files are made readable by everyone the umask allows (0644
by default), so a shared cache can be read by others. Each file starts with a magic tag and the
SHA-256 of the rest, which ``load_verified`` checks before unpickling anything: torch does not check
the zip's CRCs, so a flipped byte would otherwise load as a hit.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import torch

MAGIC = b"VAELAB1\n"
_DIGEST = 32


class CorruptFile(ValueError):
    """A file that is not ours, is truncated, or whose bytes no longer match their SHA-256."""


def same_path(a, b) -> bool:
    """Whether ``a`` and ``b`` name one existing file or folder; False, never an error, when either
    cannot be looked at (a folder the user may not enter, as a class server's shared cache)."""
    try:
        a, b = Path(a), Path(b)
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(path, payload) -> Path:
    """``torch.save(payload)`` to ``path`` atomically: a temporary file in the same folder, then
    ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(body).digest() + body)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: others could not read a shared cache
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_verified(path):
    """The payload ``atomic_save`` wrote to ``path``, after checking its tag and SHA-256
    (weights-only unpickling).

    Raises :class:`CorruptFile` naming what is wrong; ``FileNotFoundError`` if there is no file.
    """
    raw = Path(path).read_bytes()
    head = len(MAGIC) + _DIGEST
    if not raw.startswith(MAGIC) or len(raw) < head:
        raise CorruptFile(f"{Path(path).name} is not a file this version wrote (no "
                          f"{MAGIC[:-1].decode()} header)")
    if hashlib.sha256(raw[head:]).digest() != raw[len(MAGIC):head]:
        raise CorruptFile(f"{Path(path).name} is damaged: its bytes no longer match the SHA-256 "
                          "stored with them")
    return torch.load(io.BytesIO(raw[head:]), map_location="cpu", weights_only=True)
