"""vaeutils.judge (units 05 and 09): nearest-neighbour distances against a loop written out, the copy check on
copies and on fresh draws, sharpness and diversity by hand, the judge's Fréchet distance and coverage, and how
real prior samples are (the nearest binary image, counted in pixels; a decoder that copies scores zero)."""

import pytest
import torch
import torch.nn.functional as F

from vaeutils import data, judge, metrics
from vaeutils.models import SmallClassifier


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


# --------------------------------------------------------------------------- how real prior samples are (unit 05)

def test_nearest_distance_counts_pixels_and_expected_pixels():
    ref = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32).view(2, 1, 2, 2)
    binary = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.float32).view(3, 1, 2, 2)
    assert judge.nearest_distance(binary, ref).tolist() == [1.0, 1.0, 0.0]       # Hamming to the nearest
    grey = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.9, 0.8, 0.1, 0.0]]).view(2, 1, 2, 2)
    # E[pixels differing] of a binary draw from p against t is Σ|p − t|; the nearest reference for each
    assert judge.nearest_distance(grey, ref).numpy() == pytest.approx([2.0, 0.4], abs=1e-6)
    g = torch.Generator().manual_seed(0)
    draws = torch.bernoulli(grey[1:].expand(20000, -1, -1, -1), generator=g)
    assert (draws.flatten(1) != ref[0].flatten()).sum(1).float().mean().item() == pytest.approx(0.4, abs=0.02)
    with pytest.raises(ValueError, match="binary"):
        judge.nearest_distance(binary, grey)
    with pytest.raises(ValueError, match="same size"):
        judge.nearest_distance(binary, torch.zeros(2, 1, 3, 3))


def test_sample_realism_repeats_and_scores_a_copying_decoder_zero(mnist_tiny, mnist_beta_sweep):
    ref = data.binarized(mnist_tiny).test_x
    model = mnist_beta_sweep[0].model
    a, b = judge.sample_realism(model, ref, n=50, seed=4), judge.sample_realism(model, ref, n=50, seed=4)
    assert (a["distance"] == b["distance"]).all() and a["diversity"] == b["diversity"] > 0
    assert (a["distance"] > 0).all() and a["distance"].shape == (50,)

    class Copier(torch.nn.Module):  # "samples" that are reference images: distance 0, the most "too close"
        latent_dim = 2

        def eval(self):
            return self

        def sample(self, n, generator=None):
            return ref[torch.randint(len(ref), (n,), generator=generator)]

    copied = judge.sample_realism(Copier(), ref, n=30)
    assert (copied["distance"] == 0).all()
    with pytest.raises(ValueError, match="n_diversity"):
        judge.sample_realism(model, ref, n=10, n_diversity=20)
