"""ELBOLoss: the trainer's pluggable loss adds up the tested terms and rejects bad settings."""

import math

import pytest
import torch

from vaeutils import losses as L
from vaeutils.models import MLPVAE, ConvVAE, build_model
from vaeutils.train import ELBOLoss


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(6, 1, 8, 8)


def _model(**kw):
    torch.manual_seed(1)
    return MLPVAE(in_shape=(1, 8, 8), hidden=(16,), latent_dim=3, **kw)


def test_terms_equal_the_losses_functions(batch):
    model = _model()
    terms = ELBOLoss(beta=2.0)(model, batch, step=0, generator=torch.Generator().manual_seed(5))
    mu, logvar, z, out = model(batch, torch.Generator().manual_seed(5))
    rec = L.bernoulli_nll(out, batch).mean()
    kl = L.kl_per_dim(mu, logvar).sum(1).mean()
    assert torch.allclose(terms["rec"], rec) and torch.allclose(terms["kl"], kl)
    assert torch.allclose(terms["loss"], rec + 2.0 * kl)


def test_schedule_free_bits_and_capacity(batch):
    model = _model()
    g = torch.Generator
    warm = ELBOLoss(beta=L.LinearWarmup(10))(model, batch, step=5, generator=g().manual_seed(0))
    assert warm["beta"] == pytest.approx(0.5)
    fb = ELBOLoss(free_bits=100.0)(model, batch, step=0, generator=g().manual_seed(0))
    assert torch.allclose(fb["loss"] - fb["rec"], torch.tensor(300.0))  # every dim sits on the floor
    cap = ELBOLoss(capacity=L.CapacitySchedule(c_max=10.0, steps=100, gamma=2.0))
    t = cap(model, batch, step=50, generator=g().manual_seed(0))
    assert torch.allclose(t["loss"] - t["rec"], 2.0 * (t["kl"] - 5.0).abs())


def test_gaussian_scales(batch):
    learned = _model(learned_scale="shared")
    with torch.no_grad():
        learned.log_scale.fill_(math.log(0.3))
    t = ELBOLoss(likelihood="gaussian", log_scale="learned")(learned, batch, generator=torch.Generator().manual_seed(0))
    _, _, _, out = learned(batch, torch.Generator().manual_seed(0))
    ref = -torch.distributions.Normal(torch.sigmoid(out), 0.3).log_prob(batch).flatten(1).sum(1).mean()
    assert torch.allclose(t["rec"], ref, rtol=1e-5)
    opt = ELBOLoss(likelihood="gaussian", log_scale="optimal")
    fixed = [ELBOLoss(likelihood="gaussian", log_scale=math.log(s)) for s in (0.05, 0.2, 0.5, 1.0)]
    rec_opt = opt(learned, batch, generator=torch.Generator().manual_seed(0))["rec"]
    for f in fixed:  # the per-image optimum beats any single fixed σ
        assert rec_opt <= f(learned, batch, generator=torch.Generator().manual_seed(0))["rec"] + 1e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"likelihood": "poisson"}, "likelihood"),
        ({"beta": -1.0}, "beta"),
        ({"free_bits": -0.1}, "free_bits"),
        ({"log_scale": "big"}, "log_scale"),
        ({"capacity": 5.0}, "capacity"),
        ({"capacity": L.CapacitySchedule(5.0, 10), "free_bits": 0.5}, "free_bits"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ELBOLoss(**kwargs)


def test_learned_scale_needs_a_model_parameter(batch):
    with pytest.raises(ValueError, match="learned_scale"):
        ELBOLoss(likelihood="gaussian", log_scale="learned")(_model(), batch)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: MLPVAE(latent_dim=0), "latent_dim"),
        (lambda: MLPVAE(hidden=(0,)), "hidden"),
        (lambda: MLPVAE(in_shape=(28, 28)), "in_shape"),
        (lambda: ConvVAE(in_shape=(1, 30, 30)), "divisible by 4"),
        (lambda: MLPVAE(learned_scale="yes"), "learned_scale"),
        (lambda: build_model("transformer"), "kind"),
    ],
)
def test_bad_model_arguments_are_named(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_model_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match="shaped"):
        MLPVAE()(torch.rand(2, 1, 32, 32))
