"""Notebook 06's balancing tools and generative losses: the calibrated decoder's σ*, GECO's
multiplier, the GAN and energy losses, and the GAN/classifier models."""

import math

import pytest
import torch

from vaeutils import losses as L
from vaeutils.models import MLPVAE, MLPDiscriminator, MLPGenerator, SmallClassifier
from vaeutils.train import ELBOLoss


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


def test_elbo_loss_optimal_branch_uses_optimal_log_sigma():
    torch.manual_seed(0)
    model = MLPVAE(in_shape=(1, 8, 8), hidden=(16,), latent_dim=3)
    x = torch.rand(5, 1, 8, 8)
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


# --------------------------------------------------------------------------- GECO

def test_multiplier_update_exact_values():
    assert L.geco_multiplier_update(2.0, 3.0, lr=0.1) == pytest.approx(2.0 * math.exp(0.3), rel=1e-12)
    assert L.geco_multiplier_update(2.0, 3.0, lr=0.1, mode="additive") == pytest.approx(2.3, rel=1e-12)
    assert L.geco_multiplier_update(2.0, 0.0, lr=0.1) == 2.0


@pytest.mark.parametrize("mode", ["multiplicative", "additive"])
def test_multiplier_grows_when_violated_and_shrinks_when_satisfied(mode):
    assert L.geco_multiplier_update(1.0, +5.0, lr=0.01, mode=mode) > 1.0
    assert L.geco_multiplier_update(1.0, -5.0, lr=0.01, mode=mode) < 1.0


def test_multiplier_is_clamped():
    assert L.geco_multiplier_update(1.0, 1e6, lr=1.0, lambda_max=50.0) == 50.0
    assert L.geco_multiplier_update(1.0, -1e6, lr=1.0, lambda_min=0.01) == 0.01
    assert L.geco_multiplier_update(1.0, -1e6, lr=1.0, mode="additive", lambda_min=0.01) == 0.01


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "sideways"}, "mode"),
    ({"lr": -1.0}, "lr"),
    ({"lam": 0.0}, "lam"),
    ({"constraint": float("nan")}, "constraint"),
    ({"lambda_min": 5.0, "lambda_max": 1.0}, "lambda_min"),
])
def test_multiplier_update_names_bad_input(kwargs, match):
    args = {"lam": 1.0, "constraint": 1.0, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        L.geco_multiplier_update(**args)


def test_geco_step_uses_current_beta_then_updates_from_the_moving_average():
    geco = L.GECO(kappa=10.0, lr=0.1, alpha=0.5, lambda_init=2.0)
    rec, kl = torch.tensor(13.0), torch.tensor(4.0)
    out = geco.step(rec, kl)
    assert out["beta"] == pytest.approx(0.5)  # β = 1/λ with the λ before the update
    assert torch.allclose(out["loss"], rec + 0.5 * kl)
    assert out["constraint"] == pytest.approx(3.0)
    assert geco.constraint_ma == pytest.approx(3.0)  # the first step starts the average at C
    assert geco.lam == pytest.approx(2.0 * math.exp(0.1 * 3.0))
    geco.step(torch.tensor(9.0), kl)  # C = −1; average 0.5·3 + 0.5·(−1) = 1, still violated
    assert geco.constraint_ma == pytest.approx(1.0)
    assert geco.lam == pytest.approx(2.0 * math.exp(0.3) * math.exp(0.1))
    assert geco.history["lambda"] == pytest.approx([2.0, 2.0 * math.exp(0.3)])
    assert geco.history["beta"] == pytest.approx([0.5, 1 / (2.0 * math.exp(0.3))])


def test_geco_drives_lambda_up_while_rec_is_above_kappa_and_down_below():
    geco = L.GECO(kappa=5.0, lr=0.05, alpha=0.0)
    for _ in range(10):
        geco.step(torch.tensor(8.0), torch.tensor(1.0))
    high = geco.lam
    assert high > 1.0
    for _ in range(10):
        geco.step(torch.tensor(2.0), torch.tensor(1.0))
    assert geco.lam < high


def test_geco_without_update_leaves_lambda_alone_and_passes_gradients():
    geco = L.GECO(kappa=1.0, lambda_init=4.0)
    rec = torch.tensor(3.0, requires_grad=True)
    kl = torch.tensor(2.0, requires_grad=True)
    out = geco.step(rec, kl, update=False)
    out["loss"].backward()
    assert geco.lam == 4.0 and geco.history["lambda"] == []
    assert rec.grad.item() == 1.0 and kl.grad.item() == pytest.approx(0.25)


@pytest.mark.parametrize("kwargs, match", [
    ({"kappa": float("inf")}, "kappa"),
    ({"kappa": 1.0, "alpha": 1.0}, "alpha"),
    ({"kappa": 1.0, "mode": "fast"}, "mode"),
    ({"kappa": 1.0, "lr": 0.0}, "lr"),
])
def test_geco_names_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.GECO(**kwargs)


# --------------------------------------------------------------------------- GAN and energy losses

def test_generator_gradients_per_logit():
    logits = torch.linspace(-8, 8, 33, requires_grad=True)
    d = torch.sigmoid(logits.detach())
    n = len(logits)
    (g_ns,) = torch.autograd.grad(L.gan_generator_loss(logits, "non_saturating"), logits)
    (g_mm,) = torch.autograd.grad(L.gan_generator_loss(logits, "minimax"), logits)
    assert torch.allclose(g_ns * n, -(1 - d), atol=1e-6)
    assert torch.allclose(g_mm * n, -d, atol=1e-6)


def test_gan_losses_match_their_definitions_and_stay_finite():
    real, fake = torch.randn(7), torch.randn(7)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert torch.allclose(L.gan_discriminator_loss(real, fake), expected, atol=1e-6)
    assert torch.allclose(L.gan_generator_loss(fake, "minimax"), torch.log(1 - d_fake).mean(), atol=1e-6)
    assert torch.allclose(L.gan_generator_loss(fake), -torch.log(d_fake).mean(), atol=1e-6)
    extreme = torch.tensor([-200.0, 200.0])
    for value in (L.gan_discriminator_loss(extreme, extreme), L.gan_generator_loss(extreme),
                  L.gan_generator_loss(extreme, "minimax")):
        assert torch.isfinite(value)


def test_generator_loss_names_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        L.gan_generator_loss(torch.zeros(3), kind="wasserstein")


def test_energy_contrastive_gradient_is_the_nll_gradient():
    """On a finite state space the model expectation is exact, so the two gradients agree."""
    theta = torch.tensor([0.3, -0.2, 0.5, 0.0], requires_grad=True)  # E(state) = theta[state]
    data = torch.tensor([0, 0, 1, 2, 0, 3, 1])
    p_model = torch.softmax(-theta.detach(), 0)
    nll = theta[data].mean() + torch.logsumexp(-theta, 0)
    (g_nll,) = torch.autograd.grad(nll, theta)
    # E_model[E] with exact weights: 4 "samples" weighted by p_model, scaled so their mean is the expectation
    loss = L.energy_contrastive_loss(theta[data], 4 * p_model * theta)
    (g_contrastive,) = torch.autograd.grad(loss, theta)
    assert torch.allclose(g_nll, g_contrastive, atol=1e-6)


def test_energy_contrastive_sign():
    low, high = torch.tensor([1.0]), torch.tensor([3.0])
    assert L.energy_contrastive_loss(low, high) < L.energy_contrastive_loss(high, low)


# --------------------------------------------------------------------------- GAN models, classifier

def test_gan_models_shapes_and_ranges():
    torch.manual_seed(0)
    g, d = MLPGenerator(latent_dim=8, hidden=(16,)), MLPDiscriminator(hidden=(16,))
    g.eval()
    x = g.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, g.sample(5, torch.Generator().manual_seed(0)))
    assert d(x).shape == (5,)
    with pytest.raises(ValueError, match="z must be shaped"):
        g(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="x must be shaped"):
        d(torch.zeros(5, 1, 8, 8))


def test_classifier_features_and_logits():
    net = SmallClassifier(feature_dim=32)
    x = torch.rand(4, 1, 28, 28)
    assert net.features(x).shape == (4, 32)
    assert net(x).shape == (4, 10)
    assert torch.allclose(net(x), net.head(net.features(x)))


@pytest.mark.parametrize("build, match", [
    (lambda: MLPGenerator(hidden=()), "hidden"),
    (lambda: MLPDiscriminator(dropout=1.0), "dropout"),
    (lambda: SmallClassifier(in_shape=(1, 30, 30)), "divisible by 4"),
    (lambda: SmallClassifier(n_classes=1), "n_classes"),
])
def test_models_name_bad_settings(build, match):
    with pytest.raises(ValueError, match=match):
        build()
