"""vaeutils.gans (unit 09): the discriminator step on detached fakes leaves the generator alone, and the cached
GAN loop is repeatable and keeps its snapshots."""

import pytest
import torch

from vaeutils import gans
from vaeutils.data import ImageData
from vaeutils.models import MLPDiscriminator, MLPGenerator
from vaeutils.objectives import gan_discriminator_loss


def images(n, seed=0, side=8):
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed))


def test_the_discriminator_step_on_detached_fakes_leaves_the_generator_alone():
    torch.manual_seed(0)
    G, D = MLPGenerator((1, 8, 8), latent_dim=4, hidden=(16,)), MLPDiscriminator((1, 8, 8), hidden=(16,))
    fake = G(torch.randn(8, 4))
    gan_discriminator_loss(D(images(8, 11)), D(fake.detach())).backward()
    assert all(p.grad is None for p in G.parameters())
    gan_discriminator_loss(D(images(8, 11)), D(fake)).backward()   # without detach: G gets gradients
    assert all(p.grad is not None for p in G.parameters())


@pytest.fixture
def random_8x8():
    """64 / 32 random 8×8 grey images with labels 0–9: data for a GAN to train on in a second."""
    x = images(64, 12)
    return ImageData(train_x=x, train_y=torch.arange(64) % 10, test_x=images(32, 13), test_y=torch.arange(32) % 10,
                     name="random-8x8", source="random 8×8 images")


def test_train_gan_is_repeatable_cached_and_keeps_snapshots(random_8x8, data_dir, monkeypatch):
    monkeypatch.setattr(gans, "GAN_G", {"latent_dim": 4, "hidden": (16,)})
    monkeypatch.setattr(gans, "GAN_D", {"hidden": (16,), "dropout": 0.3})
    G, _, history, loaded = gans.train_gan(random_8x8, "minimax", 6, snapshot_every=3, progress=False)
    assert not loaded and sorted(history["snapshots"]) == ["3", "6"] and len(history["d_loss"]) == 6
    G2, _, history2, loaded2 = gans.train_gan(random_8x8, "minimax", 6, snapshot_every=3, progress=False)
    assert loaded2 and history2["d_loss"] == history["d_loss"]
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
    at6 = gans.generator_at(history, 6, shape=(1, 8, 8), device="cpu")
    assert all(torch.equal(a, b.cpu()) for a, b in zip(at6.state_dict().values(), G.state_dict().values()))
    with pytest.raises(ValueError, match="no snapshot at step 4"):
        gans.generator_at(history, 4, shape=(1, 8, 8))
