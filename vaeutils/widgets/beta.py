"""The β tools of unit 05 and the app: a slider over the β-sweep trained once (``vaeutils.sweep``),
and the pictures unit 05 draws from the same sweep.

Every panel (reconstructions, prior samples, a traversal, the KL per dimension and the
rate–distortion plane with that β ringed) is rendered once, when the explorer is built; moving the
slider only swaps PNG bytes and a line of HTML, so an update costs well under a millisecond in the
kernel. The pictures come from plain functions (:func:`beta_panel_images`,
:func:`render_beta_panel`) that the tests call directly, because ipywidgets swallows exceptions
raised inside a widget callback. The live β trainer is in ``vaeutils.widgets.live``.

For the unit's own pages: :func:`sweep_gallery` (reconstructions and prior samples of every β in one
figure); how real the samples look is measured by ``judge.sample_realism``.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from .. import checks
from .. import data as _data
from .. import plots as _plots
from ..i18n import tr
from ..sweep import BETA_SWEEP, _check_sweep, sweep_points, train_beta_sweep

# ------------------------------------------------------------------ unit 05's pictures and measures

def sweep_gallery(sweep, x_show: torch.Tensor, n_samples: int = 10, seed: int = 1):
    """One figure, one row per β of ``sweep``: ``x_show`` reconstructed (left) and ``n_samples``
    decoded draws from the prior (right), the same draws z for every β (``seed``). The top row shows
    ``x_show`` itself."""
    import matplotlib.pyplot as plt

    entries = _check_sweep(sweep)
    checks.images("x_show", x_show)
    n_samples = checks.integer("n_samples", n_samples, low=1)
    z = torch.randn(n_samples, entries[0].model.latent_dim,
                    generator=torch.Generator().manual_seed(seed))
    fig, axes = plt.subplots(len(entries) + 1, 2, figsize=(12, 0.95 * (len(entries) + 1)))
    _plots.image_grid(x_show, nrow=len(x_show), ax=axes[0, 0],
                      title="test images → reconstructions")
    axes[0, 1].set_axis_off()
    axes[0, 1].set_title("samples from the prior (the same z in every row)")
    with torch.no_grad():
        for row, entry in enumerate(entries, start=1):
            m = entry.model.eval()
            _plots.image_grid(m.reconstruct(x_show), nrow=len(x_show), ax=axes[row, 0])
            _plots.image_grid(m.mean_image(m.decode(z.to(x_show.device))), nrow=n_samples,
                              ax=axes[row, 1])
            axes[row, 0].text(-3, 14, f"β={entry.beta:g}", ha="right", va="center", fontsize=10)
    fig.tight_layout()
    return fig


# -------------------------------------------------------------------------- the explorer's pictures

PANEL_FIGSIZE = (11.5, 5.2)
PANEL_DPI = 72


@torch.no_grad()
def beta_panel_images(model, x_show: torch.Tensor, kl_per_dim, *, n_samples: int = 16,
                      n_traverse: int = 5, steps: int = 7, span: float = 3.0,
                      seed: int = 0) -> dict:
    """The pictures of one β, as CPU tensors: ``originals`` (``x_show``), ``recon`` (decoded
    posterior means), ``samples`` (decoded draws from the prior, fixed ``seed``), ``traversal`` (the
    ``n_traverse`` dimensions with the largest KL, each swept over ±``span`` prior σ around the code
    of ``x_show[0]``) and ``dims`` (which dimensions, largest KL first)."""
    model.eval()
    kl = np.asarray(kl_per_dim, dtype=float).ravel()
    dims = [int(d) for d in np.argsort(-kl, kind="stable")[:n_traverse]]
    mu, _ = model.encode(x_show[:1])
    return {
        "originals": x_show.detach().cpu(),
        "recon": model.reconstruct(x_show).cpu(),
        "samples": model.sample(n_samples, generator=torch.Generator().manual_seed(seed)).cpu(),
        "traversal": _plots.traversal_images(model, mu[0], dims, span, steps).cpu(),
        "dims": dims,
        "steps": steps,
        "span": span,
    }


def render_beta_panel(points: list[dict], index: int, images: dict,
                      kl_ylim: float | None = None) -> bytes:
    """PNG bytes of the explorer's picture for ``points[index]``: the rate–distortion plane of the
    whole sweep with this β ringed, its KL per latent dimension, test images above their
    reconstructions, prior samples, and a latent traversal (``images`` from
    :func:`beta_panel_images`)."""
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise TypeError("points must be the list of dicts returned by sweep_points()")
    index = checks.integer("index", index, 0, len(points) - 1)
    p = points[index]
    fig = Figure(figsize=PANEL_FIGSIZE, dpi=PANEL_DPI)
    grid = fig.add_gridspec(2, 3, width_ratios=[1.0, 1.3, 1.05], left=0.06, right=0.99, bottom=0.1,
                            top=0.86, wspace=0.2, hspace=0.45)
    ax_rd = fig.add_subplot(grid[0, 0])
    _plots.rd_plane([q["rate"] for q in points], [q["distortion"] for q in points],
                    labels=[f"{q['beta']:g}" for q in points], ax=ax_rd, highlight=index,
                    title="rate–distortion (test set), β ringed")
    ax_rd.set_xlabel("rate R (nats)")
    ax_rd.set_ylabel("distortion D (nats)")
    ax_kl = fig.add_subplot(grid[1, 0])
    _plots.kl_bars(p["kl_per_dim"], ax=ax_kl,
                   title=f"KL per dimension: {p['active']}/{p['latent_dim']} active")
    if kl_ylim:
        ax_kl.set_ylim(0, kl_ylim)
    n = len(images["originals"])
    pairs = torch.cat([images["originals"], images["recon"]])
    _plots.image_grid(pairs, nrow=n, ax=fig.add_subplot(grid[0, 1]),
                      title="test images (top), reconstructions")
    _plots.image_grid(images["samples"], nrow=max(1, len(images["samples"]) // 2),
                      ax=fig.add_subplot(grid[1, 1]), title="samples from the prior N(0, I)")
    ax_tr = fig.add_subplot(grid[:, 2])
    _plots.image_grid(images["traversal"], nrow=images["steps"], ax=ax_tr,
                      title=f"traversal ±{images['span']:g}σ\nrows: dims "
                            f"{', '.join(map(str, images['dims']))}")
    fig.suptitle(f"β = {p['beta']:g}:  rate {p['rate']:.1f} nats,  distortion "
                 f"{p['distortion']:.1f} nats,  −ELBO {p['neg_elbo']:.1f} nats", fontsize=13)
    return _plots.figure_png(fig)


def _explorer_html(points: list[dict], index: int) -> str:
    p = points[index]
    best = min(range(len(points)), key=lambda i: points[i]["neg_elbo"])
    return (f'<div class="vaelab-beta-info" data-beta="{p["beta"]:g}" data-rate="{p["rate"]:.4f}" '
            f'data-distortion="{p["distortion"]:.4f}">' + tr(
            f"<b>β = {p['beta']:g}</b> &nbsp; rate <b>{p['rate']:.2f}</b> nats &nbsp; distortion "
            f"<b>{p['distortion']:.2f}</b> nats &nbsp; −ELBO <b>{p['neg_elbo']:.2f}</b> nats "
            f"&nbsp; active units {p['active']}/{p['latent_dim']}<br>"
            f"<span style='color:#666'>best −ELBO of the sweep: β = {points[best]['beta']:g} "
            f"({points[best]['neg_elbo']:.2f} nats)</span>") + "</div>")


class BetaExplorer(widgets.VBox):
    """A slider over a β-sweep. Attributes: ``slider`` (an ``ipywidgets.SelectionSlider`` of the β
    values; setting ``slider.value`` updates the view at once), ``image`` (the picture;
    ``image.value`` holds the PNG bytes shown), ``info`` (HTML with rate, distortion, −ELBO and
    active units), ``points`` (from :func:`sweep_points`), ``panels`` (PNG bytes per β),
    ``current_beta``, ``current_index``, ``highlight`` ((rate, distortion) of the ringed point) and
    ``n_updates``."""

    def __init__(self, sweep, data, *, n_images: int = 6, n_samples: int = 12, n_traverse: int = 5,
                 progress: bool = True):
        entries = _check_sweep(sweep)
        _data.check_image_data(data)
        for name, value in (("n_images", n_images), ("n_samples", n_samples),
                            ("n_traverse", n_traverse)):
            checks.integer(name, value, low=1)
        x = data.test_x
        self.betas = tuple(e.beta for e in entries)
        self.points = sweep_points(entries, x)
        kl_ylim = 1.05 * max(float(p["kl_per_dim"].max()) for p in self.points) or None
        x_show = x[:n_images]
        from tqdm.auto import tqdm

        panels = []
        bar = tqdm(list(zip(entries, self.points)), desc=tr("drawing panels"), unit="β",
                   disable=not progress, leave=True)
        for i, (entry, point) in enumerate(bar):
            imgs = beta_panel_images(entry.model, x_show, point["kl_per_dim"], n_samples=n_samples,
                                     n_traverse=min(n_traverse, point["latent_dim"]))
            panels.append(render_beta_panel(self.points, i, imgs, kl_ylim))
        self.panels = tuple(panels)
        start = self.betas.index(1.0) if 1.0 in self.betas else len(self.betas) // 2
        width, height = (int(s * PANEL_DPI) for s in PANEL_FIGSIZE)
        self.slider = widgets.SelectionSlider(
            options=[(f"{b:g}", b) for b in self.betas], value=self.betas[start], description="β",
            continuous_update=True, readout=True, layout=widgets.Layout(width="460px"))
        self.image = widgets.Image(value=self.panels[start], format="png",
                                   layout=widgets.Layout(width=f"{width}px", height=f"{height}px"))
        self.info = widgets.HTML(layout=widgets.Layout(min_height="44px"))
        self.n_updates = 0
        self._show(start)
        self.slider.observe(self._on_slider, "value")
        super().__init__([self.slider, self.info, self.image])

    def _on_slider(self, change) -> None:
        self._show(self.betas.index(change["new"]))

    def _show(self, index: int) -> None:
        """Swap in the precomputed picture and numbers of ``betas[index]``; nothing is redrawn."""
        self.image.value = self.panels[index]
        self.info.value = _explorer_html(self.points, index)
        self.current_index = index
        self.current_beta = self.betas[index]
        self.highlight = (self.points[index]["rate"], self.points[index]["distortion"])
        self.n_updates += 1

    def site_view(self) -> dict:
        """What the course site (``coursekit.site``) needs to run this explorer in a page with no
        kernel, as JSON-able values: the β values and their slider labels, every panel (base64 PNG),
        the readout HTML of every β, the index shown now and the model ids of the explorer and its
        slider (the site starts from the slider's saved position)."""
        import base64

        return {"kind": "beta-explorer", "model_id": self.model_id, "slider": self.slider.model_id,
                "description": self.slider.description, "betas": list(self.betas),
                "labels": [str(label) for label, _ in self.slider.options],
                "panels": [base64.b64encode(png).decode("ascii") for png in self.panels],
                "info": [_explorer_html(self.points, i) for i in range(len(self.betas))],
                "start": self.current_index}


def beta_explorer(data=None, betas=BETA_SWEEP, *, sweep=None, epochs: int | None = None,
                  cache: bool = True, progress: bool = True, n_images: int = 6, n_samples: int = 12,
                  n_traverse: int = 5) -> BetaExplorer:
    """A slider over the β-sweep: each β shows its reconstructions, prior samples, a traversal, the
    KL per dimension and its point ringed on the rate–distortion plane.

    With no arguments it uses MNIST and :data:`BETA_SWEEP`, training the sweep the first time (with
    a progress bar) and loading it from the cache afterwards. ``sweep``: a list from
    :func:`train_beta_sweep` on the same ``data`` (reused as is, nothing is trained); ``epochs``,
    ``cache``: passed to :func:`train_beta_sweep` (small values make a quick explorer for tests).
    Everything is drawn once here, so moving the slider only swaps an image.
    """
    data = _data.binarized(data)
    if sweep is None:
        sweep = train_beta_sweep(data, betas, epochs=epochs, progress=progress, cache=cache)
    return BetaExplorer(sweep, data, n_images=n_images, n_samples=n_samples, n_traverse=n_traverse,
                        progress=progress)
