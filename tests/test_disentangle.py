"""vaeutils.disentangle: the total-correlation split against closed forms for Gaussian codes, the three parts
adding up to the KL, the minibatch estimators' weights and biases, and factor_moves on a decoder that draws
rectangles from known sides."""

import math

import pytest
import torch

from vaeutils import disentangle as D
from vaeutils import shapes, surgery
from vaeutils.models import MLPVAE

S2 = 0.3  # posterior variance of the synthetic codes


def gaussian_codes(n=2000, d=4, rho=0.0, seed=11):  # not the estimators' seeds: their draws must be independent
    """Posteriors N(mu_n, S2·I) with mu ~ N(0, (1 − S2)·C), C a correlation matrix with C[0, 1] = rho: the
    aggregate posterior is close to N(0, (1 − S2)·C + S2·I), whose parts are known in closed form."""
    g = torch.Generator().manual_seed(seed)
    c = torch.eye(d, dtype=torch.float64)
    c[0, 1] = c[1, 0] = rho
    mu = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(c).T * math.sqrt(1 - S2)
    return mu, torch.full_like(mu, math.log(S2))


def test_independent_codes_have_no_total_correlation():
    mu, logvar = gaussian_codes()
    r = D.tc_split_codes(mu, logvar, estimator="exact")
    assert r["index_code_mi"] == pytest.approx(4 * 0.5 * math.log(1 / S2), abs=0.08)  # I = ½ log(1/σ²) per dim
    assert abs(r["total_correlation"]) < 0.06 and abs(r["dimwise_kl"]) < 0.06


def test_correlated_codes_have_the_gaussian_total_correlation():
    rho = 0.8
    mu, logvar = gaussian_codes(rho=rho)
    r = D.tc_split_codes(mu, logvar, estimator="exact")
    r_agg = rho * (1 - S2)  # correlation of the aggregate N(0, (1 − S2)C + S2 I)
    assert r["total_correlation"] == pytest.approx(-0.5 * math.log(1 - r_agg**2), abs=0.06)
    independent = D.tc_split_codes(*gaussian_codes(rho=0.0), estimator="exact")
    assert r["total_correlation"] > independent["total_correlation"] + 0.2


@pytest.mark.parametrize("estimator", D.ESTIMATORS)
def test_the_three_parts_add_up_to_the_kl(estimator):
    mu, logvar = gaussian_codes(n=600, rho=0.5)
    r = D.tc_split_codes(mu, logvar, estimator=estimator, batch_size=64, seed=3)
    parts = r["index_code_mi"] + r["total_correlation"] + r["dimwise_kl"]
    assert parts == pytest.approx(r["sampled_kl"], abs=1e-9)                 # they telescope, whatever the estimator
    assert abs(r["sampled_kl"] - r["kl"]) < 4 * r["mc_se"] and r["mc_se"] > 0  # MC KL meets the closed form
    assert r["dimwise_kl_per_dim"].sum() == pytest.approx(r["dimwise_kl"], abs=1e-9)
    assert r["estimator"] == estimator and r["n"] == 600


def test_mss_weights_sum_to_one_and_give_an_unbiased_mixture():
    n, m = 50, 8
    w = D.mss_log_weights(m, n).exp()
    assert torch.allclose(w.sum(1), torch.ones(m, dtype=torch.float64))
    assert torch.allclose(w.diagonal(), torch.full((m,), 1 / n, dtype=torch.float64))
    # averaged over random minibatches that contain row i, the weighted sum of the batch's posteriors at a code
    # drawn from row i equals the mixture over all n rows
    mu, logvar = gaussian_codes(n=n, d=2, seed=12)
    z = mu[:1] + 0.3
    exact = surgery.log_aggregate(z, mu, logvar).exp().item()
    g, estimates = torch.Generator().manual_seed(0), []
    for _ in range(4000):
        rows = torch.cat([torch.tensor([0]), 1 + torch.randperm(n - 1, generator=g)[: m - 1]])
        lq = surgery.log_q_per_dim(z.expand(m, -1), mu[rows], logvar[rows]).sum(-1)[0]  # row 0 of the batch is i
        estimates.append((w[0] * lq.exp()).sum().item())
    est = torch.tensor(estimates)
    assert est.mean().item() == pytest.approx(exact, abs=4 * est.std().item() / math.sqrt(len(est)))


def test_mss_is_close_to_exact_and_mws_is_off_by_the_documented_offsets():
    mu, logvar = gaussian_codes(n=2000, d=4, rho=0.5)
    exact = D.tc_split_codes(mu, logvar, estimator="exact")
    mss = D.tc_split_codes(mu, logvar, estimator="mss", batch_size=128)
    mws = D.tc_split_codes(mu, logvar, estimator="mws", batch_size=128)
    for part in ("index_code_mi", "total_correlation", "dimwise_kl"):
        assert mss[part] == pytest.approx(exact[part], abs=0.3), part
    log_m, log_n = math.log(128), math.log(2000)
    assert log_m - 0.5 < mws["index_code_mi"] - exact["index_code_mi"] < log_n + 0.5
    assert mws["dimwise_kl"] - exact["dimwise_kl"] == pytest.approx(-4 * log_n, abs=1.0)  # overlapping marginals
    assert mws["total_correlation"] > exact["total_correlation"] + 2 * log_n


def test_tc_split_of_a_model_matches_elbo_surgery():
    torch.manual_seed(0)
    model = MLPVAE(in_shape=(1, 8, 8), hidden=(32,), latent_dim=3)
    x = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    r = D.tc_split(model, x, estimator="exact", seed=2)
    s = surgery.kl_split(model, x, seed=2)
    assert r["kl"] == pytest.approx(s["kl"], rel=1e-5)
    assert r["index_code_mi"] == pytest.approx(s["mutual_information"], abs=6 * s["mc_se"] + 0.02)
    assert r["total_correlation"] + r["dimwise_kl"] == pytest.approx(s["marginal_kl"], abs=6 * s["mc_se"] + 0.02)


class RectangleDecoder(torch.nn.Module):
    """A 'VAE' whose decoder draws a rectangle: latent 0 sets the width, latent 2 the height, latent 1 nothing."""

    latent_dim = 3

    def decode(self, z):
        w = 16 + 4 * z[:, 0]
        h = 16 + 4 * z[:, 2]
        coords = torch.arange(32, dtype=z.dtype) + 0.5 - 16
        across = torch.sigmoid((w[:, None] / 2 - coords.abs()) / 1.0)
        down = torch.sigmoid((h[:, None] / 2 - coords.abs()) / 1.0)
        p = (down[:, :, None] * across[:, None, :]).clamp(1e-6, 1 - 1e-6)
        return torch.logit(p).unsqueeze(1)

    @staticmethod
    def mean_image(out):
        return torch.sigmoid(out)


def test_factor_moves_reads_which_side_each_latent_moves():
    moves = D.factor_moves(RectangleDecoder(), torch.zeros(3), dims=[0, 1, 2], span=2.0, steps=9)
    assert moves.shape == (3, 2)
    assert moves[0, 0] == pytest.approx(16.0, abs=0.5) and moves[0, 1] < 0.05      # latent 0: width from 8 to 24
    assert moves[2, 1] == pytest.approx(16.0, abs=0.5) and moves[2, 0] < 0.05      # latent 2: height
    assert moves[1].max() < 1e-4                                                    # latent 1: nothing
    assert torch.allclose(shapes.measure_rectangles(RectangleDecoder().mean_image(
        RectangleDecoder().decode(torch.zeros(1, 3)))), torch.tensor([[16.0, 16.0]]), atol=0.05)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"estimator": "iwae"}, ValueError, "estimator"),
    ({"batch_size": 1}, ValueError, "batch_size"),
    ({"batch_size": 10**6}, ValueError, "batch_size"),
    ({"seed": -1}, ValueError, "seed"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    mu, logvar = gaussian_codes(n=100)
    with pytest.raises(error, match=match):
        D.tc_split_codes(mu, logvar, **kwargs)


def test_bad_models_and_inputs_are_named():
    with pytest.raises(TypeError, match="encode"):
        D.tc_split(object(), torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match="same shape|shape"):
        D.tc_split_codes(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="dims"):
        D.factor_moves(RectangleDecoder(), torch.zeros(3), dims=[3])
