"""vaeutils.judge (unit 09): nearest-neighbour distances against a loop written out, the copy check on copies and
on fresh draws, sharpness and diversity by hand, the judge's Fréchet distance and coverage, and the cached GAN
loop (its discriminator step leaves the generator alone)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from vaeutils import judge, metrics
from vaeutils.data import ImageData
from vaeutils.models import MLPDiscriminator, MLPGenerator, SmallClassifier


def images(n, seed=0, side=8):
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed))


def test_nearest_neighbour_distances_match_a_loop():
    a, ref = images(7, 0), images(11, 1)
    expected = torch.tensor([min(float((x.double() - r.double()).flatten().norm()) for r in ref) for x in a])
    assert torch.allclose(judge.nn_distances(a, ref), expected.double(), rtol=1e-6)


def test_exclude_self_skips_the_image_itself_and_finds_the_next_one():
    ref = images(12, 2)
    d = torch.cdist(ref.flatten(1).double(), ref.flatten(1).double())
    second = d.sort(1).values[:, 1]  # the nearest other image
    assert judge.nn_distances(ref[:5], ref).max() < 1e-5                        # without: each finds itself
    assert torch.allclose(judge.nn_distances(ref[:5], ref, exclude_self=True), second[:5], rtol=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        judge.nn_distances(images(3, side=4), ref)


def test_the_copy_check_catches_copies_and_passes_fresh_draws():
    train, test = images(400, 3), images(400, 4)
    real_nn = judge.nn_distances(test, train)
    fresh = judge.nn_distances(images(400, 5), train)
    copies = judge.nn_distances((train[:400] + 0.01 * images(400, 6)).clamp(0, 1), train)
    assert judge.copy_fraction(copies, real_nn) == 1.0
    assert judge.copy_fraction(fresh, real_nn) == pytest.approx(0.05, abs=0.04)
    with pytest.raises(ValueError, match="level"):
        judge.copy_fraction(fresh, real_nn, level=0.0)


def test_sharpness_and_diversity_by_hand():
    x = torch.zeros(1, 1, 2, 3)
    x[..., 0, 1] = 1.0  # one bright pixel: horizontal differences 1, 1 of 4; vertical 1 of 3
    assert judge.sharpness(x) == pytest.approx(2 / 4 + 1 / 3)
    sharp = images(16, 7, side=16).round()
    blurred = F.avg_pool2d(sharp, 3, stride=1, padding=1)
    assert judge.sharpness(blurred) < 0.5 * judge.sharpness(sharp)
    pair = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    assert judge.diversity(pair) == pytest.approx(2.0)                      # √4 pixels × 1
    assert judge.diversity(sharp[:1].repeat(5, 1, 1, 1)) == 0.0


def test_judge_scores_a_set_against_itself_as_identical():
    torch.manual_seed(0)
    clf = SmallClassifier(in_shape=(1, 8, 8), channels=(4, 8), feature_dim=6)
    test, train = images(200, 8), images(300, 9)
    real_nn = judge.nn_distances(test[:100], train)
    same = judge.judge(test, clf, test, train, n_nn=100, real_nn=real_nn)
    assert abs(same["FD"]) < 1e-6 and same["nn_ratio"] == pytest.approx(1.0)
    assert same["copies"] == pytest.approx(0.05, abs=0.02)
    with torch.no_grad():
        probs = F.softmax(clf(test), 1)
    assert same["confidence"] == pytest.approx(float(probs.max(1).values.mean()), rel=1e-5)
    assert same["coverage"]["counts"].tolist() == metrics.class_coverage(probs.argmax(1), 10)["counts"].tolist()
    assert torch.allclose(judge.top_probability(clf, test), probs.max(1).values.double(), rtol=1e-5)
    other = judge.judge(images(200, 10) * 0.2, clf, test, train, n_nn=100, real_nn=real_nn)
    assert other["FD"] > 0 and other["sharpness"] < same["sharpness"]


def test_the_discriminator_step_on_detached_fakes_leaves_the_generator_alone():
    torch.manual_seed(0)
    G, D = MLPGenerator((1, 8, 8), latent_dim=4, hidden=(16,)), MLPDiscriminator((1, 8, 8), hidden=(16,))
    fake = G(torch.randn(8, 4))
    judge.gan_discriminator_loss(D(images(8, 11)), D(fake.detach())).backward()
    assert all(p.grad is None for p in G.parameters())
    judge.gan_discriminator_loss(D(images(8, 11)), D(fake)).backward()   # without detach: G gets gradients
    assert all(p.grad is not None for p in G.parameters())


@pytest.fixture
def tiny_data():
    x = images(64, 12)
    return ImageData(train_x=x, train_y=torch.arange(64) % 10, test_x=images(32, 13), test_y=torch.arange(32) % 10,
                     name="tiny", source="random 8×8 images")


def test_train_gan_is_repeatable_cached_and_keeps_snapshots(tiny_data, data_dir, monkeypatch):
    monkeypatch.setattr(judge, "GAN_G", {"latent_dim": 4, "hidden": (16,)})
    monkeypatch.setattr(judge, "GAN_D", {"hidden": (16,), "dropout": 0.3})
    G, _, history, loaded = judge.train_gan(tiny_data, "minimax", 6, snapshot_every=3, progress=False)
    assert not loaded and sorted(history["snapshots"]) == ["3", "6"] and len(history["d_loss"]) == 6
    G2, _, history2, loaded2 = judge.train_gan(tiny_data, "minimax", 6, snapshot_every=3, progress=False)
    assert loaded2 and history2["d_loss"] == history["d_loss"]
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
    at6 = judge.generator_at(history, 6, shape=(1, 8, 8), device="cpu")
    assert all(torch.equal(a, b.cpu()) for a, b in zip(at6.state_dict().values(), G.state_dict().values()))
    with pytest.raises(ValueError, match="no snapshot at step 4"):
        judge.generator_at(history, 4, shape=(1, 8, 8))


def test_train_prior_vae_caches_both_kinds_of_prior(tiny_data, data_dir, monkeypatch):
    monkeypatch.setattr(judge, "SWEEP_HIDDEN", (16,))
    monkeypatch.setattr(judge, "SWEEP_LATENT_DIM", 3)
    data = dataclasses.replace(tiny_data, test_x=tiny_data.test_x.round())
    result = judge.train_prior_vae(data, "mog", n_components=4, epochs=1, progress=False)
    assert not result.loaded and isinstance(result.model.prior, judge._priors.MixturePrior)
    assert judge.train_prior_vae(data, "mog", n_components=4, epochs=1, progress=False).loaded
    vamp = judge.train_prior_vae(data, "vamp", n_components=4, epochs=1, progress=False).model
    assert vamp.prior.pseudo_inputs.shape == (4, 1, 8, 8)
    picked = [int((tiny_data.train_x - u).flatten(1).abs().amax(1).argmin()) for u in vamp.prior.pseudo_inputs]
    assert len(set(picked)) == 4  # started at four different training images
