"""ELBOLoss: the trainer's pluggable loss adds up the tested terms, rejects bad settings, and describes itself
for the cache key only when that description is stable."""

import math

import numpy as np
import pytest
import torch

from vaeutils import checks, schedules
from vaeutils import losses as L
from vaeutils.losses import ELBOLoss


@pytest.fixture
def batch(image_batch):
    return image_batch


@pytest.fixture
def make_model(tiny_vae):
    return lambda **kw: tiny_vae(seed=1, **kw)


def test_terms_equal_the_losses_functions(batch, make_model):
    model = make_model()
    terms = ELBOLoss(beta=2.0)(model, batch, step=0, generator=torch.Generator().manual_seed(5))
    mu, logvar, z, out = model(batch, torch.Generator().manual_seed(5))
    rec = L.bernoulli_nll(out, batch).mean()
    kl = L.kl_per_dim(mu, logvar).sum(1).mean()
    assert torch.allclose(terms["rec"], rec) and torch.allclose(terms["kl"], kl)
    assert torch.allclose(terms["loss"], rec + 2.0 * kl)


def test_schedule_free_bits_and_capacity(batch, make_model):
    model = make_model()
    g = torch.Generator
    warm = ELBOLoss(beta=schedules.LinearWarmup(10))(model, batch, step=5, generator=g().manual_seed(0))
    assert warm["beta"] == pytest.approx(0.5)
    fb = ELBOLoss(free_bits=100.0)(model, batch, step=0, generator=g().manual_seed(0))
    assert torch.allclose(fb["loss"] - fb["rec"], torch.tensor(300.0))  # every dim sits on the floor
    cap = ELBOLoss(capacity=schedules.CapacitySchedule(c_max=10.0, steps=100, gamma=2.0))
    t = cap(model, batch, step=50, generator=g().manual_seed(0))
    assert torch.allclose(t["loss"] - t["rec"], 2.0 * (t["kl"] - 5.0).abs())


def test_gaussian_scales(batch, make_model):
    learned = make_model(learned_scale="shared")
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
        ({"capacity": schedules.CapacitySchedule(5.0, 10), "free_bits": 0.5}, "free_bits"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ELBOLoss(**kwargs)


def test_learned_scale_needs_a_model_parameter(batch, make_model):
    with pytest.raises(ValueError, match="learned_scale"):
        ELBOLoss(likelihood="gaussian", log_scale="learned")(make_model(), batch)


@pytest.mark.parametrize("log_scale", [math.inf, -math.inf, math.nan, -1000.0, -200.0, 21.0])
def test_scales_outside_what_float32_can_hold_are_refused_when_built(log_scale):
    """log σ = −200 would stop training at step 0 with advice about the learning rate: the wrong cause."""
    with pytest.raises(ValueError, match=r"log_scale must be a finite number >= -20 and <= 20"):
        ELBOLoss(likelihood="gaussian", log_scale=log_scale)


def test_numpy_numbers_are_settings_like_any_other():
    loss = ELBOLoss(beta=np.float32(0.5), free_bits=np.float64(0.25), log_scale=np.int64(-1), likelihood="gaussian")
    assert loss == ELBOLoss(beta=0.5, free_bits=0.25, log_scale=-1.0, likelihood="gaussian")
    assert loss.describe() == ELBOLoss(beta=0.5, free_bits=0.25, log_scale=-1.0, likelihood="gaussian").describe()
    assert type(loss.beta) is float and loss.beta_at(np.int64(7)) == 0.5


def test_numpy_steps_reach_the_schedule(batch, make_model):
    loss = ELBOLoss(beta=schedules.LinearWarmup(np.int64(10), beta_max=np.float32(2.0)))
    t = loss(make_model(), batch, step=np.int64(5), generator=torch.Generator().manual_seed(0))
    assert t["beta"] == pytest.approx(1.0)
    assert loss.describe() == ELBOLoss(beta=schedules.LinearWarmup(10, beta_max=2.0)).describe()


@pytest.mark.parametrize("value", [math.nan, -1.0, "1"])
def test_a_beta_function_that_returns_a_bad_value_is_named(value):
    with pytest.raises(ValueError, match=r"beta\(step\) .* at step 3"):
        ELBOLoss(beta=lambda step: value).beta_at(3)


def test_an_empty_batch_is_refused(batch, make_model):
    with pytest.raises(ValueError, match="x is empty"):
        ELBOLoss()(make_model(), batch[:0])


def test_describe_refuses_what_cannot_be_keyed_stably():
    with pytest.raises(TypeError, match="cache=False"):
        ELBOLoss(beta=lambda step: 1.0).describe()  # its repr holds a memory address: a new key every run
    with pytest.raises(ValueError, match="non-finite"):
        checks.plain_data({"beta": math.nan})  # NaN != NaN: a stored config holding it would never match again
    with pytest.raises(TypeError, match="keys"):
        checks.plain_data({1: 0.5})
    assert checks.plain_data({"beta": np.float32(0.5), "steps": (np.int64(2), 3)}) == {"beta": 0.5, "steps": [2, 3]}
    assert checks.plain_data(schedules.Cyclical(10)) == {"type": "Cyclical", "period": 10, "beta_max": 1.0,
                                                         "ramp_fraction": 0.5, "n_cycles": None}
