"""vaeutils.optim.LeanAdam: the updates of ``torch.optim.Adam(fused=True)`` bit for bit, with its own short path."""

import pytest
import torch

from vaeutils import optim


def run(make, steps=6, lr_at=lambda s: 1e-2):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    opt = make(params)
    g = torch.Generator().manual_seed(1)
    for s in range(steps):
        opt.param_groups[0]["lr"] = lr_at(s)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return params, opt


@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.1}, {"betas": (0.5, 0.9), "eps": 1e-6}])
def test_lean_adam_matches_fused_adam_bit_for_bit_with_a_changing_learning_rate(kw):
    lr_at = lambda s: 1e-2 * (s + 1) / 6  # noqa: E731
    ref, ref_opt = run(lambda p: torch.optim.Adam(p, lr=1e-2, fused=True, **kw), lr_at=lr_at)
    got, opt = run(lambda p: optim.LeanAdam(p, lr=1e-2, **kw), lr_at=lr_at)
    assert all(torch.equal(a, b) for a, b in zip(ref, got))
    assert opt._lists is not None  # the short path ran
    for a, b in zip(ref_opt.state_dict()["state"].values(), opt.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_a_missing_gradient_or_a_closure_takes_adams_own_step():
    params, opt = run(lambda p: optim.LeanAdam(p, lr=1e-2), steps=2)
    before = params[1].detach().clone()
    params[0].grad, params[1].grad = torch.ones(5, 3), None
    opt.step()  # Adam skips the parameter without a gradient
    assert torch.equal(params[1], before)
    assert opt.step(closure=lambda: torch.tensor(3.0)) == 3.0


def test_a_loaded_state_is_used_from_the_next_step():
    params, opt = run(lambda p: optim.LeanAdam(p, lr=1e-2), steps=3)
    saved = opt.state_dict()
    opt2 = optim.LeanAdam(params, lr=1e-2)
    opt2.load_state_dict(saved)
    for p in params:
        p.grad = torch.ones(p.shape)
    opt2.step()
    assert int(opt2.state[params[0]]["step"]) == 4


def test_running_means_of_weights_without_gradient_never_turn_denormal():
    p = torch.nn.Parameter(torch.ones(4))
    opt = optim.LeanAdam([p], lr=1e-3)
    for step in range(1000):
        p.grad = torch.full((4,), 1.0 if step == 0 else 0.0)  # one gradient, then none: the mean decays by 0.9
        opt.step()
        m = opt.state[p]["exp_avg"]
        assert not bool(((m != 0) & (m.abs() < torch.finfo(torch.float32).tiny)).any()), step
    assert bool((m == 0).all())
    ref = torch.nn.Parameter(torch.ones(4))
    ref_opt = torch.optim.Adam([ref], lr=1e-3, fused=True)
    for step in range(1000):
        ref.grad = torch.full((4,), 1.0 if step == 0 else 0.0)
        ref_opt.step()
    assert torch.allclose(p, ref, rtol=0, atol=1e-12)  # the same weights: the flushed means moved nothing
