"""The free-bits explorer of notebook 05: sliders for the floor λ (nats per latent dimension) and
for β pick one model from a grid trained once and cached; the view shows that model's KL per
latent dimension with the floor λ drawn in, its active units, rate and distortion, where it sits
in the grid, and a few reconstructions.

The logic lives in pure functions that tests call directly, because ipywidgets swallows
exceptions raised inside a widget callback:

* :func:`train_grid` — trains (or loads from the cache) one model per (β, λ) and summarises it;
* :func:`grid_from_models` — the same summary for models you already have;
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

from .. import losses as L
from .. import metrics, plots

DEFAULT_FREE_BITS = (0.0, 0.25, 0.5, 1.0)
DEFAULT_BETAS = (0.5, 1.0, 2.0)
N_RECONSTRUCTIONS = 8
FIGSIZE = (11.0, 3.4)
DPI = 80
OUTPUT_HEIGHT_PX = int(FIGSIZE[1] * DPI) + 16


@dataclass
class FreeBitsGrid:
    """Summaries of one trained model per (β, λ): ``entries[(beta, free_bits)]`` is a dict with the test
    set's ``mu`` and ``logvar`` (CPU tensors), ``kl`` (per-dimension mean KL, numpy), ``active_units``,
    ``rate``, ``distortion``, ``neg_elbo`` (nats per example), ``originals`` and ``reconstructions``
    (a few test images and their decoded posterior means). ``description`` says what was trained."""

    betas: tuple[float, ...]
    free_bits: tuple[float, ...]
    entries: dict = field(repr=False)
    description: str = ""

    @property
    def latent_dim(self) -> int:
        return int(next(iter(self.entries.values()))["mu"].shape[1])


def _as_values(name: str, values) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sequence of numbers, e.g. {name}=(0.0, 0.5, 1.0)") from err
    if not out or any(not math.isfinite(v) or v < 0 for v in out):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers >= 0, got {values!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return tuple(sorted(out))


@torch.no_grad()
def summarize(model, x: torch.Tensor, loss_fn=None, n_images: int = N_RECONSTRUCTIONS) -> dict:
    """The numbers the explorer shows for one model on data ``x`` (usually the test set).

    ``loss_fn``: the ``train.ELBOLoss`` whose likelihood measures the distortion (β and free bits
    play no part in the −ELBO reported here)."""
    mu, logvar = metrics.encode_all(model, x)
    au, _ = metrics.active_units(model, x)
    rd = metrics.rate_distortion(model, x, loss_fn)
    originals = x[:n_images]
    return {
        "mu": mu.detach().cpu(), "logvar": logvar.detach().cpu(),
        "kl": L.kl_per_dim(mu, logvar).mean(0).cpu().numpy(),
        "active_units": au, "rate": rd["rate"], "distortion": rd["distortion"], "neg_elbo": rd["neg_elbo"],
        "originals": originals.detach().cpu(), "reconstructions": model.reconstruct(originals).cpu(),
    }


def grid_from_models(models: Mapping, x: torch.Tensor, loss_fn=None, description: str = "") -> FreeBitsGrid:
    """Summarise models you already trained: ``models[(beta, free_bits)] = model`` for every pair of a
    full β × λ grid; ``x`` the images to measure on; ``loss_fn`` the likelihood (``train.ELBOLoss``)."""
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
        raise ValueError(f"models must cover the full grid of betas {betas} x free_bits {free_bits}; missing {missing}")
    entries = {(float(b), float(f)): summarize(m, x, loss_fn) for (b, f), m in models.items()}
    return FreeBitsGrid(betas=betas, free_bits=free_bits, entries=entries, description=description)


def train_grid(free_bits=DEFAULT_FREE_BITS, betas=DEFAULT_BETAS, *, data=None, loss_kw=None, epochs: int = 30,
               name: str = "nb05-mnist", progress: bool = True, description: str = "", **train_kw) -> FreeBitsGrid:
    """Train one model per (β, λ) with ``train.train_vae`` (each loaded from the cache when it is there)
    and summarise it on the test set.

    loss_kw: extra ``ELBOLoss`` settings shared by the grid (e.g. ``likelihood="gaussian", log_scale=0.0``);
    ``train_kw`` go to ``train_vae`` (``latent_dim``, ``hidden``, ``batch_size``, ``seed``…). The same
    ``name``, data and settings as a model trained elsewhere in a notebook share its checkpoint."""
    from .. import data as _data
    from ..train import ELBOLoss, train_vae

    free_bits = _as_values("free_bits", free_bits)
    betas = _as_values("betas", betas)
    if any(b == 0 for b in betas):
        raise ValueError("betas must be > 0: with β = 0 the KL (and so the free-bits floor) plays no part")
    loss_kw = dict(loss_kw or {})
    for k in ("beta", "free_bits", "capacity"):
        if k in loss_kw:
            raise ValueError(f"loss_kw must not set {k!r}: the grid sets β and λ itself")
    data = data if data is not None else _data.load("mnist")
    cells = [(b, f) for b in betas for f in free_bits]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(cells), desc="free-bits grid", unit="model")
    models = {}
    try:
        for b, f in cells:
            models[(b, f)], _ = train_vae(data=data, loss=ELBOLoss(beta=b, free_bits=f, **loss_kw), epochs=epochs,
                                          name=name, progress=False, **train_kw)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return grid_from_models(models, data.test_x, ELBOLoss(**loss_kw), description=description)


def _pick(name: str, value, allowed: tuple[float, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, one of {allowed}, got {type(value).__name__}")
    for a in allowed:
        if math.isclose(float(value), a, rel_tol=1e-9, abs_tol=1e-12):
            return a
    raise ValueError(f"{name}={value!r} is not in the trained grid; pick one of {allowed}")


def free_bits_state(grid: FreeBitsGrid, free_bits: float, beta: float) -> dict:
    """Everything the explorer shows for the model trained with floor ``free_bits`` (λ) and ``beta``.

    Returns a dict with ``beta``, ``free_bits``, ``kl`` (per-dimension KL, nats, in dimension order),
    ``order`` (dimensions from most to least KL), ``n_below`` (dimensions under λ: the KL gives them no
    gradient), ``floor_term`` (Σ_j max(λ, KL_j) on the test set, from ``losses.free_bits_kl``),
    ``active_units``, ``rate``, ``distortion``, ``neg_elbo``, ``au_grid`` (active units of every cell,
    rows β, columns λ), the cell's ``row``/``col``, and the images."""
    if not isinstance(grid, FreeBitsGrid):
        raise TypeError("grid must be a FreeBitsGrid from train_grid(...) or grid_from_models(...)")
    lam = _pick("free_bits", free_bits, grid.free_bits)
    b = _pick("beta", beta, grid.betas)
    e = grid.entries[(b, lam)]
    kl = np.asarray(e["kl"], dtype=float)
    au_grid = np.array([[grid.entries[(bb, ff)]["active_units"] for ff in grid.free_bits] for bb in grid.betas])
    return {
        "beta": b, "free_bits": lam, "kl": kl, "order": np.argsort(-kl, kind="stable"),
        "n_below": int((kl < lam).sum()), "floor_term": float(L.free_bits_kl(e["mu"], e["logvar"], lam)),
        "active_units": e["active_units"], "latent_dim": len(kl), "rate": e["rate"],
        "distortion": e["distortion"], "neg_elbo": e["neg_elbo"], "au_grid": au_grid,
        "betas": grid.betas, "free_bits_values": grid.free_bits,
        "row": grid.betas.index(b), "col": grid.free_bits.index(lam),
        "originals": e["originals"], "reconstructions": e["reconstructions"],
    }


def draw_free_bits(state: dict, fig: Figure | None = None) -> Figure:
    """Draw ``state`` (from :func:`free_bits_state`): KL bars (sorted) with the floor λ, the grid of active
    units with this cell ringed, and inputs over their reconstructions. Returns the figure."""
    if not isinstance(state, dict) or "au_grid" not in state:
        raise TypeError("state must be the dict returned by free_bits_state(grid, free_bits, beta)")
    fig = plots.widget_figure(fig, FIGSIZE, DPI)
    fig.clear()
    ax_kl, ax_au, ax_img = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.4, 0.9, 1.2]})
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.16, top=0.8, wspace=0.3)

    lam = state["free_bits"]
    plots.kl_bars(state["kl"][state["order"]], ax=ax_kl, floor=lam if lam > 0 else None,
                  title=f"β = {state['beta']:g}, λ = {lam:g}: KL per dimension (sorted)\n"
                        f"{state['n_below']} of {state['latent_dim']} below λ; rate {state['rate']:.2f} nats")
    ax_kl.set_ylim(0, max(1.0, 1.25 * float(state["kl"].max()), 1.25 * lam))
    ax_kl.set_xticks([])

    au = state["au_grid"]
    ax_au.imshow(au, cmap="viridis", vmin=0, vmax=state["latent_dim"], aspect="auto")
    for r in range(au.shape[0]):
        for c in range(au.shape[1]):
            ax_au.text(c, r, str(int(au[r, c])), ha="center", va="center", fontsize=9,
                       color="white" if au[r, c] < 0.6 * state["latent_dim"] else "black")
    ax_au.add_patch(Rectangle((state["col"] - 0.5, state["row"] - 0.5), 1, 1, fill=False, ec="red", lw=2.5))
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
    return (f"<b>β = {state['beta']:g}, λ = {state['free_bits']:g}</b>: active units {state['active_units']} of "
            f"{state['latent_dim']}, rate {state['rate']:.2f} nats, distortion {state['distortion']:.2f} nats, "
            f"test −ELBO {state['neg_elbo']:.2f} nats; "
            f"Σ<sub>j</sub> max(λ, KL<sub>j</sub>) = {state['floor_term']:.2f} nats")


class FreeBitsExplorer(widgets.VBox):
    """The explorer widget. Attributes: ``grid``, ``lambda_slider``, ``beta_slider``, ``summary`` (HTML),
    ``output`` (the figure area), ``state`` (the last state shown), ``last_png``, ``pngs`` (one per cell,
    rendered at construction), ``n_updates``."""

    def __init__(self, grid: FreeBitsGrid, free_bits: float | None = None, beta: float | None = None):
        if not isinstance(grid, FreeBitsGrid):
            raise TypeError("grid must be a FreeBitsGrid from train_grid(...) or grid_from_models(...)")
        self.grid = grid
        lam0 = _pick("free_bits", grid.free_bits[0] if free_bits is None else free_bits, grid.free_bits)
        beta0 = _pick("beta", (1.0 if 1.0 in grid.betas else grid.betas[0]) if beta is None else beta, grid.betas)
        self.states, self.pngs = {}, {}
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        for key in grid.entries:
            b, f = key
            self.states[key] = free_bits_state(grid, f, b)
            self.pngs[key] = render_png(draw_free_bits(self.states[key], fig))
        style = {"description_width": "60px"}
        layout = widgets.Layout(width="420px")
        self.lambda_slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in grid.free_bits], value=lam0,
                                                     description="λ (nats)", continuous_update=False,
                                                     style=style, layout=layout)
        self.beta_slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in grid.betas], value=beta0,
                                                   description="β", continuous_update=False,
                                                   style=style, layout=layout)
        self.summary = widgets.HTML()
        self.state, self.last_png, self.n_updates = None, b"", 0
        self.output = widgets.interactive_output(self._show, {"free_bits": self.lambda_slider,
                                                              "beta": self.beta_slider})
        self.output.layout.height = f"{OUTPUT_HEIGHT_PX}px"
        head = widgets.HTML(f"<i>{grid.description}</i>") if grid.description else widgets.HTML()
        super().__init__([head, widgets.HBox([widgets.VBox([self.lambda_slider, self.beta_slider]), self.summary]),
                          self.output])

    def _show(self, free_bits: float, beta: float) -> None:
        key = (_pick("beta", beta, self.grid.betas), _pick("free_bits", free_bits, self.grid.free_bits))
        self.state = self.states[key]
        self.last_png = self.pngs[key]
        self.summary.value = _summary_html(self.state)
        self.n_updates += 1
        display(Image(data=self.last_png, format="png"))


def free_bits_explorer(grid: FreeBitsGrid | None = None, free_bits: float | None = None, beta: float | None = None,
                       **train_kw) -> FreeBitsExplorer:
    """Sliders for the free-bits floor λ and for β over a grid of trained models; each position shows that
    model's KL per dimension with λ drawn in, the active units of the whole grid, and reconstructions.

    ``grid``: from :func:`train_grid` or :func:`grid_from_models`; when omitted, :func:`train_grid` is
    called with ``train_kw`` (the default grid on MNIST, trained once and then loaded from the cache)."""
    if grid is None:
        grid = train_grid(**train_kw)
    elif train_kw:
        raise ValueError(f"pass either a grid or training settings, not both (got {sorted(train_kw)})")
    return FreeBitsExplorer(grid, free_bits=free_bits, beta=beta)
