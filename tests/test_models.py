"""vaeutils.models: shapes, the PyTorch example's parameter count, the reparameterisation, sampling."""

import pytest
import torch

from vaeutils.models import MLPVAE, ConvVAE, VAEOutput, build_model

# The PyTorch example: fc1 784→400, fc21 and fc22 400→20, fc3 20→400, fc4 400→784 (weights + biases).
PYTORCH_EXAMPLE_PARAMETERS = (784 * 400 + 400) + (400 * 40 + 40) + (20 * 400 + 400) + (400 * 784 + 784)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_the_pytorch_example_has_652824_parameters_and_784_400_20_matches_it():
    assert PYTORCH_EXAMPLE_PARAMETERS == 652_824
    assert n_params(MLPVAE(hidden=(400,), latent_dim=20)) == 652_824


@pytest.mark.parametrize("model, in_shape, d", [
    (MLPVAE(), (1, 28, 28), 20),
    (MLPVAE(in_shape=(3, 8, 8), hidden=(64, 32), latent_dim=5), (3, 8, 8), 5),
    (MLPVAE(hidden=16, latent_dim=2), (1, 28, 28), 2),
    (ConvVAE(latent_dim=10), (1, 28, 28), 10),
    (ConvVAE(in_shape=(1, 32, 32), latent_dim=6, channels=(8, 16), hidden=32), (1, 32, 32), 6),
])
def test_output_shapes(model, in_shape, d):
    x = torch.rand(5, *in_shape)
    out = model(x)
    assert isinstance(out, VAEOutput)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, d)
    assert out.out.shape == x.shape  # logits shaped like the input
    assert model.encode(x)[0].shape == (5, d)
    assert model.decode(out.z).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(3).shape == (3, *in_shape)
    images = model.sample(4)
    assert images.min() >= 0 and images.max() <= 1  # image-space means


def test_hidden_sizes_are_mirrored_in_the_decoder():
    m = MLPVAE(hidden=(300, 100), latent_dim=7)
    enc = [l.out_features for l in m.encoder if isinstance(l, torch.nn.Linear)]
    dec = [l.out_features for l in m.decoder if isinstance(l, torch.nn.Linear)]
    assert enc == [300, 100] and m.to_stats.out_features == 14 and dec == [100, 300, 784]


def test_build_model_and_learned_scale_shapes():
    assert isinstance(build_model("mlp", latent_dim=3), MLPVAE)
    assert isinstance(build_model("conv", latent_dim=3), ConvVAE)
    assert MLPVAE().log_scale is None
    assert MLPVAE(learned_scale="shared").log_scale.shape == ()
    assert ConvVAE(learned_scale="pixel").log_scale.shape == (1, 28, 28)


def test_reparameterize_is_mu_plus_sigma_eps_with_the_generator():
    m = MLPVAE(latent_dim=3)
    mu, logvar = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.0, 1.0, -2.0]])
    z = m.reparameterize(mu, logvar, torch.Generator().manual_seed(4))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)


def test_reparameterize_moments_and_gradients():
    m = MLPVAE(latent_dim=2)
    mu = torch.tensor([1.0, -2.0]).expand(200_000, 2).clone().requires_grad_()
    logvar = torch.tensor([0.0, 2.0 * torch.log(torch.tensor(3.0))]).expand(200_000, 2).clone().requires_grad_()
    z = m.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    # sample mean and std within 4 standard errors of (mu, sigma)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=4 * 3 / 200_000 ** 0.5)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 3.0]), rtol=0.01)
    z.sum().backward()
    assert torch.all(mu.grad == 1)  # dz/dmu = 1
    eps = (z - mu) / torch.exp(0.5 * logvar)
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps.detach())


def test_same_seed_same_model_and_same_samples():
    torch.manual_seed(0)
    a = MLPVAE(latent_dim=4)
    torch.manual_seed(0)
    b = MLPVAE(latent_dim=4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(a.sample(3, generator=g1), b.sample(3, generator=g2))


def test_reconstruct_decodes_the_posterior_mean():
    m = MLPVAE(latent_dim=4).eval()
    x = torch.rand(3, 1, 28, 28)
    mu, _ = m.encode(x)
    torch.testing.assert_close(m.reconstruct(x), torch.sigmoid(m.decode(mu)))
