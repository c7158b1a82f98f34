"""free_bits_kl: Σ_j max(λ, batch-mean KL_j), with the gradients the free-bits objective promises.

Kingma et al. (2016) average each latent dimension's KL over the batch first and only then compare
it with the floor λ. Below the floor a dimension gets no gradient from the KL at all; above it, the
gradient is exactly that of the plain batch-mean KL.
"""

import math

import numpy as np
import pytest
import torch

from vaeutils import losses as L
from vaeutils.losses import ELBOLoss


def _grads(fn, mu, logvar):
    mu = mu.clone().requires_grad_(True)
    logvar = logvar.clone().requires_grad_(True)
    fn(mu, logvar).backward()
    return mu.grad, logvar.grad


def _plain(mu, logvar):
    return L.kl_per_dim(mu, logvar).mean(0).sum()


@pytest.fixture
def two_dims():
    """Three examples, two latent dims: dim 0 carries 1.0 nat on average, dim 1 only 0.0175 nats."""
    mu = torch.tensor([[1.0, 0.1], [-1.0, 0.2], [math.sqrt(2.0) * 1.0, 0.0]], dtype=torch.float64)
    logvar = torch.zeros_like(mu)
    return mu, logvar


def test_value_is_sum_of_max_of_batch_means(two_dims):
    mu, logvar = two_dims
    per_dim = L.kl_per_dim(mu, logvar).mean(0)  # (0.5 + 0.5 + 1.0) / 3 and (0.005 + 0.02 + 0) / 3
    assert per_dim[0].item() == pytest.approx(2.0 / 3.0)
    assert per_dim[1].item() == pytest.approx(0.025 / 3.0)
    for lam in (0.0, 0.1, 0.5, 1.0, 3.0):
        expected = sum(max(lam, v) for v in per_dim.tolist())
        assert L.free_bits_kl(mu, logvar, lam).item() == pytest.approx(expected, rel=1e-12)


def test_zero_floor_is_the_plain_batch_mean_kl():
    torch.manual_seed(0)
    mu, logvar = torch.randn(16, 5), 0.3 * torch.randn(16, 5)
    assert torch.allclose(L.free_bits_kl(mu, logvar, 0.0), _plain(mu, logvar))
    assert torch.allclose(L.free_bits_kl(mu, logvar, 0), _plain(mu, logvar))
    g_fb = _grads(lambda m, v: L.free_bits_kl(m, v, 0.0), mu, logvar)
    g_plain = _grads(_plain, mu, logvar)
    for a, b in zip(g_fb, g_plain):
        assert torch.allclose(a, b)


def test_gradient_zero_below_and_plain_above(two_dims):
    mu, logvar = two_dims
    lam = 0.1  # dim 0 (0.667 nats) is above the floor, dim 1 (0.0083 nats) below
    g_mu, g_lv = _grads(lambda m, v: L.free_bits_kl(m, v, lam), mu, logvar)
    p_mu, p_lv = _grads(_plain, mu, logvar)
    assert torch.equal(g_mu[:, 1], torch.zeros(3, dtype=mu.dtype))
    assert torch.equal(g_lv[:, 1], torch.zeros(3, dtype=mu.dtype))
    assert torch.allclose(g_mu[:, 0], p_mu[:, 0]) and torch.allclose(g_lv[:, 0], p_lv[:, 0])
    # the plain gradient of dim 0 w.r.t. mu is mu / batch
    assert torch.allclose(g_mu[:, 0], mu[:, 0] / 3)


def test_floor_above_every_dimension_gives_a_constant(two_dims):
    mu, logvar = two_dims
    value = L.free_bits_kl(mu, logvar, 5.0)
    assert value.item() == pytest.approx(10.0)
    g_mu, g_lv = _grads(lambda m, v: L.free_bits_kl(m, v, 5.0), mu, logvar)
    assert not g_mu.any() and not g_lv.any()


def test_dimension_exactly_at_the_floor_gets_zero_gradient():
    """At exactly λ the max has a kink; any multiple t·g (0 ≤ t ≤ 1) of the plain gradient g is a
    subgradient. torch.clamp picks t = 0: a dimension sitting exactly on the floor counts as free.
    (torch.maximum would split the tie, t = 1/2.) In training the batch mean lands exactly on λ
    with probability zero, so the choice does not change results."""
    mu = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)  # KL = 0.5 in each example
    logvar = torch.zeros_like(mu)
    assert L.free_bits_kl(mu, logvar, 0.5).item() == 0.5
    g_mu, _ = _grads(lambda m, v: L.free_bits_kl(m, v, 0.5), mu, logvar)
    assert torch.equal(g_mu, torch.zeros_like(mu))
    g_tie, _ = _grads(lambda m, v: torch.maximum(L.kl_per_dim(m, v).mean(0), torch.tensor(0.5, dtype=m.dtype)).sum(),
                      mu, logvar)
    assert torch.allclose(g_tie, 0.5 * mu / 2)


def test_batch_mean_before_max_differs_from_per_example_clamp(two_dims):
    """The per-example clamp (a common rewrite) keeps gradient on examples above λ even when the
    dimension's batch mean is below λ, and its value is larger."""
    mu, logvar = two_dims
    lam = 0.01  # dim 1: examples carry 0.005, 0.02, 0.0 nats; batch mean 0.0083 < λ
    per_example = lambda m, v: torch.clamp(L.kl_per_dim(m, v), min=lam).mean(0).sum()  # noqa: E731
    assert per_example(mu, logvar).item() > L.free_bits_kl(mu, logvar, lam).item()
    g_fb, _ = _grads(lambda m, v: L.free_bits_kl(m, v, lam), mu, logvar)
    g_pe, _ = _grads(per_example, mu, logvar)
    assert g_fb[1, 1].item() == 0.0
    assert g_pe[1, 1].item() == pytest.approx(0.2 / 3)


def test_shapes_and_batch_of_images():
    mu, logvar = torch.zeros(4, 2, 3), torch.zeros(4, 2, 3)
    assert L.free_bits_kl(mu, logvar, 0.25).item() == pytest.approx(6 * 0.25)
    assert L.free_bits_kl(mu, logvar, 0.25).dim() == 0


@pytest.mark.parametrize("bad", [-0.1, -1, float("nan"), float("inf"), float("-inf")])
def test_negative_or_non_finite_floor_is_a_value_error(bad):
    with pytest.raises(ValueError, match="free_bits"):
        L.free_bits_kl(torch.zeros(2, 3), torch.zeros(2, 3), bad)


@pytest.mark.parametrize("bad", ["0.5", None, True, torch.tensor(0.5), [0.5]])
def test_non_number_floor_is_a_type_error(bad):
    with pytest.raises(TypeError, match="free_bits"):
        L.free_bits_kl(torch.zeros(2, 3), torch.zeros(2, 3), bad)


def test_bad_tensors():
    with pytest.raises(ValueError, match="batch"):
        L.free_bits_kl(torch.zeros(3), torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="same shape"):
        L.free_bits_kl(torch.zeros(2, 3), torch.zeros(2, 4), 0.1)
    with pytest.raises(TypeError, match="mu"):
        L.free_bits_kl([[0.0]], torch.zeros(1, 1), 0.1)


def test_empty_batch_is_refused_and_numpy_floors_are_numbers():
    with pytest.raises(ValueError, match="empty batch"):
        L.free_bits_kl(torch.zeros(0, 3), torch.zeros(0, 3), 0.1)
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    assert L.free_bits_kl(mu, logvar, np.float32(0.5)).item() == 1.5
    assert L.free_bits_kl(mu, logvar, np.int64(1)).item() == 3.0


def test_half_precision_is_computed_in_float32():
    mu = torch.tensor([[256.0, 0.0]], dtype=torch.float16)
    logvar = torch.tensor([[0.0, 12.0]], dtype=torch.float16)
    value = L.free_bits_kl(mu, logvar, 0.5)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(L.free_bits_kl(mu.double(), logvar.double(), 0.5).item(), rel=1e-6)


def test_elbo_loss_uses_free_bits_times_beta(tiny_vae):
    model = tiny_vae(in_shape=(1, 4, 4), hidden=(8,))
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    t = ELBOLoss(beta=2.0, free_bits=0.3)(model, x, step=0, generator=torch.Generator().manual_seed(1))
    mu, logvar, _, _ = model(x, torch.Generator().manual_seed(1))
    assert torch.allclose(t["loss"] - t["rec"], 2.0 * L.free_bits_kl(mu, logvar, 0.3))
    assert torch.allclose(t["kl"], L.kl_per_dim(mu, logvar).sum(1).mean())  # the logged KL stays the plain one
    with pytest.raises(ValueError, match="free_bits"):
        ELBOLoss(free_bits=-0.5)
