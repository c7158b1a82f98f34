"""Reliability review v2, train and widgets: fit names the pixel range and the seed; train.evaluate refuses NaN
images; a slider set to NaN is refused and the view stays as it was (kl_explorer, recon_explorer; the live
trainer's β slider is the same class)."""

import math

import pytest
import torch

from vaeutils import train
from vaeutils.models import MLPVAE
from vaeutils.widgets import kl_explorer, recon_explorer


@pytest.fixture
def m():
    torch.manual_seed(0)
    return MLPVAE((1, 4, 4), (8,), 3)


def test_fit_with_binarize_names_the_pixel_range_of_train_x(m):
    with pytest.raises(ValueError, match=r"train_x must lie in \[0, 1\] for binarize=True"):
        train.fit(m, torch.rand(8, 1, 4, 4) * 2, binarize=True, epochs=1, progress=False)


@pytest.mark.parametrize("seed", [2.5, -1, "0", None])
def test_fit_refuses_a_seed_that_is_no_integer(m, seed):
    with pytest.raises(ValueError, match="seed must be an int"):
        train.fit(m, torch.rand(8, 1, 4, 4), epochs=1, seed=seed, progress=False)


def test_fit_refuses_a_binarize_that_is_no_bool(m):
    with pytest.raises(TypeError, match="binarize must be True or False"):
        train.fit(m, torch.rand(8, 1, 4, 4), epochs=1, binarize="yes", progress=False)


def test_train_evaluate_refuses_nan_images(m):
    with pytest.raises(ValueError, match="x holds 32 NaN"):
        train.evaluate(m, torch.full((2, 1, 4, 4), math.nan))


def test_a_seed_as_numpy_int_still_trains(m):
    import numpy as np

    h = train.fit(m, torch.rand(8, 1, 4, 4), epochs=1, seed=np.int64(3), progress=False)
    assert math.isfinite(h["train"][0]["loss"])


def test_kl_explorer_refuses_a_nan_mu_and_stays_consistent():
    w = kl_explorer()
    w.mu_slider.value = 1.0
    with pytest.raises(ValueError, match="value of the 'μ' slider"):
        w.mu_slider.value = math.nan
    assert w.mu_slider.value == 1.0 == w.state["mu"]
    w.sigma_slider.value = 2.0  # a later σ move works and keeps μ
    assert w.state["mu"] == 1.0 and w.state["sigma"] == pytest.approx(2.0)
    for slider in (w.sigma_slider, w.logvar_slider):
        before = slider.value
        with pytest.raises(ValueError, match="value"):
            slider.value = math.nan
        assert slider.value == before


def test_a_nan_from_the_browser_is_rolled_back():
    w = kl_explorer()
    with pytest.raises(ValueError):
        w.mu_slider.set_state({"value": math.nan})  # what a comm message from the page does
    assert w.mu_slider.value == 0.0 == w.state["mu"]


def test_recon_explorer_refuses_a_nan_prediction_and_stays_consistent():
    r = recon_explorer()
    with pytest.raises(ValueError, match="value of the 'prediction p' slider"):
        r.prediction_slider.value = math.nan
    assert r.prediction_slider.value == 0.7 == r.state["prediction"]
    r.sigma_slider.value = 0.2
    assert r.state["prediction"] == 0.7 and r.state["sigma"] == pytest.approx(0.2)


def test_an_infinite_value_is_clamped_to_the_slider_end_as_before():
    w = kl_explorer()
    w.mu_slider.value = math.inf
    assert w.mu_slider.value == 4.0 == w.state["mu"]
