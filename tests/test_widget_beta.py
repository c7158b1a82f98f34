"""vaeutils.widgets.beta, the β tools of unit 05 driven headlessly: the explorer's slider (image, numbers and
highlight swapped together), the explorer training its own sweep, the panels and the sweep gallery.

Everything runs on the offline MNIST's first 256 / 64 images and a two-model sweep trained for one epoch
(``mnist_tiny``, ``mnist_beta_sweep``: conftest.py), so the whole file takes seconds. The sweep itself is tested
in test_sweep.py, the sample judges in test_judge.py, the live trainer in test_widget_live.py.
"""

import pytest

from vaeutils import data
from vaeutils import sweep as S
from vaeutils.widgets import beta as B
from vaeutils.widgets import beta_explorer


def test_explorer_slider_swaps_image_numbers_and_highlight(mnist_tiny, mnist_beta_sweep):
    ex = beta_explorer(mnist_tiny, sweep=mnist_beta_sweep, progress=False, n_images=4, n_samples=8, n_traverse=3)
    assert ex.slider.options == (("0.5", 0.5), ("4", 4.0))
    start_png, start_point, start_html = ex.image.value, ex.highlight, ex.info.value
    assert ex.current_beta == 4.0  # no β = 1 in this sweep, so it opens at the middle
    assert start_png[:8] == b"\x89PNG\r\n\x1a\n"

    ex.slider.value = 0.5  # from Python: the update runs before this line returns
    assert ex.current_beta == 0.5 and ex.current_index == 0
    assert ex.image.value != start_png and ex.image.value == ex.panels[0]
    assert ex.highlight == (ex.points[0]["rate"], ex.points[0]["distortion"]) != start_point
    assert ex.info.value != start_html and "β = 0.5" in ex.info.value
    assert f'data-rate="{ex.points[0]["rate"]:.4f}"' in ex.info.value

    n = ex.n_updates
    ex.slider.value = 4.0
    assert ex.image.value == start_png and ex.highlight == start_point and ex.n_updates == n + 1


def test_explorer_trains_its_own_sweep(mnist_tiny):
    ex = beta_explorer(mnist_tiny, betas=(0.25, 1.0), epochs=1, cache=False, progress=False, n_images=2, n_samples=4)
    assert ex.betas == (0.25, 1.0) and ex.current_beta == 1.0 and len(ex.panels) == 2


def test_render_beta_panel_checks_its_index(mnist_tiny, mnist_beta_sweep):
    test_x = data.binarized(mnist_tiny).test_x
    points = S.sweep_points(mnist_beta_sweep, test_x)
    images = B.beta_panel_images(mnist_beta_sweep[0].model, test_x[:3], points[0]["kl_per_dim"], n_samples=4,
                                 n_traverse=2, steps=5)
    assert images["traversal"].shape == (2 * 5, 1, 28, 28) and len(images["dims"]) == 2
    assert B.render_beta_panel(points, 1, images)[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="index"):
        B.render_beta_panel(points, 2, images)


# --------------------------------------------------------------------------- unit 05's gallery

def test_sweep_gallery_has_a_row_per_beta_and_the_same_codes(mnist_tiny, mnist_beta_sweep):
    fig = B.sweep_gallery(mnist_beta_sweep, data.binarized(mnist_tiny).test_x[:5], n_samples=6, seed=3)
    assert len(fig.axes) == 2 * (len(mnist_beta_sweep) + 1)
    drawn = [ax.images[0].get_array() for ax in fig.axes[3::2]]  # the sample column of every β
    assert all(d.shape == drawn[0].shape for d in drawn) and not (drawn[0] == drawn[1]).all()
    with pytest.raises(TypeError, match="triples"):
        B.sweep_gallery([1, 2], mnist_tiny.test_x[:5])
