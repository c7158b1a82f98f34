"""The KL part of vaeutils.losses (taught in unit 01): kl_per_dim and kl_terms."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaeutils.losses import kl_per_dim, kl_terms

TERM_KEYS = {"one", "logvar", "neg_var", "neg_mu_sq"}


def _random(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mu = 3.0 * torch.randn(shape, generator=g, dtype=dtype)
    logvar = 4.0 * torch.rand(shape, generator=g, dtype=dtype) - 3.0
    return mu, logvar


def _reference(mu, logvar):
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return kl_divergence(q, p)


@pytest.mark.parametrize("shape", [(), (7,), (64, 16), (4, 3, 5)])
def test_matches_torch_distributions(shape):
    mu, logvar = _random(shape, seed=len(shape))
    kl = kl_per_dim(mu, logvar)
    assert kl.shape == mu.shape and kl.dtype == torch.float64
    torch.testing.assert_close(kl, _reference(mu, logvar), rtol=1e-10, atol=1e-12)


def test_float32_matches_float64():
    mu, logvar = _random((256, 8), seed=1)
    kl32 = kl_per_dim(mu.float(), logvar.float())
    assert kl32.dtype == torch.float32
    torch.testing.assert_close(kl32.double(), kl_per_dim(mu, logvar), rtol=1e-5, atol=1e-6)


def test_non_negative_and_zero_only_at_standard_normal():
    mu, logvar = _random((10_000,), seed=2)
    assert (kl_per_dim(mu, logvar) > 0).all()
    for dtype in (torch.float32, torch.float64):
        zero = torch.zeros(5, dtype=dtype)
        assert torch.equal(kl_per_dim(zero, zero), zero)  # exactly 0, not just close


@pytest.mark.parametrize(
    "mu, sigma, expected",
    [(0.0, 1.0, 0.0), (1.5, 1.0, 1.125), (0.0, 2.0, 0.5 * (4.0 - 1.0 - np.log(4.0))),
     (0.0, 0.1, 0.5 * (0.01 - 1.0 - np.log(0.01)))],
)
def test_hand_computed_values(mu, sigma, expected):
    kl = kl_per_dim(torch.tensor(mu, dtype=torch.float64), torch.tensor(2 * np.log(sigma), dtype=torch.float64))
    assert float(kl) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_terms_identity_and_contents():
    mu, logvar = _random((32, 6), seed=3)
    terms = kl_terms(mu, logvar)
    assert set(terms) == TERM_KEYS
    for value in terms.values():
        assert value.shape == mu.shape and value.dtype == mu.dtype
    torch.testing.assert_close(terms["one"], torch.ones_like(mu))
    torch.testing.assert_close(terms["logvar"], logvar)
    torch.testing.assert_close(terms["neg_var"], -logvar.exp())
    torch.testing.assert_close(terms["neg_mu_sq"], -mu**2)
    total = -0.5 * (terms["one"] + terms["logvar"] + terms["neg_var"] + terms["neg_mu_sq"])
    torch.testing.assert_close(total, kl_per_dim(mu, logvar), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_inputs_finite_values_and_gradients(dtype):
    mu_values = torch.tensor([-1e3, -1.0, 0.0, 1e-3, 1e3], dtype=dtype)
    logvar_values = torch.tensor([-30.0, -10.0, 0.0, 10.0, 30.0], dtype=dtype)
    mu, logvar = torch.meshgrid(mu_values, logvar_values, indexing="ij")
    mu = mu.clone().requires_grad_(True)
    logvar = logvar.clone().requires_grad_(True)
    kl = kl_per_dim(mu, logvar)
    assert torch.isfinite(kl).all() and (kl >= 0).all()
    kl.sum().backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(logvar.grad).all()
    # dKL/dmu = mu and dKL/dlogvar = (exp(logvar) - 1) / 2, exactly what the closed form says
    torch.testing.assert_close(mu.grad, mu.detach())
    torch.testing.assert_close(logvar.grad, 0.5 * torch.expm1(logvar.detach()))
    terms = kl_terms(mu.detach(), logvar.detach())
    assert all(torch.isfinite(t).all() for t in terms.values())


def test_gradcheck_float64():
    mu, logvar = _random((3, 4), seed=4)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    assert torch.autograd.gradcheck(kl_per_dim, (mu, logvar))
    assert torch.autograd.gradgradcheck(kl_per_dim, (mu, logvar))

    def from_terms(m, lv):
        t = kl_terms(m, lv)
        return -0.5 * (t["one"] + t["logvar"] + t["neg_var"] + t["neg_mu_sq"])

    assert torch.autograd.gradcheck(from_terms, (mu, logvar))


def test_precision_near_sigma_one():
    # KL(0, logvar) = (expm1(logvar) - logvar) / 2 is about logvar**2 / 4 near sigma = 1.
    # The naive exp(logvar) - 1 - logvar loses it to cancellation in float32; expm1 keeps it.
    magnitudes = torch.logspace(-7, -1, 13, dtype=torch.float64)
    logvar32 = torch.cat([magnitudes, -magnitudes]).float()
    exact = 0.5 * (torch.expm1(logvar32.double()) - logvar32.double())
    ours = kl_per_dim(torch.zeros_like(logvar32), logvar32).double()
    naive = (0.5 * (torch.exp(logvar32) - 1 - logvar32)).double()
    err_ours = (ours - exact).abs()
    err_naive = (naive - exact).abs()
    size = logvar32.double().abs()
    eps32 = torch.finfo(torch.float32).eps
    assert (err_ours <= eps32 * size).all()  # no worse than rounding logvar itself to float32
    assert (err_ours <= err_naive).all()
    assert (err_ours[size >= 1e-4] / exact[size >= 1e-4] < 1e-2).all()
    at_1e4 = (size / 1e-4 - 1).abs() < 1e-3
    assert at_1e4.sum() == 2
    assert (err_naive[at_1e4] / exact[at_1e4] > 1).all()  # naive: not one correct digit left


@pytest.mark.parametrize("fn", [kl_per_dim, kl_terms])
def test_shape_mismatch_names_both_arguments(fn):
    with pytest.raises(ValueError, match=r"mu.*logvar"):
        fn(torch.zeros(3, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"mu.*logvar"):
        fn(torch.zeros(4, 1), torch.zeros(4))  # broadcastable is still refused


BAD_VALUES = [
    pytest.param([0.0, 1.0], TypeError, id="list"),
    pytest.param(0.5, TypeError, id="float"),
    pytest.param(np.zeros(2), TypeError, id="numpy"),
    pytest.param(None, TypeError, id="None"),
    pytest.param(torch.zeros(2, dtype=torch.int64), TypeError, id="int64-tensor"),
    pytest.param(torch.zeros(2, dtype=torch.int32), TypeError, id="int32-tensor"),
    pytest.param(torch.zeros(2, dtype=torch.bool), TypeError, id="bool-tensor"),
]


@pytest.mark.parametrize("fn", [kl_per_dim, kl_terms])
@pytest.mark.parametrize("bad, error", BAD_VALUES)
@pytest.mark.parametrize("which", ["mu", "logvar"])
def test_bad_input_names_the_argument(fn, bad, error, which):
    good = torch.zeros(2)
    args = {"mu": good, "logvar": good, which: bad}
    with pytest.raises(error, match=which):
        fn(**args)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    """μ = 256 gives μ² = 65,536 and log σ² = 12 gives σ² = 162,755: both past float16's largest number."""
    mu = torch.tensor([256.0, 0.0, -3.0], dtype=dtype)
    logvar = torch.tensor([0.0, 12.0, -20.0], dtype=dtype)
    kl = kl_per_dim(mu, logvar)
    assert kl.dtype == torch.float32 and torch.isfinite(kl).all()
    torch.testing.assert_close(kl.double(), _reference(mu.double(), logvar.double()), rtol=1e-6, atol=1e-6)
    terms = kl_terms(mu, logvar)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in terms.values())
