"""The reconstruction part of vaeutils.losses (taught in unit 02): bernoulli_nll, gaussian_nll, laplace_nll.

Each NLL is compared with torch.distributions summed per example, on random and extreme inputs, with
every form of scale (scalar, per pixel, per example), through float64 gradcheck, and with every bad input:
non-finite scales, the mean of an empty batch, and half precision (computed in float32) included.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Laplace, Normal

from vaeutils.losses import bernoulli_nll, gaussian_nll, laplace_nll

SHAPE = (6, 1, 5, 4)  # (batch, C, H, W): each example has 20 values


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _per_example(per_element):
    return per_element.flatten(1).sum(1)


# --------------------------------------------------------------------------- agreement with torch.distributions

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_matches_torch_distributions(dtype):
    g = _gen(0)
    logits = 6.0 * torch.randn(SHAPE, generator=g, dtype=dtype)
    x = torch.rand(SHAPE, generator=g, dtype=dtype)  # grey levels: Bernoulli.log_prob accepts them unvalidated
    expected = -_per_example(Bernoulli(logits=logits, validate_args=False).log_prob(x))
    got = bernoulli_nll(logits, x)
    assert got.shape == (SHAPE[0],) and got.dtype == dtype
    torch.testing.assert_close(got, expected)
    # and an independent float64 formula: softplus(l) - x*l
    ref = _per_example(F.softplus(logits.double()) - x.double() * logits.double())
    torch.testing.assert_close(got.double(), ref, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-4)


def test_bernoulli_binary_targets_match_validated_distribution():
    g = _gen(1)
    logits = 3.0 * torch.randn(SHAPE, generator=g, dtype=torch.float64)
    x = torch.bernoulli(torch.full(SHAPE, 0.4, dtype=torch.float64), generator=g)
    expected = -_per_example(Bernoulli(logits=logits).log_prob(x))
    torch.testing.assert_close(bernoulli_nll(logits, x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_matches_torch_distributions_scalar_sigma(dtype):
    g = _gen(2)
    mean, x = torch.rand(SHAPE, generator=g, dtype=dtype), torch.rand(SHAPE, generator=g, dtype=dtype)
    for log_sigma in (0.0, -2.3, 1.5):
        expected = -_per_example(Normal(mean, math.exp(log_sigma)).log_prob(x))
        torch.testing.assert_close(gaussian_nll(mean, x, log_sigma), expected)
        torch.testing.assert_close(gaussian_nll(mean, x, torch.tensor(log_sigma, dtype=dtype)), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_laplace_matches_torch_distributions_scalar_scale(dtype):
    g = _gen(3)
    loc, x = torch.rand(SHAPE, generator=g, dtype=dtype), torch.rand(SHAPE, generator=g, dtype=dtype)
    for log_scale in (0.0, -2.3, 1.5):
        expected = -_per_example(Laplace(loc, math.exp(log_scale)).log_prob(x))
        torch.testing.assert_close(laplace_nll(loc, x, log_scale), expected)
        torch.testing.assert_close(laplace_nll(loc, x, torch.tensor(log_scale, dtype=dtype)), expected)


SCALE_SHAPES = {
    "scalar tensor": (),
    "per pixel": SHAPE[1:],
    "per pixel with batch axis": (1, *SHAPE[1:]),
    "per example": (SHAPE[0], 1, 1, 1),
    "per element": SHAPE,
    "per row": (SHAPE[0], 1, SHAPE[2], 1),
}


@pytest.mark.parametrize("name", list(SCALE_SHAPES))
@pytest.mark.parametrize("nll, dist", [(gaussian_nll, Normal), (laplace_nll, Laplace)], ids=["gaussian", "laplace"])
def test_scale_broadcasting(nll, dist, name):
    g = _gen(4)
    mean = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    x = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    log_scale = torch.randn(SCALE_SHAPES[name], generator=g, dtype=torch.float64)
    expected = -_per_example(dist(mean, log_scale.exp().expand(SHAPE)).log_prob(x))
    got = nll(mean, x, log_scale)
    assert got.shape == (SHAPE[0],)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_gaussian_constant_and_mse_form():
    """-log N(x | m, σ²) summed over D values = SSE/(2σ²) + D·(log σ + ½ log 2π)."""
    g = _gen(5)
    mean, x = torch.rand(SHAPE, generator=g, dtype=torch.float64), torch.rand(SHAPE, generator=g, dtype=torch.float64)
    d = math.prod(SHAPE[1:])
    for sigma in (0.1, 1.0, 6.26):
        sse = (x - mean).square().flatten(1).sum(1)
        by_hand = sse / (2 * sigma**2) + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
        torch.testing.assert_close(gaussian_nll(mean, x, math.log(sigma)), by_hand, rtol=1e-12, atol=1e-12)


def test_laplace_is_l1_plus_constant():
    g = _gen(6)
    loc, x = torch.rand(SHAPE, generator=g, dtype=torch.float64), torch.rand(SHAPE, generator=g, dtype=torch.float64)
    d = math.prod(SHAPE[1:])
    b = 0.07
    by_hand = (x - loc).abs().flatten(1).sum(1) / b + d * (math.log(b) + math.log(2))
    torch.testing.assert_close(laplace_nll(loc, x, math.log(b)), by_hand, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- extreme inputs

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_extreme_logits_finite_values_and_gradients(dtype):
    logits = torch.tensor([[1e4, -1e4, 1e4, -1e4, 200.0, -200.0, 0.0]], dtype=dtype, requires_grad=True)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.5, 0.25, 1.0]], dtype=dtype)
    nll = bernoulli_nll(logits, x)
    # exact: softplus(l) - x*l, i.e. 1e4 + 1e4 + 0 + 0 + 100 + 50 + log 2
    expected = 2e4 + 100.0 + 50.0 + math.log(2.0)
    assert torch.isfinite(nll).all()
    assert abs(nll.item() - expected) <= 1e-6 * expected
    nll.sum().backward()
    assert torch.isfinite(logits.grad).all()
    # the gradient with respect to a logit is sigmoid(l) - x, exactly representable here
    torch.testing.assert_close(logits.grad, torch.tensor([[1.0, -1.0, 0.0, 0.0, 0.5, -0.25, -0.5]], dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bernoulli_extreme_logits_random(dtype):
    g = _gen(7)
    logits = (2 * torch.rand(SHAPE, generator=g, dtype=torch.float64) - 1) * 1e4
    x = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    ref = _per_example(F.softplus(logits) - x * logits)
    l32 = logits.to(dtype).requires_grad_(True)
    got = bernoulli_nll(l32, x.to(dtype))
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-2)
    got.sum().backward()
    assert torch.isfinite(l32.grad).all() and (l32.grad.abs() <= 1).all()


@pytest.mark.parametrize("nll", [gaussian_nll, laplace_nll], ids=["gaussian", "laplace"])
def test_small_and_large_scales_stay_finite(nll):
    g = _gen(8)
    mean = torch.rand(SHAPE, generator=g)
    x = torch.rand(SHAPE, generator=g)
    for log_scale in (-10.0, 10.0):
        ls = torch.tensor(log_scale, requires_grad=True)
        m = mean.clone().requires_grad_(True)
        value = nll(m, x, ls, reduction="sum")
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(ls.grad) and torch.isfinite(m.grad).all()


# --------------------------------------------------------------------------- gradients

def test_bernoulli_gradcheck():
    g = _gen(9)
    logits = (3 * torch.randn(SHAPE, generator=g, dtype=torch.float64)).requires_grad_(True)
    x = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda l: bernoulli_nll(l, x), (logits,))
    assert torch.autograd.gradgradcheck(lambda l: bernoulli_nll(l, x, reduction="sum"), (logits,))


@pytest.mark.parametrize("scale_shape", [(), SHAPE[1:], (SHAPE[0], 1, 1, 1)], ids=["scalar", "pixel", "example"])
def test_gaussian_gradcheck(scale_shape):
    g = _gen(10)
    mean = torch.rand(SHAPE, generator=g, dtype=torch.float64).requires_grad_(True)
    x = torch.rand(SHAPE, generator=g, dtype=torch.float64).requires_grad_(True)
    log_sigma = (0.5 * torch.randn(scale_shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(gaussian_nll, (mean, x, log_sigma))
    assert torch.autograd.gradcheck(lambda m, s: gaussian_nll(m, x, s, reduction="mean"), (mean, log_sigma))


@pytest.mark.parametrize("scale_shape", [(), SHAPE[1:], (SHAPE[0], 1, 1, 1)], ids=["scalar", "pixel", "example"])
def test_laplace_gradcheck(scale_shape):
    g = _gen(11)
    loc = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    # keep |x - loc| away from 0, where |.| has its kink and finite differences are meaningless
    x = loc + torch.where(torch.rand(SHAPE, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0) * (
        0.05 + torch.rand(SHAPE, generator=g, dtype=torch.float64))
    loc.requires_grad_(True)
    log_scale = (0.5 * torch.randn(scale_shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, s: laplace_nll(m, x, s), (loc, log_scale))


def test_gradients_have_the_textbook_form():
    """d/dm of SSE/(2σ²) is (m - x)/σ²; d/dm of L1/b is sign(m - x)/b; d/dl of BCE is sigmoid(l) - x."""
    g = _gen(12)
    x = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    m = torch.rand(SHAPE, generator=g, dtype=torch.float64).requires_grad_(True)
    sigma = 0.3
    gaussian_nll(m, x, math.log(sigma), reduction="sum").backward()
    torch.testing.assert_close(m.grad, (m.detach() - x) / sigma**2)
    m.grad = None
    laplace_nll(m, x, math.log(sigma), reduction="sum").backward()
    torch.testing.assert_close(m.grad, torch.sign(m.detach() - x) / sigma)
    logits = torch.randn(SHAPE, generator=g, dtype=torch.float64).requires_grad_(True)
    bernoulli_nll(logits, x, reduction="sum").backward()
    torch.testing.assert_close(logits.grad, torch.sigmoid(logits.detach()) - x)


# --------------------------------------------------------------------------- reductions

@pytest.mark.parametrize(
    "nll, extra", [(bernoulli_nll, ()), (gaussian_nll, (-0.7,)), (laplace_nll, (-0.7,))],
    ids=["bernoulli", "gaussian", "laplace"],
)
def test_reductions(nll, extra):
    g = _gen(13)
    pred = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    x = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    per_example = nll(pred, x, *extra)
    assert per_example.shape == (SHAPE[0],)
    assert nll(pred, x, *extra, reduction="none").equal(per_example)  # "none" is the default
    torch.testing.assert_close(nll(pred, x, *extra, reduction="sum"), per_example.sum())
    torch.testing.assert_close(nll(pred, x, *extra, reduction="mean"), per_example.mean())
    assert nll(pred, x, *extra, reduction="sum").dim() == 0
    # "mean" is the batch mean of per-example sums, NOT the mean over every pixel
    pixels = math.prod(SHAPE[1:])
    assert nll(pred, x, *extra, reduction="mean") > 5 * per_example.mean() / pixels
    # one example's value does not depend on the others in the batch
    torch.testing.assert_close(nll(pred[:2], x[:2], *extra), per_example[:2])


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4, 5, 2)])
def test_any_rank(shape):
    g = _gen(14)
    pred = torch.rand(shape, generator=g, dtype=torch.float64)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    for nll in (bernoulli_nll, gaussian_nll, laplace_nll):
        out = nll(pred, x)
        assert out.shape == (shape[0],)
        assert torch.isfinite(out).all()


# --------------------------------------------------------------------------- bad input

ALL = [
    (bernoulli_nll, "logits", {}),
    (gaussian_nll, "mean", {"log_sigma": 0.0}),
    (laplace_nll, "loc", {"log_scale": 0.0}),
]
IDS = ["bernoulli", "gaussian", "laplace"]


@pytest.mark.parametrize("nll, pred_name, kw", ALL, ids=IDS)
def test_shape_mismatch_names_both_arguments(nll, pred_name, kw):
    pred, x = torch.zeros(4, 1, 28, 28), torch.zeros(4, 784)
    with pytest.raises(ValueError, match=rf"{pred_name} and x must have the same shape.*\(4, 1, 28, 28\).*\(4, 784\)"):
        nll(pred, x, **kw)


@pytest.mark.parametrize("nll, pred_name, kw", ALL, ids=IDS)
@pytest.mark.parametrize("reduction", ["avg", "batchmean", "", None, "SUM"])
def test_unknown_reduction(nll, pred_name, kw, reduction):
    with pytest.raises(ValueError, match="reduction must be one of"):
        nll(torch.zeros(2, 3), torch.zeros(2, 3), reduction=reduction, **kw)


@pytest.mark.parametrize("nll, pred_name, kw", ALL, ids=IDS)
@pytest.mark.parametrize("bad", [[0.0, 1.0], 0.5, None, "x"], ids=["list", "float", "None", "str"])
def test_non_tensor_prediction_and_target(nll, pred_name, kw, bad):
    with pytest.raises(TypeError, match=rf"{pred_name} must be a torch.Tensor.*torch.as_tensor"):
        nll(bad, torch.zeros(2), **kw)
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        nll(torch.zeros(2), bad, **kw)


@pytest.mark.parametrize("nll, pred_name, kw", ALL, ids=IDS)
def test_integer_tensors_are_refused(nll, pred_name, kw):
    with pytest.raises(TypeError, match=rf"{pred_name} must be a floating-point tensor.*\.float\(\)"):
        nll(torch.zeros(2, dtype=torch.long), torch.zeros(2), **kw)
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        nll(torch.zeros(2), torch.zeros(2, dtype=torch.uint8), **kw)


@pytest.mark.parametrize("bad", [-0.01, 1.01, 255.0, -1.0])
def test_bernoulli_targets_outside_unit_interval(bad):
    x = torch.full((2, 3), 0.5)
    x[1, 2] = bad
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*x / 255.*gaussian_nll"):
        bernoulli_nll(torch.zeros(2, 3), x)


def test_bernoulli_accepts_the_interval_ends_and_empty_batches():
    x = torch.tensor([[0.0, 1.0, 0.5]])
    assert torch.isfinite(bernoulli_nll(torch.zeros(1, 3), x)).all()
    assert bernoulli_nll(torch.zeros(0, 3), torch.zeros(0, 3)).shape == (0,)


@pytest.mark.parametrize("nll, scale_name", [(gaussian_nll, "log_sigma"), (laplace_nll, "log_scale")],
                         ids=["gaussian", "laplace"])
def test_bad_scales(nll, scale_name):
    pred, x = torch.zeros(4, 1, 5, 4), torch.zeros(4, 1, 5, 4)
    for shape in [(3,), (4, 2, 1, 1), (3, 1, 1, 1, 1), (2, 4, 1, 5, 4)]:
        # (3, 1, 1, 1, 1) and (2, 4, 1, 5, 4) broadcast with x but would enlarge it: refused, not silently summed
        with pytest.raises(ValueError, match=rf"{scale_name} of shape .* does not broadcast to x"):
            nll(pred, x, torch.zeros(shape))
    with pytest.raises(TypeError, match=rf"{scale_name} must be a torch.Tensor"):
        nll(pred, x, "0.1")
    with pytest.raises(TypeError, match=rf"{scale_name} must be a torch.Tensor"):
        nll(pred, x, True)
    with pytest.raises(TypeError, match=rf"{scale_name} must be a floating-point tensor"):
        nll(pred, x, torch.zeros((), dtype=torch.long))
    with pytest.raises(TypeError, match=rf"{scale_name}"):
        nll(pred, x, **{scale_name: [0.0]})


# --------------------------------------------------------------------------- scales, low precision, empty batches

@pytest.mark.parametrize("nll, scale_name", [(gaussian_nll, "log_sigma"), (laplace_nll, "log_scale")],
                         ids=["gaussian", "laplace"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_scales_are_refused(nll, scale_name, bad):
    pred, x = torch.rand(2, 3), torch.rand(2, 3)
    with pytest.raises(ValueError, match=rf"{scale_name} must be a finite number"):
        nll(pred, x, bad)
    with pytest.raises(ValueError, match=rf"{scale_name} holds"):
        nll(pred, x, torch.tensor([0.0, bad, 0.0]))


@pytest.mark.parametrize("nll", [gaussian_nll, laplace_nll], ids=["gaussian", "laplace"])
def test_numpy_scalar_scales_are_numbers(nll):
    pred, x = torch.rand(2, 3, dtype=torch.float64), torch.rand(2, 3, dtype=torch.float64)
    torch.testing.assert_close(nll(pred, x, np.float32(-0.5)), nll(pred, x, -0.5))
    torch.testing.assert_close(nll(pred, x, np.int64(1)), nll(pred, x, 1.0))


@pytest.mark.parametrize("nll, pred_name, kw", ALL, ids=IDS)
def test_mean_of_an_empty_batch_is_refused(nll, pred_name, kw):
    empty = torch.zeros(0, 3)
    with pytest.raises(ValueError, match=r"reduction='mean' of an empty batch"):
        nll(empty, empty, reduction="mean", **kw)
    assert nll(empty, empty, reduction="sum", **kw).item() == 0.0  # a sum over nothing is 0
    assert nll(empty, empty, **kw).shape == (0,)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    """784 pixels at logit −100 add up to 78,400 nats, past float16's largest number (65,504)."""
    logits, x = torch.full((2, 784), -100.0, dtype=dtype), torch.ones(2, 784, dtype=dtype)
    got = bernoulli_nll(logits, x)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.full((2,), 78_400.0), rtol=1e-3, atol=0)
    mean, target = torch.zeros(2, 784, dtype=dtype), torch.ones(2, 784, dtype=dtype)
    for nll, dist in ((gaussian_nll, Normal), (laplace_nll, Laplace)):
        got = nll(mean, target, -5.0)
        expected = -_per_example(dist(mean.double(), math.exp(-5.0)).log_prob(target.double()))
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), expected, rtol=1e-3, atol=0)
