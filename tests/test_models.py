"""vaeutils.models: shapes, the PyTorch example's parameter count, the reparameterisation, sampling, latent
traversals, the GAN and classifier models of unit 09, and bad arguments named."""

import numpy as np
import pytest
import torch

from vaeutils.models import (
    MLPVAE,
    ConvVAE,
    MLPDiscriminator,
    MLPGenerator,
    SmallClassifier,
    VAEOutput,
    build_model,
    traversal_images,
)

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


# --------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: MLPVAE(latent_dim=0), "latent_dim"),
        (lambda: MLPVAE(hidden=(0,)), "hidden"),
        (lambda: MLPVAE(hidden=True), "hidden"),
        (lambda: MLPVAE(in_shape=(28, 28)), "in_shape"),
        (lambda: MLPVAE(in_shape=(1, 28.5, 28)), "in_shape"),  # not silently cut to 28
        (lambda: ConvVAE(in_shape=(1, 30, 30)), "divisible by 4"),
        (lambda: MLPVAE(learned_scale="yes"), "learned_scale"),
        (lambda: build_model("transformer"), "kind"),
    ],
)
def test_bad_model_arguments_are_named(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_model_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match="shaped"):
        MLPVAE()(torch.rand(2, 1, 32, 32))


@pytest.mark.parametrize("n", [0, -1, 2.5, None])
def test_sample_count_is_checked(n):
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        MLPVAE(latent_dim=2).sample(n)
    assert MLPVAE(latent_dim=2).sample(np.int64(2)).shape == (2, 1, 28, 28)


# --------------------------------------------------------------------------- GAN models, classifier

def test_gan_models_shapes_and_ranges():
    torch.manual_seed(0)
    g, d = MLPGenerator(latent_dim=8, hidden=(16,)), MLPDiscriminator(hidden=(16,))
    g.eval()
    x = g.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, g.sample(5, torch.Generator().manual_seed(0)))
    assert d(x).shape == (5,)
    with pytest.raises(ValueError, match="z must be shaped"):
        g(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="x must be shaped"):
        d(torch.zeros(5, 1, 8, 8))


def test_classifier_features_and_logits():
    net = SmallClassifier(feature_dim=32)
    x = torch.rand(4, 1, 28, 28)
    assert net.features(x).shape == (4, 32)
    assert net(x).shape == (4, 10)
    assert torch.allclose(net(x), net.head(net.features(x)))


@pytest.mark.parametrize("build, match", [
    (lambda: MLPGenerator(hidden=()), "hidden"),
    (lambda: MLPDiscriminator(dropout=1.0), "dropout"),
    (lambda: MLPDiscriminator(dropout="0.3"), "dropout"),
    (lambda: SmallClassifier(in_shape=(1, 30, 30)), "divisible by 4"),
    (lambda: SmallClassifier(n_classes=1), "n_classes"),
])
def test_models_name_bad_settings(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_numpy_numbers_are_accepted_by_the_gan_models():
    assert MLPDiscriminator(hidden=(np.int64(8),), dropout=np.float32(0.25))(torch.rand(2, 1, 28, 28)).shape == (2,)


def test_traversal_images_sweep_one_dimension_per_row(tiny_vae):
    model = tiny_vae(in_shape=(1, 4, 4), hidden=(8,))
    imgs = traversal_images(model, torch.zeros(3), dims=[0, 2], span=2.0, steps=5)
    assert imgs.shape == (10, 1, 4, 4)
    centre = model.mean_image(model.decode(torch.zeros(1, 3)))
    assert torch.allclose(imgs[2], centre[0]) and torch.allclose(imgs[7], centre[0])
    assert not torch.allclose(imgs[0], imgs[4])
