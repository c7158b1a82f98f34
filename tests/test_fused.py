"""vaeutils.fused: the hand-written step gives autograd's terms and gradients, and knows when it does not apply."""

import pytest
import torch
from torch import nn

from vaeutils import fused
from vaeutils import losses as L
from vaeutils import train as T
from vaeutils.models import MLPVAE, ConvVAE


def autograd_terms(model, loss, x, step=0, seed=0, precision="fp32"):
    """``loss.terms`` through autograd (the path the fused step replaces) and every gradient."""
    model.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(seed)
    from vaeutils import precision as P
    with P.autocast("cpu", precision):
        terms = loss(model, x, step, generator=gen)
    terms["loss"].backward()
    return terms, [p.grad.clone() for p in model.parameters()]


def fused_terms(model, loss, x, step=0, seed=0, precision="fp32"):
    model.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(seed)
    terms = fused.elbo_terms(model, loss, x, step, gen, precision)
    terms["loss"].backward()
    return terms, [p.grad.clone() for p in model.parameters()]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(64, 1, 28, 28, generator=g)


@pytest.mark.parametrize("hidden", [(32,), (48, 24)])
@pytest.mark.parametrize("loss", [L.ELBOLoss(), L.ELBOLoss(beta=4.0), L.ELBOLoss(free_bits=0.3),
                                  L.ELBOLoss(beta=L.LinearWarmup(10))])
def test_fp32_terms_and_every_gradient_match_autograd(tiny_vae, batch, hidden, loss):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=hidden, latent_dim=6, seed=2)
    assert fused.supports(model, loss)
    ref, ref_grads = autograd_terms(model, loss, batch, step=3)
    got, grads = fused_terms(model, loss, batch, step=3)
    for k in ("loss", "rec", "kl"):
        assert got[k].item() == pytest.approx(ref[k].item(), rel=2e-6), k
    assert got["beta"] == ref["beta"]
    assert bool(got["x_in_range"])
    for (name, _), a, b in zip(model.named_parameters(), ref_grads, grads, strict=True):
        scale = a.abs().max().item()
        assert (a - b).abs().max().item() <= 1e-5 * scale + 1e-9, name


def test_free_bits_gradient_is_zero_below_the_floor_and_plain_above(tiny_vae, batch):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(32,), latent_dim=6, seed=2)
    with torch.no_grad():  # dimensions 0-2 far from the prior (KL ≫ λ), 3-5 at it (KL ≈ 0 < λ)
        model.to_stats.bias[:3] += 2.0
    ref, ref_grads = autograd_terms(model, L.ELBOLoss(free_bits=0.5), batch)
    got, grads = fused_terms(model, L.ELBOLoss(free_bits=0.5), batch)
    assert got["loss"].item() == pytest.approx(ref["loss"].item(), rel=2e-6)
    names = [n for n, _ in model.named_parameters()]
    stats_bias = grads[names.index("to_stats.bias")]
    assert torch.allclose(stats_bias, ref_grads[names.index("to_stats.bias")], atol=1e-6)


def test_bf16_agrees_with_fp32_to_bfloat16_rounding(tiny_vae, batch):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(64,), latent_dim=8, seed=4)
    loss = L.ELBOLoss()
    ref, ref_grads = fused_terms(model, loss, batch)
    got, grads = fused_terms(model, loss, batch, precision="bf16")
    assert got["loss"].item() == pytest.approx(ref["loss"].item(), rel=2e-3)
    assert got["loss"].item() != ref["loss"].item()  # it did multiply in bfloat16
    for a, b in zip(ref_grads, grads):
        assert b.dtype == torch.float32
        assert (a - b).norm() <= 0.03 * a.norm() + 1e-8


def test_the_noise_is_the_models_so_a_seed_gives_the_same_sample(tiny_vae, batch):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(32,), latent_dim=6, seed=2)
    a, _ = fused_terms(model, L.ELBOLoss(), batch, seed=5)
    b, _ = fused_terms(model, L.ELBOLoss(), batch, seed=5)
    c, _ = fused_terms(model, L.ELBOLoss(), batch, seed=6)
    assert a["loss"].item() == b["loss"].item() != c["loss"].item()


def test_fit_with_the_fused_step_trains_like_autograd(tiny_vae, monkeypatch):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(256, 1, 28, 28, generator=g) > 0.6).float()
    runs = []
    for use in (True, False):
        monkeypatch.setattr(fused, "supports", (lambda m, l: True) if use else (lambda m, l: False))
        model = tiny_vae(in_shape=(1, 28, 28), hidden=(32,), latent_dim=4, seed=1)
        runs.append(T.fit(model, x, epochs=3, batch_size=32, lr=3e-3, progress=False)["steps"])
    a, b = runs
    assert a[0] == pytest.approx(b[0], rel=1e-6)
    assert a[-1] == pytest.approx(b[-1], rel=1e-4) and a[-1] < a[0] - 20


@pytest.mark.parametrize("case", ["conv", "gaussian", "capacity", "learned_scale", "frozen", "hook", "subclass",
                                  "plain function", "no bias"])
def test_supports_falls_back_where_the_step_would_differ(tiny_vae, case):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(16,), latent_dim=3, seed=0)
    loss = L.ELBOLoss()
    if case == "conv":
        model = ConvVAE(latent_dim=3)
    elif case == "gaussian":
        loss = L.ELBOLoss(likelihood="gaussian")
    elif case == "capacity":
        loss = L.ELBOLoss(capacity=L.CapacitySchedule(5.0, 100))
    elif case == "learned_scale":
        model = MLPVAE(hidden=(16,), latent_dim=3, learned_scale="shared")
    elif case == "frozen":
        model.encoder[1].weight.requires_grad_(False)
    elif case == "hook":
        model.decoder[0].register_forward_hook(lambda m, i, o: o * 2)
    elif case == "subclass":
        class Wider(MLPVAE):
            pass
        model = Wider(hidden=(16,), latent_dim=3)
    elif case == "plain function":
        loss = lambda m, x, step: L.ELBOLoss()(m, x, step)  # noqa: E731
    elif case == "no bias":
        model.decoder[-1] = nn.Linear(16, 784, bias=False)
    assert not fused.supports(model, loss)
    assert fused.supports(tiny_vae(in_shape=(1, 28, 28), hidden=(16,), latent_dim=3), L.ELBOLoss())


def test_bad_batches_get_the_models_and_the_losses_errors(tiny_vae):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(16,), latent_dim=3)
    with pytest.raises(ValueError, match=r"x must be shaped \(batch, 1, 28, 28\)"):
        fused.elbo_terms(model, L.ELBOLoss(), torch.rand(4, 1, 27, 28))
    with pytest.raises(ValueError, match="empty"):
        fused.elbo_terms(model, L.ELBOLoss(), torch.rand(0, 1, 28, 28))
    with pytest.raises(ValueError, match="precision"):
        fused.elbo_terms(model, L.ELBOLoss(), torch.rand(2, 1, 28, 28), precision="auto")


def test_pixels_outside_0_1_are_refused_by_train_step_before_the_update(tiny_vae):
    model = tiny_vae(in_shape=(1, 28, 28), hidden=(16,), latent_dim=3)
    opt = T.make_optimizer(model.parameters(), 1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*x / 255"):
        T.train_step(model, opt, L.ELBOLoss(), torch.rand(8, 1, 28, 28) * 255, 0)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
