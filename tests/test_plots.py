"""Shared pictures: grids tile correctly, traversals sweep one dimension, bad input is named."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaeutils import plots  # noqa: E402
from vaeutils.models import MLPVAE  # noqa: E402


def test_grid_array_places_each_image():
    x = torch.zeros(5, 1, 2, 3)
    for i in range(5):
        x[i] = i / 10
    g = plots.grid_array(x, nrow=3, pad=1)
    assert g.shape == (2 * 3 + 1, 3 * 4 + 1)
    assert g[1, 1] == pytest.approx(0.0) and g[1, 5] == pytest.approx(0.1) and g[4, 1] == pytest.approx(0.3)
    assert g[0, 0] == 1.0  # padding is white
    assert g[4, 9] == 1.0  # the empty sixth cell stays white


def test_grid_array_rejects_bad_shapes():
    with pytest.raises(ValueError, match="images"):
        plots.grid_array(torch.zeros(3, 4))


def test_traversal_sweeps_one_dimension_per_row():
    torch.manual_seed(0)
    model = MLPVAE(in_shape=(1, 4, 4), hidden=(8,), latent_dim=3)
    imgs = plots.traversal_images(model, torch.zeros(3), dims=[0, 2], span=2.0, steps=5)
    assert imgs.shape == (10, 1, 4, 4)
    centre = model.mean_image(model.decode(torch.zeros(1, 3)))
    assert torch.allclose(imgs[2], centre[0]) and torch.allclose(imgs[7], centre[0])
    assert not torch.allclose(imgs[0], imgs[4])


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
