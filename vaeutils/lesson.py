"""Small helpers every unit uses: computed tables, float64 tensors for exact checks, and answer checks.

* :func:`table` shows computed values as a Markdown table, so every number on the page comes from code.
* :func:`as64` makes a float64 tensor: small exact checks deserve the extra precision.
* :func:`check_close` is the assert of an exercise's test cell: it passes quietly with a short "right", and fails
  with a hint that says where to look, never the answer itself.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch


def markdown_table(header, rows, digits: int | None = None) -> str:
    """The Markdown text of a table; floats are shown with ``digits`` significant digits when given."""
    header = [str(h) for h in header]
    if not header:
        raise ValueError("header must name at least one column, e.g. header=['β', 'rate (nats)']")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells but the header has {len(header)}: {row!r}")
        cells = [f"{c:.{digits}g}" if digits and isinstance(c, float) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(header, rows, digits: int | None = None) -> None:
    """Display a Markdown table of computed values (see :func:`markdown_table`)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows, digits)))


def as64(values) -> torch.Tensor:
    """A float64 tensor of ``values``: small exact checks deserve the extra precision."""
    return torch.as_tensor(values, dtype=torch.float64)


def _as_float(name: str, value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise AssertionError(f"{name}: expected one number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AssertionError(f"{name}: expected a number, got {value!r}; replace the stub with your answer")
    return float(value)


def check_close(name: str, answer, expected, *, rel_tol: float = 1e-6, abs_tol: float = 0.0, hint: str = "") -> None:
    """Assert that ``answer`` is within ``rel_tol``/``abs_tol`` of ``expected``; print "right" when it is.

    The failure message names the exercise and gives ``hint``, not the expected value, so a test cell can be
    shown to students without giving the answer away.
    """
    got, want = _as_float(name, answer), float(expected)
    if not (math.isfinite(got) and math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol)):
        raise AssertionError(f"{name}: not yet. {hint}".rstrip())
    print(f"{name}: right")
