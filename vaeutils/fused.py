"""A fused training step for the course's most-trained pair: an ``MLPVAE`` with a Bernoulli ``ELBOLoss``.

Autograd records every small operation of the forward pass and replays it backwards; on a CPU, at batch 256, that
bookkeeping, the precision casts around each layer and a dozen elementwise kernels cost more than the matrix
multiplies themselves. :func:`elbo_terms` computes the same terms as ``ELBOLoss.terms`` in one custom autograd
function whose backward pass is written out by hand, with the gradients unit 02 derives:

* Bernoulli NLL from logits ``o``: ``∂/∂o = sigmoid(o) − x`` (one kernel, no log-sigmoid kept for autograd);
* KL to N(0, I): ``∂/∂μ = μ``, ``∂/∂logvar = ½(exp(logvar) − 1)``; the sample ``z = μ + σε`` adds
  ``∂z/∂μ = 1`` and ``∂z/∂logvar = ½σε``;
* a linear layer ``y = aWᵀ + b``: ``∂W = gᵀa``, ``∂b = Σ g``, ``∂a = gW``; a ReLU passes ``g`` where its output > 0.

``precision="bf16"`` multiplies in bfloat16 (the weights cast once per step) with everything else in float32;
``"fp32"`` gives autograd's numbers to float32 rounding (``tests/test_fused.py`` compares both ways, gradients
included). The noise is drawn exactly as ``MLPVAE.reparameterize`` draws it, so a seed gives the same run.
:func:`supports` says when the fused step applies; ``train.train_step`` falls back to autograd otherwise
(other models or likelihoods, capacity, learned scales, frozen weights, module hooks).
"""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .losses import ELBOLoss, kl_per_dim
from .models import MLPVAE


def supports(model: nn.Module, loss) -> bool:
    """True when :func:`elbo_terms` computes exactly what ``loss(model, x, step)`` would."""
    if type(model) is not MLPVAE or type(loss) is not ELBOLoss:
        return False
    if loss.likelihood != "bernoulli" or loss.capacity is not None or model.learned_scale is not None:
        return False
    if type(model).forward is not MLPVAE.forward or not all(p.requires_grad for p in model.parameters()):
        return False
    for m in model.modules():  # a hook would be skipped: fall back
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or getattr(m, "_backward_pre_hooks", None):
            return False
    enc, dec = list(model.encoder), list(model.decoder)
    last = dec[-1]
    return (type(enc[0]) is nn.Flatten and _pairs(enc[1:]) and _pairs(dec[:-1]) and type(last) is nn.Linear
            and last.bias is not None and type(model.to_stats) is nn.Linear and model.to_stats.bias is not None)


def _pairs(layers) -> bool:
    return len(layers) % 2 == 0 and all(
        type(a) is nn.Linear and a.bias is not None and type(r) is nn.ReLU for a, r in zip(layers[::2], layers[1::2]))


def _linears(model: MLPVAE) -> list[nn.Linear]:
    return [m for m in model.encoder if isinstance(m, nn.Linear)] + [model.to_stats] + [
        m for m in model.decoder if isinstance(m, nn.Linear)]


def elbo_terms(model: MLPVAE, loss: ELBOLoss, x: torch.Tensor, step: int = 0, generator=None,
               precision: str = "fp32") -> dict:
    """``loss.terms(model, x, step, generator)`` by the fused step: ``loss``, ``rec``, ``kl``, ``beta`` and
    ``x_in_range`` (a 0-d bool tensor: every pixel in [0, 1], checked by the caller with the other terms so
    the step syncs with the host once)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[1:] != model.in_shape or not len(x):
        return loss.terms(model, x, step, generator)  # raises the model's or the loss's own error
    beta = loss.beta_at(step)
    lay = _linears(model)
    n_enc = len(lay) - 1 - (len(model.decoder) + 1) // 2
    eps = torch.randn((len(x), model.latent_dim), generator=generator, device=x.device, dtype=torch.float32)
    flat = [t for m in lay for t in (m.weight, m.bias)]
    dtype = torch.bfloat16 if checks.choice("precision", precision, ("fp32", "bf16")) == "bf16" else torch.float32
    loss_value, rec, kl = _FusedELBO.apply(x.reshape(len(x), -1), eps, beta, float(loss.free_bits), n_enc, dtype,
                                           *flat)
    low, high = torch.aminmax(x)
    in_range = (low >= 0) & (high <= 1)
    return {"loss": loss_value, "rec": rec, "kl": kl, "beta": beta, "x_in_range": in_range}


class _FusedELBO(torch.autograd.Function):
    """Inputs: flat images (B, D) in float32, noise ε (B, L), β, free bits λ, the number of encoder layers,
    the multiply dtype, then (weight, bias) of every Linear in order. Outputs: loss, rec, kl (batch means)."""

    @staticmethod
    def forward(ctx, x, eps, beta, free_bits, n_enc, dtype, *flat):
        ws, bs = flat[0::2], flat[1::2]
        wc = [w.to(dtype) for w in ws]
        a = x.to(dtype)
        acts = [a]
        for i in range(len(ws)):
            y = torch.addmm(bs[i].to(dtype), a, wc[i].t())
            if i == n_enc:  # the stats layer: (μ, log σ²), then the sample
                stats = y.float()
                mu, logvar = stats.chunk(2, dim=1)
                std = torch.exp(0.5 * logvar)
                z = torch.addcmul(mu, std, eps)
                a = z.to(dtype)
            elif i == len(ws) - 1:
                logits = y.float()
            else:
                a = y.relu_()
            acts.append(a)
        # losses.bernoulli_nll without its [0, 1] check, which would sync with the host (elbo_terms checks lazily)
        rec_each = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        rec, kl_d = rec_each.mean(), kl_per_dim(mu, logvar).mean(0)
        kl = kl_d.sum()
        reg = torch.clamp(kl_d, min=free_bits).sum() if free_bits > 0 else kl
        ctx.save_for_backward(x, eps, logits, mu, logvar, std, kl_d, *acts, *wc)
        ctx.beta, ctx.free_bits, ctx.n_enc, ctx.dtype, ctx.n = beta, free_bits, n_enc, dtype, len(ws)
        ctx.mark_non_differentiable(rec, kl)
        return rec + beta * reg, rec, kl

    @staticmethod
    def backward(ctx, g, _g_rec, _g_kl):
        x, eps, logits, mu, logvar, std, kl_d, *rest = ctx.saved_tensors
        n, dtype = ctx.n, ctx.dtype
        acts, wc = rest[:n + 1], rest[n + 1:]
        scale = g / len(x)
        grads = [None] * (2 * n)
        d = ((torch.sigmoid(logits) - x) * scale).to(dtype)  # ∂loss/∂logits
        for i in reversed(range(n)):
            grads[2 * i] = (d.t() @ acts[i]).float()
            grads[2 * i + 1] = d.sum(0, dtype=torch.float32)
            if i == 0:
                break
            da = d @ wc[i]
            if i == ctx.n_enc + 1:  # into the sample z = μ + σε, and the KL's own gradient
                dz = da.float()
                kl_scale = scale * ctx.beta
                if ctx.free_bits > 0:
                    kl_scale = kl_scale * (kl_d >= ctx.free_bits)  # clamp's gradient: zero below the floor
                d_mu = dz + kl_scale * mu
                d_logvar = 0.5 * (dz * std * eps + kl_scale * torch.expm1(logvar))
                d = torch.cat((d_mu, d_logvar), dim=1).to(dtype)
            else:
                d = torch.ops.aten.threshold_backward(da, acts[i], 0)  # ReLU: pass where its output > 0
        return (None, None, None, None, None, None, *grads)

