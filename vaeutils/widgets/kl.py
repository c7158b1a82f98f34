"""The KL explorer of unit 01: sliders for μ and σ (or log σ²) redraw q = N(μ, σ²)
against the prior N(0, 1), the contribution of each term of −½(1 + log σ² − σ² − μ²),
and the KL value.

The logic lives in two pure functions that tests call directly, because ipywidgets swallows
exceptions raised inside a widget callback:

* :func:`kl_explorer_state` — the numbers (KL, the four terms, the density curves);
* :func:`draw_kl_explorer` — puts a state on a matplotlib figure, reusing its artists.

:func:`kl_explorer` wires them to sliders with ``widgets.interactive_output``. Each update
renders the figure to a PNG inside the output area (what the inline backend shows), so a
static image survives in an executed notebook and the redraw cost is the same everywhere.
"""

from __future__ import annotations

import io
import math
import weakref

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Image, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from .. import checks, plots
from ..i18n import _, tr
from ..losses import kl_per_dim, kl_terms
from . import sliders

TERM_NAMES = ("one", "logvar", "neg_var", "neg_mu_sq")
TERM_LABELS = {"one": "1", "logvar": "log σ²", "neg_var": "−σ²", "neg_mu_sq": "−μ²"}
Z_RANGE = (-8.0, 8.0)
FIGSIZE = (9.0, 3.2)
DPI = 80
OUTPUT_HEIGHT_PX = int(FIGSIZE[1] * DPI) + 16
DENSITY_YMAX = 1.2  # taller peaks are clipped and labelled, so the prior stays readable

MU_RANGE = (-4.0, 4.0)
SIGMA_RANGE = (0.01, 5.0)
# covers 2 log σ over SIGMA_RANGE, so switching the input keeps q in place
LOGVAR_RANGE = (-9.25, 3.25)

_SQRT_2PI = math.sqrt(2.0 * math.pi)
STATE_MU_LIMIT, STATE_LOGVAR_LIMIT = 1e150, 700.0  # what kl_explorer_state can compute in float64


def kl_explorer_state(mu, sigma=None, logvar=None) -> dict:
    """Everything the explorer shows for q = N(mu, sigma²) against the prior N(0, 1).

    Give exactly one of ``sigma`` (> 0) or ``logvar`` (= log σ²). Returns a dict with the floats
    ``mu``, ``sigma``, ``logvar``, ``var``, ``kl`` (nats, from ``losses.kl_per_dim``), the dicts
    ``terms`` (the four terms inside the bracket, from ``losses.kl_terms``) and ``contributions``
    (−½ × each term; they add up to ``kl``), and the arrays ``z``, ``q``, ``prior`` (densities
    on a grid that resolves q however narrow it is).
    """
    # |μ| ≤ 1e150 and |log σ²| ≤ 700 keep μ², σ² and the densities inside float64
    # (exp(1500) overflows)
    mu = checks.number("mu", mu, -STATE_MU_LIMIT, STATE_MU_LIMIT)
    if (sigma is None) == (logvar is None):
        raise ValueError("give exactly one of sigma (standard deviation > 0) or logvar (log σ²)")
    if sigma is not None:
        sigma = checks.number("sigma", sigma)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0 (a standard deviation), got {sigma!r}; or pass "
                             "logvar instead")
        lo, hi = math.exp(-0.5 * STATE_LOGVAR_LIMIT), math.exp(0.5 * STATE_LOGVAR_LIMIT)
        sigma = checks.number("sigma", sigma, lo, hi, hint="or pass logvar instead")
        logvar = 2.0 * math.log(sigma)
    else:
        logvar = checks.number("logvar", logvar, -STATE_LOGVAR_LIMIT, STATE_LOGVAR_LIMIT,
                               hint="log σ²")
        sigma = math.exp(0.5 * logvar)
    mu_t = torch.tensor(mu, dtype=torch.float64)
    logvar_t = torch.tensor(logvar, dtype=torch.float64)
    terms = {k: float(v) for k, v in kl_terms(mu_t, logvar_t).items()}
    contributions = {k: -0.5 * terms[k] for k in TERM_NAMES}
    # A fixed grid for the prior plus a dense one across q, so a spike at small σ is drawn.
    z = np.union1d(np.linspace(*Z_RANGE, 641), mu + sigma * np.linspace(-6.0, 6.0, 241))
    q = np.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * _SQRT_2PI)
    prior = np.exp(-0.5 * z**2) / _SQRT_2PI
    return {
        "mu": mu,
        "sigma": sigma,
        "logvar": logvar,
        "var": math.exp(logvar),
        "kl": float(kl_per_dim(mu_t, logvar_t)),
        "terms": terms,
        "contributions": contributions,
        "z": z,
        "q": q,
        "prior": prior,
    }


# Artists of each figure drawn by draw_kl_explorer, so later draws only update them, and the
# rendered backgrounds (everything that does not move) for render_png.
_ARTISTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The bar axis snaps to a few scales so that few backgrounds exist; the ones the sliders reach
# are rendered when the widget is built (warm_backgrounds), so no redraw pays for a full draw.
_BAR_LEVELS = (2.0, 5.0, 10.0, 25.0)


def _snap(value: float) -> float:
    for level in _BAR_LEVELS:
        if value <= level:
            return level
    return _BAR_LEVELS[-1] * 2.0 ** math.ceil(math.log2(value / _BAR_LEVELS[-1]))


def _bar_limits(heights) -> tuple[float, float]:
    hi = _snap(1.12 * max(0.0, *heights))
    lo = -max(1.0, 0.3 * hi)
    lowest = min(0.0, *heights)
    if lowest < 0.8 * lo:  # only outside the sliders' ranges
        lo = -_snap(1.3 * -lowest)
    return lo, hi


def _build(fig: Figure) -> dict:
    fig.clear()
    ax_d, ax_b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.88, wspace=0.22)
    (prior_line,) = ax_d.plot([], [], color="0.35", lw=2, ls="--", label="prior p = N(0, 1)")
    (q_line,) = ax_d.plot([], [], color="C0", lw=2, label="q = N(μ, σ²)")
    ax_d.set_xlim(*Z_RANGE)
    ax_d.set_ylim(0.0, DENSITY_YMAX)
    ax_d.set_xlabel("z")
    ax_d.set_ylabel("density")
    ax_d.legend(loc="upper left", frameon=False, fontsize=9)
    clip_text = ax_d.text(0.99, 0.97, "", transform=ax_d.transAxes, ha="right", va="top",
                          fontsize=9, color="C0")
    d_title = ax_d.set_title(" ")

    labels = [TERM_LABELS[k] for k in TERM_NAMES] + ["KL"]
    colors = ["0.6", "C1", "C2", "C3", "C0"]
    bars = ax_b.bar(range(5), np.zeros(5), color=colors)
    ax_b.set_xticks(range(5), labels)
    ax_b.axhline(0.0, color="black", lw=0.8)
    ax_b.set_ylabel("nats (−½ × term)")
    values = [ax_b.text(i, 0.0, "", ha="center", fontsize=9) for i in range(5)]
    b_title = ax_b.set_title(" ")
    moving = [prior_line, q_line, clip_text, d_title, *bars, *values, b_title]
    for artist in moving:
        artist.set_animated(True)  # left out of the background, drawn on top of it by render_png
    return {"ax_d": ax_d, "ax_b": ax_b, "prior": prior_line, "q": q_line, "clip": clip_text,
            "d_title": d_title, "bars": bars, "values": values, "b_title": b_title,
            "moving": moving, "backgrounds": {}}


def draw_kl_explorer(state: dict, fig: Figure | None = None) -> Figure:
    """Draw ``state`` (from :func:`kl_explorer_state`) on ``fig``: the two densities on the left,
    each term's contribution and the KL on the right. The first call on a figure lays it out;
    later calls on the same figure only update lines, bars, texts and the bar-axis limits.
    Returns the figure (display it, save it, or turn it into PNG bytes with :func:`render_png`)."""
    if not isinstance(state, dict) or "contributions" not in state:
        raise TypeError("state must be the dict returned by kl_explorer_state(mu, sigma=...)")
    fig, art = plots.widget_artists(fig, FIGSIZE, DPI, _ARTISTS, _build)

    z, q, prior = state["z"], state["q"], state["prior"]
    art["prior"].set_data(z, prior)
    art["q"].set_data(z, q)
    q_peak = 1.0 / (state["sigma"] * _SQRT_2PI)
    clipped = q_peak > DENSITY_YMAX
    art["clip"].set_text(f"q peaks at {q_peak:.3g} (off the scale)" if clipped else "")
    art["d_title"].set_text(f"μ = {state['mu']:.3g}, σ = {state['sigma']:.3g}, log σ² = "
                            f"{state['logvar']:.3g}")

    heights = [state["contributions"][k] for k in TERM_NAMES] + [state["kl"]]
    lo, hi = _bar_limits(heights)
    span = hi - lo
    for bar, text, h in zip(art["bars"], art["values"], heights):
        bar.set_height(h)
        text.set_text(f"{h:+.3g}")
        text.set_y(h + (0.01 * span if h >= 0 else -0.01 * span))
        text.set_va("bottom" if h >= 0 else "top")
    art["ax_b"].set_ylim(lo, hi)
    art["b_title"].set_text(f"KL(q ‖ p) = {state['kl']:.4f} nats")
    return fig


def warm_backgrounds(fig: Figure) -> None:
    """Render and cache the background of every bar-axis scale the sliders can reach, so that
    later calls to :func:`render_png` on ``fig`` only draw the moving artists."""
    art = _ARTISTS.get(fig)
    if art is None:
        raise ValueError("fig must have been drawn by draw_kl_explorer first")
    ax_b = art["ax_b"]
    current = ax_b.get_ylim()
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    for hi in _BAR_LEVELS:
        ax_b.set_ylim(-max(1.0, 0.3 * hi), hi)
        key = (ax_b.get_ylim(), canvas.get_width_height())
        if key not in art["backgrounds"]:
            canvas.draw()
            art["backgrounds"][key] = canvas.copy_from_bbox(fig.bbox)
    ax_b.set_ylim(*current)


def render_png(fig: Figure) -> bytes:
    """The figure as PNG bytes: the cost of one redraw.

    For a figure drawn by :func:`draw_kl_explorer` only the moving artists are drawn, on top of a
    cached image of everything else (one per bar-axis scale); any other figure is drawn in full.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    art = _ARTISTS.get(fig)
    if art is None:
        return plots.figure_png(fig)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    key = (art["ax_b"].get_ylim(), canvas.get_width_height())
    background = art["backgrounds"].get(key)
    if background is None:
        canvas.draw()  # animated artists are left out of a plain draw
        background = art["backgrounds"][key] = canvas.copy_from_bbox(fig.bbox)
    else:
        canvas.restore_region(background)
    for artist in art["moving"]:
        artist.axes.draw_artist(artist)
    renderer = canvas.get_renderer()
    size = (int(renderer.width), int(renderer.height))
    image = PILImage.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _kl_html(state: dict) -> str:
    return tr(f"<b>KL(q ‖ p) = {state['kl']:.4f} nats</b> &nbsp; "
            f"(μ = {state['mu']:.3g}, σ = {state['sigma']:.3g}, log σ² = {state['logvar']:.3g})")


class KLExplorer(widgets.VBox):
    """The explorer widget. Attributes: ``mu_slider``, ``sigma_slider``, ``logvar_slider``,
    ``logvar_toggle`` (True: the log σ² slider is the input), ``kl_html`` (the KL shown as text),
    ``output`` (the figure area), ``figure``, ``state`` (the last state drawn), ``last_png``,
    ``n_renders`` (how many PNGs were rendered; identical states reuse the last one)."""

    def __init__(self, mu: float = 0.0, sigma: float = 1.0, continuous_update: bool = True):
        start = kl_explorer_state(mu, sigma=sigma)
        for name, value, (lo, hi) in (("mu", start["mu"], MU_RANGE),
                                      ("sigma", start["sigma"], SIGMA_RANGE)):
            if not lo <= value <= hi:
                raise ValueError(f"{name} must lie in the slider's range [{lo:g}, {hi:g}], got "
                                 f"{value!r}")

        def common():  # every slider needs its own Layout: the input switch hides one of them
            return {"continuous_update": continuous_update, "style": {"description_width": "50px"},
                    "layout": widgets.Layout(width="420px")}

        self.mu_slider = sliders.FloatSlider(
            value=start["mu"], min=MU_RANGE[0], max=MU_RANGE[1], step=0.05, description="μ",
            readout_format=".2f", **common())
        self.sigma_slider = sliders.FloatLogSlider(
            value=start["sigma"], base=10, min=math.log10(SIGMA_RANGE[0]),
            max=math.log10(SIGMA_RANGE[1]), step=0.01, description="σ", readout_format=".3g",
            **common())
        self.logvar_slider = sliders.FloatSlider(
            value=start["logvar"], min=LOGVAR_RANGE[0], max=LOGVAR_RANGE[1], step=0.05,
            description="log σ²", readout_format=".2f", **common())
        self.logvar_slider.layout.display = "none"
        self.logvar_toggle = widgets.Checkbox(value=False, indent=False,
                                              description=_("enter log σ² instead of σ"))
        self.kl_html = widgets.HTML(value=_kl_html(start))
        self.figure = Figure(figsize=FIGSIZE, dpi=DPI)
        self.state = start
        self.last_png = b""
        self.n_renders = 0
        self._png_key = None
        draw_kl_explorer(start, self.figure)
        warm_backgrounds(self.figure)
        # Registered before interactive_output so the newly shown slider already holds the
        # current value when the redraw runs: switching the input does not move q.
        self.logvar_toggle.observe(self._switch_input, "value")
        controls = {"mu": self.mu_slider, "sigma": self.sigma_slider, "logvar": self.logvar_slider,
                    "use_logvar": self.logvar_toggle}
        self.output = widgets.interactive_output(self._redraw, controls)
        self.output.layout.height = f"{OUTPUT_HEIGHT_PX}px"
        controls_box = widgets.VBox([self.mu_slider, self.sigma_slider, self.logvar_slider,
                                     self.logvar_toggle])
        super().__init__([widgets.HBox([controls_box, self.kl_html]), self.output])

    def _switch_input(self, change) -> None:
        if change["new"]:
            self.logvar_slider.value = 2.0 * math.log(self.sigma_slider.value)
            self.sigma_slider.layout.display, self.logvar_slider.layout.display = "none", None
        else:
            self.sigma_slider.value = math.exp(0.5 * self.logvar_slider.value)
            self.sigma_slider.layout.display, self.logvar_slider.layout.display = None, "none"

    def _redraw(self, mu: float, sigma: float, logvar: float, use_logvar: bool) -> None:
        if use_logvar:
            state = kl_explorer_state(mu, logvar=logvar)
        else:
            state = kl_explorer_state(mu, sigma=sigma)
        key = (state["mu"], state["logvar"])
        if key != self._png_key:
            draw_kl_explorer(state, self.figure)
            self.last_png = render_png(self.figure)
            self.n_renders += 1
            self._png_key = key
        self.state = state
        self.kl_html.value = _kl_html(state)
        display(Image(data=self.last_png, format="png"))

    def site_view(self) -> dict:
        """What the course site (``coursekit.site``) needs to run this explorer in a page with no
        kernel, as JSON-able values: each slider's label, limits, step, readout format, value and
        model id (the site starts from the saved state), which input is in use, and the fixed scales
        of the picture. The page computes everything else from μ and σ with the formulas of
        :func:`kl_explorer_state`."""
        def slider(s) -> dict:
            return {"label": s.description, "min": s.min, "max": s.max, "step": s.step,
                    "value": s.value, "readout_format": s.readout_format, "model_id": s.model_id}

        return {"kind": "kl-explorer", "model_id": self.model_id, "mu": slider(self.mu_slider),
                "sigma": slider(self.sigma_slider) | {"base": self.sigma_slider.base},
                "logvar": slider(self.logvar_slider), "use_logvar": self.logvar_toggle.value,
                "toggle": {"label": self.logvar_toggle.description,
                           "model_id": self.logvar_toggle.model_id},
                "z_range": list(Z_RANGE), "density_ymax": DENSITY_YMAX,
                "bar_levels": list(_BAR_LEVELS), "terms": [TERM_LABELS[k] for k in TERM_NAMES],
                "size_px": [FIGSIZE[0] * DPI, FIGSIZE[1] * DPI]}


def kl_explorer(mu: float = 0.0, sigma: float = 1.0, continuous_update: bool = True) -> KLExplorer:
    """Sliders for μ and σ (tick the box to enter log σ² instead) redraw q = N(μ, σ²) against the
    prior N(0, 1), each term's contribution to the KL, and the KL value. Returns a
    :class:`KLExplorer` (an ``ipywidgets.VBox``); display it as the last line of a cell."""
    return KLExplorer(mu=mu, sigma=sigma, continuous_update=continuous_update)
