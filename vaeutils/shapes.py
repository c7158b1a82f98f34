"""Procedural images drawn from known factors, for the disentanglement units: the dSprites-like sprites.

``render_sprites(factors)`` draws a white square, ellipse (2:1) or heart on black from integer factor indices
(shape, scale, rotation, x, y); ``vaeutils.data.sprites`` draws the factors and builds the data set.
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
_SPRITE_POSITIONS = torch.linspace(-0.5, 0.5, SPRITE_FACTOR_SIZES[3])  # keeps every sprite inside the frame
# Each shape turns through its own symmetry period, so no two rotation steps give the same picture.
_SPRITE_PERIODS = (math.pi / 2, math.pi, 2 * math.pi)
_HEART_RADIUS, _HEART_CENTRE = 1.3363, 0.1185  # circumradius and bounding-box centre of the heart curve


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Which points (u, v) of the sprite's own frame (circumradius 1) the shape covers."""
    if shape == 0:  # square
        return torch.maximum(u.abs(), v.abs()) <= 1 / math.sqrt(2)
    if shape == 1:  # ellipse, 2:1, so that its rotation shows
        return u**2 + (2 * v) ** 2 <= 1
    x, y = u * _HEART_RADIUS, v * _HEART_RADIUS + _HEART_CENTRE  # heart: (x² + y² - 1)³ <= x² y³
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def render_sprites(factors: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Binary float images (N, 1, size, size) drawn from factor indices (N, 5) in ``SPRITE_FACTOR_NAMES`` order.

    A white shape on black: square, ellipse (2:1) or heart; scale, rotation and x/y position on fixed grids.
    """
    factors = torch.as_tensor(factors)
    if factors.dim() != 2 or factors.shape[1] != 5 or factors.is_floating_point():
        raise ValueError(f"factors must be an integer tensor shaped (N, 5), got {tuple(factors.shape)} {factors.dtype}")
    sizes = torch.tensor(SPRITE_FACTOR_SIZES)
    if len(factors) and ((factors < 0).any() or (factors >= sizes).any()):
        raise ValueError(f"factors out of range: column i must lie in [0, {SPRITE_FACTOR_SIZES}[i])")
    size = checks.integer("size", size, low=8, hint="pixels")
    f = factors.long().cpu()
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    out = torch.empty(len(f), 1, size, size)
    for shape in range(len(SPRITE_SHAPES)):
        for rows in (f[:, 0] == shape).nonzero().squeeze(1).split(4096):  # chunks bound the intermediate grids
            c = f[rows]
            radius = (_SPRITE_SCALES[c[:, 1]] * _SPRITE_RADIUS).view(-1, 1, 1)
            angle = (c[:, 2].float() / SPRITE_FACTOR_SIZES[2] * _SPRITE_PERIODS[shape]).view(-1, 1, 1)
            dx = coords.view(1, 1, -1) - _SPRITE_POSITIONS[c[:, 3]].view(-1, 1, 1)
            dy = -coords.view(1, -1, 1) - _SPRITE_POSITIONS[c[:, 4]].view(-1, 1, 1)  # y up, rows down
            cos, sin = torch.cos(angle), torch.sin(angle)
            u = (cos * dx + sin * dy) / radius  # the pixel in the sprite's own frame (rotated by -angle)
            v = (-sin * dx + cos * dy) / radius
            out[rows, 0] = _inside(shape, u, v).float()
    return out
