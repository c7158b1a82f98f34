"""The free-bits explorer: pure functions on a tiny grid, then the widget driven headlessly.

ipywidgets swallows exceptions raised in a callback, so the state and drawing functions are tested
directly, and the widget test checks that moving a slider really changed what is shown.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vaeutils import losses as L
from vaeutils import sweep as S
from vaeutils.losses import ELBOLoss
from vaeutils.models import MLPVAE
from vaeutils.train import fit
from vaeutils.widgets import free_bits as FB

BETAS = (1.0, 4.0)
LAMBDAS = (0.0, 0.5)


@pytest.fixture(scope="module")
def grid():
    torch.manual_seed(0)
    x = (torch.rand(64, 1, 6, 6) > 0.5).float()
    models = {}
    for b in BETAS:
        for f in LAMBDAS:
            torch.manual_seed(1)
            m = MLPVAE(in_shape=(1, 6, 6), hidden=(16,), latent_dim=4)
            fit(m, x, ELBOLoss(beta=b, free_bits=f), epochs=3, batch_size=32, progress=False)
            models[(b, f)] = m
    return FB.grid_from_models(models, x, description="tiny test grid")


def test_grid_holds_every_cell(grid):
    assert grid.betas == BETAS and grid.free_bits == LAMBDAS
    assert set(grid.entries) == {(b, f) for b in BETAS for f in LAMBDAS}
    assert grid.latent_dim == 4
    e = grid.entries[(1.0, 0.0)]
    assert e["kl_per_dim"].shape == (4,)
    assert np.allclose(e["kl_per_dim"], L.kl_per_dim(e["mu"], e["logvar"]).mean(0).numpy())
    assert e["rate"] == pytest.approx(float(e["kl_per_dim"].sum()), rel=1e-5)
    assert e["reconstructions"].shape == e["originals"].shape


def test_state_numbers(grid):
    s = FB.free_bits_state(grid, 0.5, 4.0)
    e = grid.entries[(4.0, 0.5)]
    assert s["beta"] == 4.0 and s["free_bits"] == 0.5
    assert s["n_below"] == int((e["kl_per_dim"] < 0.5).sum())
    assert s["floor_term"] == pytest.approx(float(np.maximum(0.5, e["kl_per_dim"]).sum()), rel=1e-5)
    assert s["au_grid"].shape == (2, 2) and s["row"] == 1 and s["col"] == 1
    assert list(s["kl"][s["order"]]) == sorted(s["kl"], reverse=True)
    assert FB.free_bits_state(grid, 0, 1)["floor_term"] == pytest.approx(grid.entries[(1.0, 0.0)]["rate"], rel=1e-5)
    for b in BETAS:  # the floor term is at least d·λ and at least the rate it floors
        for f in LAMBDAS:
            st = FB.free_bits_state(grid, f, b)
            assert st["floor_term"] >= st["latent_dim"] * f - 1e-6 and st["floor_term"] >= st["rate"] - 1e-4


def test_state_rejects_values_outside_the_grid(grid):
    with pytest.raises(ValueError, match=r"free_bits=0.3 is not in the trained grid"):
        FB.free_bits_state(grid, 0.3, 1.0)
    with pytest.raises(ValueError, match="beta"):
        FB.free_bits_state(grid, 0.5, 2.0)
    with pytest.raises(TypeError, match="free_bits"):
        FB.free_bits_state(grid, "0.5", 1.0)
    with pytest.raises(TypeError, match="grid"):
        FB.free_bits_state({}, 0.5, 1.0)


def test_draw_and_render(grid):
    fig = FB.draw_free_bits(FB.free_bits_state(grid, 0.5, 1.0))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert any(line.get_linestyle() == "--" for line in fig.axes[0].get_lines()), "the λ floor is drawn"
    png = FB.render_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    no_floor = FB.draw_free_bits(FB.free_bits_state(grid, 0.0, 1.0))
    assert not no_floor.axes[0].get_lines(), "λ = 0 draws no floor"
    with pytest.raises(TypeError, match="state"):
        FB.draw_free_bits({"kl": [1.0]})
    with pytest.raises(TypeError, match="fig"):
        FB.draw_free_bits(FB.free_bits_state(grid, 0.5, 1.0), fig="figure")


def test_widget_moves_with_the_sliders(grid):
    w = FB.free_bits_explorer(grid)
    assert set(w.pngs) == set(grid.entries), "every cell is rendered at construction"
    assert w.state["beta"] == 1.0 and w.state["free_bits"] == 0.0
    first_png, first_updates = w.last_png, w.n_updates
    w.lambda_slider.value = 0.5
    assert w.state["free_bits"] == 0.5 and w.last_png != first_png
    assert "λ = 0.5" in w.summary.value
    w.beta_slider.value = 4.0
    assert w.state["beta"] == 4.0 and w.state is not None
    assert w.last_png == w.pngs[(4.0, 0.5)]
    assert w.n_updates == first_updates + 2
    assert w.output.layout.height.endswith("px")
    assert not w.lambda_slider.continuous_update


def test_widget_arguments(grid):
    w = FB.free_bits_explorer(grid, free_bits=0.5, beta=4.0)
    assert w.state["free_bits"] == 0.5 and w.state["beta"] == 4.0
    with pytest.raises(ValueError, match="not both"):
        FB.free_bits_explorer(grid, epochs=3)
    with pytest.raises(TypeError, match="FreeBitsGrid"):
        FB.FreeBitsExplorer({"a": 1})


def test_grid_from_models_arguments():
    """(The arguments of sweep.train_free_bits_grid, which trains the models: test_sweep.py.)"""
    with pytest.raises(TypeError, match="models"):
        FB.grid_from_models({}, torch.zeros(1, 1, 2, 2))
    m = MLPVAE(in_shape=(1, 2, 2), hidden=(4,), latent_dim=2)
    with pytest.raises(ValueError, match="full grid"):
        FB.grid_from_models({(1.0, 0.0): m, (2.0, 0.5): m}, torch.zeros(3, 1, 2, 2))


def test_the_default_grid_uses_the_beta_sweep_recipe(grid, monkeypatch):
    """Without a grid, the explorer trains DEFAULT_FREE_BITS x DEFAULT_BETAS with sweep.sweep_recipe() on the
    sweep's data, so its λ = 0 column is the β-sweep (shared checkpoints); training settings can override it."""
    from vaeutils import data as D

    seen = {}
    cell = next(iter(grid.entries.values()))

    def fake_grid(free_bits, betas, **kw):
        seen.update(free_bits=free_bits, betas=betas, **kw)
        torch.manual_seed(0)
        m = MLPVAE(in_shape=(1, 6, 6), hidden=(16,), latent_dim=4)
        return {(b, f): m for b in betas for f in free_bits}

    monkeypatch.setattr(FB, "train_free_bits_grid", fake_grid)
    x = torch.rand(20, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    images = D.ImageData(train_x=x, train_y=torch.zeros(20), test_x=x, test_y=torch.zeros(20), name="random-6x6",
                         source="test")
    w = FB.free_bits_explorer(data=images, epochs=3)
    assert set(FB.DEFAULT_BETAS) <= set(S.BETA_SWEEP), "the default β values are β-sweep models"
    assert seen["free_bits"] == FB.DEFAULT_FREE_BITS and seen["betas"] == FB.DEFAULT_BETAS
    assert {k: seen[k] for k in S.sweep_recipe() if k != "epochs"} == {
        k: v for k, v in S.sweep_recipe().items() if k != "epochs"}
    assert seen["epochs"] == 3, "a training setting passed to the explorer overrides the recipe"
    assert bool(((seen["data"].test_x == 0) | (seen["data"].test_x == 1)).all()), "measured on binary test images"
    assert w.grid.betas == FB.DEFAULT_BETAS and w.grid.latent_dim == len(cell["kl_per_dim"])
