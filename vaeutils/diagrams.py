"""Three diagrams the units draw instead of describing: the VAE as a graphical model, the encoder →
z → decoder pipeline with its two loss terms, and the reparameterisation step. Each function returns
a new ``matplotlib.figure.Figure`` (not one managed by pyplot, so nothing global changes); text is
12 pt or larger and the colours come from the Okabe–Ito palette (two lightened for box fills), which
stays distinguishable with any common colour-vision deficiency.
"""

from __future__ import annotations

from numbers import Integral

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

INK = "#1a1a1a"          # text and arrows: near-black on white
BLUE = "#0072B2"         # Okabe–Ito blue: the decoder, the generative direction
ORANGE = "#E69F00"       # random nodes
SKY = "#BFE2F6"          # the encoder: Okabe–Ito sky blue, lightened so black text reads on it
GREEN = "#9FD9C6"        # the decoder: Okabe–Ito bluish green, lightened
VERMILLION = "#D55E00"   # losses and gradients
GREY = "#BBBBBB"         # observed (shaded) nodes
FONT, SMALL, BIG = 14, 12, 16
DASH = (0, (5, 3))


def _canvas(figsize, xlim, ylim) -> tuple[Figure, object]:
    fig = Figure(figsize=figsize, dpi=100, facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    _blank(ax, xlim, ylim)
    return fig, ax


def _blank(ax, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


def _text(ax, x, y, s, size=FONT, color=INK, **kw):
    return ax.text(x, y, s, fontsize=size, color=color, ha=kw.pop("ha", "center"),
                   va=kw.pop("va", "center"), **kw)


def _circle(ax, xy, label, fill="white", r=0.55, size=BIG):
    patch = ax.add_patch(Circle(xy, r, facecolor=fill, edgecolor=INK, linewidth=2, zorder=2))
    _text(ax, *xy, label, size=size, zorder=3)
    return patch


def _box(ax, xy, w, h, label, fill="white", edge=INK, size=FONT,
         style="round,pad=0.02,rounding_size=0.12"):
    x, y = xy
    patch = ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style,
                                        facecolor=fill, edgecolor=edge, linewidth=2, zorder=2))
    _text(ax, x, y, label, size=size, zorder=3)
    return patch


def _arrow(ax, a, b, color=INK, dashed=False, rad=0.0, patch_a=None, patch_b=None, width=2.0):
    """An arrow from a to b, clipped at the patches it joins; a dashed one keeps a solid head."""
    arrow = FancyArrowPatch(a, b, patchA=patch_a, patchB=patch_b, shrinkA=3, shrinkB=3,
                            arrowstyle="-|>", mutation_scale=20, connectionstyle=f"arc3,rad={rad}",
                            color=color, linewidth=width, linestyle=DASH if dashed else "solid",
                            joinstyle="miter", zorder=1)
    ax.add_patch(arrow)
    return arrow


def _legend_line(ax, x, y, label, dashed=False, color=INK):
    ax.add_line(Line2D([x, x + 0.8], [y, y], color=color, linewidth=2,
                       linestyle=DASH if dashed else "solid"))
    _text(ax, x + 1.0, y, label, size=SMALL, ha="left")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int (e.g. {name}=20), got {value!r}")
    return int(value)


def graphical_model() -> Figure:
    """The VAE's generative model z → x in plate notation, the inference model q_φ(z|x) dashed."""
    fig, ax = _canvas((7.2, 6.4), (0, 10), (-0.9, 8))
    _text(ax, 5, 7.55, "The VAE as a graphical model", size=BIG, weight="bold")
    ax.add_patch(Rectangle((1.9, 0.9), 6.2, 6.2, facecolor="none", edgecolor=INK, linewidth=1.5))
    # the plate: N data points
    _text(ax, 7.75, 1.25, "$N$", size=BIG)
    z = _circle(ax, (5, 5.5), "$z$")
    x = _circle(ax, (5, 2.6), "$x$", fill=GREY)
    _text(ax, 5, 6.45, "latent", size=SMALL)
    _text(ax, 5, 1.6, "observed (shaded)", size=SMALL)
    _text(ax, 5.75, 5.5, r"$p(z) = \mathcal{N}(0, I)$", size=SMALL, ha="left")
    _arrow(ax, (5.25, 5.5), (5.25, 2.6), patch_a=z, patch_b=x, color=BLUE)     # generative: solid
    _arrow(ax, (4.75, 2.6), (4.75, 5.5), patch_a=x, patch_b=z, color=VERMILLION, dashed=True,
           rad=-0.55)
    _text(ax, 5.55, 4.05, r"$p_\theta(x \mid z)$", color=BLUE, ha="left")
    _text(ax, 3.95, 4.05, r"$q_\phi(z \mid x)$", color=VERMILLION, ha="right")
    # global parameters, outside
    theta = ax.add_patch(Circle((9.2, 2.6), 0.14, color=BLUE, zorder=2))
    phi = ax.add_patch(Circle((0.8, 5.5), 0.14, color=VERMILLION, zorder=2))
    _text(ax, 9.2, 3.1, r"$\theta$", color=BLUE, size=BIG)
    _text(ax, 0.8, 6.0, r"$\phi$", color=VERMILLION, size=BIG)
    _arrow(ax, (9.2, 2.6), (5, 2.6), patch_a=theta, patch_b=x, color=BLUE)
    _arrow(ax, (0.8, 5.5), (5, 5.5), patch_a=phi, patch_b=z, color=VERMILLION, dashed=True)
    _legend_line(ax, 0.3, 0.1, r"generative model $p(z)\,p_\theta(x \mid z)$", color=BLUE)
    _legend_line(ax, 0.3, -0.55, r"inference model $q_\phi(z \mid x)$ (the encoder)", dashed=True,
                 color=VERMILLION)
    return fig


def encoder_decoder(latent_dim: int = 20, image_side: int = 28) -> Figure:
    """The pipeline x → encoder → (μ, log σ²) → z → decoder → x̂, each loss term where it acts."""
    d = _positive_int("latent_dim", latent_dim)
    side = _positive_int("image_side", image_side)
    pixels = side * side
    fig, ax = _canvas((12.4, 6.2), (-0.1, 12.3), (-0.2, 6.0))
    _text(ax, 6.1, 5.65, r"A VAE in one pass: the loss is reconstruction + $\beta\cdot$KL",
          size=BIG, weight="bold")
    y = 3.0
    x_in = _box(ax, (0.85, y), 1.3, 1.5, "$x$", fill=GREY, size=BIG + 4)
    _text(ax, 0.85, y + 1.3, f"image\n{side}×{side} = {pixels}", size=SMALL)
    enc = ax.add_patch(Polygon([(2.2, y - 1.1), (2.2, y + 1.1), (4.0, y + 0.6), (4.0, y - 0.6)],
                               closed=True, facecolor=SKY, edgecolor=INK, linewidth=2, zorder=2))
    _text(ax, 3.1, y + 0.15, "encoder", size=SMALL, zorder=3)
    _text(ax, 3.1, y - 0.3, r"$q_\phi(z \mid x)$", size=SMALL, zorder=3)
    mu = _box(ax, (5.2, y + 0.8), 1.5, 0.75, rf"$\mu \in \mathbb{{R}}^{{{d}}}$", size=SMALL)
    lv = _box(ax, (5.2, y - 0.8), 1.5, 0.75, rf"$\log\sigma^2 \in \mathbb{{R}}^{{{d}}}$",
              size=SMALL)
    z = _circle(ax, (7.0, y), "$z$", fill=ORANGE, r=0.5)
    _text(ax, 7.0, y - 0.85, r"$\mu + \sigma \odot \varepsilon$", size=SMALL)
    dec = ax.add_patch(Polygon([(8.0, y - 0.6), (8.0, y + 0.6), (9.8, y + 1.1), (9.8, y - 1.1)],
                               closed=True, facecolor=GREEN, edgecolor=INK, linewidth=2, zorder=2))
    _text(ax, 8.9, y + 0.15, "decoder", size=SMALL, zorder=3)
    _text(ax, 8.9, y - 0.3, r"$p_\theta(x \mid z)$", size=SMALL, zorder=3)
    x_out = _box(ax, (11.2, y), 1.3, 1.5, r"$\hat{x}$", size=BIG + 4)
    _text(ax, 11.2, y + 1.3, f"decoder output\n{pixels} per image", size=SMALL)
    for a, b, pa, pb in [((1.5, y), (2.2, y), x_in, enc), ((4.0, y), (4.45, y + 0.8), enc, mu),
                         ((4.0, y), (4.45, y - 0.8), enc, lv), ((5.95, y + 0.8), (6.5, y), mu, z),
                         ((5.95, y - 0.8), (6.5, y), lv, z), ((7.5, y), (8.0, y), z, dec),
                         ((9.8, y), (10.55, y), dec, x_out)]:
        _arrow(ax, a, b, patch_a=pa, patch_b=pb)
    # KL acts on (μ, log σ²): a dashed frame around both, labelled above
    ax.add_patch(FancyBboxPatch((4.3, y - 1.35), 1.8, 2.7,
                                boxstyle="round,pad=0.02,rounding_size=0.2", facecolor="none",
                                edgecolor=VERMILLION, linewidth=2, linestyle=DASH))
    _text(ax, 5.2, y + 1.7, r"KL$\left(q_\phi(z \mid x)\,\Vert\,\mathcal{N}(0, I)\right)$",
          color=VERMILLION)
    # reconstruction acts between x and the decoder's output: a bracket underneath
    low = 0.75
    ax.add_line(Line2D([0.85, 0.85, 11.2, 11.2], [y - 0.8, low, low, y - 0.8], color=BLUE,
                       linewidth=2))
    _text(ax, 6.0, low - 0.4,
          r"reconstruction $-\log p_\theta(x \mid z)$: $x$ scored under the decoder's output",
          color=BLUE)
    return fig


def _backward(ax, a, b, label, at, patch_a=None, patch_b=None, rad=0.3, ha="center"):
    _arrow(ax, a, b, patch_a=patch_a, patch_b=patch_b, color=VERMILLION, dashed=True, rad=rad)
    _text(ax, *at, label, color=VERMILLION, size=FONT, ha=ha)


def reparameterisation() -> Figure:
    """Left: z drawn as a random node blocks the gradient. Right: z = μ + σ ⊙ ε passes it to μ
    and σ."""
    fig = Figure(figsize=(13.0, 6.2), dpi=100, facecolor="white")
    left, right = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.04)
    for ax in (left, right):
        _blank(ax, (0, 6.4), (-0.9, 5.9))
    # left: sampling
    _text(left, 3.2, 5.5, r"sampling $z \sim \mathcal{N}(\mu, \sigma^2)$", size=BIG, weight="bold")
    mu = _box(left, (0.8, 3.9), 0.9, 0.8, r"$\mu$")
    sd = _box(left, (0.8, 1.5), 0.9, 0.8, r"$\sigma$")
    z = _circle(left, (3.1, 2.7), "$z$", fill=ORANGE)
    loss = _box(left, (5.4, 2.7), 0.9, 0.8, "$L$")
    for a, b, pa, pb in [((0.8, 3.9), (3.1, 2.7), mu, z), ((0.8, 1.5), (3.1, 2.7), sd, z),
                         ((3.1, 2.7), (5.4, 2.7), z, loss)]:
        _arrow(left, a, b, patch_a=pa, patch_b=pb)
    _backward(left, (5.4, 2.7), (3.1, 2.7), r"$\partial L/\partial z$", (4.25, 3.55), loss, z,
              rad=0.45)
    # ... and stops at z
    _arrow(left, (3.1, 2.7), (1.85, 2.7), patch_a=z, color=VERMILLION, dashed=True)
    _text(left, 1.62, 2.7, r"$\times$", color=VERMILLION, size=28)
    _text(left, 3.1, 0.95, "a random draw:\nno gradient reaches μ or σ", color=VERMILLION,
          size=SMALL)
    # right: reparameterised
    _text(right, 3.2, 5.5, r"reparameterised $z = \mu + \sigma \odot \varepsilon$", size=BIG,
          weight="bold")
    mu = _box(right, (0.8, 3.9), 0.9, 0.8, r"$\mu$")
    sd = _box(right, (0.8, 1.5), 0.9, 0.8, r"$\sigma$")
    eps = _circle(right, (3.1, 4.45), r"$\varepsilon$", fill=ORANGE, r=0.45)
    _text(right, 3.7, 4.45, r"$\varepsilon \sim \mathcal{N}(0, I)$", size=SMALL, ha="left")
    z = _box(right, (3.1, 2.7), 0.9, 0.8, "$z$", size=BIG)
    loss = _box(right, (5.4, 2.7), 0.9, 0.8, "$L$")
    for a, b, pa, pb in [((0.8, 3.9), (3.1, 2.7), mu, z), ((0.8, 1.5), (3.1, 2.7), sd, z),
                         ((3.1, 4.45), (3.1, 2.7), eps, z), ((3.1, 2.7), (5.4, 2.7), z, loss)]:
        _arrow(right, a, b, patch_a=pa, patch_b=pb)
    _backward(right, (5.4, 2.7), (3.1, 2.7), r"$\partial L/\partial z$", (4.25, 3.55), loss, z,
              rad=0.45)
    _backward(right, (3.1, 2.7), (0.8, 3.9), r"$\partial L/\partial\mu$", (1.65, 4.55), z, mu,
              rad=0.35)
    _backward(right, (3.1, 2.7), (0.8, 1.5), r"$\partial L/\partial\sigma$", (2.35, 1.25), z, sd,
              rad=-0.35, ha="left")
    # one legend under both panels
    _circle(left, (0.5, -0.45), "", fill=ORANGE, r=0.22)
    _text(left, 0.9, -0.45, "random node", size=SMALL, ha="left")
    _box(left, (3.35, -0.45), 0.4, 0.4, "", style="round,pad=0.02,rounding_size=0.06")
    _text(left, 3.7, -0.45, "deterministic node", size=SMALL, ha="left")
    _legend_line(right, 0.2, -0.45, "forward pass")
    _legend_line(right, 3.0, -0.45, "gradient", dashed=True, color=VERMILLION)
    return fig
