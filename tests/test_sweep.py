"""vaeutils.sweep: the β-sweep (one model per β, bad βs named, trained once then loaded, its points measured by
metrics.summary), the recipe written once (a free-bits grid trained with it shares the sweep's checkpoints), the
free-bits grid's arguments, and the sweep's VAE with a learned prior.

The sweep runs on the offline MNIST's first 256 / 64 images for one epoch (``mnist_beta_sweep``, conftest.py)."""

import pytest
import torch

from vaeutils import config, data, metrics, priors, sweep


def test_sweep_returns_one_entry_per_beta(mnist_beta_sweep):
    assert [e.beta for e in mnist_beta_sweep] == [0.5, 4.0]
    beta, model, history = mnist_beta_sweep[0]
    assert beta == 0.5 and model.latent_dim == sweep.SWEEP_LATENT_DIM and len(history["train"]) == 1


@pytest.mark.parametrize("betas", [(), (1.0,), (2.0, 1.0), (0.0, 1.0), (1.0, 1.0), (1.0, float("nan")), 3.0])
def test_bad_betas_are_named(mnist_tiny, betas):
    with pytest.raises((ValueError, TypeError), match="β|betas"):
        sweep.train_beta_sweep(mnist_tiny, betas, epochs=1, cache=False, progress=False)


def test_sweep_trains_once_then_loads_from_the_cache(mnist_tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    first = sweep.train_beta_sweep(mnist_tiny, (0.5, 4.0), epochs=1)
    assert "0 loaded from the cache, 2 trained" in capsys.readouterr().out
    second = sweep.train_beta_sweep(mnist_tiny, (0.5, 4.0), epochs=1)
    assert "2 loaded from the cache, 0 trained" in capsys.readouterr().out
    assert len(list(tmp_path.glob(f"{sweep.SWEEP_NAME}-*.pt"))) == 2
    for a, b in zip(first, second):
        assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_sweep_points_are_summaries_that_add_up(mnist_tiny, mnist_beta_sweep):
    test_x = data.binarized(mnist_tiny).test_x
    points = sweep.sweep_points(mnist_beta_sweep, test_x)
    for p, e in zip(points, mnist_beta_sweep):
        assert p["beta"] == e.beta and p["rate"] == metrics.summary(e.model, test_x)["rate"]
        assert p["neg_elbo"] == pytest.approx(p["rate"] + p["distortion"])
        assert p["kl_per_dim"].sum() == pytest.approx(p["rate"], rel=1e-4)
        assert 0 <= p["active"] <= p["latent_dim"] == sweep.SWEEP_LATENT_DIM
    with pytest.raises(TypeError, match="triples"):
        sweep.sweep_points([1, 2], test_x)


def test_the_recipe_is_the_sweeps_settings(monkeypatch):
    recipe = sweep.sweep_recipe()
    assert recipe == {"model": "mlp", "hidden": sweep.SWEEP_HIDDEN, "latent_dim": sweep.SWEEP_LATENT_DIM,
                      "epochs": sweep.sweep_epochs(), "seed": 0, "binarize": True, "name": sweep.SWEEP_NAME}
    monkeypatch.setenv("SMOKE", "1")
    assert sweep.sweep_epochs() == 2
    monkeypatch.setenv("SMOKE", "0")
    assert sweep.sweep_epochs() == 40


def test_a_free_bits_grid_with_the_sweep_recipe_shares_the_sweep_checkpoints(data_dir):
    """The λ = 0 cells of a grid trained with sweep_recipe() are the β-sweep's own checkpoints: unit 07's explorer
    loads that column instead of training it again (4×4 images, so the sweep's epochs cost nothing)."""
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    images = data.ImageData(train_x=x, train_y=torch.zeros(6), test_x=x, test_y=torch.zeros(6), name="4x4",
                            source="test")
    entries = sweep.train_beta_sweep(images, betas=(1.0, 4.0), progress=False)
    files = sorted(p.name for p in (data_dir / "cache").glob("*.pt"))
    assert len(files) == 2
    grid = sweep.train_free_bits_grid((0.0, 0.5), (1.0, 4.0), data=data.binarized(images), progress=False,
                                      **sweep.sweep_recipe())
    after = sorted(p.name for p in (data_dir / "cache").glob("*.pt"))
    assert len(after) == 4 and set(files) <= set(after), "only the two λ = 0.5 cells are new checkpoints"
    for e in entries:
        same = [torch.equal(a, b) for a, b in zip(e.model.state_dict().values(),
                                                    grid[(e.beta, 0.0)].state_dict().values(), strict=True)]
        assert all(same)


def test_free_bits_grid_arguments():
    with pytest.raises(ValueError, match="free_bits"):
        sweep.train_free_bits_grid((-0.5,), (1.0,))
    with pytest.raises(ValueError, match="repeat"):
        sweep.train_free_bits_grid((0.5, 0.5), (1.0,))
    with pytest.raises(ValueError, match="betas"):
        sweep.train_free_bits_grid((0.5,), (0.0, 1.0))
    with pytest.raises(ValueError, match="loss_kw"):
        sweep.train_free_bits_grid((0.5,), (1.0,), loss_kw={"beta": 2.0})
    with pytest.raises(TypeError, match="settings"):
        sweep.train_many([], data=None, name="nothing")


@pytest.fixture
def random_8x8():
    """64 / 32 random 8×8 grey images, the test images rounded to binary (what data.binarized would leave)."""
    g = torch.Generator().manual_seed(12)
    return data.ImageData(train_x=torch.rand(64, 1, 8, 8, generator=g), train_y=torch.arange(64) % 10,
                          test_x=torch.rand(32, 1, 8, 8, generator=g).round(), test_y=torch.arange(32) % 10,
                          name="random-8x8", source="random 8×8 images")


def test_train_prior_vae_caches_both_kinds_of_prior(random_8x8, data_dir, monkeypatch):
    monkeypatch.setattr(sweep, "SWEEP_HIDDEN", (16,))  # the recipe reads them when it is called
    monkeypatch.setattr(sweep, "SWEEP_LATENT_DIM", 3)
    result = sweep.train_prior_vae(random_8x8, "mog", n_components=4, epochs=1, progress=False)
    assert not result.loaded and isinstance(result.model.prior, priors.MixturePrior)
    assert sweep.train_prior_vae(random_8x8, "mog", n_components=4, epochs=1, progress=False).loaded
    vamp = sweep.train_prior_vae(random_8x8, "vamp", n_components=4, epochs=1, progress=False).model
    assert vamp.prior.pseudo_inputs.shape == (4, 1, 8, 8)
    picked = [int((random_8x8.train_x - u).flatten(1).abs().amax(1).argmin()) for u in vamp.prior.pseudo_inputs]
    assert len(set(picked)) == 4  # started at four different training images
