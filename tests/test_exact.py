"""vaeutils.exact: the linear-Gaussian model, each closed form against an independent route."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vaeutils.exact import LinearGaussian


@pytest.fixture
def model():
    return LinearGaussian.random(D=6, d=3, sigma=0.7, seed=1)


@pytest.fixture
def some_q():
    g = torch.Generator().manual_seed(5)
    return torch.randn(4, 3, generator=g, dtype=torch.float64), 0.3 * torch.randn(4, 3, generator=g,
                                                                                   dtype=torch.float64)


def test_log_evidence_is_the_marginal_gaussian(model):
    x, _ = model.sample(10, seed=2)
    cov = model.W @ model.W.T + model.sigma**2 * torch.eye(model.D, dtype=torch.float64)
    ref = MultivariateNormal(model.b, cov).log_prob(x)
    assert torch.allclose(model.log_evidence(x), ref, rtol=1e-12)
    assert model.log_evidence(x[0]).shape == ()


def test_posterior_by_conditioning_the_joint_gaussian(model):
    x, _ = model.sample(5, seed=3)
    mean, cov = model.posterior(x)
    # the joint of (z, x) is Gaussian with Cov(z, x) = Wᵀ and Cov(x) = W Wᵀ + σ² I: condition on x
    cov_x = model.W @ model.W.T + model.sigma**2 * torch.eye(model.D, dtype=torch.float64)
    gain = model.W.T @ torch.linalg.inv(cov_x)
    assert torch.allclose(mean, (x - model.b) @ gain.T, atol=1e-12)
    assert torch.allclose(cov, torch.eye(model.d, dtype=torch.float64) - gain @ model.W, atol=1e-12)


def test_posterior_by_bayes_on_a_grid():
    m = LinearGaussian(torch.tensor([[1.5], [-0.5]], dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0.8)
    x = torch.tensor([0.9, 0.2], dtype=torch.float64)
    z = torch.linspace(-8, 8, 20001, dtype=torch.float64)[:, None]
    log_joint = m.log_joint(x, z)
    dz = (z[1] - z[0]).item()
    assert m.log_evidence(x).item() == pytest.approx(torch.logsumexp(log_joint, 0).item() + math.log(dz), abs=1e-8)
    post = torch.softmax(log_joint, 0)
    mean, cov = m.posterior(x)
    assert (post * z[:, 0]).sum().item() == pytest.approx(mean.item(), abs=1e-8)
    assert (post * (z[:, 0] - mean) ** 2).sum().item() == pytest.approx(cov.item(), abs=1e-8)


def test_elbo_against_monte_carlo(model, some_q):
    m, logvar = some_q
    x, _ = model.sample(4, seed=4)
    eps = torch.randn(200_000, 4, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    z = m + (0.5 * logvar).exp() * eps
    log_q = Normal(m, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    w = model.log_joint(x, z) - log_q
    se = w.std(0) / math.sqrt(len(w))
    assert ((w.mean(0) - model.elbo(x, m, logvar)).abs() < 4 * se).all()


def test_kl_to_posterior_against_torch(model, some_q):
    m, logvar = some_q
    x, _ = model.sample(4, seed=7)
    mean, cov = model.posterior(x)
    ref = kl_divergence(MultivariateNormal(m, torch.diag_embed(logvar.exp())), MultivariateNormal(mean, cov))
    assert torch.allclose(model.kl_to_posterior(x, m, logvar), ref, rtol=1e-10)


def test_the_exact_elbo_identity(model, some_q):
    m, logvar = some_q
    x, _ = model.sample(4, seed=8)
    gap = model.log_evidence(x) - model.elbo(x, m, logvar)
    assert torch.allclose(gap, model.kl_to_posterior(x, m, logvar), rtol=0, atol=1e-11)
    assert (gap > 0).all()


def test_best_diagonal_maximises_the_elbo(model):
    x, _ = model.sample(1, seed=9)
    x = x[0]
    m, logvar = model.best_diagonal(x)
    best = model.elbo(x, m, logvar)
    g = torch.Generator().manual_seed(10)
    for _ in range(20):
        dm, dl = 0.05 * torch.randn(3, generator=g, dtype=torch.float64), 0.05 * torch.randn(3, generator=g,
                                                                                          dtype=torch.float64)
        assert model.elbo(x, m + dm, logvar + dl) < best
    lam = model.precision()
    gap = model.log_evidence(x) - best
    assert gap.item() == pytest.approx(0.5 * (lam.diagonal().log().sum() - torch.logdet(lam)).item(), rel=1e-9)
    assert gap.item() > 0.01   # the latents are correlated under the posterior: no diagonal q is exact


def test_bad_arguments_are_named(model):
    with pytest.raises(ValueError, match="sigma"):
        LinearGaussian(model.W, model.b, 0.0)
    with pytest.raises(ValueError, match="b must be shaped"):
        LinearGaussian(model.W, model.b[:3], 1.0)
    with pytest.raises(ValueError, match="x must be shaped"):
        model.log_evidence(torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="m and logvar must have the same shape"):
        model.elbo(torch.zeros(6, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                   torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="z must end in the latent size"):
        model.log_joint(torch.zeros(6, dtype=torch.float64), torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        LinearGaussian([[1.0]], torch.zeros(1), 1.0)
