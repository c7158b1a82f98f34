"""The reconstruction-loss explorer (vaeutils.widgets.recon, unit 02): its pure functions, then the
widget headless (set slider values, check what it shows). ipywidgets swallows exceptions raised inside a
callback, so the pure functions are tested directly as well."""

import math

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vaeutils.losses import bernoulli_nll, gaussian_nll, laplace_nll
from vaeutils.widgets import recon_explorer
from vaeutils.widgets.recon import (
    LOSS_NAMES,
    OUTPUT_HEIGHT_PX,
    ReconExplorer,
    draw_recon_explorer,
    implied_beta,
    recon_explorer_state,
    recon_html,
    render_png,
    sigma_for_beta,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _t(v):
    return torch.tensor([[v]], dtype=torch.float64)


# ------------------------------------------------------------------------------- implied β

def test_implied_beta_is_two_sigma_squared_and_inverts():
    assert implied_beta(1 / math.sqrt(2)) == pytest.approx(1.0)
    assert implied_beta(0.1) == pytest.approx(0.02)
    assert implied_beta(math.sqrt(39.2)) == pytest.approx(78.4)  # source article 000: 784 pixels / 10 dims
    for beta in (1e-3, 0.5, 1.0, 78.4):
        assert implied_beta(sigma_for_beta(beta)) == pytest.approx(beta, rel=1e-12)


def test_implied_beta_matches_the_gradient_ratio():
    """SSE + β·KL with β = 2σ² has gradients 2σ² times those of SSE/(2σ²) + KL (the Gaussian ELBO, β = 1)."""
    g = torch.Generator().manual_seed(0)
    mean = torch.rand(4, 10, generator=g, dtype=torch.float64).requires_grad_(True)
    kl_param = torch.rand(4, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    x = torch.rand(4, 10, generator=g, dtype=torch.float64)
    sigma = 0.37
    elbo = gaussian_nll(mean, x, math.log(sigma), reduction="sum") + kl_param.square().sum()
    sse_form = (x - mean).square().sum() + implied_beta(sigma) * kl_param.square().sum()
    g_elbo = torch.autograd.grad(elbo, (mean, kl_param))
    g_sse = torch.autograd.grad(sse_form, (mean, kl_param))
    for a, b in zip(g_elbo, g_sse):
        torch.testing.assert_close(2 * sigma**2 * a, b)


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (-1.0, ValueError), (math.inf, ValueError),
                                        (math.nan, ValueError), ("1", TypeError), (True, TypeError)])
def test_implied_beta_bad_input(bad, error):
    with pytest.raises(error, match="sigma"):
        implied_beta(bad)
    with pytest.raises(error, match="beta"):
        sigma_for_beta(bad)


# ------------------------------------------------------------------------------- state

@pytest.mark.parametrize("x, p, sigma", [(0.3, 0.7, 0.1), (0.0, 0.95, 0.3), (1.0, 0.2, 1.0), (0.5, 0.5, 6.26),
                                         (0.8, 0.001, 0.01)])
def test_state_values_come_from_the_library(x, p, sigma):
    state = recon_explorer_state(x, p, sigma)
    logit = math.log(p / (1 - p))
    assert state["logit"] == pytest.approx(logit)
    assert state["losses"]["bernoulli"]["loss"] == pytest.approx(float(bernoulli_nll(_t(logit), _t(x))), rel=1e-12)
    assert state["losses"]["gaussian"]["loss"] == pytest.approx(
        float(gaussian_nll(_t(p), _t(x), math.log(sigma))), rel=1e-12)
    assert state["losses"]["laplace"]["loss"] == pytest.approx(
        float(laplace_nll(_t(p), _t(x), math.log(sigma / math.sqrt(2)))), rel=1e-12)
    assert state["laplace_b"] == pytest.approx(sigma / math.sqrt(2))
    assert state["beta_sse"] == pytest.approx(2 * sigma**2)
    assert state["gaussian_constant"] == pytest.approx(math.log(sigma) + 0.5 * math.log(2 * math.pi))


@pytest.mark.parametrize("x, p, sigma", [(0.3, 0.7, 0.1), (0.0, 0.95, 0.3), (1.0, 0.2, 1.0), (0.6, 0.6, 0.5)])
def test_state_gradients_have_the_textbook_form(x, p, sigma):
    losses = recon_explorer_state(x, p, sigma)["losses"]
    assert losses["bernoulli"]["grad_logit"] == pytest.approx(p - x, abs=1e-12)
    assert losses["bernoulli"]["grad"] == pytest.approx((p - x) / (p * (1 - p)), rel=1e-9, abs=1e-12)
    assert losses["gaussian"]["grad"] == pytest.approx((p - x) / sigma**2, rel=1e-9, abs=1e-12)
    assert losses["laplace"]["grad"] == pytest.approx(np.sign(p - x) * math.sqrt(2) / sigma, rel=1e-9)


def test_excess_is_zero_at_the_target_and_the_minimum_is_there():
    for x in (0.0, 0.25, 0.5, 0.9, 1.0):
        state = recon_explorer_state(x, 0.4, 0.2)
        grid = state["grid"]
        for name in LOSS_NAMES:
            curve = state["curves"][name]
            assert curve.min() == pytest.approx(0.0, abs=1e-12)
            best = grid[int(np.argmin(curve))]
            assert best == pytest.approx(min(max(x, 1e-3), 1 - 1e-3), abs=1e-12), name
            assert (curve >= -1e-12).all()
            assert len(state["grad_curves"][name]) == len(grid)
    # at p = x the Bernoulli NLL is the binary entropy H(x), not 0: its excess is KL(Bern(x) || Bern(p))
    state = recon_explorer_state(0.3, 0.3, 0.1)
    h = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))
    assert state["losses"]["bernoulli"]["loss"] == pytest.approx(h)
    for name in LOSS_NAMES:
        assert state["losses"][name]["excess"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kwargs, error, word", [
    ({"target": -0.1}, ValueError, "target"),
    ({"target": 1.5}, ValueError, "target"),
    ({"prediction": 0.0}, ValueError, "prediction"),
    ({"prediction": 1.0}, ValueError, "prediction"),
    ({"sigma": 0.0}, ValueError, "sigma"),
    ({"sigma": math.nan}, ValueError, "sigma"),
    ({"target": "0.5"}, TypeError, "target"),
    ({"prediction": None}, TypeError, "prediction"),
])
def test_state_bad_input(kwargs, error, word):
    args = {"target": 0.3, "prediction": 0.6, "sigma": 0.1, **kwargs}
    with pytest.raises(error, match=word):
        recon_explorer_state(**args)


def test_state_accepts_numpy_scalars():
    state = recon_explorer_state(np.float32(0.5), np.float64(0.25), np.float64(0.2))
    assert state["target"] == 0.5 and state["prediction"] == 0.25


# ------------------------------------------------------------------------------- drawing

def test_draw_shows_the_state_and_reuses_the_figure():
    fig = draw_recon_explorer(recon_explorer_state(0.3, 0.7, 0.1))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert "0.30" in fig.axes[0].get_title() and "β_SSE = 0.02" in fig.axes[2].get_title()
    n_lines = len(fig.axes[0].lines)
    draw_recon_explorer(recon_explorer_state(0.9, 0.2, 2.0), fig)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == n_lines
    assert "0.90" in fig.axes[0].get_title() and "β_SSE = 8" in fig.axes[2].get_title()
    assert render_png(fig).startswith(PNG_SIGNATURE)


def test_draw_bad_input():
    with pytest.raises(TypeError, match="state"):
        draw_recon_explorer({"mu": 0})
    with pytest.raises(TypeError, match="fig"):
        draw_recon_explorer(recon_explorer_state(0.3, 0.7, 0.1), fig="figure")
    with pytest.raises(TypeError, match="fig"):
        render_png(None)


def test_html_lists_every_loss_and_the_implied_beta():
    html = recon_html(recon_explorer_state(0.3, 0.7, 0.5))
    for word in ("Bernoulli", "Gaussian", "Laplace", "β_SSE = 2σ² = 0.5", "dℓ/d logit = +0.4"):
        assert word in html


# ------------------------------------------------------------------------------ widget

def test_widget_builds_and_shows_the_start_state():
    w = recon_explorer(target=0.3, prediction=0.7, sigma=0.1)
    assert isinstance(w, ReconExplorer) and isinstance(w, widgets.VBox)
    assert w.output.layout.height == f"{OUTPUT_HEIGHT_PX}px"
    assert w.n_renders == 1 and w.last_png.startswith(PNG_SIGNATURE)
    assert "β_SSE = 2σ² = 0.02" in w.html.value
    assert w.sigma_slider.continuous_update is False


def test_sliders_update_state_html_and_image():
    w = recon_explorer(target=0.3, prediction=0.7, sigma=0.1)
    first_png, first_html = w.last_png, w.html.value
    w.target_slider.value = 0.0
    assert w.state["target"] == 0.0 and w.n_renders == 2
    assert w.last_png != first_png and w.html.value != first_html
    assert w.state["losses"]["bernoulli"]["grad_logit"] == pytest.approx(0.7)
    w.prediction_slider.value = 0.2
    assert w.state["prediction"] == pytest.approx(0.2)
    assert w.state["losses"]["gaussian"]["grad"] == pytest.approx(0.2 / 0.01)
    w.sigma_slider.value = 6.26
    assert w.state["beta_sse"] == pytest.approx(78.4, rel=0.01)  # the log slider's step
    assert "β_SSE = 2σ² = 78" in w.html.value
    assert "78" in w.figure.axes[2].get_title()
    assert w.n_renders == 4


def test_continuous_update_can_be_switched_on():
    w = recon_explorer(continuous_update=True)
    assert w.target_slider.continuous_update and w.prediction_slider.continuous_update


def test_widget_bad_start_values():
    with pytest.raises(ValueError, match="sigma"):
        recon_explorer(sigma=0.0)
    with pytest.raises(TypeError, match="target"):
        recon_explorer(target="0")
