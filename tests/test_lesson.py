"""vaeutils.lesson: the tables and the answer checks of the exercises' test cells. The checks are shown to
students, so every failure path is tested for what it says (the exercise, the hint of the mistake) and for what
it must not say (the expected value)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaeutils import lesson
from vaeutils.losses import kl_per_dim

# --------------------------------------------------------------------------- tables


def test_markdown_table_formats_floats_and_rejects_ragged_rows():
    text = lesson.markdown_table(["β", "rate"], [(1, 12.3456), (4, 3.0)], digits=3)
    assert text.splitlines() == ["| β | rate |", "| --- | --- |", "| 1 | 12.3 |", "| 4 | 3 |"]
    with pytest.raises(ValueError, match="row 1 has 1 cells but the header has 2"):
        lesson.markdown_table(["a", "b"], [(1, 2), (3,)])
    with pytest.raises(ValueError, match="header must name"):
        lesson.markdown_table([], [])


def test_as64_is_float64():
    assert lesson.as64([1, 2]).dtype == torch.float64


# --------------------------------------------------------------------------- check_close

EXPECTED = 78.4321


def _message(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as err:
        check(*args, **kwargs)
    return str(err.value)


def _no_answer(text: str, value: float = EXPECTED):
    for digits in (2, 3, 4, 5, 6):
        assert f"{value:.{digits}g}" not in text, f"the message shows the answer: {text!r}"


def test_check_close_passes_quietly(capsys):
    lesson.check_close("05-ex1", EXPECTED * (1 + 1e-7), EXPECTED, hint="look at β")
    lesson.check_close("05-ex1", torch.tensor(EXPECTED), EXPECTED, rel_tol=1e-5)
    lesson.check_close("05-ex1", np.array([EXPECTED]), EXPECTED, rel_tol=1e-5)
    assert capsys.readouterr().out == "05-ex1: right\n" * 3


def test_check_close_failure_names_the_exercise_and_gives_the_hint_not_the_value():
    text = _message(lesson.check_close, "05-ex1", 10.0, EXPECTED, rel_tol=0.01, hint="sum over pixels")
    assert text == "05-ex1: not yet. sum over pixels"
    _no_answer(text)


def test_check_close_names_the_matching_misconception():
    mistakes = {"you averaged over the 784 pixels: a sum": EXPECTED / 784,
                "you dropped the ½ of the Gaussian KL": 2 * EXPECTED,
                "the sign: a KL is never negative": lambda a: a < 0}
    check = lesson.check_close
    kw = dict(rel_tol=0.01, hint="see §4", misconceptions=mistakes)
    assert _message(check, "ex", EXPECTED / 784 * 1.005, EXPECTED, **kw) == \
        "ex: not yet. you averaged over the 784 pixels: a sum"
    assert "dropped the ½" in _message(check, "ex", 2 * EXPECTED, EXPECTED, **kw)
    assert "the sign" in _message(check, "ex", -3.0, EXPECTED, **kw)
    other = _message(check, "ex", 3.0 * EXPECTED, EXPECTED, **kw)
    assert other == "ex: not yet. see §4", "a mistake outside the tolerance gets the general hint"
    for text in (other, _message(check, "ex", 2 * EXPECTED, EXPECTED, **kw)):
        _no_answer(text)


def test_check_close_prefers_the_closest_misconception():
    mistakes = {"first": 10.0, "second": 10.4}
    assert _message(lesson.check_close, "ex", 10.35, 20.0, abs_tol=0.5, misconceptions=mistakes).endswith("second")
    assert _message(lesson.check_close, "ex", 10.1, 20.0, abs_tol=0.5, misconceptions=mistakes).endswith("first")


def test_check_close_right_answer_wins_over_a_listed_mistake(capsys):
    lesson.check_close("ex", 1.0, 1.0, misconceptions={"same value": 1.0})
    assert capsys.readouterr().out == "ex: right\n"


@pytest.mark.parametrize("answer, message", [
    (math.nan, "not a finite number"),
    (math.inf, "not a finite number"),
    (None, "expected a number, got None; replace the stub"),
    ("12", "expected a number, got '12'"),
    (True, "expected a number, got True"),
    (torch.zeros(3), "expected one number, got a tensor of shape (3,)"),
])
def test_check_close_rejects_what_is_not_a_number(answer, message):
    text = _message(lesson.check_close, "00-ex2", answer, EXPECTED, hint="h")
    assert text.startswith("00-ex2: ") and message in text
    _no_answer(text)


def test_check_close_rejects_malformed_misconceptions():
    with pytest.raises(TypeError, match="misconceptions must map"):
        lesson.check_close("ex", 1.0, 2.0, misconceptions=[1.0])
    with pytest.raises(TypeError, match="each key is the hint"):
        lesson.check_close("ex", 1.0, 2.0, misconceptions={"": 1.0})


# --------------------------------------------------------------------------- check_function

def _reference(mu, logvar):
    return kl_per_dim(mu, logvar).sum(-1)


def _no_half(mu, logvar):
    return (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


def _std_for_logvar(mu, logvar):
    return 0.5 * (mu**2 + logvar**2 - 1 - 2 * logvar.abs().clamp_min(1e-6).log()).sum(-1)


def _inputs():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)) for _ in range(3)]


MISTAKES = {"the ½ of the Gaussian KL": _no_half, "log-variance is not the standard deviation": _std_for_logvar}


def test_check_function_passes_a_right_function(capsys):
    def kl(mu, logvar):
        return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)

    lesson.check_function("03-ex2", kl, _reference, _inputs(), hint="h", misconceptions=MISTAKES)
    assert capsys.readouterr().out == "03-ex2: right\n"


def test_check_function_names_the_mistake_a_function_reproduces():
    text = _message(lesson.check_function, "03-ex2", _no_half, _reference, _inputs(), hint="compare with §2",
                    misconceptions=MISTAKES)
    assert text == "03-ex2: not yet. the ½ of the Gaussian KL"
    text = _message(lesson.check_function, "03-ex2", lambda m, lv: _reference(m, lv) + 1.0, _reference, _inputs(),
                    hint="compare with §2", misconceptions=MISTAKES)
    assert text == "03-ex2: not yet. compare with §2", "an unknown mistake gets the general hint"


def test_check_function_needs_the_mistake_on_every_input():
    inputs = _inputs()

    def half_right(mu, logvar):  # right on the first input only
        return _reference(mu, logvar) if mu is not None and torch.equal(mu, inputs[0][0]) else _no_half(mu, logvar)

    text = _message(lesson.check_function, "ex", half_right, _reference, inputs, hint="general",
                    misconceptions=MISTAKES)
    assert text.endswith("general")


def test_check_function_says_when_the_function_raises():
    def broken(mu, logvar):
        return mu @ logvar  # (5, 3) @ (5, 3)

    text = _message(lesson.check_function, "09-ex3", broken, _reference, _inputs(), hint="h")
    assert text.startswith("09-ex3: not yet. Your function raised RuntimeError")
    assert "on input 1 (a tensor of shape (5, 3), a tensor of shape (5, 3))" in text and text.endswith("h")


@pytest.mark.parametrize("fn, message", [
    (lambda mu, logvar: kl_per_dim(mu, logvar), "returned a tensor of shape (5, 3) where shape (5,) is expected"),
    (lambda mu, logvar: "kl", "returned 'kl', not a tensor"),
    (lambda mu, logvar: (_reference(mu, logvar), mu), "returned 2 value(s) where 1 are expected"),
    (lambda mu, logvar: _reference(mu, logvar) * math.nan, "returned nan or inf"),
])
def test_check_function_names_a_wrong_shape_or_type(fn, message):
    text = _message(lesson.check_function, "ex", fn, _reference, _inputs(), hint="h")
    assert message in text and "(input 1: a tensor of shape (5, 3)" in text


def test_check_function_rejects_wrong_values_without_showing_them():
    inputs = [(torch.zeros(1, 2), torch.zeros(1, 2) + 1.0)]
    want = float(_reference(*inputs[0]))
    text = _message(lesson.check_function, "ex", lambda m, lv: m.sum(-1), _reference, inputs, hint="h")
    assert text == "ex: not yet. h"
    _no_answer(text, want)


def test_check_function_gives_fresh_inputs_and_accepts_single_arguments(capsys):
    x = torch.ones(4)

    def in_place(t):
        return t.mul_(2)

    lesson.check_function("ex", in_place, lambda t: t * 2, [x, x])
    assert torch.equal(x, torch.ones(4)) and capsys.readouterr().out == "ex: right\n"
    lesson.check_function("ex", lambda a, b: (a + b, a - b), lambda a, b: (a + b, a - b), [(1.0, 2.0)])
    assert _message(lesson.check_function, "ex", None, _reference, _inputs()).startswith(
        "ex: expected a function, got None")
    with pytest.raises(ValueError, match="at least one input"):
        lesson.check_function("ex", _reference, _reference, [])


def test_check_function_skips_a_mistake_that_cannot_run():
    def crashes(mu, logvar):
        raise ValueError("not for this input")

    text = _message(lesson.check_function, "ex", _no_half, _reference, _inputs(), hint="h",
                    misconceptions={"never shown": crashes, "the ½": _no_half})
    assert text.endswith("the ½")


# --------------------------------------------------------------------------- check_choice

OPTIONS = ["sum", "mean", "sum over pixels, mean over the batch"]


def test_check_choice(capsys):
    lesson.check_choice("02-ex1", "  Sum over pixels, mean over the BATCH ", OPTIONS[2], OPTIONS)
    assert capsys.readouterr().out == "02-ex1: right\n"
    mistakes = {"a mean over pixels hides a β of 1/784": "mean", "the batch: the loss is per image": ["sum"]}
    assert _message(lesson.check_choice, "02-ex1", "mean", OPTIONS[2], OPTIONS, hint="h",
                    misconceptions=mistakes) == "02-ex1: not yet. a mean over pixels hides a β of 1/784"
    assert _message(lesson.check_choice, "02-ex1", "sum", OPTIONS[2], OPTIONS, hint="h",
                    misconceptions=mistakes).endswith("the loss is per image")
    assert _message(lesson.check_choice, "02-ex1", "mean", OPTIONS[2], OPTIONS, hint="h") == "02-ex1: not yet. h"


def test_check_choice_outside_the_options_lists_them_without_the_answer():
    text = _message(lesson.check_choice, "06-ex3", 7, 2, [0, 1, 2, 3], hint="h")
    assert text == "06-ex3: answer one of 0, 1, 2, 3; got 7"
    assert "06-ex3: answer one of" in _message(lesson.check_choice, "06-ex3", True, 1, [0, 1, 2])
    with pytest.raises(ValueError, match="expected=5 is not one of"):
        lesson.check_choice("ex", 1, 5, [1, 2])
