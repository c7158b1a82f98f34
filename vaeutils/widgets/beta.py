"""The β tools of notebook 04: one β-sweep trained once, an explorer over it, and a live trainer.

* :func:`train_beta_sweep` trains (or loads from the cache) one MLP VAE per β in :data:`BETA_SWEEP`
  on binarized MNIST. The notebook and :func:`beta_explorer` both call it, so the sweep is trained once.
* :func:`sweep_points` measures each model of a sweep on the test set: rate, distortion, −ELBO,
  active units and the KL of every latent dimension.
* :func:`beta_explorer` is a slider over the sweep's β values. Every panel (reconstructions, prior
  samples, a traversal, the KL per dimension and the rate–distortion plane with that β ringed) is
  rendered once, when the explorer is built; moving the slider only swaps PNG bytes and a line of
  HTML, so an update costs well under a millisecond in the kernel.
* :func:`live_beta_trainer` trains a small VAE in a background thread while the student drags β;
  rate, distortion, a rate–distortion trail and a few reconstructions refresh several times a second.
  It stops on its Stop button, on a kernel interrupt, and when the widget is closed.

The logic sits in plain functions (:func:`prepare_data`, :func:`sweep_points`,
:func:`render_beta_panel`, :func:`rd_trail_svg`, :func:`recon_strip_png`) that the tests call
directly, because ipywidgets swallows exceptions raised inside a widget callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import io
import math
import os
import signal
import threading
import time
import weakref
from numbers import Real
from typing import NamedTuple

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image as PILImage

from .. import config as _config
from .. import data as _data
from .. import metrics as _metrics
from .. import plots as _plots
from ..models import build_model
from ..train import ELBOLoss, NonFiniteLossError, train_vae

BETA_SWEEP = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
"""The β values of the sweep shared by notebook 04 and :func:`beta_explorer`."""

SWEEP_NAME = "beta-sweep"
SWEEP_HIDDEN = (400,)
SWEEP_LATENT_DIM = 20
SWEEP_BINARIZE_SEED = 0


def sweep_epochs() -> int:
    """Epochs per model of the default sweep: 40 in full mode, 2 in smoke mode."""
    return _config.pick(full=40, smoke=2)


class SweepEntry(NamedTuple):
    """One trained model of a β-sweep (unpacks as ``beta, model, history``)."""

    beta: float
    model: torch.nn.Module
    history: dict


# --------------------------------------------------------------------------- data and the sweep

def _check_image_data(data) -> None:
    if not isinstance(data, _data.ImageData):
        raise TypeError(f"data must be an ImageData from vaeutils.data.load(...), got {type(data).__name__}")


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def prepare_data(data=None):
    """The data a β-sweep is trained and measured on: ``data`` (default ``vaeutils.data.load("mnist")``)
    with its test images statically binarized (``data.static_binarize``, seed 0).

    Training draws a fresh binary sample of every batch (dynamic binarization), so the Bernoulli
    reconstruction term is the negative log-likelihood of binary images and rate + distortion is a
    true −ELBO in nats. A test set that is already binary is returned unchanged.
    """
    if data is None:
        data = _data.load("mnist")
    _check_image_data(data)
    if _is_binary(data.test_x):
        return data
    return dataclasses.replace(
        data,
        test_x=_data.static_binarize(data.test_x, seed=SWEEP_BINARIZE_SEED),
        source=f"{data.source}; test images statically binarized (seed {SWEEP_BINARIZE_SEED})",
    )


def _check_betas(betas) -> tuple[float, ...]:
    try:
        values = tuple(betas)
    except TypeError:
        raise TypeError(f"betas must be a sequence of numbers such as {BETA_SWEEP}, got {betas!r}") from None
    if len(values) < 2:
        raise ValueError(f"betas needs at least two values to compare, got {values!r}")
    for b in values:
        if isinstance(b, bool) or not isinstance(b, Real) or not math.isfinite(b) or b <= 0:
            raise ValueError(f"every β must be a finite number > 0, got {b!r} in betas={values!r}")
    values = tuple(float(b) for b in values)
    if list(values) != sorted(set(values)):
        raise ValueError(f"betas must be strictly increasing, got {values!r}; sort them and drop repeats")
    return values


def train_beta_sweep(data=None, betas=BETA_SWEEP, *, epochs: int | None = None, hidden=SWEEP_HIDDEN,
                     latent_dim: int = SWEEP_LATENT_DIM, seed: int = 0, progress: bool = True,
                     cache: bool = True) -> list[SweepEntry]:
    """One MLP VAE per β, trained with ``vaeutils.train.train_vae`` (cached under ``"beta-sweep"``).

    data: an ImageData (default MNIST); its test set is binarized by :func:`prepare_data`.
    epochs: per model (default :func:`sweep_epochs`). The first call trains, later calls load from the cache.
    Returns a list of :class:`SweepEntry` ``(beta, model, history)`` in the order of ``betas``.
    """
    betas = _check_betas(betas)
    epochs = sweep_epochs() if epochs is None else epochs
    data = prepare_data(data)
    from tqdm.auto import tqdm

    entries, loaded = [], 0
    bar = tqdm(betas, desc="β-sweep", unit="model", disable=not progress, leave=True)
    t0 = time.perf_counter()
    for beta in bar:
        bar.set_postfix(beta=f"{beta:g}")
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):  # one summary line instead of one line per model
            model, history = train_vae(
                model="mlp", hidden=hidden, latent_dim=latent_dim, loss=ELBOLoss(beta=beta), epochs=epochs,
                seed=seed, data=data, cache=cache, progress=False, binarize=True, name=SWEEP_NAME)
        for line in captured.getvalue().splitlines():
            if line.startswith("loaded "):
                loaded += 1
            elif line.strip():
                tqdm.write(line)
        entries.append(SweepEntry(beta, model, history))
    bar.close()
    if progress:
        print(f"β-sweep: {len(betas)} models ({loaded} loaded from the cache, {len(betas) - loaded} trained, "
              f"{epochs} epochs each) in {time.perf_counter() - t0:.1f} s")
    return entries


def _check_sweep(sweep) -> list[SweepEntry]:
    try:
        entries = [SweepEntry(*e) for e in sweep]
    except TypeError:
        raise TypeError("sweep must be the list returned by train_beta_sweep(): "
                        "(beta, model, history) triples") from None
    _check_betas([e.beta for e in entries])
    return entries


@torch.no_grad()
def sweep_points(sweep, x: torch.Tensor, threshold: float = 0.01) -> list[dict]:
    """Measure every model of ``sweep`` on the images ``x`` (the binarized test set).

    Returns one dict per model: ``beta``, ``rate`` (mean KL, nats), ``distortion`` (mean Bernoulli NLL,
    nats), ``neg_elbo`` (= rate + distortion), ``active`` (active units, ``metrics.active_units``
    with ``threshold``), ``latent_dim`` and ``kl_per_dim`` (a NumPy array of nats per latent dimension).
    """
    entries = _check_sweep(sweep)
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise TypeError("x must be an image tensor (N, C, H, W), e.g. prepare_data().test_x")
    points = []
    for beta, model, _ in entries:
        rd = _metrics.rate_distortion(model, x)
        active, _ = _metrics.active_units(model, x, threshold)
        kl = _metrics.kl_per_dimension(model, x).cpu().numpy()
        points.append({"beta": beta, "rate": rd["rate"], "distortion": rd["distortion"],
                       "neg_elbo": rd["neg_elbo"], "active": active, "latent_dim": int(kl.size),
                       "kl_per_dim": kl})
    return points


# --------------------------------------------------------------------------- the explorer's pictures

PANEL_FIGSIZE = (11.5, 5.2)
PANEL_DPI = 72


@torch.no_grad()
def beta_panel_images(model, x_show: torch.Tensor, kl_per_dim, *, n_samples: int = 16, n_traverse: int = 5,
                      steps: int = 7, span: float = 3.0, seed: int = 0) -> dict:
    """The pictures of one β, as CPU tensors: ``originals`` (``x_show``), ``recon`` (decoded posterior
    means), ``samples`` (decoded draws from the prior, fixed ``seed``), ``traversal`` (the ``n_traverse``
    dimensions with the largest KL, each swept over ±``span`` prior σ around the code of ``x_show[0]``)
    and ``dims`` (which dimensions, largest KL first)."""
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


def render_beta_panel(points: list[dict], index: int, images: dict, kl_ylim: float | None = None) -> bytes:
    """PNG bytes of the explorer's picture for ``points[index]``: the rate–distortion plane of the
    whole sweep with this β ringed, its KL per latent dimension, test images above their
    reconstructions, prior samples, and a latent traversal (``images`` from :func:`beta_panel_images`)."""
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise TypeError("points must be the list of dicts returned by sweep_points()")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(points):
        raise ValueError(f"index must be an int in [0, {len(points) - 1}], got {index!r}")
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
    _plots.kl_bars(p["kl_per_dim"], ax=ax_kl, title=f"KL per dimension: {p['active']}/{p['latent_dim']} active")
    if kl_ylim:
        ax_kl.set_ylim(0, kl_ylim)
    n = len(images["originals"])
    pairs = torch.cat([images["originals"], images["recon"]])
    _plots.image_grid(pairs, nrow=n, ax=fig.add_subplot(grid[0, 1]), title="test images (top), reconstructions")
    _plots.image_grid(images["samples"], nrow=max(1, len(images["samples"]) // 2), ax=fig.add_subplot(grid[1, 1]),
                      title="samples from the prior N(0, I)")
    ax_tr = fig.add_subplot(grid[:, 2])
    _plots.image_grid(images["traversal"], nrow=images["steps"], ax=ax_tr,
                      title=f"traversal ±{images['span']:g}σ\nrows: dims {', '.join(map(str, images['dims']))}")
    fig.suptitle(f"β = {p['beta']:g}:  rate {p['rate']:.1f} nats,  distortion {p['distortion']:.1f} nats,  "
                 f"−ELBO {p['neg_elbo']:.1f} nats", fontsize=13)
    return _plots.figure_png(fig)


def _explorer_html(points: list[dict], index: int) -> str:
    p = points[index]
    best = min(range(len(points)), key=lambda i: points[i]["neg_elbo"])
    return (f'<div class="vaelab-beta-info" data-beta="{p["beta"]:g}" data-rate="{p["rate"]:.4f}" '
            f'data-distortion="{p["distortion"]:.4f}">'
            f"<b>β = {p['beta']:g}</b> &nbsp; rate <b>{p['rate']:.2f}</b> nats &nbsp; distortion "
            f"<b>{p['distortion']:.2f}</b> nats &nbsp; −ELBO <b>{p['neg_elbo']:.2f}</b> nats &nbsp; "
            f"active units {p['active']}/{p['latent_dim']}<br>"
            f"<span style='color:#666'>best −ELBO of the sweep: β = {points[best]['beta']:g} "
            f"({points[best]['neg_elbo']:.2f} nats)</span></div>")


class BetaExplorer(widgets.VBox):
    """A slider over a β-sweep. Attributes: ``slider`` (an ``ipywidgets.SelectionSlider`` of the β
    values; setting ``slider.value`` updates the view at once), ``image`` (the picture; ``image.value``
    holds the PNG bytes shown), ``info`` (HTML with rate, distortion, −ELBO and active units),
    ``points`` (from :func:`sweep_points`), ``panels`` (PNG bytes per β), ``current_beta``,
    ``current_index``, ``highlight`` ((rate, distortion) of the ringed point) and ``n_updates``."""

    def __init__(self, sweep, data, *, n_images: int = 6, n_samples: int = 12, n_traverse: int = 5,
                 progress: bool = True):
        entries = _check_sweep(sweep)
        _check_image_data(data)
        for name, value in (("n_images", n_images), ("n_samples", n_samples), ("n_traverse", n_traverse)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        x = data.test_x
        self.betas = tuple(e.beta for e in entries)
        self.points = sweep_points(entries, x)
        kl_ylim = 1.05 * max(float(p["kl_per_dim"].max()) for p in self.points) or None
        x_show = x[:n_images]
        from tqdm.auto import tqdm

        panels = []
        for i, (entry, point) in enumerate(tqdm(list(zip(entries, self.points)), desc="drawing panels",
                                                unit="β", disable=not progress, leave=True)):
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


def beta_explorer(data=None, betas=BETA_SWEEP, *, sweep=None, epochs: int | None = None, cache: bool = True,
                  progress: bool = True, n_images: int = 6, n_samples: int = 12,
                  n_traverse: int = 5) -> BetaExplorer:
    """A slider over the β-sweep: each β shows its reconstructions, prior samples, a traversal, the
    KL per dimension and its point ringed on the rate–distortion plane.

    With no arguments it uses MNIST and :data:`BETA_SWEEP`, training the sweep the first time (with a
    progress bar) and loading it from the cache afterwards. ``sweep``: a list from
    :func:`train_beta_sweep` on the same ``data`` (reused as is, nothing is trained); ``epochs``,
    ``cache``: passed to :func:`train_beta_sweep` (small values make a quick explorer for tests).
    Everything is drawn once here, so moving the slider only swaps an image.
    """
    data = prepare_data(data)
    if sweep is None:
        sweep = train_beta_sweep(data, betas, epochs=epochs, progress=progress, cache=cache)
    return BetaExplorer(sweep, data, n_images=n_images, n_samples=n_samples, n_traverse=n_traverse,
                        progress=progress)


# --------------------------------------------------------------------------- the live trainer's pictures

def recon_strip_png(originals: torch.Tensor, recon: torch.Tensor, scale: int = 3) -> bytes:
    """PNG bytes of ``originals`` (top row) above ``recon`` (bottom row), enlarged ``scale`` times.

    Drawn with PIL, not matplotlib: a few milliseconds, cheap enough for several updates a second."""
    if originals.shape != recon.shape:
        raise ValueError(f"originals and recon must have the same shape, got {tuple(originals.shape)} "
                         f"and {tuple(recon.shape)}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an int >= 1, got {scale!r}")
    grid = _plots.grid_array(torch.cat([originals.detach().cpu(), recon.detach().cpu()]), nrow=len(originals))
    image = PILImage.fromarray(np.round(grid * 255).astype(np.uint8))
    image = image.resize((image.width * scale, image.height * scale), PILImage.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def rd_trail_svg(rates, distortions, *, width: int = 320, height: int = 230, n_lines: int = 4,
                 fit_last: int | None = None) -> str:
    """An SVG rate–distortion plot (rate on x, distortion on y, nats) of a training trail: the
    trail in blue, the last point in red, dashed lines of equal −ELBO = R + D (slope −1).
    ``fit_last``: scale the axes to the last this many points (older ones may leave the frame), so
    the early, far-off start of training does not squash what happens now."""
    r = np.asarray(rates, dtype=float).ravel()
    d = np.asarray(distortions, dtype=float).ravel()
    if r.shape != d.shape or r.size == 0:
        raise ValueError("rates and distortions must be non-empty sequences of the same length")
    if not (np.isfinite(r).all() and np.isfinite(d).all()):
        raise ValueError("rates and distortions must be finite numbers")
    left, right, top, bottom = 52, 10, 10, 38
    pw, ph = width - left - right, height - top - bottom
    fr, fd = (r, d) if fit_last is None else (r[-fit_last:], d[-fit_last:])
    x_lo, x_hi = 0.0, max(1.0, float(fr.max()) * 1.15)
    pad = max(1.0, 0.1 * float(fd.max() - fd.min()))
    y_lo, y_hi = float(fd.min()) - pad, float(fd.max()) + pad

    def px(x, y):
        return left + (x - x_lo) / (x_hi - x_lo) * pw, top + (y_hi - y) / (y_hi - y_lo) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<defs><clipPath id="rdclip"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/></clipPath></defs>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="white" stroke="#888"/>']
    total = fr + fd
    levels = np.linspace(total.min(), total.max() + 1e-9, n_lines) if total.max() > total.min() else total[:1]
    for c in levels:  # D = c − R, drawn across the plot area and clipped to it
        (x0, y0), (x1, y1) = px(x_lo, c - x_lo), px(x_hi, c - x_hi)
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#bbb" '
                     f'stroke-dasharray="4 3" clip-path="url(#rdclip)"/>')
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (px(a, b) for a, b in zip(r, d)))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-opacity="0.5" '
                 f'stroke-width="1.5" clip-path="url(#rdclip)"/>')
    cx, cy = px(r[-1], d[-1])
    parts.append(f'<circle class="current" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="#d62728"/>')
    for x, anchor in ((x_lo, "start"), (x_hi, "end")):
        parts.append(f'<text x="{px(x, y_lo)[0]:.1f}" y="{top + ph + 14}" text-anchor="{anchor}">{x:.0f}</text>')
    for y in (y_lo, y_hi):
        parts.append(f'<text x="{left - 4}" y="{px(x_lo, y)[1] + 4:.1f}" text-anchor="end">{y:.0f}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">rate R = KL (nats)</text>')
    parts.append(f'<text x="12" y="{top + ph / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2:.1f})">distortion D (nats)</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- stopping on a kernel interrupt

_RUNNING: weakref.WeakSet = weakref.WeakSet()  # live trainers whose thread is running
_hooks_installed = False


def stop_all_trainers(timeout: float = 2.0) -> int:
    """Stop every running live β trainer; returns how many were stopped."""
    trainers = list(_RUNNING)
    for t in trainers:
        t.stop(timeout=timeout)
    return len(trainers)


def _chain_sigint(previous):
    def on_sigint(signum, frame):
        for t in list(_RUNNING):
            t.stop(timeout=0)  # ask the threads to stop; never block inside a signal handler
        if callable(previous):
            previous(signum, frame)

    on_sigint.vaelab_live_trainer = True
    return on_sigint


def _after_cell(result) -> None:
    if isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt):
        stop_all_trainers()


def _install_interrupt_hooks() -> None:
    """Make a kernel interrupt stop the live trainers, busy or idle.

    While a cell runs, the interrupt raises KeyboardInterrupt in it: an IPython ``post_run_cell`` hook
    sees that and stops the trainers. While the kernel is idle, ipykernel ignores SIGINT (its handler
    between messages is ``kernel.saved_sigint_handler``); that handler is wrapped so that it first
    stops the trainers. Outside IPython the process's SIGINT handler is wrapped the same way.
    """
    global _hooks_installed
    if _hooks_installed:
        return
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        shell.events.register("post_run_cell", _after_cell)
    kernel = getattr(shell, "kernel", None)
    if kernel is not None and hasattr(kernel, "saved_sigint_handler"):
        kernel.saved_sigint_handler = _chain_sigint(kernel.saved_sigint_handler)
    elif threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _chain_sigint(signal.getsignal(signal.SIGINT)))
    _hooks_installed = True


# --------------------------------------------------------------------------- the live trainer

def _default_threads(device: torch.device) -> int:
    return max(1, (os.cpu_count() or 2) // 2) if device.type == "cpu" else torch.get_num_threads()


class LiveBetaTrainer(widgets.VBox):
    """Trains a small MLP VAE in a background thread while ``beta_slider`` sets β.

    Attributes for code and tests: ``beta_slider``, ``start_button``, ``stop_button``, ``reset_button``,
    ``image`` (test images over their reconstructions, PNG), ``trail`` (SVG of the rate–distortion trail),
    ``info`` and ``status`` (HTML), ``thread``, ``running``, ``steps``, ``updates`` (views refreshed),
    ``history`` (one dict per refresh: seconds, step, beta, rate, distortion, active), ``error``.
    Methods: ``start()``, ``stop(timeout)``, ``reset()``, ``close()`` (stops, then closes).
    """

    def __init__(self, data=None, beta: float = 1.0, *, hidden=(256,), latent_dim: int = 10, batch_size: int = 128,
                 lr: float = 1e-3, device=None, update_every: float = 0.15, n_images: int = 6, n_eval: int = 500,
                 threads: int | None = None, max_seconds: float | None = 600.0, seed: int = 0):
        self._stop_event = threading.Event()  # first, so that close() works even if a check below fails
        self.thread: threading.Thread | None = None
        _check_beta_value(beta)
        for name, value, low in (("latent_dim", latent_dim, 1), ("batch_size", batch_size, 1),
                                 ("n_images", n_images, 1), ("n_eval", n_eval, 2), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        for name, value in (("lr", lr), ("update_every", update_every)):
            if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, Real)
                                        or not max_seconds > 0):
            raise ValueError(f"max_seconds must be a number > 0 or None (no limit), got {max_seconds!r}")
        data = prepare_data(data)
        self.device = _config.get_device() if device is None else torch.device(device)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be None (automatic) or an int >= 1, got {threads!r}")
        self.threads = _default_threads(self.device) if threads is None else threads
        self.train_x = data.train_x.to(self.device)
        self.eval_x = data.test_x[:n_eval].to(self.device)
        self.show_x = self.eval_x[:n_images]
        self.hidden, self.latent_dim, self.batch_size, self.lr = tuple(hidden), latent_dim, batch_size, float(lr)
        self.update_every, self.max_seconds, self.seed = float(update_every), max_seconds, seed
        self._beta = float(beta)
        self._reset_requested = False
        self.steps = self.updates = 0
        self.history: list[dict] = []
        self.error: BaseException | None = None
        self._build_model()

        self.beta_slider = widgets.FloatLogSlider(
            value=beta, base=10, min=-1.5, max=1.5, step=0.01, description="β", continuous_update=True,
            readout_format=".3g", layout=widgets.Layout(width="420px"))
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success",
                                           layout=widgets.Layout(width="90px"))
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True,
                                          layout=widgets.Layout(width="90px"))
        self.reset_button = widgets.Button(description="Reset weights", icon="refresh",
                                           layout=widgets.Layout(width="130px"))
        self.image = widgets.Image(format="png", value=recon_strip_png(self.show_x.cpu(), self.show_x.cpu()),
                                   layout=widgets.Layout(height=f"{(2 * self.show_x.shape[-2] + 3) * 3}px"))
        self.trail = widgets.HTML(layout=widgets.Layout(width="330px", height="240px"))
        self.info = widgets.HTML(layout=widgets.Layout(min_height="24px"))
        self.status = widgets.HTML(value="Press Start, then drag β.")
        self.beta_slider.observe(self._on_beta, "value")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        controls = widgets.HBox([self.beta_slider, self.start_button, self.stop_button, self.reset_button])
        super().__init__([controls, widgets.HBox([widgets.VBox([self.image, self.info]), self.trail]), self.status])
        if self.comm is not None:
            self.comm.on_close(lambda _msg: self.stop(timeout=0))  # the front end closed the widget
        _install_interrupt_hooks()

    # ---- state shared with the training thread: β (a float, written here, read there), flags
    @property
    def beta(self) -> float:
        return self._beta

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _on_beta(self, change) -> None:
        self._beta = float(change["new"])

    def _build_model(self) -> None:
        with torch.random.fork_rng(devices=[]):  # seeded weights, without reseeding the notebook's own RNG
            torch.manual_seed(self.seed)
            self.model = build_model("mlp", in_shape=tuple(self.train_x.shape[1:]), hidden=self.hidden,
                                     latent_dim=self.latent_dim).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)

    def reset(self) -> None:
        """Start again from fresh weights (at the next step when running)."""
        if self.running:
            self._reset_requested = True
        else:
            self._build_model()
            self.steps = 0
            self.history.clear()
            self.status.value = "Weights reset. Press Start."

    def start(self) -> None:
        """Start training in a background thread (a second call while running does nothing).
        Any other running live trainer is stopped first: two would only share the same cores."""
        if self.running:
            return
        for other in list(_RUNNING):
            if other is not self:
                other.stop()
        self._stop_event.clear()
        self.error = None
        self.thread = threading.Thread(target=self._train_loop, name="live-beta-trainer", daemon=True)
        _RUNNING.add(self)
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"Training on {self.device} ({self.threads} thread{'s' * (self.threads > 1)})…"
        self.thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop and wait up to ``timeout`` seconds; True when it has ended."""
        self._stop_event.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread() and timeout > 0:
            thread.join(timeout)
        return not self.running

    def close(self) -> None:
        """Stop training, then close the widget."""
        self.stop()
        super().close()

    def _train_loop(self) -> None:
        previous_threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads)  # leaves the other cores to the kernel and the browser
        t_start = time.perf_counter()
        next_due = t_start + self.update_every  # a fixed cadence: a slow step does not push every later view back
        reason = "Stopped"
        try:
            gen = torch.Generator().manual_seed(self.seed + self.steps)  # batch order
            noise = torch.Generator(device=self.device).manual_seed(self.seed + self.steps + 1)  # binarization, z
            n = len(self.train_x)
            order, pos = torch.randperm(n, generator=gen), 0
            self.model.train()
            while not self._stop_event.is_set():
                if self._reset_requested:
                    self._reset_requested = False
                    self._build_model()
                    self.model.train()
                    self.steps = 0
                    self.history.clear()
                if pos + self.batch_size > n:
                    order, pos = torch.randperm(n, generator=gen), 0
                idx = order[pos:pos + self.batch_size].to(self.device)
                pos += self.batch_size
                xb = torch.bernoulli(self.train_x[idx], generator=noise)
                terms = ELBOLoss(beta=self._beta)(self.model, xb, self.steps, generator=noise)
                loss = terms["loss"].item()
                if not math.isfinite(loss):
                    raise NonFiniteLossError(self.steps, "loss", loss)
                self.optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                self.optimizer.step()
                self.steps += 1
                now = time.perf_counter()
                if now >= next_due:
                    self._publish(now - t_start)
                    next_due = max(next_due + self.update_every, time.perf_counter() + 0.25 * self.update_every)
                if self.max_seconds is not None and now - t_start > self.max_seconds:
                    reason = f"Stopped after {self.max_seconds:g} s (press Start to go on)"
                    break
        except Exception as err:  # shown in the widget: a thread has nowhere else to report
            self.error = err
            reason = f"Stopped by an error: {html.escape(str(err))}"
        finally:
            if self.device.type == "cpu":
                torch.set_num_threads(previous_threads)
            _RUNNING.discard(self)
            self.start_button.disabled, self.stop_button.disabled = False, True
            self.status.value = f"{reason}; step {self.steps}."

    def _publish(self, seconds: float) -> None:
        """Measure on the held-out images and refresh the views (called from the training thread)."""
        rd = _metrics.rate_distortion(self.model, self.eval_x)
        active, _ = _metrics.active_units(self.model, self.eval_x)
        recon = self.model.reconstruct(self.show_x)
        self.model.train()
        beta = self._beta
        entry = {"seconds": seconds, "step": self.steps, "beta": beta, "rate": rd["rate"],
                 "distortion": rd["distortion"], "active": active}
        trail = [*self.history[-299:], entry]
        self.image.value = recon_strip_png(self.show_x, recon)
        self.trail.value = rd_trail_svg([h["rate"] for h in trail], [h["distortion"] for h in trail], fit_last=60)
        self.info.value = (f'<span class="vaelab-live-info">β = <b>{beta:.3g}</b> &nbsp; step {self.steps} '
                           f"&nbsp; rate <b>{rd['rate']:.2f}</b> nats &nbsp; distortion <b>{rd['distortion']:.2f}"
                           f"</b> nats &nbsp; −ELBO {rd['neg_elbo']:.2f} &nbsp; active units {active}/"
                           f"{self.latent_dim}</span>")
        self.history.append(entry)  # last, so whoever sees the entry also sees the views it describes
        self.updates += 1


def _check_beta_value(beta) -> None:
    if isinstance(beta, bool) or not isinstance(beta, Real) or not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


def live_beta_trainer(data=None, beta: float = 1.0, *, hidden=(256,), latent_dim: int = 10, batch_size: int = 128,
                      lr: float = 1e-3, device=None, update_every: float = 0.15, n_images: int = 6,
                      n_eval: int = 500, threads: int | None = None, max_seconds: float | None = 600.0,
                      seed: int = 0, start: bool = False) -> LiveBetaTrainer:
    """A small MLP VAE (784-256-10 by default) trained in a background thread while you drag β.

    Every ``update_every`` seconds the rate, distortion and active units on ``n_eval`` binarized test
    images, a rate–distortion trail and ``n_images`` reconstructions refresh. The kernel stays free:
    training runs in a thread with ``threads`` CPU threads (default half the cores; torch's setting is
    process-wide, so it is restored when training stops). It stops on Stop, on a kernel interrupt,
    when the widget is closed, and after ``max_seconds`` (None: never). GPU if present, else CPU
    (``device`` overrides). ``start=True`` starts at once.
    """
    trainer = LiveBetaTrainer(data, beta, hidden=hidden, latent_dim=latent_dim, batch_size=batch_size, lr=lr,
                              device=device, update_every=update_every, n_images=n_images, n_eval=n_eval,
                              threads=threads, max_seconds=max_seconds, seed=seed)
    if start:
        trainer.start()
    return trainer
