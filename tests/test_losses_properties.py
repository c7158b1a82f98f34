"""Property-based checks (hypothesis) of vaeutils.losses over the ranges its functions promise.

Each property is checked on generated inputs against an independent reference in float64: ``kl_per_dim`` against
``torch.distributions.kl_divergence`` (μ in [−1000, 1000], log σ² in [−30, 30]), the three NLLs against
``torch.distributions`` log-probabilities (logits in [−10⁴, 10⁴]; scales with |log σ| ≤ 20, the range
``ELBOLoss`` accepts), and ``free_bits_kl``'s floor and gradient (exactly zero for a dimension below λ, the plain
batch-mean KL's above it). The examples are the same on every run (see conftest.py); the file runs in seconds.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Laplace, Normal, kl_divergence

from vaeutils import losses as L

FLOAT_DTYPES = st.sampled_from([torch.float32, torch.float64])
EXAMPLES = settings(max_examples=60)


def values(low, high, shape):
    """A float64 tensor of ``shape`` with entries in [low, high]."""
    n = math.prod(shape)
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)
    return st.lists(floats, min_size=n, max_size=n).map(lambda v: torch.tensor(v, dtype=torch.float64).view(shape))


shapes = st.tuples(st.integers(1, 4), st.integers(1, 5))


@st.composite
def mu_logvar(draw):
    shape = draw(shapes)
    return draw(values(-1e3, 1e3, shape)), draw(values(-30.0, 30.0, shape))


def _tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


@EXAMPLES
@given(mu_logvar(), FLOAT_DTYPES)
def test_kl_per_dim_matches_torch_distributions(ml, dtype):
    mu, logvar = (t.to(dtype) for t in ml)
    got = L.kl_per_dim(mu, logvar)
    assert got.dtype == dtype and got.shape == mu.shape and torch.isfinite(got).all() and (got >= 0).all()
    expected = kl_divergence(Normal(mu.double(), torch.exp(0.5 * logvar.double())), Normal(0.0, 1.0))
    torch.testing.assert_close(got.double(), expected, **_tolerance(dtype))


@st.composite
def predictions_and_targets(draw, low, high):
    shape = draw(shapes)
    return draw(values(low, high, shape)), draw(values(0.0, 1.0, shape))


@EXAMPLES
@given(predictions_and_targets(-1e4, 1e4), FLOAT_DTYPES)
def test_bernoulli_nll_matches_torch_distributions(pair, dtype):
    logits, x = (t.to(dtype) for t in pair)
    got = L.bernoulli_nll(logits, x)
    expected = -Bernoulli(logits=logits.double(), validate_args=False).log_prob(x.double()).sum(1)
    assert got.dtype == dtype and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=1e-3)


@EXAMPLES
@given(predictions_and_targets(-10.0, 10.0), st.floats(-20.0, 20.0), FLOAT_DTYPES,
       st.sampled_from(["gaussian", "laplace"]))
def test_gaussian_and_laplace_nll_match_torch_distributions(pair, log_scale, dtype, family):
    mean, x = (t.to(dtype) for t in pair)
    nll, dist = (L.gaussian_nll, Normal) if family == "gaussian" else (L.laplace_nll, Laplace)
    got = nll(mean, x, log_scale)
    expected = -dist(mean.double(), math.exp(log_scale)).log_prob(x.double()).sum(1)
    assert got.dtype == dtype and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, **_tolerance(dtype))


@st.composite
def free_bits_case(draw):
    mu, logvar = draw(st.tuples(st.integers(1, 6), st.integers(1, 5)).flatmap(
        lambda s: st.tuples(values(-3.0, 3.0, s), values(-3.0, 3.0, s))))
    return mu, logvar, draw(st.floats(0.0, 5.0))


@EXAMPLES
@given(free_bits_case())
def test_free_bits_floor_and_gradient(case):
    mu, logvar, lam = case
    per_dim = L.kl_per_dim(mu, logvar).mean(0)
    far = (per_dim - lam).abs() > 1e-9  # exactly at the floor the gradient is a matter of convention
    mu, logvar = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    value = L.free_bits_kl(mu, logvar, lam)
    assert value.item() >= lam * mu.shape[1] - 1e-12  # never below the floor
    assert value.item() == pytest.approx(torch.clamp(per_dim, min=lam).sum().item(), rel=1e-12, abs=1e-12)
    g_mu, g_lv = torch.autograd.grad(value, (mu, logvar))
    p_mu, p_lv = torch.autograd.grad(L.kl_per_dim(mu, logvar).mean(0).sum(), (mu, logvar))
    below, above = far & (per_dim < lam), far & (per_dim > lam)
    assert (g_mu[:, below] == 0).all() and (g_lv[:, below] == 0).all()  # no gradient under the floor
    torch.testing.assert_close(g_mu[:, above], p_mu[:, above], rtol=0, atol=0)
    torch.testing.assert_close(g_lv[:, above], p_lv[:, above], rtol=0, atol=0)
