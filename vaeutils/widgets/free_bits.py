"""The free-bits explorer of unit 07: sliders for the floor λ (nats per latent dimension) and
for β pick one model from a grid trained once and cached; the view shows that model's KL per
latent dimension with the floor λ drawn in, its active units, rate and distortion, where it sits
in the grid, and a few reconstructions.

The logic lives in pure functions that tests call directly, because ipywidgets swallows
exceptions raised inside a widget callback:

* :func:`grid_from_models` — ``metrics.summary`` of each model of a grid (trained with
  ``sweep.train_free_bits_grid``);
* :func:`free_bits_state` — the numbers for one (β, λ);
* :func:`draw_free_bits` — puts a state on a matplotlib figure.

:func:`free_bits_explorer` wires them to two sliders with ``widgets.interactive_output``. Every
cell of the grid is rendered to a PNG when the widget is built, so moving a slider only swaps an
image that is already there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Image, display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .. import data as _data
from .. import losses as L
from .. import metrics, plots, sweep
from ..checks import distinct_values as _as_values
from ..i18n import tr
from ..losses import ELBOLoss
from ..sweep import train_free_bits_grid

DEFAULT_FREE_BITS = (0.0, 0.5, 1.0)
DEFAULT_BETAS = (1.0, 16.0)  # both in sweep.BETA_SWEEP: the λ = 0 column is the β-sweep itself
N_RECONSTRUCTIONS = 8
FIGSIZE = (11.0, 3.4)
DPI = 80
OUTPUT_HEIGHT_PX = int(FIGSIZE[1] * DPI) + 16


@dataclass
class FreeBitsGrid:
    """Summaries of one trained model per (β, λ): ``entries[(beta, free_bits)]`` is a dict with the
    test set's ``mu`` and ``logvar`` (CPU tensors), ``kl_per_dim`` (per-dimension mean KL, numpy),
    ``active``, ``rate``, ``distortion``, ``neg_elbo`` (nats per example), ``originals`` and
    ``reconstructions`` (a few test images and their decoded posterior means). ``description`` says
    what was trained."""

    betas: tuple[float, ...]
    free_bits: tuple[float, ...]
    entries: dict = field(repr=False)
    description: str = ""

    @property
    def latent_dim(self) -> int:
        return int(next(iter(self.entries.values()))["mu"].shape[1])


def grid_from_models(models: Mapping, x: torch.Tensor, loss_fn=None,
                     description: str = "") -> FreeBitsGrid:
    """Summarise models you already trained: ``models[(beta, free_bits)] = model`` for every pair of
    a full β × λ grid; ``x`` the images to measure on; ``loss_fn`` the likelihood
    (``losses.ELBOLoss``)."""
    if not isinstance(models, Mapping) or not models:
        raise TypeError("models must be a non-empty dict {(beta, free_bits): model}")
    try:
        keys = [(float(b), float(f)) for b, f in models]
    except (TypeError, ValueError) as err:
        raise TypeError("models must be keyed by (beta, free_bits) pairs of numbers") from err
    betas = _as_values("betas", {b for b, _ in keys})
    free_bits = _as_values("free_bits", {f for _, f in keys})
    missing = [(b, f) for b in betas for f in free_bits if (b, f) not in keys]
    if missing:
        raise ValueError(f"models must cover the full grid of betas {betas} x free_bits "
                         f"{free_bits}; missing {missing}")
    entries = {(float(b), float(f)): metrics.summary(m, x, loss_fn, n_images=N_RECONSTRUCTIONS)
               for (b, f), m in models.items()}
    return FreeBitsGrid(betas=betas, free_bits=free_bits, entries=entries, description=description)


def _pick(name: str, value, allowed: tuple[float, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, one of {allowed}, got {type(value).__name__}")
    for a in allowed:
        if math.isclose(float(value), a, rel_tol=1e-9, abs_tol=1e-12):
            return a
    raise ValueError(f"{name}={value!r} is not in the trained grid; pick one of {allowed}")


def free_bits_state(grid: FreeBitsGrid, free_bits: float, beta: float) -> dict:
    """Everything the explorer shows for the model trained with ``beta`` and the floor λ
    (``free_bits``).

    Returns a dict with ``beta``, ``free_bits``, ``kl`` (per-dimension KL, nats, in dimension
    order), ``order`` (dimensions from most to least KL), ``n_below`` (dimensions under λ: the KL
    gives them no gradient), ``floor_term`` (Σ_j max(λ, KL_j) on the test set, from
    ``losses.free_bits_kl``), ``active_units``, ``rate``, ``distortion``, ``neg_elbo``, ``au_grid``
    (active units of every cell, rows β, columns λ), the cell's ``row``/``col``, and the images."""
    if not isinstance(grid, FreeBitsGrid):
        raise TypeError("grid must be a FreeBitsGrid from grid_from_models(...)")
    lam = _pick("free_bits", free_bits, grid.free_bits)
    b = _pick("beta", beta, grid.betas)
    e = grid.entries[(b, lam)]
    kl = np.asarray(e["kl_per_dim"], dtype=float)
    au_grid = np.array([[grid.entries[(bb, ff)]["active"] for ff in grid.free_bits]
                        for bb in grid.betas])
    return {
        "beta": b, "free_bits": lam, "kl": kl, "order": np.argsort(-kl, kind="stable"),
        "n_below": int((kl < lam).sum()),
        "floor_term": float(L.free_bits_kl(e["mu"], e["logvar"], lam)),
        "active_units": e["active"], "latent_dim": len(kl), "rate": e["rate"],
        "distortion": e["distortion"], "neg_elbo": e["neg_elbo"], "au_grid": au_grid,
        "betas": grid.betas, "free_bits_values": grid.free_bits,
        "row": grid.betas.index(b), "col": grid.free_bits.index(lam),
        "originals": e["originals"], "reconstructions": e["reconstructions"],
    }


def draw_free_bits(state: dict, fig: Figure | None = None) -> Figure:
    """Draw ``state`` (from :func:`free_bits_state`): KL bars (sorted) with the floor λ, the grid of
    active units with this cell ringed, and inputs over their reconstructions. Returns the
    figure."""
    if not isinstance(state, dict) or "au_grid" not in state:
        raise TypeError("state must be the dict returned by free_bits_state(grid, free_bits, beta)")
    fig = plots.widget_figure(fig, FIGSIZE, DPI)
    fig.clear()
    ax_kl, ax_au, ax_img = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.4, 0.9, 1.2]})
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.16, top=0.8, wspace=0.3)

    lam = state["free_bits"]
    plots.kl_bars(state["kl"][state["order"]], ax=ax_kl, floor=lam if lam > 0 else None,
                  title=f"β = {state['beta']:g}, λ = {lam:g}: KL per dimension (sorted)\n"
                        f"{state['n_below']} of {state['latent_dim']} below λ; "
                        f"rate {state['rate']:.2f} nats")
    ax_kl.set_ylim(0, max(1.0, 1.25 * float(state["kl"].max()), 1.25 * lam))
    ax_kl.set_xticks([])

    au = state["au_grid"]
    ax_au.imshow(au, cmap="viridis", vmin=0, vmax=state["latent_dim"], aspect="auto")
    for r in range(au.shape[0]):
        for c in range(au.shape[1]):
            ax_au.text(c, r, str(int(au[r, c])), ha="center", va="center", fontsize=9,
                       color="white" if au[r, c] < 0.6 * state["latent_dim"] else "black")
    ax_au.add_patch(Rectangle((state["col"] - 0.5, state["row"] - 0.5), 1, 1, fill=False, ec="red",
                              lw=2.5))
    ax_au.set_xticks(range(au.shape[1]), [f"{v:g}" for v in state["free_bits_values"]])
    ax_au.set_yticks(range(au.shape[0]), [f"{v:g}" for v in state["betas"]])
    ax_au.set_xlabel("free bits λ (nats)")
    ax_au.set_ylabel("β")
    ax_au.set_title(f"active units (this model: {state['active_units']})")

    images = torch.cat([state["originals"], state["reconstructions"]])
    plots.image_grid(images, nrow=len(state["originals"]) // 2 or 1, ax=ax_img,
                     title=f"inputs over reconstructions\ntest −ELBO {state['neg_elbo']:.1f} nats")
    return fig


render_png = plots.figure_png  # the figure as PNG bytes (what the widget displays)


def _summary_html(state: dict) -> str:
    return tr(f"<b>β = {state['beta']:g}, λ = {state['free_bits']:g}</b>: active units "
            f"{state['active_units']} of {state['latent_dim']}, rate {state['rate']:.2f} nats, "
            f"distortion {state['distortion']:.2f} nats, test −ELBO {state['neg_elbo']:.2f} nats; "
            f"Σ<sub>j</sub> max(λ, KL<sub>j</sub>) = {state['floor_term']:.2f} nats")


class FreeBitsExplorer(widgets.VBox):
    """The explorer widget. Attributes: ``grid``, ``lambda_slider``, ``beta_slider``, ``summary``
    (HTML), ``output`` (the figure area), ``state`` (the last state shown), ``last_png``, ``pngs``
    (one per cell, rendered at construction), ``n_updates``."""

    def __init__(self, grid: FreeBitsGrid, free_bits: float | None = None,
                 beta: float | None = None):
        if not isinstance(grid, FreeBitsGrid):
            raise TypeError("grid must be a FreeBitsGrid from grid_from_models(...)")
        self.grid = grid
        lam0 = _pick("free_bits", grid.free_bits[0] if free_bits is None else free_bits,
                     grid.free_bits)
        if beta is None:
            beta = 1.0 if 1.0 in grid.betas else grid.betas[0]
        beta0 = _pick("beta", beta, grid.betas)
        self.states, self.pngs = {}, {}
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        for key in grid.entries:
            b, f = key
            self.states[key] = free_bits_state(grid, f, b)
            self.pngs[key] = render_png(draw_free_bits(self.states[key], fig))
        style = {"description_width": "60px"}
        layout = widgets.Layout(width="420px")
        lambdas = [(f"{v:g}", v) for v in grid.free_bits]
        betas = [(f"{v:g}", v) for v in grid.betas]
        self.lambda_slider = widgets.SelectionSlider(options=lambdas, value=lam0,
                                                     description="λ (nats)",
                                                     continuous_update=False, style=style,
                                                     layout=layout)
        self.beta_slider = widgets.SelectionSlider(options=betas, value=beta0, description="β",
                                                   continuous_update=False, style=style,
                                                   layout=layout)
        self.summary = widgets.HTML()
        self.state, self.last_png, self.n_updates = None, b"", 0
        self.output = widgets.interactive_output(self._show, {"free_bits": self.lambda_slider,
                                                              "beta": self.beta_slider})
        self.output.layout.height = f"{OUTPUT_HEIGHT_PX}px"
        head = widgets.HTML(f"<i>{grid.description}</i>") if grid.description else widgets.HTML()
        super().__init__([head,
                          widgets.HBox([widgets.VBox([self.lambda_slider, self.beta_slider]),
                                        self.summary]),
                          self.output])

    def _show(self, free_bits: float, beta: float) -> None:
        key = (_pick("beta", beta, self.grid.betas),
               _pick("free_bits", free_bits, self.grid.free_bits))
        self.state = self.states[key]
        self.last_png = self.pngs[key]
        self.summary.value = _summary_html(self.state)
        self.n_updates += 1
        display(Image(data=self.last_png, format="png"))


def free_bits_explorer(grid: FreeBitsGrid | None = None, free_bits: float | None = None,
                       beta: float | None = None, **train_kw) -> FreeBitsExplorer:
    """Sliders for the free-bits floor λ and for β over a grid of trained models; each position
    shows that model's KL per dimension with λ drawn in, the active units of the whole grid, and
    reconstructions.

    ``grid``: from :func:`grid_from_models`; when omitted, ``sweep.train_free_bits_grid`` trains the
    default grid (:data:`DEFAULT_FREE_BITS` × :data:`DEFAULT_BETAS`) with the β-sweep's recipe
    (``sweep.sweep_recipe()``, on ``data.binarized(data)``: MNIST unless ``data`` is given), so its
    λ = 0 column is loaded from the β-sweep's checkpoints; ``train_kw`` override the recipe, and the
    grid is measured on the binarized test set."""
    if grid is None:
        data = _data.binarized(train_kw.pop("data", None))
        loss = ELBOLoss(**train_kw.get("loss_kw", {}))
        models = train_free_bits_grid(DEFAULT_FREE_BITS, DEFAULT_BETAS, data=data,
                                      **{**sweep.sweep_recipe(), **train_kw})
        grid = grid_from_models(models, data.test_x, loss,
                                description="β × λ with the β-sweep's recipe on binarized MNIST "
                                            "(λ = 0: the β-sweep)")
    elif train_kw:
        raise ValueError("pass either a grid or training settings, not both (got "
                         f"{sorted(train_kw)})")
    return FreeBitsExplorer(grid, free_bits=free_bits, beta=beta)
