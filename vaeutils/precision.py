"""Training's matrix multiplies in float32, or in bfloat16 where the hardware makes it pay.

``VAELAB_PRECISION`` (or the ``precision=`` argument of ``train.fit``/``train_vae`` and
``--precision`` of the CLI) is one of ``fp32`` (the default: every machine computes the same
numbers), ``bf16`` (autocast to bfloat16 for the matrix multiplies; master weights, the optimiser
and the loss terms stay float32) or ``auto`` (bf16 where it is fast — a CUDA GPU that supports it,
or a CPU with AVX512-BF16 or AMX — else fp32). The cache key records the precision a model was
trained in, so a bf16 model is never served to an fp32 run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from . import checks, cpu

PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT = "fp32"
ENV = "VAELAB_PRECISION"


def _cpu_has_fast_bf16() -> bool:
    if Path("/proc/cpuinfo").exists():
        has_bf16_units = bool({"AVX512-BF16", "AMX"} & set(cpu.features()))
        return has_bf16_units and torch.backends.mkldnn.is_available()
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # not Linux: ask oneDNN
    return bool(probe and probe())


def bf16_is_fast(device) -> bool:
    """True where bfloat16 matrix multiplies run faster than float32: CUDA with bf16 support, or a
    CPU with AVX512-BF16/AMX. Elsewhere (Apple MPS, older CPUs) bf16 is emulated and slower."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_has_fast_bf16()
    return False


def requested(precision: str | None = None) -> str:
    """The setting asked for: the argument, else ``VAELAB_PRECISION``, else ``fp32``."""
    if precision is None:
        precision = os.environ.get(ENV, "").strip().lower() or DEFAULT
        if precision not in PRECISIONS:
            raise ValueError(f"{ENV}={precision!r} is not a precision; set it to one of "
                             f"{PRECISIONS} or unset it")
    return checks.choice("precision", precision, PRECISIONS)


def resolve(precision: str | None, device) -> str:
    """``"fp32"`` or ``"bf16"``: what training on ``device`` will use for the setting ``precision``.

    ``auto`` picks bf16 only where :func:`bf16_is_fast`; an explicit ``bf16`` is honoured anywhere
    torch supports it (slow where it is emulated, but the same arithmetic)."""
    precision = requested(precision)
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


def autocast(device, precision: str):
    """A context for the forward pass: bfloat16 autocast for ``"bf16"``, nothing for ``"fp32"``."""
    checks.choice("precision", precision, ("fp32", "bf16"))
    device = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
