"""The Mutual Information Gap (Chen et al. 2018) on codes whose answer is known.

MIG = mean over factors v_k of (I(z_(1); v_k) − I(z_(2); v_k)) / H(v_k), where z_(1), z_(2) are the
two latents that know most about v_k. Latents are discretised into histogram bins (the estimator of
disentanglement_lib); factors are integer codes.
"""

import numpy as np
import pytest
import torch

from vaeutils.metrics import mig

N = 6000
SIZES = (3, 6, 10, 8, 8)  # the sprites' factor sizes


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, s, N) for s in SIZES], axis=1)


def test_one_latent_per_factor_scores_one(factors):
    rng = np.random.default_rng(1)
    z = factors + 0.05 * rng.standard_normal(factors.shape)  # latent k is factor k, plus a little noise
    assert mig(z, factors) > 0.9


def test_extra_noise_latents_do_not_lower_a_perfect_code(factors):
    rng = np.random.default_rng(2)
    z = np.concatenate([factors + 0.05 * rng.standard_normal(factors.shape), rng.standard_normal((N, 5))], axis=1)
    assert mig(z, factors) > 0.9


def test_code_independent_of_the_factors_scores_zero(factors):
    z = np.random.default_rng(3).standard_normal((N, 10))
    assert 0.0 <= mig(z, factors) < 0.05


def test_one_latent_carrying_two_factors_is_not_penalised():
    """MIG asks, per factor, whether one latent dominates; it does not ask whether a latent holds only
    one factor. z0 = 3·v0 + v1 determines both factors, so both gaps are full: a known blind spot."""
    rng = np.random.default_rng(4)
    v = np.stack([rng.integers(0, 2, N), rng.integers(0, 3, N)], axis=1)
    z = np.stack([3 * v[:, 0] + v[:, 1] + 0.01 * rng.standard_normal(N), rng.standard_normal(N)], axis=1)
    assert mig(z, v) > 0.9


def test_a_factor_copied_into_two_latents_has_no_gap():
    rng = np.random.default_rng(5)
    v = np.stack([rng.integers(0, 2, N), rng.integers(0, 3, N)], axis=1)
    copy = v[:, :1] + 0.01 * rng.standard_normal((N, 2))  # two latents, both equal to v0
    z = np.concatenate([copy, v[:, 1:] + 0.01 * rng.standard_normal((N, 1))], axis=1)
    assert mig(z, v) == pytest.approx(0.5, abs=0.03)  # v0 gap 0, v1 gap 1


def test_rotating_a_perfect_code_destroys_the_gap(factors):
    rng = np.random.default_rng(6)
    z = (factors - factors.mean(0)) / factors.std(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    assert mig(z, factors) > 0.9 > 0.3 > mig(z @ rotation, factors)


def test_mig_lies_in_unit_interval_and_takes_tensors(factors):
    rng = np.random.default_rng(7)
    for noise in (0.05, 0.5, 2.0, 10.0):
        z = factors + noise * rng.standard_normal(factors.shape)
        value = mig(torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(factors))
        assert 0.0 <= value <= 1.0


def test_mig_falls_as_noise_grows(factors):
    rng = np.random.default_rng(8)
    values = [mig(factors + s * rng.standard_normal(factors.shape), factors) for s in (0.05, 1.0, 5.0)]
    assert values[0] > values[1] > values[2]


def test_constant_factors_are_skipped(factors):
    rng = np.random.default_rng(9)
    v = np.concatenate([factors[:, :2], np.zeros((N, 1), dtype=np.int64)], axis=1)
    z = v[:, :2] + 0.05 * rng.standard_normal((N, 2))
    assert mig(z, v) == pytest.approx(mig(z, v[:, :2]))
    with pytest.raises(ValueError, match="constant"):
        mig(z, np.zeros((N, 2), dtype=np.int64))


@pytest.mark.parametrize(
    ("latents", "factors", "kwargs", "error", "match"),
    [
        (np.zeros((10, 3)), np.zeros((9, 2), dtype=int), {}, ValueError, "matching N"),
        (np.zeros(10), np.zeros((10, 2), dtype=int), {}, ValueError, r"\(N, d\)"),
        (np.zeros((10, 1)), np.zeros((10, 2), dtype=int), {}, ValueError, "at least 2 latent"),
        (np.full((10, 3), np.nan), np.ones((10, 2), dtype=int), {}, ValueError, "NaN"),
        (np.zeros((10, 3)), np.full((10, 2), 0.5), {}, ValueError, "integer codes"),
        (np.zeros((10, 3)), np.ones((10, 2), dtype=int), {"n_bins": 1}, ValueError, "n_bins"),
        ([[0.0, 1.0]], np.ones((1, 2), dtype=int), {}, TypeError, "latents"),
    ],
)
def test_bad_input_is_named(latents, factors, kwargs, error, match):
    with pytest.raises(error, match=match):
        mig(latents, factors, **kwargs)
