"""The reconstruction-loss explorer of unit 02: one pixel, three likelihoods.

Sliders set a target pixel value x, the decoder's prediction p (its image-space mean, i.e. the
Bernoulli probability or the Gaussian/Laplace mean) and the Gaussian σ. The view shows, for the
Bernoulli, the Gaussian with that σ and the Laplace with the same variance (b = σ/√2):

* each negative log-likelihood at p and its gradient with respect to p (and, for the Bernoulli,
  with respect to the logit, which is what a decoder that outputs logits receives);
* the curves of excess loss ℓ(p) − min ℓ and of dℓ/dp against p;
* the implied β of that σ: β_SSE = 2σ², the weight on KL in ``SSE + β·KL`` that has the same
  minimisers as the Gaussian negative ELBO ``SSE/(2σ²) + KL`` (multiply the latter by 2σ²).

All numbers come from :mod:`vaeutils.losses` through autograd, in two pure functions that tests
call directly (ipywidgets swallows exceptions raised inside a callback):
:func:`recon_explorer_state` (the numbers) and :func:`draw_recon_explorer` (the figure).
:func:`recon_explorer` wires them to sliders with ``widgets.interactive_output``.
"""

from __future__ import annotations

import math
import weakref

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Image, display
from matplotlib.figure import Figure

from .. import checks, plots
from ..i18n import N_, _, tr
from ..losses import bernoulli_nll, gaussian_nll, laplace_nll
from . import sliders

LOSS_NAMES = ("bernoulli", "gaussian", "laplace")
COLORS = {"bernoulli": "C0", "gaussian": "C1", "laplace": "C2"}
# the prediction slider's range: a probability strictly inside (0, 1)
PRED_RANGE = (1e-3, 1.0 - 1e-3)
SIGMA_RANGE = (1e-2, 10.0)
FIGSIZE = (11.0, 3.3)
DPI = 80
OUTPUT_HEIGHT_PX = int(FIGSIZE[1] * DPI) + 16
N_GRID = 397

# Reference points on the implied-β panel: β_SSE = 1 is "SSE + KL"; 78.4 = 784/10 is the loss of
# mean-reduced MSE over 784 pixels with the KL averaged over 10 latent dimensions (see the
# sources page, S0).
REFERENCE_BETAS = {"SSE + KL": 1.0, "mean/mean, D=784, d=10": 784 / 10}


def implied_beta(sigma) -> float:
    """β_SSE = 2σ²: the Gaussian negative ELBO SSE/(2σ²) + KL + const equals
    (SSE + 2σ²·KL)/(2σ²) + const, so ``SSE + β·KL`` with β = 2σ² has the same minimisers (and, under
    Adam, the same training)."""
    sigma = checks.number("sigma", sigma, 0.0, low_open=True)
    return 2.0 * sigma**2


def sigma_for_beta(beta) -> float:
    """The inverse of :func:`implied_beta`: the Gaussian σ = √(β/2) that ``SSE + β·KL`` silently
    assumes."""
    beta = checks.number("beta", beta, 0.0, low_open=True)
    return math.sqrt(beta / 2.0)


def _nll_and_grads(target: np.ndarray, prediction: np.ndarray, sigma: float) -> dict:
    """Per-pixel NLL and its derivatives for arrays of (target, prediction), by vaeutils.losses."""
    x = torch.as_tensor(target, dtype=torch.float64).reshape(-1, 1)
    p = torch.as_tensor(prediction, dtype=torch.float64).reshape(-1, 1).clone().requires_grad_(True)
    logit = torch.logit(p.detach()).requires_grad_(True)
    out = {}
    bern = bernoulli_nll(logit, x)
    (grad_logit,) = torch.autograd.grad(bern.sum(), logit)
    # dℓ/dp = dℓ/dlogit · dlogit/dp, with dlogit/dp = 1/(p(1 − p))
    pd = p.detach()
    out["bernoulli"] = {"loss": bern.detach(), "grad": (grad_logit / (pd * (1 - pd))).reshape(-1),
                        "grad_logit": grad_logit.reshape(-1)}
    for name, fn, log_scale in (("gaussian", gaussian_nll, math.log(sigma)),
                                ("laplace", laplace_nll, math.log(sigma / math.sqrt(2.0)))):
        value = fn(p, x, log_scale)
        (grad,) = torch.autograd.grad(value.sum(), p)
        out[name] = {"loss": value.detach(), "grad": grad.reshape(-1)}
    return {name: {k: v.reshape(-1).numpy() for k, v in terms.items()}
            for name, terms in out.items()}


def recon_explorer_state(target, prediction, sigma) -> dict:
    """Everything the explorer shows for one pixel.

    ``target`` x in [0, 1]; ``prediction`` p in (0, 1) (the decoder's image-space mean; for the
    Bernoulli its probability, logit = log(p/(1−p))); ``sigma`` > 0 the Gaussian standard deviation
    (the Laplace uses b = σ/√2, the same variance). Returns a dict with the floats ``target``,
    ``prediction``, ``logit``, ``sigma``, ``laplace_b``, ``beta_sse`` (= 2σ², :func:`implied_beta`),
    ``gaussian_constant`` (log σ + ½ log 2π, the Gaussian NLL at p = x); ``losses``: for each of
    ``LOSS_NAMES`` a dict with ``loss`` (NLL in nats), ``excess`` (loss minus its minimum over p),
    ``grad`` (dℓ/dp), and for the Bernoulli also ``grad_logit`` (dℓ/dlogit = p − x); and the arrays
    ``grid`` (predictions), ``curves`` {name: excess loss on the grid}, ``grad_curves``
    {name: dℓ/dp}.
    """
    target = checks.number("target", target, 0.0, 1.0)
    prediction = checks.number("prediction", prediction, 0.0, 1.0, low_open=True, high_open=True)
    sigma = checks.number("sigma", sigma, 0.0, low_open=True)
    # A grid inside the slider's range plus the two points that matter, so the markers sit on the
    # curves and the minimum at p = x is on the grid (clamped into (0, 1), where the Bernoulli
    # minimum is approached).
    best = min(max(target, PRED_RANGE[0]), PRED_RANGE[1])
    grid = np.union1d(np.linspace(*PRED_RANGE, N_GRID), [prediction, best])
    on_grid = _nll_and_grads(np.full_like(grid, target), grid, sigma)
    at_best = _nll_and_grads(np.array([target]), np.array([best]), sigma)
    at_pred = _nll_and_grads(np.array([target]), np.array([prediction]), sigma)
    losses, curves, grad_curves = {}, {}, {}
    for name in LOSS_NAMES:
        # the minimum over p in [0, 1] is at p = x for all three (the Bernoulli's at the clamped x)
        minimum = float(min(at_best[name]["loss"][0], on_grid[name]["loss"].min()))
        losses[name] = {"loss": float(at_pred[name]["loss"][0]),
                        "excess": float(at_pred[name]["loss"][0]) - minimum,
                        "grad": float(at_pred[name]["grad"][0])}
        curves[name] = on_grid[name]["loss"] - minimum
        grad_curves[name] = on_grid[name]["grad"]
    losses["bernoulli"]["grad_logit"] = float(at_pred["bernoulli"]["grad_logit"][0])
    return {
        "target": target,
        "prediction": prediction,
        "logit": math.log(prediction / (1.0 - prediction)),
        "sigma": sigma,
        "laplace_b": sigma / math.sqrt(2.0),
        "beta_sse": implied_beta(sigma),
        "gaussian_constant": math.log(sigma) + 0.5 * math.log(2 * math.pi),
        "losses": losses,
        "grid": grid,
        "curves": curves,
        "grad_curves": grad_curves,
    }


_ARTISTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LABELS = {"bernoulli": N_("Bernoulli (BCE)"), "gaussian": N_("Gaussian σ"),
           "laplace": N_("Laplace b = σ/√2")}


def _build(fig: Figure) -> dict:
    fig.clear()
    ax_l, ax_g, ax_b = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.0, 1.0, 0.8]})
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.86, wspace=0.3)
    art = {"ax_l": ax_l, "ax_g": ax_g, "ax_b": ax_b, "lines": {}, "grad_lines": {}, "dots": {},
           "grad_dots": {}}
    for name in LOSS_NAMES:
        (art["lines"][name],) = ax_l.plot([], [], color=COLORS[name], lw=2, label=_LABELS[name])
        (art["dots"][name],) = ax_l.plot([], [], "o", color=COLORS[name], ms=6)
        (art["grad_lines"][name],) = ax_g.plot([], [], color=COLORS[name], lw=2)
        (art["grad_dots"][name],) = ax_g.plot([], [], "o", color=COLORS[name], ms=6)
    (art["logit_dot"],) = ax_g.plot([], [], "s", color="C0", mfc="white", ms=7,
                                    label="BCE: dℓ/d logit = p − x")
    art["target_l"] = ax_l.axvline(0.0, color="0.4", ls=":", lw=1)
    art["target_g"] = ax_g.axvline(0.0, color="0.4", ls=":", lw=1)
    for ax in (ax_l, ax_g):
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("prediction p")
    ax_g.axhline(0.0, color="black", lw=0.6)
    ax_l.set_ylabel("ℓ(p) − min ℓ  (nats)")
    ax_g.set_ylabel("dℓ/dp")
    ax_l.legend(loc="upper center", fontsize=8, frameon=False)
    ax_g.legend(loc="upper left", fontsize=8, frameon=False)
    sig = np.geomspace(*SIGMA_RANGE, 200)
    ax_b.loglog(sig, 2 * sig**2, color="C1", lw=2)
    for label, beta in REFERENCE_BETAS.items():
        s = math.sqrt(beta / 2)
        ax_b.plot([s], [beta], "x", color="0.3", ms=7)
        ax_b.annotate(label, (s, beta), textcoords="offset points", xytext=(-6, 2), ha="right",
                      fontsize=7)
    ax_b.set_ylim(1e-4, 1e3)
    (art["beta_dot"],) = ax_b.plot([], [], "o", color="C1", ms=8)
    ax_b.set_xlabel("Gaussian σ")
    ax_b.set_ylabel("implied β_SSE = 2σ²")
    art["titles"] = (ax_l.set_title(" "), ax_g.set_title(" "), ax_b.set_title(" "))
    return art


def draw_recon_explorer(state: dict, fig: Figure | None = None) -> Figure:
    """Draw ``state`` (from :func:`recon_explorer_state`) on ``fig``: excess losses, gradients,
    implied β. The first call lays the figure out; later calls on the same figure only update the
    artists."""
    if not isinstance(state, dict) or "curves" not in state or "beta_sse" not in state:
        raise TypeError("state must be the dict returned by recon_explorer_state(target, "
                        "prediction, sigma)")
    fig, art = plots.widget_artists(fig, FIGSIZE, DPI, _ARTISTS, _build)
    grid, p, x = state["grid"], state["prediction"], state["target"]
    for name in LOSS_NAMES:
        art["lines"][name].set_data(grid, state["curves"][name])
        art["dots"][name].set_data([p], [state["losses"][name]["excess"]])
        art["grad_lines"][name].set_data(grid, state["grad_curves"][name])
        art["grad_dots"][name].set_data([p], [state["losses"][name]["grad"]])
    art["logit_dot"].set_data([p], [state["losses"]["bernoulli"]["grad_logit"]])
    art["target_l"].set_xdata([x, x])
    art["target_g"].set_xdata([x, x])
    # Linear axes scaled to the current points: they always show, a steep curve may leave the frame.
    top_l = max(1.0, *(state["losses"][n]["excess"] for n in LOSS_NAMES))
    top_g = max(2.0, *(abs(state["losses"][n]["grad"]) for n in LOSS_NAMES))
    art["ax_l"].set_ylim(0.0, 1.5 * top_l)
    art["ax_g"].set_ylim(-1.5 * top_g, 1.5 * top_g)
    art["beta_dot"].set_data([state["sigma"]], [state["beta_sse"]])
    t_l, t_g, t_b = art["titles"]
    t_l.set_text(f"excess loss, target x = {x:.2f}")
    t_g.set_text(f"gradient at p = {p:.3f} (logit {state['logit']:+.2f})")
    t_b.set_text(f"σ = {state['sigma']:.3g}: β_SSE = {state['beta_sse']:.4g}")
    return fig


render_png = plots.figure_png  # the figure as PNG bytes (what the widget displays)


def recon_html(state: dict) -> str:
    """The numbers of ``state`` as a small HTML table (NLL, excess, gradients) and the implied β."""
    rows = []
    for name in LOSS_NAMES:
        v = state["losses"][name]
        extra = f"; dℓ/d logit = {v['grad_logit']:+.4g}" if name == "bernoulli" else ""
        rows.append(f"<tr><td>{tr(_LABELS[name])}</td><td>{v['loss']:.4f}</td>"
                    f"<td>{v['excess']:.4f}</td><td>{v['grad']:+.4g}{extra}</td></tr>")
    return (
        _("<table style='font-size:90%'><tr><th>likelihood</th><th>NLL (nats)</th><th>excess</th>"
          "<th>dℓ/dp</th></tr>") + "".join(rows) + "</table>" + tr(
        f"<b>σ = {state['sigma']:.4g}: implied β_SSE = 2σ² = {state['beta_sse']:.4g}</b> "
        "(the weight on KL in SSE + β·KL that trains like the Gaussian ELBO with this σ); "
        f"Gaussian constant per pixel log σ + ½ log 2π = {state['gaussian_constant']:+.4f} nats")
    )


class ReconExplorer(widgets.VBox):
    """The explorer widget. Attributes: ``target_slider``, ``prediction_slider``, ``sigma_slider``,
    ``html`` (the numbers), ``output`` (the figure area), ``figure``, ``state`` (the last state
    drawn), ``last_png`` and ``n_renders``."""

    def __init__(self, target: float = 0.3, prediction: float = 0.7, sigma: float = 0.1,
                 continuous_update: bool = False):
        # a slider clamps what it is given (sigma=100 would open at σ = 10): refuse what it
        # cannot show
        for name, value, (lo, hi) in (("target", target, (0.0, 1.0)),
                                      ("prediction", prediction, PRED_RANGE),
                                      ("sigma", sigma, SIGMA_RANGE)):
            if not lo <= checks.number(name, value) <= hi:
                raise ValueError(f"{name} must lie in the slider's range [{lo:g}, {hi:g}], got "
                                 f"{value!r}")
        start = recon_explorer_state(target, prediction, sigma)
        common = {"continuous_update": continuous_update, "style": {"description_width": "90px"},
                  "layout": widgets.Layout(width="430px")}
        self.target_slider = sliders.FloatSlider(value=start["target"], min=0.0, max=1.0, step=0.01,
                                                 description=_("target x"), readout_format=".2f",
                                                 **common)
        self.prediction_slider = sliders.FloatSlider(value=start["prediction"], min=PRED_RANGE[0],
                                                     max=PRED_RANGE[1], step=0.001,
                                                     description=_("prediction p"),
                                                     readout_format=".3f", **common)
        self.sigma_slider = sliders.FloatLogSlider(value=start["sigma"], base=10,
                                                   min=math.log10(SIGMA_RANGE[0]),
                                                   max=math.log10(SIGMA_RANGE[1]), step=0.01,
                                                   description="σ", readout_format=".3g", **common)
        self.html = widgets.HTML(value=recon_html(start))
        self.figure = Figure(figsize=FIGSIZE, dpi=DPI)
        self.state = start
        self.last_png = b""
        self.n_renders = 0
        controls = {"target": self.target_slider, "prediction": self.prediction_slider,
                    "sigma": self.sigma_slider}
        self.output = widgets.interactive_output(self._redraw, controls)
        self.output.layout.height = f"{OUTPUT_HEIGHT_PX}px"
        slider_box = widgets.VBox([self.target_slider, self.prediction_slider, self.sigma_slider])
        super().__init__([widgets.HBox([slider_box, self.html]), self.output])

    def _redraw(self, target: float, prediction: float, sigma: float) -> None:
        state = recon_explorer_state(target, prediction, sigma)
        draw_recon_explorer(state, self.figure)
        self.last_png = render_png(self.figure)
        self.n_renders += 1
        self.state = state
        self.html.value = recon_html(state)
        display(Image(data=self.last_png, format="png"))


def recon_explorer(target: float = 0.3, prediction: float = 0.7, sigma: float = 0.1,
                   continuous_update: bool = False) -> ReconExplorer:
    """Sliders for a target pixel value, the predicted value and the Gaussian σ redraw each
    reconstruction loss and its gradient, and the KL weight β_SSE = 2σ² that σ implies. Returns a
    :class:`ReconExplorer` (an ``ipywidgets.VBox``); display it as the last line of a cell."""
    return ReconExplorer(target=target, prediction=prediction, sigma=sigma,
                         continuous_update=continuous_update)
