"""A small GAN at classroom scale (unit 09): its training loop written out, cached like the VAEs.

* :func:`gan_training`: the discriminator step on *detached* fakes, then the generator step;
* :func:`train_gan` loads it from the cache or trains it; :func:`generator_at` rebuilds a snapshot
  taken during training. The losses are ``objectives.gan_discriminator_loss`` and
  ``objectives.gan_generator_loss``.
"""

from __future__ import annotations

import torch
from torch import nn

from . import cache as _cache
from . import checks
from . import config as _config
from .i18n import N_, tr
from .models import MLPDiscriminator, MLPGenerator
from .objectives import gan_discriminator_loss, gan_generator_loss

GAN_G = {"latent_dim": 64, "hidden": (128, 256)}
GAN_D = {"hidden": (256, 128), "dropout": 0.3}


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=tr(desc), unit="step", mininterval=0.5, disable=not progress)


def gan_training(gan: nn.ModuleDict, train_x: torch.Tensor, kind: str, steps: int, *,
                 snapshot_every: int = 0, batch_size: int = 64, lr: float = 2e-4, seed: int = 0,
                 progress: bool = True) -> dict:
    """Train ``gan["G"]`` and ``gan["D"]`` for ``steps`` alternating steps with Adam (β₁ = 0.5, as
    in DCGAN).

    ``kind``: the generator loss, ``"non_saturating"`` or ``"minimax"``
    (``objectives.gan_generator_loss``). The discriminator sees ``fake.detach()``: its backward pass
    stops at the samples, so it neither runs through G nor leaves gradients in G's parameters.
    History per step: ``d_loss``, ``g_loss``, ``d_fake`` (mean D(G(z))), ``g_grad_norm``;
    ``snapshots``: G's weights every ``snapshot_every`` steps (0: none)."""
    checks.choice("kind", kind, ("non_saturating", "minimax"))
    steps = checks.integer("steps", steps, low=1)
    snapshot_every = checks.integer("snapshot_every", snapshot_every, low=0)
    G, D = gan["G"].train(), gan["D"].train()
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    history = {"d_loss": [], "g_loss": [], "d_fake": [], "g_grad_norm": [], "snapshots": {}}
    device = train_x.device
    desc = N_("GAN ({kind})").format(kind=kind)
    with torch.random.fork_rng(devices=[]), _bar(steps, desc, progress) as bar:
        torch.manual_seed(seed)  # dropout draws
        for step in range(1, steps + 1):
            real = train_x[torch.randint(0, len(train_x), (batch_size,), generator=gen).to(device)]
            fake = G(torch.randn(batch_size, G.latent_dim, generator=gen).to(device))
            d_loss = gan_discriminator_loss(D(real), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            fake_logits = D(fake)
            g_loss = gan_generator_loss(fake_logits, kind)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            norm = torch.sqrt(sum(p.grad.square().sum() for p in G.parameters()))
            opt_g.step()
            values = (d_loss, g_loss, torch.sigmoid(fake_logits).mean(), norm)
            for key, value in zip(("d_loss", "g_loss", "d_fake", "g_grad_norm"), values):
                history[key].append(value.item())
            if snapshot_every and step % snapshot_every == 0:
                history["snapshots"][str(step)] = {k: v.detach().cpu().clone()
                                                   for k, v in G.state_dict().items()}
            bar.update(1)
    G.eval()
    D.eval()
    return history


def train_gan(data, kind: str = "non_saturating", steps: int = 3000, *, snapshot_every: int = 0,
              seed: int = 0, progress: bool = True):
    """Load the GAN if cached, else train it with :func:`gan_training`: returns
    ``(G, D, history, loaded)``."""
    key = {"data": data.key(), "kind": kind, "steps": steps, "snapshot_every": snapshot_every,
           "seed": seed, "G": GAN_G, "D": GAN_D, "batch_size": 64, "lr": 2e-4}
    shape = data.image_shape

    def build():
        _config.seed_everything(seed)
        return nn.ModuleDict({"G": MLPGenerator(out_shape=shape, **GAN_G),
                              "D": MLPDiscriminator(shape, **GAN_D)})

    def run(gan):
        gan.to(data.train_x.device)
        return gan_training(gan, data.train_x, kind, steps, snapshot_every=snapshot_every,
                            seed=seed, progress=progress)

    gan, history, hit = _cache.load_or_train("gan", key, build, run)
    gan = gan.to(data.train_x.device).eval()
    return gan["G"], gan["D"], history, hit


def generator_at(history: dict, step: int, shape=(1, 28, 28), device=None) -> MLPGenerator:
    """The generator as it was after ``step`` steps (a snapshot of :func:`gan_training`)."""
    if str(step) not in history.get("snapshots", {}):
        raise ValueError(f"no snapshot at step {step}; snapshots at "
                         f"{sorted(map(int, history.get('snapshots', {})))}")
    G = MLPGenerator(out_shape=shape, **GAN_G)
    G.load_state_dict(history["snapshots"][str(step)])
    return G.to(device or _config.get_device()).eval()
