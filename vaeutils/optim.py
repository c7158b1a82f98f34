"""Adam with the fused kernel and a short path through Python: what ``train.make_optimizer`` returns.

``torch.optim.Adam(fused=True)`` runs one kernel over all weights, but its ``step()`` first walks every parameter
in Python (state checks, grouping by device and dtype, profiler hooks): about 0.2 ms per step for the
784-400-20 VAE, a twentieth of a whole CPU step at batch 256. :class:`LeanAdam` makes that walk once: while the
parameter group, the settings and the device stay what they were, a step is one call of the same kernel on lists
kept from the last step, with the learning rate read from ``param_groups`` each time (schedules keep working).
Anything else (a closure, several groups, amsgrad, a parameter without a gradient, CUDA) takes
``torch.optim.Adam``'s own step.

Denormals: the running mean of a weight that never gets a gradient (the weights of the always-black border
pixels of MNIST-like images) shrinks by β₁ = 0.9 a step and falls below float32's smallest normal number
(1.2e-38) after about 840 steps; CPUs compute on such denormal numbers many times slower, which made every epoch
after the fourth of ``benchmarks/bench_train.py`` 25% slower. Every 64 steps LeanAdam sets running means below
1e-30 to zero, before they get there: the update such a mean makes is below 1e-22 of the learning rate. Apart
from that the updates are bit for bit those of ``Adam(fused=True)`` (``tests/test_optim.py``); ``state_dict()``
is Adam's.
"""

from __future__ import annotations

import torch

FLUSH_EVERY = 64  # steps between flushes of vanishing running means
FLUSH_BELOW = 1e-30  # shrinking by 0.9 a step, such a mean would turn denormal (< 1.2e-38) in about 175 steps


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(params, lr, fused=True)`` whose steps skip the per-parameter Python walk (CPU)."""

    def __init__(self, params, lr: float = 1e-3, **kwargs):
        super().__init__(params, lr=lr, fused=True, **kwargs)
        self._lists = None
        self._since_flush = 0

    def _short_path(self):
        """(params, exp_avgs, exp_avg_sqs, steps) when a step can be the bare kernel call, else None."""
        if len(self.param_groups) != 1:
            return None
        group = self.param_groups[0]
        params = group["params"]
        if self._lists is not None and self._lists[0] == [id(p) for p in params]:
            return self._lists[1]
        if (group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"]
                or group.get("decoupled_weight_decay") or isinstance(group["lr"], torch.Tensor)):
            return None
        states = [self.state.get(p) for p in params]
        if not params or not all(s and "exp_avg" in s for s in states):
            return None  # not yet initialised: Adam's first step does it
        if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in params):
            return None
        lists = (list(params), [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                 [s["step"] for s in states])
        self._lists = ([id(p) for p in params], lists)
        return lists

    @torch.no_grad()
    def step(self, closure=None):
        lists = None if closure is not None else self._short_path()
        if lists is None:
            self._lists = None
            return super().step(closure)
        params, exp_avgs, exp_avg_sqs, steps = lists
        grads = [p.grad for p in params]
        if any(g is None or g.is_sparse for g in grads):
            self._lists = None
            return super().step()
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"],
                           beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                           maximize=False, grad_scale=None, found_inf=None)
        self._since_flush += 1
        if self._since_flush >= FLUSH_EVERY:
            self._since_flush = 0
            for m in exp_avgs:  # before they turn denormal (see the module's docstring)
                m.masked_fill_(m.abs() < FLUSH_BELOW, 0.0)
        return None

    def load_state_dict(self, state_dict):
        self._lists = None
        return super().load_state_dict(state_dict)

    def add_param_group(self, param_group):
        self._lists = None
        return super().add_param_group(param_group)
