"""vaeutils.metrics for unit 04: evaluate (the −ELBO that fit logs), the IWAE bound, and summary's active units,
KL per dimension, rate and distortion; bad input (batch sizes, NaN pixels, a missing model) named, never
measured."""

import math

import numpy as np
import pytest
import torch

from vaeutils import losses as L
from vaeutils import metrics
from vaeutils.losses import ELBOLoss
from vaeutils.metrics import evaluate
from vaeutils.models import MLPVAE


@pytest.fixture
def model_and_data(tiny_vae):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(32,), latent_dim=4).eval()
    x = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, x


def test_iwae_with_one_sample_is_the_elbo_with_a_sampled_kl(model_and_data):
    model, x = model_and_data
    ev = evaluate(model, x, seed=5)
    iwae1 = metrics.iwae_bound(model, x, 1, seed=5)
    # same seed, same noise: the reconstruction term is shared; the KL is the one-sample log q(z|x) − log p(z)
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    z = mu + q.scale * eps
    p = torch.distributions.Normal(0.0, 1.0)
    sampled_kl = (q.log_prob(z) - p.log_prob(z)).sum(1).mean().item()
    assert iwae1 == pytest.approx(ev["rec"] + sampled_kl, rel=1e-5)


def test_iwae_with_one_sample_is_unbiased_for_the_elbo(model_and_data):
    model, x = model_and_data
    diffs = torch.tensor([metrics.iwae_bound(model, x, 1, seed=s) - evaluate(model, x, seed=s)["loss"]
                          for s in range(20)])
    assert abs(diffs.mean()) < 4 * diffs.std() / math.sqrt(len(diffs))


def test_iwae_nll_estimate_falls_as_k_grows(model_and_data):
    model, x = model_and_data
    nll = [metrics.iwae_bound(model, x, k) for k in (1, 10, 100)]
    assert nll[0] > nll[1] > nll[2]


def tiny_model():
    """One latent dimension and four pixels: small enough to integrate log p(x) on a grid."""
    torch.manual_seed(2)
    model = MLPVAE(in_shape=(1, 2, 2), hidden=(8,), latent_dim=1).eval()
    with torch.no_grad():
        model.decoder[-1].weight.mul_(4)  # a decoder that depends strongly on z
    return model


@torch.no_grad()
def exact_nll(model, x):
    """−log ∫ p(x|z) N(z; 0, 1) dz by the trapezoid rule on [−10, 10]."""
    z = torch.linspace(-10, 10, 8001, dtype=torch.float64)
    log_px_z = -L.bernoulli_nll(model.decode(z[:, None].float()).double().unsqueeze(0).expand(len(x), -1, 1, 2, 2)
                                .reshape(-1, 1, 2, 2), x.double().repeat_interleave(len(z), 0)).view(len(x), -1)
    log_joint = log_px_z - 0.5 * z.square() - 0.5 * math.log(2 * math.pi)
    dz = z[1] - z[0]
    return -(torch.logsumexp(log_joint, 1) + math.log(dz)).mean().item()


def test_iwae_approaches_the_exact_likelihood_from_above():
    model = tiny_model()
    x = torch.bernoulli(torch.full((64, 1, 2, 2), 0.5), generator=torch.Generator().manual_seed(3))
    truth = exact_nll(model, x)
    nll = {k: metrics.iwae_bound(model, x, k) for k in (1, 10, 1000)}
    assert nll[1] > nll[10] > nll[1000] > truth - 0.01   # a bound: never below the truth (within MC noise)
    assert nll[1000] - truth < 0.02 < nll[1] - truth     # and tight with many samples


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_iwae_rejects_bad_k(model_and_data, k):
    model, x = model_and_data
    with pytest.raises(ValueError, match="k must be"):
        metrics.iwae_bound(model, x, k)


def with_dead_dimension(model_and_data, dead=2):
    """Scale up the μ rows so live units vary, and make unit ``dead`` output μ = 0, log σ² = 0 for every x."""
    model, x = model_and_data
    d = model.latent_dim
    with torch.no_grad():
        model.to_stats.weight[:d].mul_(20)
        for row in (dead, d + dead):
            model.to_stats.weight[row].zero_()
            model.to_stats.bias[row] = 0.0
    return model, x


def test_summary_counts_all_but_the_dead_dimension_as_active(model_and_data):
    model, x = with_dead_dimension(model_and_data, dead=2)
    s = metrics.summary(model, x)
    var = torch.as_tensor(s["mu_var"])
    assert var.shape == (4,) and var[2] == 0
    assert s["active"] == 3 and bool((var[[0, 1, 3]] > 0.01).all())
    mu, _ = metrics.encode_all(model, x)
    torch.testing.assert_close(var, mu.var(0))  # Burda et al.: Cov_x(E_q[z|x]) per unit
    assert metrics.summary(model, x, threshold=float(var.max()) + 1)["active"] == 0
    with pytest.raises(ValueError, match="threshold"):
        metrics.summary(model, x, threshold=-1)


def test_summary_kl_per_dimension_is_zero_for_the_dead_unit_and_bounds_the_activity(model_and_data):
    model, x = with_dead_dimension(model_and_data, dead=1)
    kl = torch.as_tensor(metrics.summary(model, x)["kl_per_dim"])
    mu, logvar = metrics.encode_all(model, x)
    torch.testing.assert_close(kl, L.kl_per_dim(mu, logvar).mean(0))
    assert kl.shape == (4,) and kl[1] == 0 and bool((kl >= 0).all())
    # KL_j ≥ ½ E[μ_j²] ≥ ½ Var(μ_j): an active unit pays at least half its activity in nats
    assert bool((kl >= 0.5 * mu.var(0, unbiased=False) - 1e-6).all())


def test_evaluate_is_summary_rate_and_distortion(model_and_data):
    model, x = model_and_data
    s = metrics.summary(model, x)
    ev = evaluate(model, x)
    assert ev == {"kl": s["rate"], "rec": s["distortion"], "loss": s["neg_elbo"]}
    gauss = metrics.summary(model, x, ELBOLoss(likelihood="gaussian"))
    assert gauss["rate"] == s["rate"] and gauss["distortion"] != s["distortion"]
    assert evaluate(model, x, ELBOLoss(likelihood="gaussian"))["rec"] == gauss["distortion"]


def test_evaluate_is_minus_elbo_and_repeatable(model_and_data):
    model, x = model_and_data
    a = evaluate(model, x, batch_size=30)
    b = evaluate(model, x, batch_size=30)
    assert a == b and a["loss"] == pytest.approx(a["rec"] + a["kl"])
    g = torch.Generator().manual_seed(0)  # evaluate's fixed-seed generator, drawn batch by batch
    per_example = []
    for i in range(0, len(x), 30):
        mu, logvar, _, out = model(x[i:i + 30], g)
        per_example.append(L.bernoulli_nll(out, x[i:i + 30]) + L.kl_per_dim(mu, logvar).sum(1))
    manual = torch.cat(per_example).mean()
    assert a["loss"] == pytest.approx(manual.item(), rel=1e-5)


def test_encode_all_batches_and_restores_the_mode(model_and_data):
    model, x = model_and_data
    model.train()
    mu, logvar = metrics.encode_all(model, x, batch_size=64)
    assert model.training  # the caller's mode is back
    model.eval()
    with torch.no_grad():
        whole = model.encode(x)
    torch.testing.assert_close((mu, logvar), whole)


# --------------------------------------------------------------------------- bad input gets a clear error

@pytest.fixture
def small(tiny_vae, image_batch):
    return tiny_vae().eval(), image_batch


MEASURES = {
    "summary": lambda m, x, **kw: metrics.summary(m, x, **kw),
    "encode_all": lambda m, x, **kw: metrics.encode_all(m, x, **kw),
    "evaluate": lambda m, x, **kw: evaluate(m, x, **kw),
}


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, None, True])
@pytest.mark.parametrize("measure", list(MEASURES))
def test_batch_size_is_checked_on_every_path(small, measure, batch_size):
    """batch_size=-1 used to give all zeros; 0, 2.5 and None a range() error."""
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        MEASURES[measure](*small, batch_size=batch_size)


NAN_MEASURES = {**MEASURES, "iwae_bound": lambda m, x: metrics.iwae_bound(m, x, 3)}


@pytest.mark.parametrize("measure", list(NAN_MEASURES))
def test_nan_pixels_are_named_not_measured(small, measure):
    """The active units used to count as 0 and the rate, distortion and IWAE bound to be NaN."""
    model, x = small
    x = x.clone()
    x[2, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"x holds 1 NaN"):
        NAN_MEASURES[measure](model, x)


def test_a_model_with_nan_weights_is_named(small):
    model, x = small
    with torch.no_grad():
        model.to_stats.weight.fill_(float("nan"))
    for measure in ("summary", "evaluate", "iwae_bound"):
        with pytest.raises(ValueError, match="NaN or inf"):
            NAN_MEASURES[measure](model, x)


def test_the_active_units_threshold_must_be_a_number(small):
    with pytest.raises(ValueError, match="threshold must be a number"):
        metrics.summary(*small, threshold=True)  # was taken as 1


@pytest.mark.parametrize("x, error, match", [
    (torch.zeros(0, 1, 8, 8), ValueError, "x is empty"),
    (np.zeros((4, 1, 8, 8), dtype=np.float32), ValueError, r"x must be a float tensor shaped \(N, C, H, W\)"),
    (torch.rand(4, 1, 5, 5), ValueError, r"x must be shaped \(batch, 1, 8, 8\)"),
])
def test_iwae_bound_names_bad_data(small, x, error, match):
    with pytest.raises(error, match=match):
        metrics.iwae_bound(small[0], x, 3)


@pytest.mark.parametrize("measure", ["summary", "evaluate", "iwae_bound", "encode_all"])
def test_a_missing_model_or_a_loss_name_is_named(small, measure):
    with pytest.raises(TypeError, match="model must (be a VAE|have an encode)"):
        NAN_MEASURES[measure](None, small[1])
    if measure != "encode_all":
        call = {"summary": lambda: metrics.summary(*small, loss="bernoulli"),
                "evaluate": lambda: evaluate(*small, loss_fn="bernoulli"),
                "iwae_bound": lambda: metrics.iwae_bound(*small, 3, loss_fn="bernoulli")}[measure]
        with pytest.raises(TypeError, match=r"losses.ELBOLoss\(likelihood='bernoulli'\)"):
            call()


def test_numpy_integers_are_counts(small):
    model, x = small
    assert metrics.iwae_bound(model, x, np.int64(3)) == metrics.iwae_bound(model, x, 3)
    assert evaluate(model, x, batch_size=np.int64(2)) == evaluate(model, x, batch_size=2)
