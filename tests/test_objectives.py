"""vaeutils.objectives (units 08 and 09): GECO's multiplier and its NaN handling, GECO as a loss (GECOELBO), the GAN
and energy losses."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from vaeutils import losses as L
from vaeutils import objectives as O
from vaeutils.train import NonFiniteLossError, fit

# --------------------------------------------------------------------------- GECO

def test_multiplier_update_exact_values():
    assert O.geco_multiplier_update(2.0, 3.0, lr=0.1) == pytest.approx(2.0 * math.exp(0.3), rel=1e-12)
    assert O.geco_multiplier_update(2.0, 3.0, lr=0.1, mode="additive") == pytest.approx(2.3, rel=1e-12)
    assert O.geco_multiplier_update(2.0, 0.0, lr=0.1) == 2.0


@pytest.mark.parametrize("mode", ["multiplicative", "additive"])
def test_multiplier_grows_when_violated_and_shrinks_when_satisfied(mode):
    assert O.geco_multiplier_update(1.0, +5.0, lr=0.01, mode=mode) > 1.0
    assert O.geco_multiplier_update(1.0, -5.0, lr=0.01, mode=mode) < 1.0


def test_multiplier_is_clamped():
    assert O.geco_multiplier_update(1.0, 1e6, lr=1.0, lambda_max=50.0) == 50.0
    assert O.geco_multiplier_update(1.0, -1e6, lr=1.0, lambda_min=0.01) == 0.01
    assert O.geco_multiplier_update(1.0, -1e6, lr=1.0, mode="additive", lambda_min=0.01) == 0.01


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
        O.geco_multiplier_update(**args)


def test_geco_step_uses_current_beta_then_updates_from_the_moving_average():
    geco = O.GECO(kappa=10.0, lr=0.1, alpha=0.5, lambda_init=2.0)
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
    geco = O.GECO(kappa=5.0, lr=0.05, alpha=0.0)
    for _ in range(10):
        geco.step(torch.tensor(8.0), torch.tensor(1.0))
    high = geco.lam
    assert high > 1.0
    for _ in range(10):
        geco.step(torch.tensor(2.0), torch.tensor(1.0))
    assert geco.lam < high


def test_geco_without_update_leaves_lambda_alone_and_passes_gradients():
    geco = O.GECO(kappa=1.0, lambda_init=4.0)
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
        O.GECO(**kwargs)


def test_one_nan_skips_that_update_says_so_and_geco_goes_on():
    geco = O.GECO(kappa=10.0, lr=0.1, alpha=0.5, lambda_init=2.0)
    geco.step(torch.tensor(13.0), torch.tensor(4.0))
    state = (geco.lam, geco.constraint_ma, {k: list(v) for k, v in geco.history.items()})
    with pytest.warns(RuntimeWarning, match=r"GECO skipped the multiplier update: rec is nan"):
        out = geco.step(torch.tensor(float("nan")), torch.tensor(4.0))
    assert math.isnan(out["loss"].item())  # the loss stays NaN, so fit() stops and names the step and term
    assert (geco.lam, geco.constraint_ma, geco.history) == state and geco.skipped == 1
    out = geco.step(torch.tensor(9.0), torch.tensor(4.0))  # later finite steps update as before
    assert geco.constraint_ma == pytest.approx(0.5 * 3.0 + 0.5 * (-1.0))
    assert len(geco.history["lambda"]) == 2 and math.isfinite(geco.lam)


@dataclass
class GECOLoss:
    """The Bernoulli ELBO terms balanced by GECO, as unit 08 writes it; ``nan_at`` poisons one step's rec."""

    geco: O.GECO
    nan_at: int = -1

    def __call__(self, model, x, step=0, generator=None):
        mu, logvar, _, out = model(x, generator)
        rec = L.bernoulli_nll(out, x).mean()
        if step == self.nan_at:
            rec = rec * float("nan")
        return self.geco.step(rec, L.kl_per_dim(mu, logvar).sum(1).mean(), update=model.training)


def test_inside_fit_a_nan_stops_training_with_the_step_and_the_term(tiny_vae, image_batch):
    geco = O.GECO(kappa=30.0, lr=0.01)
    with pytest.warns(RuntimeWarning, match="GECO skipped"), pytest.raises(NonFiniteLossError) as info:
        fit(tiny_vae(), image_batch, GECOLoss(geco, nan_at=2), epochs=3, batch_size=3, progress=False)
    assert info.value.step == 2 and info.value.term == "rec"
    assert len(geco.history["lambda"]) == 2 and math.isfinite(geco.lam)


@pytest.mark.parametrize("rec, kl, name", [(torch.ones(4), torch.tensor(1.0), "rec"),
                                           (torch.tensor(1.0), torch.ones(1, 2), "kl"),
                                           (1.0, torch.tensor(1.0), "rec")])
def test_geco_wants_batch_means(rec, kl, name):
    with pytest.raises((ValueError, TypeError), match=rf"{name} must be"):
        O.GECO(kappa=1.0).step(rec, kl)


def test_geco_accepts_numpy_numbers():
    geco = O.GECO(kappa=np.float32(1.0), lr=np.float64(0.1), alpha=np.float32(0.5), lambda_init=np.int64(2))
    assert type(geco.kappa) is float and geco.lam == 2.0
    assert O.geco_multiplier_update(np.float32(2.0), np.float64(0.0), np.float32(0.1)) == 2.0


def test_geco_as_a_loss_moves_beta_only_in_training_and_keeps_its_history(tiny_vae):
    vae = tiny_vae(in_shape=(1, 4, 4))
    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(0)).round()
    loss = O.GECOELBO(kappa=1.0, lr=0.1, alpha=0.5)  # a target no untrained model meets: λ must grow
    assert loss.describe() == {"type": "GECOELBO", "kappa": 1.0, "lr": 0.1, "alpha": 0.5, "lambda_init": 1.0,
                               "lambda_max": 100.0}
    vae.eval()
    loss(vae, x)
    assert loss.geco.lam == 1.0 and loss.geco.history["beta"] == []      # evaluation leaves λ alone
    vae.train()
    gen = torch.Generator().manual_seed(1)
    first = loss(vae, x, generator=gen)
    mu, logvar, _, out = vae(x, torch.Generator().manual_seed(1))
    rec, kl = L.bernoulli_nll(out, x).mean(), L.kl_per_dim(mu, logvar).sum(1).mean()
    assert first["loss"].item() == pytest.approx((rec + kl).item(), rel=1e-6)  # β = 1/λ = 1 at the start
    second = loss(vae, x)
    assert loss.geco.lam > 1.0 and second["beta"] == pytest.approx(1 / loss.geco.history["lambda"][1])
    history = {}
    loss.keep_history(1, history)
    assert history["geco"]["beta"] == loss.geco.history["beta"] and len(history["geco"]["beta"]) == 2


# --------------------------------------------------------------------------- GAN and energy losses

def test_generator_gradients_per_logit():
    logits = torch.linspace(-8, 8, 33, requires_grad=True)
    d = torch.sigmoid(logits.detach())
    n = len(logits)
    (g_ns,) = torch.autograd.grad(O.gan_generator_loss(logits, "non_saturating"), logits)
    (g_mm,) = torch.autograd.grad(O.gan_generator_loss(logits, "minimax"), logits)
    assert torch.allclose(g_ns * n, -(1 - d), atol=1e-6)
    assert torch.allclose(g_mm * n, -d, atol=1e-6)


def test_gan_losses_match_their_definitions_and_stay_finite():
    real, fake = torch.randn(7), torch.randn(7)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    assert torch.allclose(O.gan_discriminator_loss(real, fake), expected, atol=1e-6)
    assert torch.allclose(O.gan_generator_loss(fake, "minimax"), torch.log(1 - d_fake).mean(), atol=1e-6)
    assert torch.allclose(O.gan_generator_loss(fake), -torch.log(d_fake).mean(), atol=1e-6)
    extreme = torch.tensor([-200.0, 200.0])
    for value in (O.gan_discriminator_loss(extreme, extreme), O.gan_generator_loss(extreme),
                  O.gan_generator_loss(extreme, "minimax")):
        assert torch.isfinite(value)


def test_generator_loss_names_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        O.gan_generator_loss(torch.zeros(3), kind="wasserstein")


def test_energy_contrastive_gradient_is_the_nll_gradient():
    """On a finite state space the model expectation is exact, so the two gradients agree."""
    theta = torch.tensor([0.3, -0.2, 0.5, 0.0], requires_grad=True)  # E(state) = theta[state]
    data = torch.tensor([0, 0, 1, 2, 0, 3, 1])
    p_model = torch.softmax(-theta.detach(), 0)
    nll = theta[data].mean() + torch.logsumexp(-theta, 0)
    (g_nll,) = torch.autograd.grad(nll, theta)
    # E_model[E] with exact weights: 4 "samples" weighted by p_model, scaled so their mean is the expectation
    loss = O.energy_contrastive_loss(theta[data], 4 * p_model * theta)
    (g_contrastive,) = torch.autograd.grad(loss, theta)
    assert torch.allclose(g_nll, g_contrastive, atol=1e-6)


def test_energy_contrastive_sign():
    low, high = torch.tensor([1.0]), torch.tensor([3.0])
    assert O.energy_contrastive_loss(low, high) < O.energy_contrastive_loss(high, low)


@pytest.mark.parametrize("loss", [
    lambda e, x: O.gan_discriminator_loss(e, x), lambda e, x: O.gan_discriminator_loss(x, e),
    lambda e, x: O.gan_generator_loss(e), lambda e, x: O.gan_generator_loss(e, "minimax"),
    lambda e, x: O.energy_contrastive_loss(e, x), lambda e, x: O.energy_contrastive_loss(x, e),
])
def test_empty_batches_are_refused(loss):
    with pytest.raises(ValueError, match="is empty"):
        loss(torch.zeros(0), torch.zeros(3))


def test_half_precision_gan_and_energy_losses_are_computed_in_float32():
    logits = torch.tensor([-300.0, 300.0, 60000.0], dtype=torch.float16)
    for value in (O.gan_discriminator_loss(logits, logits), O.gan_generator_loss(logits),
                  O.energy_contrastive_loss(logits, -logits)):
        assert value.dtype == torch.float32 and torch.isfinite(value)
    assert O.gan_generator_loss(logits).item() == pytest.approx(100.0, rel=1e-3)  # softplus(300) / 3
