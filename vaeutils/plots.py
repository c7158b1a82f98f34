"""Pictures the notebooks share: image grids, latent traversals, the rate–distortion plane,
per-dimension KL bars, live training curves, and the aggregate posterior of a 2-D latent space."""

from __future__ import annotations

import io
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from . import checks
from .models import traversal_images


def widget_figure(fig, figsize, dpi: int) -> Figure:
    """The figure a widget draws on: ``fig``, or a new one (not managed by pyplot) if it is None."""
    if fig is None:
        return Figure(figsize=figsize, dpi=dpi)
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure or None, got {type(fig).__name__}")
    return fig


def widget_artists(fig, figsize, dpi: int, registry, build) -> tuple[Figure, dict]:
    """``(fig, artists)`` for a widget that redraws: :func:`widget_figure`, laid out by
    ``build(fig)`` the first time and remembered in ``registry`` (a ``weakref.WeakKeyDictionary``),
    so later draws only update artists."""
    fig = widget_figure(fig, figsize, dpi)
    art = registry.get(fig)
    if art is None:
        art = registry[fig] = build(fig)
    return fig, art


def figure_png(fig) -> bytes:
    """A figure drawn in full as PNG bytes: what the widgets display."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def grid_array(x, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images (N, C, H, W) or (N, H, W) into one 2-D (or H×W×C) array, ``nrow`` images per row,
    ``pad`` white pixels around and between them: the layout of ``torchvision.utils.make_grid``
    (``padding=pad, pad_value=1``; one image alone is returned unpadded, as there), written out
    so that a unit does not import torchvision (1.5 to 3 s) to show a few digits;
    ``tests/test_plots.py`` compares the two."""
    x = torch.as_tensor(x).detach().float().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or len(x) == 0:
        raise ValueError(f"images must be shaped (N, C, H, W) with N >= 1, got {tuple(x.shape)}")
    nrow = checks.integer("nrow", nrow, low=1, hint="images per row")
    pad = checks.integer("pad", pad, low=0, hint="pixels between images")
    n, c, h, w = x.shape
    if n == 1:
        grid = x[0]
    else:
        cols, rows = min(nrow, n), math.ceil(n / min(nrow, n))
        grid = torch.ones(c, rows * (h + pad) + pad, cols * (w + pad) + pad)
        for i in range(n):
            top, left = (i // cols) * (h + pad) + pad, (i % cols) * (w + pad) + pad
            grid[:, top:top + h, left:left + w] = x[i]
    grid = grid.clamp(0, 1).numpy()
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def image_grid(x, nrow: int = 8, ax=None, title: str | None = None):
    """Show images in a grid on ``ax`` (a new figure when omitted); returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(min(nrow, len(x)) * 0.6 + 0.5,
                                      math.ceil(len(x) / nrow) * 0.6 + 0.5))
    ax.imshow(grid_array(x, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def traversal(model, z0, dims=None, span: float = 3.0, steps: int = 7, ax=None,
              title: str | None = None):
    """Latent traversal grid: row = latent dimension, column = value from −span to +span."""
    imgs = traversal_images(model, z0, dims, span, steps)
    ax = image_grid(imgs, nrow=steps, ax=ax, title=title)
    return ax


def rd_plane(rates, distortions, labels=None, ax=None, highlight=None, elbo_lines: bool = True,
             title: str = "rate–distortion plane"):
    """Rate (KL, nats) on x, distortion (NLL, nats) on y, one point per model; dashed lines of equal
    −ELBO = D + R (slope −1). ``highlight``: index of the point to ring."""
    rates, distortions = np.asarray(rates, float), np.asarray(distortions, float)
    if rates.shape != distortions.shape or rates.ndim != 1 or len(rates) == 0:
        raise ValueError("rates and distortions must be 1-D sequences of the same, non-zero length")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.plot(rates, distortions, "-o", color="tab:blue", ms=5, zorder=3)
    if labels is not None:
        for r, d, lab in zip(rates, distortions, labels, strict=True):
            ax.annotate(str(lab), (r, d), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if elbo_lines:
        total = rates + distortions
        xs = np.array([0, max(rates.max(), 1e-9) * 1.1])
        for c in np.linspace(total.min(), total.max(), 4) if len(total) > 1 else total:
            ax.plot(xs, c - xs, "--", color="grey", lw=0.7, zorder=1)
        best = int(np.argmin(total))
        ax.plot(rates[best], distortions[best], "*", color="gold", ms=14, mec="k", zorder=4,
                label="best ELBO")
        ax.legend(loc="upper right", fontsize=8)
    if highlight is not None:
        ax.plot(rates[highlight], distortions[highlight], "o", ms=14, mfc="none", mec="red", mew=2,
                zorder=5)
    pad_y = 0.1 * (distortions.max() - distortions.min() + 1e-9)
    ax.set_ylim(distortions.min() - pad_y, distortions.max() + pad_y)
    ax.set_xlim(left=0)
    ax.set_xlabel("rate R = KL (nats)")
    ax.set_ylabel("distortion D = −log p(x|z) (nats)")
    ax.set_title(title)
    return ax


def kl_bars(kl, ax=None, floor: float | None = None, title: str = "KL per latent dimension",
            threshold=None):
    """Bars of per-dimension KL (nats); ``floor`` draws the free-bits λ line."""
    kl = torch.as_tensor(kl).detach().cpu().numpy().ravel()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(3, 0.3 * len(kl) + 1), 2.5))
    ax.bar(np.arange(len(kl)), kl, color="tab:purple")
    if floor is not None:
        ax.axhline(floor, color="red", ls="--", lw=1, label=f"λ = {floor:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL (nats)")
    ax.set_title(title)
    return ax


class LivePlot:
    """A ``fit`` callback that redraws the per-term training curves as training goes, in a
    notebook: after the first epoch, then after every ``every``-th epoch once ``min_seconds`` have
    passed since the last drawing (a drawing costs a few tenths of a second, more than an epoch of
    the course's models), and always after the last epoch."""

    def __init__(self, terms=("rec", "kl", "loss"), every: int = 1, min_seconds: float = 1.0):
        self.terms, self.every = tuple(terms), checks.integer("every", every, low=1)
        self.min_seconds = checks.positive("min_seconds", min_seconds, allow_zero=True)
        self.handle, self._drawn = None, -math.inf

    def __call__(self, epoch, history):
        last = epoch == history.get("epochs")
        if not last and (epoch % self.every or
                         time.perf_counter() - self._drawn < self.min_seconds):
            return
        from IPython.display import display

        fig = plot_history(history, self.terms)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)
        self._drawn = time.perf_counter()


def plot_history(history, terms=("rec", "kl", "loss")):
    """Per-epoch curves of each term, train (solid) and test (dashed), one panel per term."""
    fig, axes = plt.subplots(1, len(terms), figsize=(3.4 * len(terms), 2.6))
    axes = np.atleast_1d(axes)
    for ax, term in zip(axes, terms, strict=True):
        for part, style in (("train", "-"), ("test", "--")):
            rows = [r for r in history.get(part, []) if term in r]
            if rows:
                ax.plot([r["epoch"] for r in rows], [r[term] for r in rows], style, marker="o",
                        ms=3, label=part)
        ax.set_title({"rec": "reconstruction NLL", "kl": "KL", "loss": "loss"}.get(term, term))
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def latent_map(grid, log_q, log_p, points=None, labels=None, hole_ratio: float = 0.1):
    """Three panels over a 2-D latent ``grid`` (1-D tensor of coordinates, the same on both axes):
    the codes ``points`` (N, 2) coloured by ``labels``; log q(z); and log q(z)/p(z) with the line
    q = ``hole_ratio``·p that encloses the prior's holes. ``log_q``, ``log_p``:
    (len(grid), len(grid)), row i at z₂ = grid[i]. The prior's 1-, 2- and 3-σ circles are drawn on
    each panel. Returns the figure (unit 04)."""
    g = torch.as_tensor(grid, dtype=torch.float64).cpu()
    log_q, log_p = (torch.as_tensor(t, dtype=torch.float64).cpu() for t in (log_q, log_p))
    if log_q.shape != (len(g), len(g)) or log_p.shape != log_q.shape:
        raise ValueError(f"log_q and log_p must be shaped ({len(g)}, {len(g)}) like the grid, "
                         f"got {tuple(log_q.shape)} and {tuple(log_p.shape)}")
    u, v = torch.meshgrid(g, g, indexing="xy")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    if points is not None:
        pts = torch.as_tensor(points).detach().cpu()
        colours = None if labels is None else torch.as_tensor(labels).cpu()
        axes[0].scatter(pts[:, 0], pts[:, 1], c=colours, cmap="tab10", s=5)
    axes[0].set_title("posterior means of the test images")
    axes[1].contourf(u, v, log_q.clamp(min=log_q.max() - 12), levels=20, cmap="viridis")
    axes[1].set_title("log q(z), the aggregate posterior")
    ratio = (log_q - log_p).clamp(-5, 5)
    shade = axes[2].contourf(u, v, ratio, levels=np.linspace(-5, 5, 21), cmap="RdBu")
    axes[2].contour(u, v, ratio, levels=[math.log(hole_ratio)], colors="k", linewidths=1.2)
    axes[2].set_title(f"log q(z)/p(z); black: q = {hole_ratio:g}·p")
    fig.colorbar(shade, ax=axes[2])
    circles = sorted(-math.log(2 * math.pi) - r**2 / 2 for r in (1, 2, 3))
    for ax in axes:
        ax.contour(u, v, log_p, levels=circles, colors="grey", linewidths=0.6)
        ax.set(xlim=(g[0], g[-1]), ylim=(g[0], g[-1]), aspect="equal", xlabel="$z_1$",
               ylabel="$z_2$")
    fig.tight_layout()
    return fig
