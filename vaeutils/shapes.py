"""Images drawn from known factors, for the disentanglement unit (06): sprites and rectangles.

``render_sprites(factors)`` draws a white square, ellipse (2:1) or heart on black from integer
factor indices (shape, scale, rotation, x, y); ``vaeutils.data.sprites`` draws the factors and
builds the data set. ``render_rectangles(factors)`` draws a centred soft-edged rectangle from
(width, height) indices, and ``measure_rectangles(images)`` reads the two sides back off an image (a
decoded one too); ``vaeutils.data.rectangles`` builds that data set.
"""

from __future__ import annotations

import math

import torch

from . import checks

SPRITE_FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SPRITE_FACTOR_SIZES = (3, 6, 10, 8, 8)
SPRITE_SHAPES = ("square", "ellipse", "heart")

_SPRITE_RADIUS = 0.42  # circumradius of the largest sprite, in image half-widths
_SPRITE_SCALES = torch.linspace(0.5, 1.0, SPRITE_FACTOR_SIZES[1])
# keeps every sprite inside the frame
_SPRITE_POSITIONS = torch.linspace(-0.5, 0.5, SPRITE_FACTOR_SIZES[3])
# Each shape turns through its own symmetry period, so no two rotation steps give the same picture.
_SPRITE_PERIODS = (math.pi / 2, math.pi, 2 * math.pi)
# circumradius and bounding-box centre of the heart curve
_HEART_RADIUS, _HEART_CENTRE = 1.3363, 0.1185


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Which points (u, v) of the sprite's own frame (circumradius 1) the shape covers."""
    if shape == 0:  # square
        return torch.maximum(u.abs(), v.abs()) <= 1 / math.sqrt(2)
    if shape == 1:  # ellipse, 2:1, so that its rotation shows
        return u**2 + (2 * v) ** 2 <= 1
    x, y = u * _HEART_RADIUS, v * _HEART_RADIUS + _HEART_CENTRE  # heart: (x² + y² - 1)³ <= x² y³
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def render_sprites(factors: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Binary float images (N, 1, size, size) drawn from factor indices (N, 5) in
    ``SPRITE_FACTOR_NAMES`` order.

    A white shape on black: square, ellipse (2:1) or heart; scale, rotation and x/y position on
    fixed grids.
    """
    factors = torch.as_tensor(factors)
    if factors.dim() != 2 or factors.shape[1] != 5 or factors.is_floating_point():
        raise ValueError("factors must be an integer tensor shaped (N, 5), got "
                         f"{tuple(factors.shape)} {factors.dtype}")
    sizes = torch.tensor(SPRITE_FACTOR_SIZES)
    if len(factors) and ((factors < 0).any() or (factors >= sizes).any()):
        raise ValueError("factors out of range: "
                         f"column i must lie in [0, {SPRITE_FACTOR_SIZES}[i])")
    size = checks.integer("size", size, low=8, hint="pixels")
    f = factors.long().cpu()
    # pixel centres in [-1, 1]
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    out = torch.empty(len(f), 1, size, size)
    for shape in range(len(SPRITE_SHAPES)):
        # chunks bound the intermediate grids
        for rows in (f[:, 0] == shape).nonzero().squeeze(1).split(4096):
            c = f[rows]
            radius = (_SPRITE_SCALES[c[:, 1]] * _SPRITE_RADIUS).view(-1, 1, 1)
            fraction = c[:, 2].float() / SPRITE_FACTOR_SIZES[2]  # of the symmetry period
            angle = (fraction * _SPRITE_PERIODS[shape]).view(-1, 1, 1)
            dx = coords.view(1, 1, -1) - _SPRITE_POSITIONS[c[:, 3]].view(-1, 1, 1)
            # y up, rows down
            dy = -coords.view(1, -1, 1) - _SPRITE_POSITIONS[c[:, 4]].view(-1, 1, 1)
            cos, sin = torch.cos(angle), torch.sin(angle)
            # the pixel in the sprite's own frame (rotated by -angle)
            u = (cos * dx + sin * dy) / radius
            v = (-sin * dx + cos * dy) / radius
            out[rows, 0] = _inside(shape, u, v).float()
    return out


# --------------------------------------------------------------------------- rectangles (unit 06)

RECTANGLE_FACTOR_NAMES = ("width", "height")
RECTANGLE_FACTOR_SIZES = (16, 16)
# (shortest, longest) width, then height: always wider than tall
RECTANGLE_EXTENT = ((16.0, 28.0), (4.0, 16.0))
RECTANGLE_EDGE = 1.0  # the soft edge: the logistic ramp's scale, in pixels


def rectangle_sides(n_values: int, size: int = 32, extent=RECTANGLE_EXTENT[0]) -> torch.Tensor:
    """The ``n_values`` side lengths (pixels) of one factor's grid, evenly spaced over ``extent`` =
    (shortest, longest), given in pixels of a 32-pixel image and scaled to ``size``."""
    n_values = checks.integer("n_values", n_values, low=2)
    try:
        lo, hi = (float(e) * size / 32 for e in extent)
    except (TypeError, ValueError):
        raise ValueError("extent must be (shortest, longest) side in pixels, got "
                         f"{extent!r}") from None
    if not 0 < lo < hi <= size:
        raise ValueError(f"extent must be two increasing side lengths in (0, {size}] pixels, got "
                         f"{extent!r}")
    return torch.linspace(lo, hi, n_values)


def render_rectangles(factors: torch.Tensor, size: int = 32, factor_sizes=RECTANGLE_FACTOR_SIZES,
                      edge: float = RECTANGLE_EDGE, extent=RECTANGLE_EXTENT) -> torch.Tensor:
    """Grey images (N, 1, size, size) of a centred, axis-aligned bright rectangle with soft edges.

    factors: integer indices (N, 2) into the grids of ``factor_sizes`` side lengths (width, height),
    evenly spaced over ``extent`` = ((shortest, longest) width, (shortest, longest) height), in
    pixels of a 32-pixel image. A pixel at (u, v) from the centre has intensity
    s((w/2 − |u|)/edge) · s((h/2 − |v|)/edge) with s the logistic function: 1 deep inside, ½ on the
    edge, 0 far outside, a ramp ``edge`` pixels wide. Width changes only the columns near the left
    and right edges and height only the rows near the top and bottom, which is why a β-VAE can line
    its latents up with them (unit 06).
    """
    factors = torch.as_tensor(factors)
    if factors.dim() != 2 or factors.shape[1] != 2 or factors.is_floating_point():
        raise ValueError("factors must be an integer tensor shaped (N, 2), got "
                         f"{tuple(factors.shape)} {factors.dtype}")
    if len(factor_sizes) != 2:
        raise ValueError("factor_sizes must give two grid sizes (width, height), got "
                         f"{factor_sizes!r}")
    size = checks.integer("size", size, low=8, hint="pixels")
    edge = checks.positive("edge", edge, hint="pixels")
    if len(extent) != 2:
        raise ValueError("extent must give a (shortest, longest) range for the width and one for "
                         f"the height, got {extent!r}")
    widths, heights = (rectangle_sides(n, size, e) for n, e in zip(factor_sizes, extent))
    sizes = torch.tensor(tuple(factor_sizes))
    if len(factors) and ((factors < 0).any() or (factors >= sizes).any()):
        raise ValueError("factors out of range: "
                         f"column i must lie in [0, {tuple(factor_sizes)}[i])")
    f = factors.long().cpu()
    # pixel centres, from the image centre
    coords = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2
    half_w = widths[f[:, 0]].view(-1, 1, 1) / 2
    half_h = heights[f[:, 1]].view(-1, 1, 1) / 2
    across = torch.sigmoid((half_w - coords.abs().view(1, 1, -1)) / edge)  # columns
    down = torch.sigmoid((half_h - coords.abs().view(1, -1, 1)) / edge)    # rows
    return (across * down).unsqueeze(1)


def measure_rectangles(images: torch.Tensor) -> torch.Tensor:
    """(width, height) in pixels of the bright rectangle in each grey image (N, 1, H, W): the summed
    intensity of the middle row (width) and of the middle column (height), each divided by the
    brightest pixel of the image.

    For a rectangle of :func:`render_rectangles` (edge 1 pixel) the reading grows with the side and
    does not depend on the other side; it is within 0.3 pixel of the side for sides from 8 to 28
    pixels of a 32-pixel image (the frame trims the widest a little) and reads short sides wide (by
    1.2 pixels at 4 pixels: their plateau stays below full brightness). For a decoded image it reads
    off the sides the decoder drew, which is how unit 06 tells which factor a latent moves. Returns
    (N, 2).
    """
    checks.images("images", images)
    x = images.detach().float().cpu()[:, 0]
    h, w = x.shape[1:]
    peak = x.flatten(1).amax(1).clamp_min(1e-6)
    middle_row = x[:, h // 2 - 1: h // 2 + 1 if h % 2 == 0 else h // 2 + 1].mean(1)     # (N, W)
    middle_col = x[:, :, w // 2 - 1: w // 2 + 1 if w % 2 == 0 else w // 2 + 1].mean(2)  # (N, H)
    return torch.stack([middle_row.sum(1) / peak, middle_col.sum(1) / peak], 1)
