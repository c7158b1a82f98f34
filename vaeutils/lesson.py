"""Small helpers every unit uses: computed tables, float64 tensors for exact checks, answer checks.

* :func:`table` shows computed values as a Markdown table: every number on the page comes from code.
* :func:`as64` makes a float64 tensor: small exact checks deserve the extra precision.
* :func:`check_close`, :func:`check_function` and :func:`check_choice` are the asserts of an
  exercise's test cell. They pass quietly with a short "right" and fail with a hint that says
  where to look, never the answer. Given ``misconceptions`` (a hint for each known mistake, with the
  value, function or choice that mistake produces), a wrong answer that matches one gets its hint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real

import numpy as np
import torch

from .i18n import _, tr


def markdown_table(header, rows, digits: int | None = None) -> str:
    """The Markdown text of a table; floats get ``digits`` significant digits when given."""
    header = [tr(str(h)) for h in header]
    if not header:
        raise ValueError("header must name at least one column, e.g. header=['β', 'rate (nats)']")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells but the header has {len(header)}: "
                             f"{row!r}")
        cells = [f"{c:.{digits}g}" if digits and isinstance(c, float)
                 else tr(c) if isinstance(c, str) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(header, rows, digits: int | None = None) -> None:
    """Display a Markdown table of computed values (see :func:`markdown_table`)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows, digits)))


def as64(values) -> torch.Tensor:
    """A float64 tensor of ``values``: small exact checks deserve the extra precision."""
    return torch.as_tensor(values, dtype=torch.float64)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_float(name: str, value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise AssertionError(_("{name}: expected one number, got a tensor of shape {shape}")
                                 .format(name=name, shape=tuple(value.shape)))
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AssertionError(_("{name}: expected a number, got {value}; replace the stub with "
                               "your answer").format(name=name, value=_short(value)))
    return float(value)


def _fail(name: str, hint: str, why: str = ""):
    head = _("{name}: not yet.").format(name=name)
    raise AssertionError(" ".join(p for p in (head, why, tr(hint)) if p))


def _misconceptions(misconceptions) -> dict:
    if misconceptions is None:
        return {}
    if not isinstance(misconceptions, Mapping):
        raise TypeError("misconceptions must map a hint (str) to what that mistake gives, e.g. "
                        "{'you averaged over pixels: sum them': nll.mean()}")
    for hint in misconceptions:
        if not isinstance(hint, str) or not hint.strip():
            raise TypeError(f"misconceptions: each key is the hint shown for a mistake, got "
                            f"{hint!r}")
    return dict(misconceptions)


def _close(got: float, want: float, rel_tol: float, abs_tol: float) -> bool:
    return math.isfinite(got) and math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol)


def check_close(name: str, answer, expected, *, rel_tol: float = 1e-6, abs_tol: float = 0.0,
                hint: str = "", misconceptions: Mapping | None = None) -> None:
    """Assert that ``answer`` is within ``rel_tol``/``abs_tol`` of ``expected``; print "right".

    ``misconceptions`` maps a hint pointing at a mistake to the value that mistake gives (matched
    within the same tolerance) or to a predicate ``f(answer) -> bool``. On failure the message names
    the exercise and gives the hint of the matching mistake (the closest value, else the first
    predicate that holds), else ``hint``. It never shows the expected value.
    """
    got, want = _as_float(name, answer), float(expected)
    if _close(got, want, rel_tol, abs_tol):
        print(f"{name}: right")
        return
    if not math.isfinite(got):
        _fail(name, hint, _("Your answer is {got}, not a finite number.").format(got=got))
    near, predicates = [], []
    for text, wrong in _misconceptions(misconceptions).items():
        if callable(wrong):
            predicates.append((text, wrong))
            continue
        value = _as_float(f"{name} (the value of misconception {text!r})", wrong)
        if _close(got, value, rel_tol, abs_tol):
            near.append((abs(got - value), text))
    if near:
        _fail(name, min(near)[1])
    for text, predicate in predicates:
        if predicate(got):
            _fail(name, text)
    _fail(name, hint)


def _args(item) -> tuple:
    """One input of :func:`check_function` as positional arguments (a tuple is the arguments)."""
    return tuple(item) if isinstance(item, tuple) else (item,)


def _fresh(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _describe(args: tuple) -> str:
    return ", ".join(_("a tensor of shape {shape}").format(shape=tuple(a.shape))
                     if isinstance(a, torch.Tensor)
                     else _short(a) for a in args)


def _parts(value) -> list | None:
    """The float64 tensors of an output (a tensor, a number, or a tuple/list of them), else None."""
    if isinstance(value, (tuple, list)):
        parts = [_parts(v) for v in value]
        return None if any(p is None for p in parts) else [t for p in parts for t in p]
    if isinstance(value, torch.Tensor):
        return [value.detach().cpu().to(torch.float64)]
    if isinstance(value, np.ndarray | Real) and not isinstance(value, bool):
        return [torch.as_tensor(np.asarray(value, dtype=np.float64))]
    return None


def _mismatch(got, want, rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``want``; else why not ("" when only the values differ)."""
    g, w = _parts(got), _parts(want)
    if g is None:
        return _("Your function returned {value}, not a tensor, a number or a tuple of "
                 "them.").format(value=_short(got))
    if len(g) != len(w):
        return _("Your function returned {got} value(s) where {want} are expected.").format(
            got=len(g), want=len(w))
    for k, (a, b) in enumerate(zip(g, w)):
        which = _(" as value {k} of {n}").format(k=k + 1, n=len(w)) if len(w) > 1 else ""
        if a.shape != b.shape:
            return _("Your function returned a tensor of shape {got}{which} where shape {want} is "
                     "expected.").format(got=tuple(a.shape), which=which, want=tuple(b.shape))
        if not torch.isfinite(a).all():
            return _("Your function returned nan or inf{which}.").format(which=which)
    ok = all(torch.allclose(a, b, rtol=rtol, atol=atol) for a, b in zip(g, w))
    return None if ok else ""


def _reproduces(wrong_fn, runs, rtol: float, atol: float) -> bool:
    try:
        return all(_mismatch(got, wrong_fn(*_fresh(args)), rtol, atol) is None
                   for args, got in runs)
    except Exception:  # noqa: BLE001 - a mistake that cannot run on an input explains nothing
        return False


def check_function(name: str, fn, reference: Callable, inputs, *, rtol: float = 1e-5,
                   atol: float = 1e-6, hint: str = "",
                   misconceptions: Mapping | None = None) -> None:
    """Assert that the student's ``fn`` agrees with ``reference`` on every one of ``inputs``.

    Each input is one argument, or a tuple of positional arguments; tensors are passed as fresh
    copies, so a function that writes into its inputs cannot spoil the next call. Outputs (tensors,
    numbers or tuples of them) are compared within ``rtol``/``atol``. ``misconceptions`` maps a hint
    to a function with a known mistake: when ``fn`` agrees with it on every input, that hint is
    given, else ``hint``. A function that raises or returns the wrong shape is told so; the
    reference's values are never shown.
    """
    if not callable(fn):
        raise AssertionError(_("{name}: expected a function, got {value}; define it in the "
                               "solution cell").format(name=name, value=_short(fn)))
    wrongs = _misconceptions(misconceptions)
    inputs = [_args(item) for item in inputs]
    if not inputs:
        raise ValueError("inputs must hold at least one input, e.g. [(mu, logvar)]")
    runs, problem = [], None
    for k, args in enumerate(inputs):
        try:
            got = fn(*_fresh(args))
        except Exception as err:  # noqa: BLE001 - the student's code may raise anything
            _fail(name, hint, _("Your function raised {error}: {message} on input {k} ({inputs}).")
                  .format(error=type(err).__name__, message=err, k=k + 1, inputs=_describe(args)))
        runs.append((args, got))
        why = _mismatch(got, reference(*_fresh(args)), rtol, atol)
        if why is not None and problem is None:
            problem = why + (_(" (input {k}: {inputs})").format(k=k + 1, inputs=_describe(args))
                             if why else "")
    if problem is None:
        print(f"{name}: right")
        return
    for text, wrong_fn in wrongs.items():
        if _reproduces(wrong_fn, runs, rtol, atol):
            _fail(name, text)
    _fail(name, hint, problem)


def _norm(option):
    return option.strip().casefold() if isinstance(option, str) else option


def check_choice(name: str, answer, expected, options, *, hint: str = "",
                 misconceptions: Mapping | None = None) -> None:
    """Assert that the choice ``answer`` is ``expected``; both are among ``options`` (strings,
    compared without case and outer spaces, or numbers). ``misconceptions`` maps a hint to the wrong
    option (or a list of options) it explains. A choice outside ``options`` gets a message listing
    them; the expected option is never shown.
    """
    choices = [_norm(o) for o in options]
    if _norm(expected) not in choices:
        raise ValueError(f"expected={expected!r} is not one of options={list(options)!r}")
    got = _norm(answer)
    if isinstance(got, bool) or got not in choices:
        listed = ", ".join(repr(o) for o in options)
        raise AssertionError(_("{name}: answer one of {listed}; got {answer}")
                             .format(name=name, listed=listed, answer=_short(answer)))
    if got == _norm(expected):
        print(f"{name}: right")
        return
    for text, wrong in _misconceptions(misconceptions).items():
        wrong = wrong if isinstance(wrong, (list, tuple, set, frozenset)) else [wrong]
        if got in {_norm(w) for w in wrong}:
            _fail(name, text)
    _fail(name, hint)
