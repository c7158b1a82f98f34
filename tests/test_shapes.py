"""vaeutils.shapes' rectangles and data.rectangles: the renderer, the measurement that reads the sides back, the
data set's factors, and the argument errors."""

import pytest
import torch

from vaeutils import data, shapes


def grid(n_w=16, n_h=16):
    w, h = torch.meshgrid(torch.arange(n_w), torch.arange(n_h), indexing="ij")
    return torch.stack([w.flatten(), h.flatten()], 1)


def test_rectangles_are_centred_grey_and_symmetric():
    x = shapes.render_rectangles(grid())
    assert x.shape == (256, 1, 32, 32) and x.dtype == torch.float32
    widths, heights = (shapes.rectangle_sides(16, extent=e) for e in shapes.RECTANGLE_EXTENT)
    assert widths.min() >= heights.max()  # the default data set: never taller than wide
    assert 0 <= x.min() and x.max() <= 1 and 0 < x.mean() < 1
    assert torch.allclose(x, x.flip(-1)) and torch.allclose(x, x.flip(-2))  # centred: mirror-symmetric
    assert ((x > 0.05) & (x < 0.95)).any()  # soft edges: grey pixels
    # the widest rectangle (28 of 32 px) leaves only the foot of its ramp on the frame
    assert x[:, :, 0].max() < 0.25 and x[:, :, :, 0].max() < 0.25


def test_width_moves_only_columns_and_height_only_rows():
    base = torch.tensor([[3, 9]])
    wider = shapes.render_rectangles(torch.tensor([[10, 9]])) - shapes.render_rectangles(base)
    taller = shapes.render_rectangles(torch.tensor([[3, 14]])) - shapes.render_rectangles(base)
    # A wider rectangle changes pixels left and right of the old one: the change is a column pattern times the
    # old height profile, so every changed row has the same column pattern (rank one), and vice versa.
    for change in (wider[0, 0], taller[0, 0]):
        assert torch.linalg.matrix_rank(change, atol=1e-5) == 1
    row, col = (lambda im: im[16, :].abs().sum()), (lambda im: im[:, 16].abs().sum())
    assert row(wider[0, 0]) > 3 and col(wider[0, 0]) < 0.05 * row(wider[0, 0])  # the middle column hardly changes
    assert col(taller[0, 0]) > 3 and row(taller[0, 0]) < 0.05 * col(taller[0, 0])


def test_measure_reads_the_sides_back():
    f = grid()
    sides = shapes.measure_rectangles(shapes.render_rectangles(f))
    true_w = shapes.rectangle_sides(16, extent=shapes.RECTANGLE_EXTENT[0])[f[:, 0]]
    true_h = shapes.rectangle_sides(16, extent=shapes.RECTANGLE_EXTENT[1])[f[:, 1]]
    err = torch.stack([sides[:, 0] - true_w, sides[:, 1] - true_h], 1).abs()
    assert err.max() < 1.25                                 # the docstring's promise
    assert err[torch.stack([true_w, true_h], 1) >= 8].max() < 0.3
    # one side's reading does not depend on the other side
    by_width = sides[:, 0].view(16, 16)
    assert (by_width.max(1).values - by_width.min(1).values).max() < 1e-4
    assert (torch.diff(by_width[:, 0]) > 0).all()           # and it grows with the side


def test_factor_sizes_extent_and_edge():
    x = shapes.render_rectangles(torch.tensor([[0, 0], [4, 2]]), size=24, factor_sizes=(5, 3),
                                 extent=((4, 20), (8, 12)))
    sides = shapes.measure_rectangles(x)
    assert x.shape == (2, 1, 24, 24)
    assert sides[1, 0] == pytest.approx(20 * 24 / 32, abs=0.3) and sides[1, 1] == pytest.approx(12 * 24 / 32, abs=0.3)
    sharp, soft = (shapes.render_rectangles(torch.tensor([[8, 8]]), edge=e) for e in (0.3, 2.0))
    grey = lambda im: ((im > 0.05) & (im < 0.95)).sum()  # noqa: E731
    assert grey(soft) > 2 * grey(sharp)


@pytest.mark.parametrize("factors, kwargs, error, match", [
    (torch.zeros(2, 3, dtype=torch.long), {}, ValueError, r"shaped \(N, 2\)"),
    (torch.zeros(2, 2), {}, ValueError, "integer"),
    (torch.tensor([[16, 0]]), {}, ValueError, "out of range"),
    (torch.tensor([[0, 0]]), {"extent": ((6, 26),)}, ValueError, "extent"),
    (torch.tensor([[0, 0]]), {"extent": ((26, 6), (6, 26))}, ValueError, "increasing"),
    (torch.tensor([[0, 0]]), {"edge": 0}, ValueError, "edge"),
    (torch.tensor([[0, 0]]), {"size": 4}, ValueError, "size"),
])
def test_bad_arguments_are_named(factors, kwargs, error, match):
    with pytest.raises(error, match=match):
        shapes.render_rectangles(factors, **kwargs)


def test_measure_rejects_non_images():
    with pytest.raises(ValueError, match="images"):
        shapes.measure_rectangles(torch.zeros(3, 32, 32))


def test_the_data_set_draws_independent_uniform_factors():
    a = data.rectangles(n=4000, n_test=50, seed=1, device="cpu")
    b = data.load("rectangles", n=300, n_test=50, seed=1, device="cpu")
    assert torch.equal(a.train_factors[:300], b.train_factors) and torch.equal(a.test_x, b.test_x)
    assert not torch.equal(a.train_factors[:300], data.rectangles(n=300, n_test=5, seed=2, device="cpu").train_factors)
    assert a.factor_names == ("width", "height") and a.factor_sizes == shapes.RECTANGLE_FACTOR_SIZES
    f = a.train_factors
    assert f.dtype == torch.int64 and (f >= 0).all() and (f < torch.tensor(a.factor_sizes)).all()
    counts = torch.bincount(f[:, 0], minlength=a.factor_sizes[0]).float()
    assert counts.min() > 0.6 * counts.mean()                       # uniform
    assert abs(torch.corrcoef(f.T.float())[0, 1]) < 0.05            # independent
    assert torch.equal(a.train_y, f[:, 0]) and a.image_shape == (1, 32, 32)
    assert "rectangles" in data.DATASETS and "rectangles" in repr(a)
    # each factor value is a bin of sub_steps sides: the measured sides fall inside their bins (± the 1.25 px of
    # measurement), and within a bin they vary (the images are not a 16 x 16 grid)
    sides = shapes.measure_rectangles(a.train_x)
    for k in range(2):
        edges = shapes.rectangle_sides(16 * 4, extent=shapes.RECTANGLE_EXTENT[k]).view(16, 4)
        lo, hi = edges[f[:, k], 0], edges[f[:, k], -1]
        assert ((sides[:, k] > lo - 0.3) & (sides[:, k] < hi + 1.25)).all()  # the frame trims the widest by 0.25
    in_bin = sides[(f[:, 0] == 5) & (f[:, 1] == 5), 0]
    assert in_bin.max() - in_bin.min() > 0.5
    assert a.train_x.max() <= 1 and a.train_x.min() >= 0
