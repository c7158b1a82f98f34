"""vaeutils.checks: NumPy scalars count as numbers, bools never do, every message names the argument."""

import math

import numpy as np
import pytest
import torch

from vaeutils import checks


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_integer_accepts_python_and_numpy_ints(value):
    out = checks.integer("step", value, low=0)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, 2.0, np.float64(2.0), "2", None, torch.tensor(2)])
def test_integer_refuses_other_kinds_with_an_error_that_is_both_value_and_type_error(value):
    with pytest.raises(checks.ArgumentError, match="step must be an int"):
        checks.integer("step", value)
    assert issubclass(checks.ArgumentError, ValueError) and issubclass(checks.ArgumentError, TypeError)


def test_integer_bounds_and_hint():
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1 \(examples per step\), got -1"):
        checks.integer("batch_size", -1, low=1, hint="examples per step")
    with pytest.raises(ValueError, match="<= 5"):
        checks.integer("k", 6, high=5)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), 1, np.int64(1)])
def test_number_accepts_python_and_numpy_numbers(value):
    out = checks.number("beta", value, 0.0)
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_number_refuses_non_finite_values(value):
    with pytest.raises(ValueError, match="beta must be a finite number"):
        checks.number("beta", value)


@pytest.mark.parametrize("value", [True, np.bool_(True), "1", None, [1.0]])
def test_number_refuses_bools_and_non_numbers(value):
    with pytest.raises(checks.ArgumentError, match="threshold must be a number"):
        checks.number("threshold", value)


def test_open_and_closed_bounds():
    assert checks.positive("lr", 1e-3) == 1e-3
    assert checks.positive("free_bits", 0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        checks.positive("lr", 0.0)
    with pytest.raises(ValueError, match="< 1"):
        checks.number("alpha", 1.0, 0.0, 1.0, high_open=True)


def test_choice_boolean_and_distinct_values():
    assert checks.choice("mode", "additive", ("additive", "multiplicative")) == "additive"
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        checks.choice("mode", "c", ("a", "b"))
    assert checks.boolean("flag", np.bool_(True)) is True
    with pytest.raises(checks.ArgumentError, match="flag must be True or False"):
        checks.boolean("flag", 1)
    assert checks.distinct_values("betas", [1.0, 0.5]) == (0.5, 1.0)
    with pytest.raises(ValueError, match="repeat"):
        checks.distinct_values("betas", [1.0, 1.0])


def test_optional_integer_says_what_none_means():
    assert checks.optional_integer("n_cycles", None) is None
    with pytest.raises(ValueError, match="or None: cycle for ever"):
        checks.optional_integer("n_cycles", 0, low=1, what_none="cycle for ever")


def test_tensor_and_images():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        checks.tensor("x", np.zeros(2))
    with pytest.raises(ValueError, match="x is empty"):
        checks.tensor("x", torch.zeros(0, 2), nonempty=True)
    x = torch.rand(2, 1, 4, 4)
    assert checks.images("x", x) is x
    for bad in (torch.rand(2, 16), np.zeros((2, 1, 4, 4)), torch.zeros(2, 1, 4, 4, dtype=torch.uint8)):
        with pytest.raises(ValueError, match=r"x must be a float tensor shaped \(N, C, H, W\)"):
            checks.images("x", bad)
    with pytest.raises(ValueError, match="x is empty"):
        checks.images("x", x[:0])


def test_images_and_finite_refuse_nan_and_inf_when_asked():
    x = torch.rand(3, 1, 4, 4)
    x[1, 0, 2, 2] = float("nan")
    x[2, 0, 0, 0] = float("inf")
    assert checks.images("x", x) is x  # training finds a NaN pixel itself and names the step and the term
    with pytest.raises(ValueError, match=r"x holds 1 NaN and 1 infinite value.*x\.isnan\(\)"):
        checks.images("x", x, finite=True)
    with pytest.raises(ValueError, match="logits holds 1 NaN"):
        checks.finite("logits", torch.tensor([0.0, float("nan")]))
    assert checks.finite("logits", torch.zeros(0)).numel() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_all_finite_finds_one_nan_or_inf_anywhere(dtype):
    x = torch.rand(64, 1, 7, 9).to(dtype)
    assert checks.all_finite(x) and checks.all_finite(x[:0])
    for bad in (float("nan"), float("inf"), float("-inf")):
        for where in ((0, 0, 0, 0), (31, 0, 3, 4), (63, 0, 6, 8)):
            y = x.clone()
            y[where] = bad
            assert not checks.all_finite(y), (bad, where)
            assert checks.all_finite(y) == bool(torch.isfinite(y).all())


def test_all_finite_of_integers_booleans_and_complex():
    assert checks.all_finite(torch.arange(5)) and checks.all_finite(torch.ones(3, dtype=torch.bool))
    assert not checks.all_finite(torch.tensor([1 + 1j, complex(float("nan"), 0)]))
