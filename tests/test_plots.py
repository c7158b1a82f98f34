"""Shared pictures: grids tile correctly, a traversal shows models.traversal_images (tested in test_models.py), the
live training plot redraws in place, bad input is named."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaeutils import models, plots  # noqa: E402
from vaeutils.train import fit  # noqa: E402


def test_grid_array_places_each_image():
    x = torch.zeros(5, 1, 2, 3)
    for i in range(5):
        x[i] = i / 10
    g = plots.grid_array(x, nrow=3, pad=1)
    assert g.shape == (2 * 3 + 1, 3 * 4 + 1)
    assert g[1, 1] == pytest.approx(0.0) and g[1, 5] == pytest.approx(0.1) and g[4, 1] == pytest.approx(0.3)
    assert g[0, 0] == 1.0  # padding is white
    assert g[4, 9] == 1.0  # the empty sixth cell stays white


@pytest.mark.parametrize("shape, nrow, pad", [((5, 1, 2, 3), 3, 1), ((1, 1, 4, 4), 8, 2), ((7, 3, 5, 4), 2, 0),
                                            ((16, 1, 28, 28), 16, 1), ((9, 1, 3, 3), 4, 3), ((2, 3, 2, 2), 8, 1)])
def test_grid_array_lays_images_out_as_torchvision_make_grid(shape, nrow, pad):
    from torchvision.utils import make_grid

    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1  # some out of [0, 1]
    expected = make_grid(x, nrow=nrow, padding=pad, pad_value=1.0).clamp(0, 1).numpy()
    expected = expected[0] if shape[1] == 1 else expected.transpose(1, 2, 0)
    assert np.array_equal(plots.grid_array(x, nrow=nrow, pad=pad), expected)


def test_grid_array_rejects_bad_shapes():
    with pytest.raises(ValueError, match="images"):
        plots.grid_array(torch.zeros(3, 4))


def test_traversal_draws_the_models_traversal_images(tiny_vae):
    model = tiny_vae(in_shape=(1, 4, 4), hidden=(8,))
    ax = plots.traversal(model, torch.zeros(3), dims=[0, 2], span=2.0, steps=5)
    expected = plots.grid_array(models.traversal_images(model, torch.zeros(3), dims=[0, 2], span=2.0, steps=5), 5)
    assert np.array_equal(ax.images[0].get_array(), expected)  # two rows of five 4×4 images
    plt.close("all")


def test_rd_plane_marks_best_elbo_and_validates():
    ax = plots.rd_plane([1.0, 5.0, 20.0], [100.0, 90.0, 85.0], labels=["a", "b", "c"], highlight=1)
    star = [ln for ln in ax.lines if ln.get_marker() == "*"][0]
    assert star.get_xdata()[0] == 5.0  # 5 + 90 = 95 is the smallest D + R
    plt.close("all")
    with pytest.raises(ValueError, match="same"):
        plots.rd_plane([1.0, 2.0], [3.0])


def test_kl_bars_and_history_figures():
    ax = plots.kl_bars(np.array([0.0, 1.5, 3.0]), floor=0.5)
    assert len(ax.patches) == 3 and ax.patches[2].get_height() == pytest.approx(3.0)
    hist = {
        "train": [{"epoch": 1, "rec": 2.0, "kl": 1.0, "loss": 3.0}],
        "test": [{"epoch": 1, "rec": 2.5, "kl": 1.0, "loss": 3.5}],
    }
    fig = plots.plot_history(hist)
    assert len(fig.axes) == 3
    plt.close("all")


class _Handle:
    """Stands in for IPython's DisplayHandle: records what was shown and each update in place."""

    def __init__(self, shown):
        self.shown = shown

    def update(self, fig):
        self.shown.append(("update", fig))


def test_live_plot_shows_once_then_updates_in_place_every_n_epochs(tiny_vae, image_batch, monkeypatch):
    import IPython.display

    shown = []

    def display(fig, display_id=False):
        assert display_id is True  # a display id, so later epochs replace the figure instead of adding one
        shown.append(("display", fig))
        return _Handle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    figures_before = plt.get_fignums()
    live = plots.LivePlot(terms=("rec", "kl"), every=2, min_seconds=0)
    fit(tiny_vae(), image_batch, epochs=5, batch_size=3, test_x=image_batch, progress=False, callbacks=[live])
    assert [kind for kind, _ in shown] == ["display", "update", "update"]  # epochs 2 and 4, and the last
    last = shown[-1][1]
    assert [ax.get_title() for ax in last.axes] == ["reconstruction NLL", "KL"]
    train_line, test_line = last.axes[0].lines
    assert list(train_line.get_xdata()) == [1, 2, 3, 4, 5] and test_line.get_linestyle() == "--"
    assert list(shown[1][1].axes[0].lines[0].get_xdata()) == [1, 2, 3, 4]
    assert plt.get_fignums() == figures_before  # each figure is closed once shown: no pile-up in pyplot


def test_liveplot_draws_at_most_once_per_min_seconds_and_always_the_last_epoch(tiny_vae, image_batch, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda fig, display_id=False: shown.append(
        fig.axes[0].lines[0].get_xdata()[-1]) or _Handle([]))
    live = plots.LivePlot(terms=("loss",), min_seconds=3600)
    fit(tiny_vae(), image_batch, epochs=6, batch_size=3, progress=False, callbacks=[live])
    assert shown == [1]  # the first epoch: the later ones come sooner than an hour after it ...
    assert len(live.handle.shown) == 1  # ... except the last, which replaces the first drawing
    assert list(live.handle.shown[0][1].axes[0].lines[0].get_xdata()) == [1, 2, 3, 4, 5, 6]


def test_liveplot_refuses_a_zero_period():
    with pytest.raises(ValueError, match="every"):
        plots.LivePlot(every=0)
