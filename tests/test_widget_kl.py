"""The KL explorer (vaeutils.widgets.kl, unit 01): its pure functions, then the widget headless.

ipywidgets swallows exceptions raised inside a callback when a kernel runs it, so the pure
functions are tested directly as well as through slider changes.
"""

import math

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vaeutils.losses import kl_per_dim
from vaeutils.widgets import kl_explorer
from vaeutils.widgets.kl import (
    OUTPUT_HEIGHT_PX,
    TERM_NAMES,
    KLExplorer,
    draw_kl_explorer,
    kl_explorer_state,
    render_png,
    warm_backgrounds,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _closed_form(mu, sigma):
    return 0.5 * (mu**2 + sigma**2 - 1.0 - math.log(sigma**2))


# ------------------------------------------------------------------------------- state

@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.5, 1.0), (0.0, 0.1), (0.0, 2.0), (-2.5, 0.03), (3.0, 4.5)])
def test_state_values(mu, sigma):
    state = kl_explorer_state(mu, sigma=sigma)
    assert state["kl"] == pytest.approx(_closed_form(mu, sigma), rel=1e-12, abs=1e-15)
    assert state["logvar"] == pytest.approx(2 * math.log(sigma))
    assert state["var"] == pytest.approx(sigma**2)
    assert set(state["terms"]) == set(TERM_NAMES) == set(state["contributions"])
    assert sum(state["contributions"].values()) == pytest.approx(state["kl"], abs=1e-12)
    for name in TERM_NAMES:
        assert state["contributions"][name] == -0.5 * state["terms"][name]
    assert state["contributions"]["logvar"] == pytest.approx(-math.log(sigma))
    assert state["contributions"]["neg_var"] == pytest.approx(0.5 * sigma**2)
    assert state["contributions"]["neg_mu_sq"] == pytest.approx(0.5 * mu**2)


def test_state_uses_the_library_kl():
    state = kl_explorer_state(0.7, logvar=-1.3)
    expected = kl_per_dim(torch.tensor(0.7, dtype=torch.float64), torch.tensor(-1.3, dtype=torch.float64))
    assert state["kl"] == float(expected)


def test_sigma_and_logvar_inputs_agree():
    a = kl_explorer_state(0.4, sigma=0.3)
    b = kl_explorer_state(0.4, logvar=2 * math.log(0.3))
    assert a["kl"] == pytest.approx(b["kl"], rel=1e-12)
    assert b["sigma"] == pytest.approx(0.3, rel=1e-12)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 0.01), (-3.0, 4.0)])
def test_state_densities_integrate_to_one_and_resolve_narrow_q(mu, sigma):
    state = kl_explorer_state(mu, sigma=sigma)
    z, q, prior = state["z"], state["q"], state["prior"]
    assert np.all(np.diff(z) > 0)
    assert np.trapezoid(prior, z) == pytest.approx(1.0, abs=1e-5)
    inside = abs(mu) + 6 * sigma <= 8  # q lies within the plotted range
    if inside:
        assert np.trapezoid(q, z) == pytest.approx(1.0, abs=1e-3)
    assert q.max() == pytest.approx(1 / (sigma * math.sqrt(2 * math.pi)), rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"mu": 0.0}, ValueError, "sigma"),
        ({"mu": 0.0, "sigma": 1.0, "logvar": 0.0}, ValueError, "logvar"),
        ({"mu": 0.0, "sigma": 0.0}, ValueError, "sigma"),
        ({"mu": 0.0, "sigma": -1.0}, ValueError, "sigma"),
        ({"mu": 0.0, "sigma": float("nan")}, ValueError, "sigma"),
        ({"mu": float("inf"), "sigma": 1.0}, ValueError, "mu"),
        ({"mu": 0.0, "logvar": float("inf")}, ValueError, "logvar"),
        ({"mu": "1", "sigma": 1.0}, TypeError, "mu"),
        ({"mu": True, "sigma": 1.0}, TypeError, "mu"),
        ({"mu": 0.0, "sigma": [1.0]}, TypeError, "sigma"),
        ({"mu": 0.0, "logvar": None, "sigma": None}, ValueError, "sigma"),
    ],
)
def test_state_bad_input(kwargs, error, word):
    with pytest.raises(error, match=word):
        kl_explorer_state(**kwargs)


def test_state_accepts_numpy_scalars():
    state = kl_explorer_state(np.float32(1.5), sigma=np.float64(1.0))
    assert state["kl"] == pytest.approx(1.125)


# -------------------------------------------------------------------------------- draw

def test_draw_shows_the_state():
    state = kl_explorer_state(1.5, sigma=0.5)
    fig = draw_kl_explorer(state)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax_d, ax_b = fig.axes
    heights = [bar.get_height() for bar in ax_b.patches]
    expected = [state["contributions"][k] for k in TERM_NAMES] + [state["kl"]]
    np.testing.assert_allclose(heights, expected)
    assert f"{state['kl']:.4f}" in ax_b.get_title()
    lo, hi = ax_b.get_ylim()
    assert lo < min(expected) and hi > max(expected)
    prior_line, q_line = ax_d.get_lines()[:2]
    np.testing.assert_array_equal(q_line.get_xdata(), state["z"])
    np.testing.assert_array_equal(q_line.get_ydata(), state["q"])


def test_draw_reuses_the_figure():
    fig = draw_kl_explorer(kl_explorer_state(0.0, sigma=1.0))
    axes = list(fig.axes)
    n_artists = [len(ax.get_children()) for ax in axes]
    state = kl_explorer_state(-2.0, sigma=3.0)
    assert draw_kl_explorer(state, fig) is fig
    assert fig.axes == axes
    assert [len(ax.get_children()) for ax in axes] == n_artists
    assert f"{state['kl']:.4f}" in axes[1].get_title()


def test_draw_marks_a_clipped_peak():
    fig = draw_kl_explorer(kl_explorer_state(0.0, sigma=0.05))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("off the scale" in t for t in texts)
    draw_kl_explorer(kl_explorer_state(0.0, sigma=1.0), fig)
    assert not any("off the scale" in t.get_text() for t in fig.axes[0].texts)


def test_draw_bad_input():
    with pytest.raises(TypeError, match="state"):
        draw_kl_explorer({"kl": 1.0})
    with pytest.raises(TypeError, match="fig"):
        draw_kl_explorer(kl_explorer_state(0.0, sigma=1.0), fig="figure")
    with pytest.raises(TypeError, match="fig"):
        render_png("figure")
    with pytest.raises(ValueError, match="draw_kl_explorer"):
        warm_backgrounds(Figure())


def _pixels(png: bytes) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)


def test_fast_render_equals_a_full_draw():
    fig = draw_kl_explorer(kl_explorer_state(0.2, sigma=0.8))
    warm_backgrounds(fig)
    for mu, sigma in [(1.5, 1.0), (0.0, 0.05), (3.5, 4.0), (-1.0, 0.3)]:
        draw_kl_explorer(kl_explorer_state(mu, sigma=sigma), fig)
        fast = render_png(fig)
        assert fast.startswith(PNG_SIGNATURE)
        full = render_png(draw_kl_explorer(kl_explorer_state(mu, sigma=sigma)))  # a fresh figure
        assert np.abs(_pixels(fast) - _pixels(full)).max() <= 1  # only antialiasing rounding may differ


def test_states_outside_the_slider_range_still_render():
    fig = draw_kl_explorer(kl_explorer_state(0.0, logvar=12.0))
    lo, hi = fig.axes[1].get_ylim()
    state = kl_explorer_state(0.0, logvar=12.0)
    assert lo < min(state["contributions"].values()) and hi > state["kl"]
    assert render_png(fig).startswith(PNG_SIGNATURE)


# ------------------------------------------------------------------------------ widget

def test_widget_builds_and_shows_the_start_state():
    w = kl_explorer(mu=1.5, sigma=1.0)
    assert isinstance(w, KLExplorer) and isinstance(w, widgets.VBox)
    assert w.output.layout.height == f"{OUTPUT_HEIGHT_PX}px"
    assert "1.1250" in w.kl_html.value
    assert w.n_renders == 1 and w.last_png.startswith(PNG_SIGNATURE)
    assert w.logvar_slider.layout.display == "none"
    assert w.mu_slider.continuous_update is True


def test_sliders_update_state_label_and_image():
    w = kl_explorer()
    assert w.state["kl"] == 0.0
    first_png = w.last_png
    w.mu_slider.value = 1.5
    assert w.state["mu"] == 1.5 and "1.1250" in w.kl_html.value
    assert w.n_renders == 2 and w.last_png != first_png
    w.sigma_slider.value = 0.1
    expected = _closed_form(1.5, w.sigma_slider.value)
    assert w.state["kl"] == pytest.approx(expected, rel=1e-9)
    assert f"{expected:.4f}" in w.kl_html.value
    assert f"{expected:.4f}" in w.figure.axes[1].get_title()


def test_logvar_toggle_switches_input_without_moving_q():
    w = kl_explorer(mu=0.5, sigma=0.5)
    kl_before = w.state["kl"]
    w.logvar_toggle.value = True
    assert w.logvar_slider.layout.display is None and w.sigma_slider.layout.display == "none"
    assert w.logvar_slider.value == pytest.approx(2 * math.log(0.5), abs=0.05)  # the slider's step
    assert w.state["kl"] == pytest.approx(kl_before, abs=0.05)
    w.logvar_slider.value = -2.0
    assert w.state["logvar"] == -2.0
    assert w.state["sigma"] == pytest.approx(math.exp(-1.0))
    assert w.state["kl"] == pytest.approx(0.5 * (0.25 + math.exp(-2.0) - 1.0 + 2.0))
    w.sigma_slider.value = 2.0  # hidden slider: not the input while the box is ticked
    assert w.state["logvar"] == -2.0
    w.logvar_toggle.value = False
    assert w.sigma_slider.layout.display is None
    assert w.state["sigma"] == pytest.approx(math.exp(-1.0), rel=0.03)  # the log slider's step


def test_identical_states_are_not_rendered_twice():
    w = kl_explorer(mu=0.0, sigma=1.0)
    w.logvar_toggle.value = True  # sigma = 1 -> logvar = 0: the same state
    assert w.n_renders == 1
    w.logvar_toggle.value = False
    assert w.n_renders == 1


def test_continuous_update_can_be_switched_off():
    w = kl_explorer(continuous_update=False)
    assert not w.mu_slider.continuous_update and not w.sigma_slider.continuous_update


def test_widget_bad_start_values():
    with pytest.raises(ValueError, match="sigma"):
        kl_explorer(sigma=0.0)
    with pytest.raises(TypeError, match="mu"):
        kl_explorer(mu="0")
    with pytest.raises(ValueError, match="mu"):
        kl_explorer(mu=10.0)  # outside the slider: refused rather than silently clipped
    with pytest.raises(ValueError, match="sigma"):
        kl_explorer(sigma=0.001)


def test_switching_input_at_the_ends_of_the_sigma_range_keeps_q():
    for sigma in (0.01, 5.0):
        w = kl_explorer(mu=0.0, sigma=sigma)
        w.logvar_toggle.value = True
        assert w.state["sigma"] == pytest.approx(sigma, rel=1e-9)
