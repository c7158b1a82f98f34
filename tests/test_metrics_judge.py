"""Judging samples offline (unit 09): the Fréchet distance against closed forms, and the
class-coverage entropy."""

import math

import numpy as np
import pytest
import torch

from vaeutils.metrics import class_coverage, frechet_distance, frechet_from_stats

# --------------------------------------------------------------------------- Fréchet distance


def test_diagonal_covariances_have_the_closed_form():
    """For diagonal Σ the matrix square roots are elementwise: ||Δμ||² + Σ_i (σa_i − σb_i)²."""
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.5])
    sd_a, sd_b = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 0.5, 0.5])
    expected = (mu_a - mu_b).square().sum() + (sd_a - sd_b).square().sum()
    got = frechet_from_stats(mu_a, torch.diag(sd_a**2), mu_b, torch.diag(sd_b**2))
    assert got == pytest.approx(float(expected), rel=1e-10)


def test_general_covariances_match_the_eigenvalues_of_the_product():
    """Tr((Σa Σb)^{1/2}) = Σ sqrt(eigenvalues of Σa Σb): an independent route to the cross term."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)  # do not commute
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    cross = np.sqrt(np.linalg.eigvals(cov_a @ cov_b).real).sum()
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b) - 2 * cross
    assert frechet_from_stats(mu_a, cov_a, mu_b, cov_b) == pytest.approx(expected, rel=1e-8)


def test_identical_gaussians_are_at_distance_zero_and_the_distance_is_symmetric():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(3, 3))
    cov, mu = m @ m.T + np.eye(3), rng.normal(size=3)
    assert abs(frechet_from_stats(mu, cov, mu, cov)) < 1e-9
    cov_b = 2 * np.eye(3)
    assert frechet_from_stats(mu, cov, 0 * mu, cov_b) == pytest.approx(frechet_from_stats(0 * mu, cov_b, mu, cov))


def test_from_samples_of_known_gaussians():
    """Sample estimates converge to the closed form; 20,000 samples in 2-D land within 2 %."""
    g = torch.Generator().manual_seed(0)
    n = 20_000
    a = torch.randn(n, 2, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.randn(n, 2, generator=g, dtype=torch.float64) * torch.tensor([0.5, 1.0], dtype=torch.float64)
    b = b + torch.tensor([1.0, -1.0], dtype=torch.float64)
    expected = 2.0 + (1.0 - 0.5) ** 2 + (2.0 - 1.0) ** 2  # ||Δμ||² = 2, then Σ(σa − σb)²
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    assert frechet_distance(a.numpy(), b.numpy()) == pytest.approx(frechet_distance(a, b))


def test_same_distribution_gives_a_small_positive_bias():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    assert 0 <= frechet_distance(a, b) < 0.1


@pytest.mark.parametrize("a, b, error", [
    (torch.zeros(10, 3), torch.zeros(10, 4), ValueError),
    (torch.zeros(1, 3), torch.zeros(10, 3), ValueError),
    (torch.zeros(10), torch.zeros(10), ValueError),
    ([[0.0, 1.0]], torch.zeros(10, 2), TypeError),
])
def test_frechet_names_bad_input(a, b, error):
    with pytest.raises(error, match="feats_a"):
        frechet_distance(a, b)


# --------------------------------------------------------------------------- class coverage


def test_uniform_predictions_have_entropy_log_k():
    out = class_coverage(np.repeat(np.arange(10), 7), 10)
    assert out["entropy"] == pytest.approx(math.log(10))
    assert out["normalized_entropy"] == pytest.approx(1.0)
    assert out["covered"] == 10
    assert out["counts"].tolist() == [7] * 10
    assert out["freqs"].sum() == pytest.approx(1.0)


def test_a_single_class_has_entropy_zero():
    out = class_coverage(torch.full((50,), 3), 10)
    assert out["entropy"] == 0.0 and out["normalized_entropy"] == 0.0
    assert out["covered"] == 1 and out["counts"][3] == 50


def test_two_equal_classes_have_entropy_log_2():
    out = class_coverage(np.array([0, 1] * 5), 4)
    assert out["entropy"] == pytest.approx(math.log(2))
    assert out["normalized_entropy"] == pytest.approx(0.5)
    assert out["covered"] == 2


@pytest.mark.parametrize("labels, k, error, match", [
    (np.array([0, 1, 10]), 10, ValueError, "pred_labels must lie"),
    (np.array([-1, 0]), 10, ValueError, "pred_labels must lie"),
    (np.array([], dtype=np.int64), 10, ValueError, "empty"),
    (np.array([0, 1]), 1, ValueError, "n_classes"),
    (np.array([0, 1]), 2.0, ValueError, "n_classes"),
    ([0, 1], 10, TypeError, "pred_labels"),
])
def test_class_coverage_names_bad_input(labels, k, error, match):
    with pytest.raises(error, match=match):
        class_coverage(labels, k)


def test_non_integer_labels_and_non_finite_features_are_refused():
    with pytest.raises(ValueError, match="pred_labels must be integer"):
        class_coverage(np.array([0.0, 1.7]), 10)
    assert class_coverage(np.array([0.0, 1.0]), 2)["covered"] == 2  # whole-number floats are fine
    bad = torch.zeros(5, 2)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(bad, torch.zeros(5, 2))


# --------------------------------------------------------------------------- bad input gets a clear error

def test_one_hot_labels_are_refused_not_flattened():
    """np.eye(10)[labels] used to be flattened into 0/1 "labels": covered = 2 for 10 classes."""
    one_hot = np.eye(10)[np.arange(10)]
    with pytest.raises(ValueError, match=r"one-hot.*argmax\(1\)"):
        class_coverage(one_hot, 10)
    with pytest.raises(ValueError, match=r"pred_labels must be shaped \(N,\)"):
        class_coverage(np.zeros((3, 4), dtype=np.int64) + 2, 10)
    assert class_coverage(one_hot.argmax(1), 10)["covered"] == 10


def test_huge_features_give_the_scaled_distance_or_a_clear_error():
    g = np.random.default_rng(0)
    a, b = g.normal(size=(200, 4)), g.normal(1.0, 2.0, size=(200, 4))
    base = frechet_distance(a, b)
    assert frechet_distance(a * 1e100, b * 1e100) == pytest.approx(base * 1e200, rel=1e-9)  # was: eigh failed
    assert frechet_distance(a * 1e-100, b * 1e-100) == pytest.approx(base * 1e-200, rel=1e-9)
    with pytest.raises(ValueError, match="too large"):
        frechet_distance(a * 1e200, b * 1e200)  # the distance itself, 1e400, is past float64


def test_features_need_at_least_one_dimension():
    with pytest.raises(ValueError, match="at least one feature"):
        frechet_distance(np.zeros((5, 0)), np.zeros((5, 0)))


@pytest.mark.parametrize("stats, match", [
    ((np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "same size"),
    ((np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), r"cov_a must be shaped \(2, 2\)"),
    ((np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2)), r"mu_a must be a vector"),
    ((np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2)), "cov_a must be symmetric"),
    ((np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])), "positive semi-definite"),
    ((np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2)), "finite"),
    ((np.zeros(2), np.eye(2), np.array([np.inf, 0.0]), np.eye(2)), "finite"),
    (("0", np.eye(2), np.zeros(2), np.eye(2)), "mu_a"),
])
def test_frechet_from_stats_names_bad_statistics(stats, match):
    """Mismatched sizes used to broadcast, a non-symmetric matrix was read through one triangle."""
    with pytest.raises((ValueError, TypeError), match=match):
        frechet_from_stats(*stats)


def test_frechet_from_stats_accepts_lists_and_tiny_asymmetry_from_rounding():
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    nudged = cov + np.array([[0.0, 1e-13], [0.0, 0.0]])
    assert frechet_from_stats([0.0, 0.0], cov.tolist(), np.zeros(2), nudged) == pytest.approx(0.0, abs=1e-9)
