"""vaeutils.priors (unit 08): the log-densities against torch.distributions, the mixtures against sums written
out, the Monte Carlo KL against the closed form, the learned-prior loss and the summary."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from vaeutils import losses, metrics, priors
from vaeutils.models import MLPVAE
from vaeutils.train import fit


@pytest.fixture
def codes():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(64, 3, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(64, 3, generator=g, dtype=torch.float64) - 1.0
    return mu, logvar


def tiny_vae(latent_dim=3, seed=0):
    torch.manual_seed(seed)
    return MLPVAE(in_shape=(1, 4, 4), hidden=(16,), latent_dim=latent_dim)


def test_log_normal_diag_and_standard_normal_match_torch_distributions(codes):
    mu, logvar = codes
    z = mu + 0.3
    expected = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z)
    assert torch.allclose(priors.log_normal_diag(z, mu, logvar), expected, rtol=1e-12)
    reference = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
    assert torch.allclose(priors.log_standard_normal(z), reference, rtol=1e-12)


def test_log_mixture_is_the_weighted_sum_of_densities_written_out(codes):
    mu, logvar = codes
    means, logvars = mu[:5], logvar[:5]
    weights = torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25], dtype=torch.float64)
    z = torch.randn(40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    by_hand = torch.stack([w * priors.log_normal_diag(z, m, v).exp() for w, m, v in zip(weights, means, logvars)])
    got = priors.log_mixture(z, means, logvars, weights.log(), chunk=7)  # chunks smaller than the batch
    assert torch.allclose(got, by_hand.sum(0).log(), rtol=1e-10)
    uniform = priors.log_mixture(z, means, logvars)
    assert torch.allclose(uniform, (by_hand / weights[:, None]).mean(0).log(), rtol=1e-10)


def test_a_mixture_prior_is_a_normalised_density():
    prior = priors.MixturePrior(latent_dim=2, n_components=3, seed=4).double()
    with torch.no_grad():
        prior.logvars.mul_(0).add_(-1.0)
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
    side = torch.linspace(-7, 7, 561, dtype=torch.float64)
    grid = torch.cartesian_prod(side, side)
    cell = float(side[1] - side[0]) ** 2
    with torch.no_grad():
        mass = (prior.log_prob(grid).exp() * cell).sum()
    assert float(mass) == pytest.approx(1.0, abs=1e-6)


def test_mixture_samples_have_the_mixture_mean_and_variance():
    prior = priors.MixturePrior(latent_dim=2, n_components=2, seed=0).double()
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-2.0, 0.0], [3.0, 1.0]]))
        prior.logvars.copy_(torch.log(torch.tensor([[0.25, 1.0], [1.0, 0.04]])))
        prior.logits.copy_(torch.log(torch.tensor([0.3, 0.7])))
    z = prior.sample(200_000, generator=torch.Generator().manual_seed(0))
    w, m = torch.tensor([0.3, 0.7]), prior.means.detach().float()
    v = prior.logvars.detach().exp().float()
    mean = (w[:, None] * m).sum(0)
    var = (w[:, None] * (v + m.square())).sum(0) - mean.square()
    assert torch.allclose(z.float().mean(0), mean, atol=0.02)
    assert torch.allclose(z.float().var(0), var, rtol=0.02)


def test_the_vampprior_is_the_average_of_the_encoders_posteriors_at_its_pseudo_inputs():
    vae = tiny_vae()
    init = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    prior = priors.VampPrior((1, 4, 4), n_components=6, init=init)
    assert torch.allclose(prior.pseudo_inputs, init.clamp(0.05, 0.95), atol=1e-6)
    z = torch.randn(9, 3, generator=torch.Generator().manual_seed(3))
    mu, logvar = vae.encode(prior.pseudo_inputs)
    by_hand = torch.stack([priors.log_normal_diag(z, mu[k], logvar[k]).exp() for k in range(6)]).mean(0).log()
    got = prior.log_prob(z, vae)
    assert torch.allclose(got, by_hand, rtol=1e-5)
    got.sum().backward()  # the prior is learned: gradients reach the pseudo-inputs and the encoder
    assert prior.raw.grad.abs().sum() > 0 and vae.to_stats.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pass the VAE"):
        prior.log_prob(z)


def test_monte_carlo_kl_agrees_with_the_closed_form_within_its_standard_error(codes):
    mu, logvar = codes
    closed = losses.kl_per_dim(mu, logvar).sum(1)
    gen = torch.Generator().manual_seed(0)
    replicates = torch.stack([priors.mc_kl(mu, logvar, priors.log_standard_normal, generator=gen)
                              for _ in range(400)])  # (replicate, example)
    se = replicates.std(0) / math.sqrt(len(replicates))
    assert ((replicates.mean(0) - closed).abs() < 4 * se + 1e-12).float().mean() > 0.97
    assert (replicates.mean() - closed.mean()).abs() < 4 * replicates.mean(1).std() / math.sqrt(400)
    z = mu + 0.5  # at a given z the estimate is log q − log p, exactly
    expected = priors.log_normal_diag(z, mu, logvar) - priors.log_standard_normal(z)
    assert torch.equal(priors.mc_kl(mu, logvar, priors.log_standard_normal, z=z), expected)


def test_mc_kl_names_bad_input(codes):
    mu, logvar = codes
    with pytest.raises(TypeError, match="log_prior"):
        priors.mc_kl(mu, logvar, None)
    with pytest.raises(ValueError, match="mu and logvar"):
        priors.mc_kl(mu, logvar[:, :2], priors.log_standard_normal)
    with pytest.raises(ValueError, match="latent dimensions"):
        priors.log_mixture(mu, mu[:, :2], logvar[:, :2])


def test_with_a_standard_prior_the_loss_is_the_elbo_up_to_monte_carlo_noise():
    model = priors.build_prior_vae("standard", tiny_vae())
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(0)).round()
    with torch.no_grad():  # 2000 independent one-draw estimates of the batch's KL, in one pass
        out = priors.LearnedPriorELBO()(model, x.repeat(2000, 1, 1, 1), generator=torch.Generator().manual_seed(0))
        mu, logvar, z, _ = model(x.repeat(2000, 1, 1, 1), torch.Generator().manual_seed(0))
        mc = priors.mc_kl(mu, logvar, model.log_prior, z=z).view(2000, 32).mean(1)
        closed = losses.kl_per_dim(*model.encode(x)).sum(1).mean()
    assert float(out["kl"]) == pytest.approx(float(mc.mean()), rel=1e-5)  # the loss uses the decoder's own z
    assert abs(float(mc.mean() - closed)) < 4 * float(mc.std()) / math.sqrt(len(mc))
    loss = priors.LearnedPriorELBO(beta=2.0)
    assert loss.describe() == {"type": "LearnedPriorELBO", "beta": 2.0}
    with pytest.raises(ValueError, match="beta"):
        priors.LearnedPriorELBO(beta=-1.0)


@pytest.mark.parametrize("kind", ["mog", "vamp"])
def test_a_learned_prior_trains_and_its_parameters_move(kind):
    g = torch.Generator().manual_seed(0)
    patterns = (torch.rand(4, 1, 4, 4, generator=g) > 0.5).float()  # four prototypes, each pixel flipped at 5 %
    x = (patterns[torch.arange(64) % 4] - (torch.rand(64, 1, 4, 4, generator=g) < 0.05).float()).abs()
    model = priors.build_prior_vae(kind, tiny_vae(), n_components=4, init=x[:4] if kind == "vamp" else None)
    before = [p.detach().clone() for p in model.prior.parameters()]
    history = fit(model, x, priors.LearnedPriorELBO(), epochs=20, batch_size=32, lr=1e-2, progress=False)
    assert history["train"][-1]["loss"] < 0.8 * history["train"][0]["loss"]
    assert any((a - p.detach()).abs().max() > 1e-3 for a, p in zip(before, model.prior.parameters()))
    z = model.sample_latent(5, torch.Generator().manual_seed(0))
    assert z.shape == (5, 3) and model.sample(5).shape == (5, 1, 4, 4)


def test_prior_summary_matches_metrics_summary_for_the_standard_prior():
    vae = tiny_vae()
    model = priors.build_prior_vae("standard", vae)
    x = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(0)).round()
    ours = priors.prior_summary(model, x, n_samples=64, batch_size=64)
    theirs = metrics.summary(vae, x)
    assert ours["distortion"] == pytest.approx(theirs["distortion"], rel=1e-6)  # the same z draws
    assert abs(ours["rate"] - theirs["rate"]) < 4 * ours["rate_se"]              # MC against the closed form
    assert ours["rate_se"] > 0 and ours["neg_elbo"] == pytest.approx(ours["rate"] + ours["distortion"])
