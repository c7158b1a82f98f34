"""vaeutils.diagrams: each diagram is a pyplot-free Figure with the expected labels, renders to PNG, has no
overlapping or small text, and rejects bad arguments by name."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vaeutils import diagrams, plots  # noqa: E402

# (builder, labels that must appear in the figure's text, as written in matplotlib's mathtext)
EXPECTED = {
    "graphical_model": (diagrams.graphical_model, [
        "$z$", "$x$", "$N$", r"$\theta$", r"$\phi$", r"$p_\theta(x \mid z)$", r"$q_\phi(z \mid x)$",
        r"$p(z) = \mathcal{N}(0, I)$", "observed"]),
    "encoder_decoder": (diagrams.encoder_decoder, [
        "encoder", "decoder", r"$q_\phi(z \mid x)$", r"$p_\theta(x \mid z)$", r"$\mu \in \mathbb{R}^{20}$",
        r"$\log\sigma^2 \in \mathbb{R}^{20}$", "$z$", r"$\hat{x}$", "28×28 = 784", r"\mathcal{N}(0, I)", "KL",
        r"reconstruction $-\log p_\theta(x \mid z)$"]),
    "reparameterisation": (diagrams.reparameterisation, [
        r"$z \sim \mathcal{N}(\mu, \sigma^2)$", r"$z = \mu + \sigma \odot \varepsilon$",
        r"$\varepsilon \sim \mathcal{N}(0, I)$", r"$\partial L/\partial\mu$", r"$\partial L/\partial\sigma$",
        r"$\partial L/\partial z$", "no gradient", "random node", "deterministic node"]),
}


def texts(fig):
    """Every visible, non-empty Text of the figure: figure texts, axes texts and axes titles."""
    found = list(fig.texts)
    for ax in fig.axes:
        found += list(ax.texts) + [ax.title, ax._left_title, ax._right_title]
    return [t for t in found if t.get_visible() and t.get_text().strip()]


@pytest.fixture(params=sorted(EXPECTED))
def built(request):
    builder, labels = EXPECTED[request.param]
    figures_before = plt.get_fignums()
    fig = builder()
    assert plt.get_fignums() == figures_before, "a diagram must not create pyplot figures"
    return request.param, fig, labels


def test_returns_a_figure_with_the_expected_labels(built):
    name, fig, labels = built
    assert isinstance(fig, Figure)
    written = [t.get_text() for t in texts(fig)]
    for label in labels:
        assert any(label in w for w in written), f"{name}: no text contains {label!r}; texts are {written}"


def test_renders_to_png(built):
    _, fig, _ = built
    png = plots.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_text_is_large_enough_for_a_projector(built):
    name, fig, _ = built
    small = [(t.get_text(), t.get_fontsize()) for t in texts(fig) if t.get_fontsize() < 11]
    assert not small, f"{name}: text under 11 pt: {small}"


def test_no_two_texts_overlap_and_all_stay_inside(built):
    name, fig, _ = built
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    page = fig.bbox
    for text, box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, \
            f"{name}: {text!r} runs off the figure"
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{name}: {a!r} overlaps {b!r}"


def test_encoder_decoder_labels_follow_the_arguments():
    fig = diagrams.encoder_decoder(latent_dim=2, image_side=32)
    written = " ".join(t.get_text() for t in texts(fig))
    assert r"\mathbb{R}^{2}$" in written and "32×32 = 1024" in written and "1024 per image" in written


@pytest.mark.parametrize("kwargs, name", [
    ({"latent_dim": 0}, "latent_dim"), ({"latent_dim": -3}, "latent_dim"), ({"latent_dim": True}, "latent_dim"),
    ({"latent_dim": 2.0}, "latent_dim"), ({"image_side": 2.5}, "image_side"), ({"image_side": 0}, "image_side"),
    ({"image_side": "28"}, "image_side"),
])
def test_encoder_decoder_rejects_bad_arguments_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        diagrams.encoder_decoder(**kwargs)
