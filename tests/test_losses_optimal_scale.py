"""The calibrated decoder's scale (σ-VAE, unit 08): σ* = √MSE and b* = mean |x − loc| in closed form, the
minimum of their NLLs, and ELBOLoss(log_scale="optimal") using them."""

import math

import pytest
import torch

from vaeutils import losses as L
from vaeutils.losses import ELBOLoss


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8, generator=g)
    mean = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return mean, x


# --------------------------------------------------------------------------- σ* = sqrt(MSE)

def test_optimal_sigma_squared_is_the_mse(pair):
    mean, x = pair
    per_image = L.optimal_log_sigma(mean, x)
    assert per_image.shape == (6, 1, 1, 1)
    mse = (x - mean).square().flatten(1).mean(1)
    assert torch.allclose(torch.exp(2 * per_image).flatten(), mse, rtol=1e-6)


def test_optimal_laplace_scale_is_the_mean_absolute_error(pair):
    mean, x = pair
    best = L.optimal_log_laplace_scale(mean, x)
    assert torch.allclose(torch.exp(best).flatten(), (x - mean).abs().flatten(1).mean(1), rtol=1e-6)
    nll_best = L.laplace_nll(mean, x, best).sum()
    for shift in (-0.05, 0.05):  # the closed form is the minimum of the Laplace NLL over b
        assert nll_best < L.laplace_nll(mean, x, best + shift).sum()


def test_optimal_sigma_minimises_the_gaussian_nll(pair):
    mean, x = pair
    best = L.optimal_log_sigma(mean, x)
    nll_best = L.gaussian_nll(mean, x, best).sum()
    for log_sigma in torch.linspace(-5, 1, 121):
        assert nll_best <= L.gaussian_nll(mean, x, float(log_sigma)).sum() + 1e-4
    for shift in (-0.05, 0.05):  # a small step either way costs more, so it is a minimum, not a saddle
        assert nll_best < L.gaussian_nll(mean, x, best + shift).sum()


def test_gradient_of_the_nll_is_zero_at_the_optimum(pair):
    mean, x = pair
    log_sigma = L.optimal_log_sigma(mean, x).detach().requires_grad_(True)
    L.gaussian_nll(mean, x, log_sigma).sum().backward()
    assert log_sigma.grad.abs().max() < 1e-4


def test_elbo_loss_optimal_branch_uses_optimal_log_sigma(tiny_vae, image_batch):
    model, x = tiny_vae(), image_batch
    loss = ELBOLoss(likelihood="gaussian", log_scale="optimal")
    out = model(x, torch.Generator().manual_seed(0)).out
    mean = torch.sigmoid(out)
    expected = L.gaussian_nll(mean, x, L.optimal_log_sigma(mean, x))
    assert torch.allclose(loss.nll(model, out, x), expected)


def test_a_perfect_reconstruction_is_floored_not_infinite():
    x = torch.rand(2, 1, 4, 4)
    log_sigma = L.optimal_log_sigma(x.clone(), x)
    assert torch.isfinite(log_sigma).all()
    assert torch.allclose(log_sigma, torch.full_like(log_sigma, 0.5 * math.log(1e-6)))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mean": torch.rand(3, 4)}, ValueError, "same shape"),
    ({"x": [1.0, 2.0]}, TypeError, "x must be a torch.Tensor"),
    ({"mean": torch.ones(3, 1, 2, 2, dtype=torch.long)}, TypeError, "floating-point"),
])
def test_optimal_log_sigma_names_bad_input(kwargs, error, match):
    args = {"mean": torch.rand(3, 1, 2, 2), "x": torch.rand(3, 1, 2, 2), **kwargs}
    with pytest.raises(error, match=match):
        L.optimal_log_sigma(**args)
