"""The live β trainer's pictures, drawn several times a second: the reconstructions strip (PNG, by
PIL) and the rate–distortion trail (SVG). Plain functions of numbers and images, so the tests call
them directly; ``widgets.live`` shows them.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image as PILImage

from .. import checks
from .. import plots as _plots


def recon_strip_png(originals: torch.Tensor, recon: torch.Tensor, scale: int = 3) -> bytes:
    """PNG bytes of ``originals`` (top row) above ``recon`` (bottom row), enlarged ``scale`` times.

    Drawn with PIL, not matplotlib: a few milliseconds, cheap enough for several updates
    a second."""
    if originals.shape != recon.shape:
        raise ValueError("originals and recon must have the same shape, got "
                         f"{tuple(originals.shape)} and {tuple(recon.shape)}")
    scale = checks.integer("scale", scale, low=1)
    grid = _plots.grid_array(torch.cat([originals.detach().cpu(), recon.detach().cpu()]),
                             nrow=len(originals))
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
             f'<defs><clipPath id="rdclip"><rect x="{left}" y="{top}" width="{pw}" '
             f'height="{ph}"/></clipPath></defs>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="white" stroke="#888"/>']
    total = fr + fd
    if total.max() > total.min():
        levels = np.linspace(total.min(), total.max() + 1e-9, n_lines)
    else:
        levels = total[:1]
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
        parts.append(f'<text x="{px(x, y_lo)[0]:.1f}" y="{top + ph + 14}" '
                     f'text-anchor="{anchor}">{x:.0f}</text>')
    for y in (y_lo, y_hi):
        parts.append(f'<text x="{left - 4}" y="{px(x_lo, y)[1] + 4:.1f}" '
                     f'text-anchor="end">{y:.0f}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                 'rate R = KL (nats)</text>')
    parts.append(f'<text x="12" y="{top + ph / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2:.1f})">distortion D (nats)</text>')
    parts.append("</svg>")
    return "".join(parts)
