"""Explorers refuse what their sliders cannot show, instead of quietly showing something else
(``recon_explorer(sigma=100)`` used to open at σ = 10), and their pure state functions refuse values whose numbers
would overflow (``kl_explorer_state(logvar=1500)`` raised an OverflowError)."""

import math

import numpy as np
import pytest

from vaeutils.widgets import kl as KL
from vaeutils.widgets import recon as R


@pytest.mark.parametrize("kwargs, name", [
    ({"sigma": 100.0}, "sigma"), ({"sigma": 1e-3}, "sigma"), ({"sigma": 0.0}, "sigma"),
    ({"prediction": 0.9999}, "prediction"), ({"prediction": 1e-4}, "prediction"),
    ({"target": 1.5}, "target"), ({"target": -0.1}, "target"),
])
def test_recon_explorer_refuses_values_outside_its_sliders(kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} must lie in the slider's range"):
        R.recon_explorer(**kwargs)


def test_recon_explorer_takes_the_ends_of_its_sliders_and_numpy_numbers():
    ex = R.recon_explorer(sigma=R.SIGMA_RANGE[1], prediction=R.PRED_RANGE[0], target=np.float32(1.0))
    assert ex.sigma_slider.value == pytest.approx(10.0) and ex.state["sigma"] == 10.0
    assert R.recon_explorer(sigma=np.float64(0.5)).sigma_slider.value == pytest.approx(0.5)


def test_recon_state_works_beyond_the_sliders():
    assert R.recon_explorer_state(0.3, 0.7, 100.0)["beta_sse"] == pytest.approx(20_000.0)


@pytest.mark.parametrize("kwargs, name", [
    ({"mu": 0.0, "logvar": 1500.0}, "logvar"), ({"mu": 0.0, "logvar": -1500.0}, "logvar"),
    ({"mu": 0.0, "sigma": 1e200}, "sigma"), ({"mu": 0.0, "sigma": 1e-200}, "sigma"),
    ({"mu": 1e200, "sigma": 1.0}, "mu"),
])
def test_kl_state_refuses_values_that_would_overflow(kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number"):
        KL.kl_explorer_state(**kwargs)


def test_kl_state_keeps_large_but_representable_values_exact():
    state = KL.kl_explorer_state(0.0, logvar=600.0)
    assert math.isfinite(state["kl"]) and state["kl"] == pytest.approx(0.5 * (math.exp(600.0) - 1.0 - 600.0))
    assert KL.kl_explorer_state(np.float32(1.0), sigma=np.float64(2.0))["mu"] == 1.0


@pytest.mark.parametrize("kwargs", [{"mu": 5.0}, {"sigma": 6.0}, {"sigma": 0.001}])
def test_kl_explorer_refuses_values_outside_its_sliders(kwargs):
    with pytest.raises(ValueError, match="must lie in the slider's range"):
        KL.kl_explorer(**kwargs)
