"""vaeutils.collapse: the collapse diagnostics, the free-bits variants and their gradients, the KL weight of a
batch-summed free-bits line, and the train/test rows of unit 07. (The β-sweep recipe a free-bits grid shares:
test_sweep.py.)"""

import math

import pytest
import torch
from torch import nn

from vaeutils import collapse as C
from vaeutils import losses as L
from vaeutils import metrics
from vaeutils.losses import ELBOLoss
from vaeutils.models import MLPVAE
from vaeutils.train import fit

# ------------------------------------------------------------------ the tiny exact example of unit 07 §4.2

MU = torch.tensor([[1.0, 0.6], [0.0, 0.1], [0.5, 0.0]], dtype=torch.float64)
LOGVAR = torch.zeros_like(MU)  # KL_ij = μ_ij²/2 and ∂KL_ij/∂μ_ij = μ_ij
LAM, TAU = 0.1, 0.05
B = len(MU)


@pytest.fixture(scope="module")
def variants():
    return C.variant_gradients(MU, LOGVAR, LAM, TAU)


def test_kingma_floors_the_batch_mean(variants):
    value, grad = variants["Kingma et al."]
    kl_mean = (MU.square() / 2).mean(0)                     # (0.2083, 0.0617): dim 1 is below λ
    assert value == pytest.approx(float(kl_mean[0] + LAM), rel=1e-12)
    assert torch.equal(grad[:, 1], torch.zeros(B, dtype=torch.float64)), "below λ: no gradient at all"
    assert torch.allclose(grad[:, 0], MU[:, 0] / B, rtol=0, atol=1e-15), "above λ: the plain gradient"


def test_per_example_clamp_taxes_the_example_that_uses_the_dimension(variants):
    value, grad = variants["clamp per example"]
    assert value == pytest.approx(float(torch.clamp(MU.square() / 2, min=LAM).sum(1).mean()), rel=1e-12)
    assert grad[0, 1] == pytest.approx(float(MU[0, 1]) / B, rel=1e-12)
    assert grad[1, 1] == 0 and grad[2, 1] == 0, "examples under λ get it for free"
    assert value > variants["Kingma et al."][0]


def test_the_source_line_is_the_per_example_clamp_times_the_batch(variants):
    value, grad = variants["source line"]
    assert value == pytest.approx(B * variants["clamp per example"][0], rel=1e-12)
    assert torch.allclose(grad, B * variants["clamp per example"][1], rtol=1e-12, atol=0)


def test_the_source_line_with_a_number_as_threshold_does_not_run():
    with pytest.raises(TypeError):
        torch.max(L.kl_per_dim(MU, LOGVAR), LAM)


def test_total_floor_and_soft_floor(variants):
    assert torch.allclose(variants["floor on the total"][1], variants["plain KL"][1]), "0.27 > dλ = 0.2: plain"
    low = C.variant_gradients(MU * 0.1, LOGVAR, LAM, TAU)            # total far below dλ: no gradient
    assert torch.count_nonzero(low["floor on the total"][1]) == 0
    soft, plain = variants["soft floor"][1], variants["plain KL"][1]
    weight = torch.sigmoid(((MU.square() / 2).mean(0) - LAM) / TAU)
    assert torch.allclose(soft, plain * weight, rtol=1e-12, atol=0), "the soft floor = sigmoid weight × plain"
    assert torch.allclose(plain, MU / B, rtol=1e-12, atol=0)


def test_variants_match_finite_differences():
    mu = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logvar = 0.3 * torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = C.variant_gradients(mu, logvar, 0.4, 0.2)
    for name, fn in C.FREE_BITS_VARIANTS.items():
        if name in ("Kingma et al.", "clamp per example", "source line", "floor on the total"):
            continue  # the kinks: covered exactly above
        h, i, j = 1e-6, 2, 1
        up, down = mu.clone(), mu.clone()
        up[i, j] += h
        down[i, j] -= h
        numeric = (fn(up, logvar, 0.4, 0.2) - fn(down, logvar, 0.4, 0.2)) / (2 * h)
        assert out[name][1][i, j].item() == pytest.approx(numeric.item(), rel=1e-6), name


def test_variant_arguments():
    with pytest.raises(ValueError, match="mu"):
        C.variant_gradients(MU[0], LOGVAR[0], LAM)
    with pytest.raises(ValueError, match="lam"):
        C.variant_gradients(MU, LOGVAR, -0.1)
    with pytest.raises(ValueError, match="tau"):
        C.variant_gradients(MU, LOGVAR, LAM, tau=0.0)


# ------------------------------------------------------------------ diagnostics


class _Echo(nn.Module):
    """A stand-in whose reconstruction is the input itself (or a constant)."""

    def __init__(self, constant: bool):
        super().__init__()
        self.constant = constant

    def reconstruct(self, x):
        return torch.full_like(x, 0.3) if self.constant else x


def test_input_dependence_is_one_for_a_copy_and_zero_for_a_constant():
    x = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    assert C.input_dependence(_Echo(False), x, batch_size=7) == pytest.approx(1.0, rel=1e-6)
    assert C.input_dependence(_Echo(True), x) == 0.0
    with pytest.raises(ValueError, match="two images"):
        C.input_dependence(_Echo(False), x[:1])


@pytest.fixture(scope="module")
def beta2_vae():
    """A 36-4 MLP VAE trained three epochs at β = 2 on 96 random binary 6×6 images, and those images."""
    torch.manual_seed(0)
    x = (torch.rand(96, 1, 6, 6, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    m = MLPVAE(in_shape=(1, 6, 6), hidden=(16,), latent_dim=4)
    fit(m, x, ELBOLoss(beta=2.0), epochs=3, batch_size=32, progress=False)
    return m, x


def test_diagnose_adds_dependence_and_dead_dimensions(beta2_vae):
    m, x = beta2_vae
    out = C.diagnose(m, x)
    ref = metrics.summary(m, x)
    assert out["rate"] == ref["rate"] and out["active"] == ref["active"]
    assert out["dead"] == int((ref["kl_per_dim"] < 0.005).sum())
    assert out["dependence"] == pytest.approx(C.input_dependence(m, x))
    assert (out["mu_var"] <= 2 * out["kl_per_dim"] * len(x) / (len(x) - 1) + 1e-6).all(), "Var μ ≤ 2 KL"


# ------------------------------------------------------------------ the batch-size claim


@pytest.mark.parametrize("batch", [8, 32, 96])
def test_a_batch_summed_line_weighs_the_kl_by_the_batch_size_only_next_to_a_mean(beta2_vae, batch):
    m, x = beta2_vae
    with torch.no_grad():  # a floor with some KL_ij above it and some below
        lam = 0.5 * float(L.kl_per_dim(*m.encode(x[:batch])).median())
    mean = C.kl_weight_in_gradient(m, x[:batch], lam=lam, rec_reduction="mean")
    summed = C.kl_weight_in_gradient(m, x[:batch], lam=lam, rec_reduction="sum")
    assert mean["beta"] == pytest.approx(batch, rel=1e-4) and mean["scale"] == pytest.approx(1.0, rel=1e-4)
    assert summed["beta"] == pytest.approx(1.0, rel=1e-4) and summed["scale"] == pytest.approx(batch, rel=1e-4)
    assert mean["residual"] < 1e-4 and summed["residual"] < 1e-4


def test_source_line_loss_reductions(beta2_vae):
    m, x = beta2_vae
    xb, lam = x[:16], 0.05
    g = torch.Generator().manual_seed(0)
    mu, logvar, _, out = m(xb, g)
    rec, line = L.bernoulli_nll(out, xb), torch.clamp(L.kl_per_dim(mu, logvar), min=lam).sum(1)
    for rr, kr, want in (("sum", "sum", rec.sum() + line.sum()), ("mean", "sum", rec.mean() + line.sum()),
                         ("mean", "mean", rec.mean() + line.mean())):
        got = C.source_line_loss(m, xb, lam=lam, rec_reduction=rr, kl_reduction=kr,
                                 generator=torch.Generator().manual_seed(0))
        assert got.item() == pytest.approx(want.item(), rel=1e-6)
    with pytest.raises(ValueError, match="kl_reduction"):
        C.source_line_loss(m, xb, kl_reduction="none")


def test_adam_ignores_a_common_scale_but_not_a_kl_weight(beta2_vae):
    """Summing both terms over the batch only scales the loss (Adam's steps stay those of β = 1); summing the KL
    alone next to a mean reconstruction changes the steps."""
    m, x = beta2_vae
    xb, lam = x[:32], 0.05
    before = [p.detach().clone() for p in m.parameters()]

    def path(rr, kr):
        return C.adam_steps(m, xb, lambda net, xx, g: C.source_line_loss(net, xx, lam=lam, rec_reduction=rr,
                                                                          kl_reduction=kr, generator=g), steps=4)

    ref, both_summed, mixed = path("mean", "mean"), path("sum", "sum"), path("mean", "sum")
    assert (both_summed - ref).norm() < 1e-3 * ref.norm()
    assert (mixed - ref).norm() > 0.1 * ref.norm()
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters())), "the model itself is untouched"


def test_kl_weight_arguments(beta2_vae):
    m, x = beta2_vae
    with pytest.raises(ValueError, match="rec_reduction"):
        C.kl_weight_in_gradient(m, x[:4], rec_reduction="none")
    with pytest.raises(ValueError, match="lam"):
        C.kl_weight_in_gradient(m, x[:4], lam=-1.0)
    with pytest.raises(ValueError, match="below lam"):
        C.kl_weight_in_gradient(m, x[:4], lam=1e6)


def test_train_test_rows(beta2_vae):
    m, x = beta2_vae
    rows = C.train_test_rows([(2.0, m, {})], x[:64], x[64:])
    r = rows[0]
    assert r["beta"] == 2.0
    assert r["train"] == pytest.approx(metrics.summary(m, x[:64])["neg_elbo"])
    assert r["test"] == pytest.approx(metrics.summary(m, x[64:])["neg_elbo"])
    assert r["gap"] == pytest.approx(r["test"] - r["train"])
    assert math.isclose(r["train"], r["train_distortion"] + r["train_rate"], rel_tol=1e-6)
