"""What every benchmark prints first: the machine it measured, so no figure is read without its CPU.

    import machine                      # the benchmarks are run as `python benchmarks/<name>.py`
    print(machine.header("bench_threads"))

The header names the CPU and the features that decide what its matrix products cost (AVX2, AVX-512,
AVX512-BF16, AMX; ``vaeutils.cpu``), the measured float32 and bfloat16 peaks of a 2048³ ``torch.mm`` with
the threads in use, torch's version and the load average. A bfloat16 product on a CPU without AVX512-BF16
or AMX is emulated and slow: the measured peak shows it.
"""

from __future__ import annotations

import os
import platform
import time

import torch

from vaeutils import cpu


def matmul_gflops(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """The best rate (GFLOP/s) of ``torch.mm`` on two n×n matrices of ``dtype`` over about ``seconds``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)  # warm-up: allocation, thread start
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def header(title: str, peaks: bool = True) -> str:
    """Markdown lines naming the machine; ``peaks`` also measures the matmul peaks (about 2 s)."""
    lines = [f"## {title}", "",
             f"- CPU: {cpu.describe()}",
             f"- torch {torch.__version__}, {torch.get_num_threads()} threads; Python {platform.python_version()}"]
    if peaks:
        emulated = not {"AVX512-BF16", "AMX"} & set(cpu.features())
        # an emulated bfloat16 2048³ product takes tens of seconds: a 512³ one shows how slow it is
        n_bf16 = 512 if emulated else 2048
        fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16, n=n_bf16)
        lines.append(f"- 2048³ torch.mm: float32 {fp32:.3g} GFLOP/s, bfloat16 {bf16:.3g} GFLOP/s"
                     + (f" ({n_bf16}³; emulated: no AVX512-BF16 or AMX)" if emulated else ""))
    lines.append(f"- load average (1 / 5 / 15 min) before: {load()}")
    return "\n".join(lines) + "\n"
