"""vaeutils.widgets.live: the live β trainer refuses values its slider cannot show (it would train at β = 100
while the slider showed 31.6) and refresh intervals it could never keep (``update_every=inf`` never refreshed).
The trainer's thread, interrupts and views are driven in test_widget_beta.py."""

import math

import numpy as np
import pytest

from vaeutils.widgets import live as LV
from vaeutils.widgets import live_beta_trainer

SMALL = {"device": "cpu", "hidden": (8,), "latent_dim": 2, "n_eval": 16, "n_images": 2, "threads": 1}


@pytest.fixture
def make_trainer(random_image_data):
    made = []

    def make(**kw):
        t = live_beta_trainer(random_image_data, **{**SMALL, **kw})
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


@pytest.mark.parametrize("beta", [100.0, 0.01, 0.0, -1.0, math.inf, math.nan])
def test_beta_outside_the_slider_is_refused(make_trainer, beta):
    with pytest.raises(ValueError, match=r"beta must be a finite number >= 0.0316.*<= 31.6.*slider shows 0.032"):
        make_trainer(beta=beta)


def test_beta_at_the_ends_of_the_slider_and_numpy_numbers_are_taken(make_trainer):
    lo, hi = LV.BETA_RANGE
    assert make_trainer(beta=lo).beta == pytest.approx(lo) and make_trainer(beta=hi).beta == pytest.approx(hi)
    t = make_trainer(beta=np.float32(2.0))
    assert t.beta == 2.0 and t.beta_slider.value == pytest.approx(2.0)  # what it trains at is what it shows


@pytest.mark.parametrize("update_every", [math.inf, math.nan, 0.0, -0.5, 11.0, "0.2", True])
def test_refresh_intervals_it_could_not_keep_are_refused(make_trainer, update_every):
    with pytest.raises(ValueError, match="update_every must be"):
        make_trainer(update_every=update_every)


def test_numpy_refresh_interval_is_taken(make_trainer):
    assert make_trainer(update_every=np.float64(0.5)).update_every == 0.5


def test_a_device_that_is_not_here_is_refused_by_name():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        live_beta_trainer(device="cuda")
    with pytest.raises(ValueError, match="not a device name"):
        live_beta_trainer(device="gpu")
