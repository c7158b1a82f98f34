"""Reliability review v2, losses and objectives: every reproducer gives the right value or a clear error naming the
argument; the NLLs are finite and right for any finite log-scale (Hypothesis, against torch.distributions)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaeutils import losses as L
from vaeutils import objectives as O


def test_gaussian_and_laplace_nll_at_a_tiny_scale_are_the_log_density_not_nan():
    # −log N(0 | 0, σ²) = log σ + ½ log 2π per pixel; −log Laplace(0 | 0, b) = log b + log 2
    g = L.gaussian_nll(torch.zeros(1, 3), torch.zeros(1, 3), -100.0)
    lap = L.laplace_nll(torch.zeros(1, 3), torch.zeros(1, 3), -100.0)
    assert g.dtype == torch.float32 and lap.dtype == torch.float32
    assert g.item() == pytest.approx(3 * (-100.0 + 0.5 * math.log(2 * math.pi)), rel=1e-6)
    assert lap.item() == pytest.approx(3 * (-100.0 + math.log(2.0)), rel=1e-6)


def test_a_tiny_error_at_a_tiny_scale_is_not_lost_to_an_overflowing_exp():
    # 1e-38 / exp(−95) ≈ 1.8e3: representable although exp(95) is not (float32)
    x, mean = torch.tensor([[1e-38]]), torch.zeros(1, 1)
    want = 0.5 * (1e-38 * math.exp(95)) ** 2 - 95 + 0.5 * math.log(2 * math.pi)
    assert L.gaussian_nll(mean, x, -95.0).item() == pytest.approx(want, rel=1e-4)
    assert L.laplace_nll(mean, x, -95.0).item() == pytest.approx(1e-38 * math.exp(95) - 95 + math.log(2), rel=1e-4)


def test_the_gradient_at_a_zero_error_stays_finite_at_a_tiny_scale():
    mean = torch.zeros(2, 3, requires_grad=True)
    log_sigma = torch.full((2, 1), -100.0, requires_grad=True)
    L.gaussian_nll(mean, torch.zeros(2, 3), log_sigma).sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_sigma.grad).all()


@pytest.mark.parametrize("nll, name", [(L.gaussian_nll, "log_sigma"), (L.laplace_nll, "log_scale")])
def test_one_scale_per_example_shaped_batch_is_refused_not_spread_over_the_width(nll, name):
    x = torch.rand(4, 1, 4, 4)
    with pytest.raises(ValueError, match=name):
        nll(torch.rand(4, 1, 4, 4), x, torch.tensor([-1.0, 0, 1, 2]))
    # the shape it names works, and per pixel of a (B, D) batch still does
    nll(torch.rand(4, 1, 4, 4), x, torch.tensor([-1.0, 0, 1, 2]).view(-1, 1, 1, 1))
    nll(torch.rand(3, 5), torch.rand(3, 5), torch.zeros(5))


@pytest.mark.parametrize("kw", [{"lambda_init": 1e6}, {"lambda_init": 1e-6}, {"lambda_init": 5.0, "lambda_max": 2.0}])
def test_geco_lambda_init_outside_its_clamp_is_refused(kw):
    with pytest.raises(ValueError, match="lambda_init"):
        O.GECO(10.0, **kw)


def test_geco_elbo_lambda_init_above_its_lambda_max_is_refused():
    with pytest.raises(ValueError, match="lambda_init"):
        O.GECOELBO(10.0, lambda_init=1e6)
    assert O.GECO(10.0, lambda_init=1e3).lam == 1e3  # the bound itself is valid


@pytest.mark.parametrize("nll", [L.bernoulli_nll, L.gaussian_nll, L.laplace_nll])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_targets_are_refused(nll, bad):
    with pytest.raises(ValueError, match="x holds"):
        nll(torch.zeros(1, 2), torch.tensor([[bad, 0.5]]))


def test_bernoulli_out_of_range_targets_still_get_the_pixel_range_error():
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        L.bernoulli_nll(torch.zeros(1, 2), torch.tensor([[2.0, 0.5]]))


# ------------------------------------------------------------------------------------------- properties

_LOG_SCALES = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
_PIXELS = st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=3, max_size=3)


def _reference(dist, mean, x, log_scale):
    """The same NLL from torch.distributions in float64 (log-scales beyond ±700 overflow exp there too: the NLL
    is then the closed form's dominating term)."""
    m, xx = torch.tensor([mean]).double(), torch.tensor([x]).double()
    if abs(log_scale) < 700:
        return float(-dist(m, torch.tensor(math.exp(log_scale), dtype=torch.float64)).log_prob(xx).sum())
    return None


@settings(max_examples=150, deadline=None)
@given(mean=_PIXELS, x=_PIXELS, log_scale=_LOG_SCALES)
def test_nlls_are_right_for_any_finite_log_scale(mean, x, log_scale):
    for nll, dist, power in ((L.gaussian_nll, torch.distributions.Normal, 2),
                             (L.laplace_nll, torch.distributions.Laplace, 1)):
        got = nll(torch.tensor([mean]), torch.tensor([x]), log_scale).item()
        assert not math.isnan(got)
        # the float64 value of the float32 inputs, in log space: what the float32 result should round to
        terms = []
        for a, b in zip(mean, x):
            err = abs(float(torch.tensor(b)) - float(torch.tensor(a)))
            exponent = (math.log(err) - log_scale) * power if err > 0 else -math.inf
            scaled = math.exp(exponent) if exponent < 700 else math.inf
            terms.append(scaled / power + log_scale
                         + (0.5 * math.log(2 * math.pi) if power == 2 else math.log(2.0)))
        want = sum(terms)
        if not math.isfinite(want) or abs(want) > 3e38:
            assert got == math.inf or abs(got) > 1e38
            continue
        assert got == pytest.approx(want, rel=1e-4, abs=1e-3 + 1e-6 * abs(log_scale))
        ref = _reference(dist, mean, x, log_scale)
        if ref is not None and math.isfinite(ref) and abs(ref) < 3e38:
            assert got == pytest.approx(ref, rel=1e-4, abs=1e-3)
