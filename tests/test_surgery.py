"""vaeutils.surgery: the average KL = I(x; z) + KL(q(z) ‖ p(z)) (Hoffman & Johnson 2016), and its pieces."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaeutils import surgery
from vaeutils.losses import kl_per_dim
from vaeutils.models import MLPVAE


def random_codes(n=30, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64) - 1.0
    return mu, logvar


@pytest.fixture(scope="module")
def spread_codes():
    """An untrained 784-32-4 MLP VAE made informative (means that differ from image to image, narrow
    posteriors), and 300 random 28×28 images."""
    torch.manual_seed(0)
    model = MLPVAE(hidden=(32,), latent_dim=4).eval()
    with torch.no_grad():
        model.to_stats.weight[:4].mul_(8)      # means that differ from image to image
        model.to_stats.weight[4:].mul_(0.5)    # and narrow posteriors: σ² ≈ e⁻²
        model.to_stats.bias[4:].fill_(-2.0)
    x = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, x


def test_log_q_per_dim_is_the_normal_log_density():
    mu, logvar = random_codes(7, 3)
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = surgery.log_q_per_dim(z, mu, logvar)
    assert out.shape == (5, 7, 3)
    ref = Normal(mu[None], torch.exp(0.5 * logvar)[None]).log_prob(z[:, None, :])
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_log_aggregate_is_the_mixture_density_and_its_marginals():
    mu, logvar = random_codes(40, 3)
    z = 2 * torch.randn(17, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mix = MixtureSameFamily(Categorical(torch.ones(40, dtype=torch.float64)),
                            Independent(Normal(mu, torch.exp(0.5 * logvar)), 1))
    assert torch.allclose(surgery.log_aggregate(z, mu, logvar, batch_size=5), mix.log_prob(z), rtol=1e-12)
    per_dim = surgery.log_aggregate(z, mu, logvar, per_dim=True)
    for k in range(3):
        marginal = MixtureSameFamily(Categorical(torch.ones(40, dtype=torch.float64)),
                                     Normal(mu[:, k], torch.exp(0.5 * logvar[:, k])))
        assert torch.allclose(per_dim[:, k], marginal.log_prob(z[:, k]), rtol=1e-12)


def test_kl_is_mutual_information_plus_marginal_kl_within_mc_error(spread_codes):
    model, x = spread_codes
    for seed in range(3):
        out = surgery.kl_split(model, x, n_samples=2, seed=seed)
        assert abs(out["kl"] - (out["mutual_information"] + out["marginal_kl"])) < 4 * out["mc_se"]
        assert 0 < out["mc_se"] < 0.05 * out["kl"]
        assert 1.0 < out["mutual_information"] <= out["log_n"] == pytest.approx(math.log(300))
        assert out["marginal_kl"] > 0


def test_the_closed_form_kl_is_the_mean_of_kl_per_dim(spread_codes):
    model, x = spread_codes
    mu, logvar = model.encode(x)
    out = surgery.kl_split(model, x)
    assert out["kl"] == pytest.approx(kl_per_dim(mu.double(), logvar.double()).sum(1).mean().item(), rel=1e-12)
    assert out["kl_se"] == 0.0


def test_mc_se_matches_the_spread_of_replicate_estimates(spread_codes):
    model, x = spread_codes
    mu, logvar = model.encode(x[:100])
    runs = [surgery.kl_split_codes(mu, logvar, seed=s) for s in range(40)]
    sums = torch.tensor([o["mutual_information"] + o["marginal_kl"] for o in runs])
    se = runs[0]["mc_se"]
    assert 0.6 < sums.std().item() / se < 1.6


def test_an_encoder_that_ignores_x_carries_no_information(spread_codes):
    model, x = spread_codes
    blind = MLPVAE(hidden=(32,), latent_dim=4).eval()
    blind.load_state_dict(model.state_dict())
    with torch.no_grad():
        blind.encoder[1].weight.zero_()   # the hidden layer no longer sees the pixels
    out = surgery.kl_split(blind, x, n_samples=4)
    assert abs(out["mutual_information"]) < 1e-9
    assert out["marginal_kl"] == pytest.approx(out["kl"], abs=4 * out["mc_se"])


def test_identical_posteriors_against_the_closed_form():
    mu = torch.tensor([[0.7, -1.2]], dtype=torch.float64).expand(50, 2)
    logvar = torch.tensor([[-0.5, 0.4]], dtype=torch.float64).expand(50, 2)
    out = surgery.kl_split_codes(mu, logvar, n_samples=40)
    exact = kl_per_dim(mu[0], logvar[0]).sum().item()      # q(z) is that one Gaussian
    assert out["kl"] == pytest.approx(exact, rel=1e-12)
    assert abs(out["mutual_information"]) < 1e-12
    assert abs(out["marginal_kl"] - exact) < 4 * out["mc_se"]


def test_separated_posteriors_reach_log_n():
    n = 64
    mu = torch.zeros(n, 2, dtype=torch.float64)
    mu[:, 0] = 50.0 * torch.arange(n)          # no two posteriors overlap
    out = surgery.kl_split_codes(mu, torch.zeros_like(mu))
    assert out["mutual_information"] == pytest.approx(math.log(n), abs=1e-9)
    assert out["mutual_information"] <= out["log_n"]


def test_i_is_biased_down_for_the_population_and_the_bias_shrinks_with_n():
    """x ~ N(0, 1), q(z|x) = N(a x, 1): the population I(x; z) = ½ log(1 + a²)."""
    a = 10.0
    population = 0.5 * math.log(1 + a * a)
    g = torch.Generator().manual_seed(0)

    def mean_estimate(n, repeats):
        est = []
        for r in range(repeats):
            x = torch.randn(n, 1, generator=g, dtype=torch.float64)
            est.append(surgery.kl_split_codes(a * x, torch.zeros_like(x), n_samples=2, seed=r)["mutual_information"])
        return sum(est) / repeats

    assert mean_estimate(20, 20) < population - 0.25
    assert mean_estimate(1000, 3) == pytest.approx(population, abs=0.08)


def test_a_learned_prior_function_is_used():
    mu, logvar = random_codes(200, 2)
    shift = torch.tensor([1.5, -0.5], dtype=torch.float64)

    def shifted(z):
        return Normal(shift.to(z.dtype), 1.0).log_prob(z).sum(-1)

    out = surgery.kl_split_codes(mu, logvar, n_samples=8, log_prior=shifted)
    exact = kl_per_dim(mu - shift, logvar).sum(1).mean().item()   # KL(N(μ, σ²) ‖ N(c, 1)) = KL(N(μ − c, σ²) ‖ N(0, 1))
    assert abs(out["kl"] - exact) < 4 * out["kl_se"]
    both = math.hypot(out["mc_se"], out["kl_se"])
    assert abs(out["kl"] - out["mutual_information"] - out["marginal_kl"]) < 4 * both
    standard = surgery.kl_split_codes(mu, logvar, n_samples=8)
    assert out["mutual_information"] == pytest.approx(standard["mutual_information"], rel=1e-12)  # I has no prior
    assert out["kl"] > standard["kl"] + 0.5


def test_same_seed_same_numbers_whatever_the_chunk(spread_codes):
    model, x = spread_codes
    a = surgery.kl_split(model, x, seed=3, batch_size=7)
    b = surgery.kl_split(model, x, seed=3, batch_size=1000)
    assert a["mutual_information"] == pytest.approx(b["mutual_information"], rel=1e-12)
    assert a["marginal_kl"] == pytest.approx(b["marginal_kl"], rel=1e-12)
    assert surgery.kl_split(model, x, seed=4)["marginal_kl"] != a["marginal_kl"]


def test_model_stays_in_its_mode(spread_codes):
    model, x = spread_codes
    model.train()
    surgery.kl_split(model, x[:10])
    assert model.training
    model.eval()


@pytest.mark.parametrize("kwargs, name", [
    ({"n_samples": 0}, "n_samples"),
    ({"n_samples": 1.5}, "n_samples"),
    ({"batch_size": 0}, "batch_size"),
    ({"seed": -1}, "seed"),
    ({"log_prior": 3.0}, "log_prior"),
    ({"log_prior": lambda z: z}, "log_prior"),
    ({"log_prior": lambda z: torch.full((len(z),), float("nan"))}, "log_prior"),
])
def test_bad_arguments_are_named(spread_codes, kwargs, name):
    model, x = spread_codes
    with pytest.raises((TypeError, ValueError), match=name):
        surgery.kl_split(model, x[:20], **kwargs)


def test_bad_inputs_are_named(spread_codes):
    model, x = spread_codes
    with pytest.raises(ValueError, match="x must be a float tensor"):
        surgery.kl_split(model, x.flatten(1))
    with pytest.raises(TypeError, match="model must have an encode"):
        surgery.kl_split(object(), x)
    mu, logvar = random_codes(5, 3)
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        surgery.kl_split_codes(mu, logvar[:, :2])
    with pytest.raises(ValueError, match="z must have the latent size"):
        surgery.log_q_per_dim(torch.zeros(2, 4, dtype=torch.float64), mu, logvar)
    with pytest.raises(ValueError, match="mu must have 2 dimensions"):
        surgery.log_aggregate(torch.zeros(2, 3), mu[0], logvar[0])
    with pytest.raises(ValueError, match="finite"):
        surgery.kl_split_codes(mu * float("nan"), logvar)


def test_latent_map_draws_the_aggregate_posterior_and_its_holes():
    import matplotlib

    matplotlib.use("Agg")
    from vaeutils import plots

    mu = torch.tensor([[-1.5, 0.0], [1.5, 0.0]], dtype=torch.float64)     # two codes, a hole between them
    logvar = torch.full_like(mu, math.log(0.1))
    grid = torch.linspace(-3, 3, 31, dtype=torch.float64)
    z1, z2 = torch.meshgrid(grid, grid, indexing="xy")
    cells = torch.stack([z1.flatten(), z2.flatten()], 1)
    log_q = surgery.log_aggregate(cells, mu, logvar).view(31, 31)
    log_p = Normal(0.0, 1.0).log_prob(cells).sum(1).view(31, 31)
    assert log_q[15, 15] < log_p[15, 15] + math.log(0.1)                   # the origin is a hole
    fig = plots.latent_map(grid, log_q, log_p, mu, torch.tensor([0, 1]))
    assert len(fig.axes) == 4                                               # three panels and a colour bar
    assert "0.1" in fig.axes[2].get_title()
    with pytest.raises(ValueError, match="log_q and log_p must be shaped"):
        plots.latent_map(grid, log_q[:5], log_p)
    matplotlib.pyplot.close(fig)


def test_moment_matched_gaussian_has_the_mixture_moments_and_bounds_its_kl():
    mu, logvar = random_codes(400, 3)
    mu = 0.3 * mu + torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)     # codes off the prior,
    mu[:200, 0] += 3.0                                                      # in two clusters
    out = surgery.moment_matched(mu, logvar)
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * torch.randn(
        400, 500, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    z = z.reshape(-1, 3)
    assert torch.allclose(out["mean"], z.mean(0), atol=0.02)
    assert torch.allclose(out["cov"], torch.cov(z.T), atol=0.03)
    gauss = torch.distributions.MultivariateNormal(out["mean"], out["cov"])
    prior = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64),
                                                   torch.eye(3, dtype=torch.float64))
    assert out["kl"] == pytest.approx(torch.distributions.kl_divergence(gauss, prior).item(), rel=1e-10)
    split = surgery.kl_split_codes(mu, logvar, n_samples=20)
    assert 0.5 < out["kl"] < split["marginal_kl"] - 4 * split["mc_se"]


def test_moment_matched_is_zero_for_codes_that_are_the_prior():
    zeros = torch.zeros(10, 4, dtype=torch.float64)
    out = surgery.moment_matched(zeros, zeros)
    assert out["kl"] == pytest.approx(0.0, abs=1e-12)
    assert torch.equal(out["cov"], torch.eye(4, dtype=torch.float64))
