"""metrics.summary: one pass over the data (each image encoded exactly once), and the same numbers as
metrics.evaluate and as the per-unit KL and activity computed from metrics.encode_all's codes."""

import pytest
import torch

from vaeutils import losses as L
from vaeutils import metrics
from vaeutils import train as T
from vaeutils.models import MLPVAE


@pytest.fixture
def model_and_x():
    torch.manual_seed(0)
    x = (torch.rand(300, 1, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    model = MLPVAE(in_shape=(1, 6, 6), hidden=(16,), latent_dim=4)
    T.fit(model, x, epochs=2, batch_size=50, progress=False)
    return model, x


def test_each_image_is_encoded_once(model_and_x, monkeypatch):
    model, x = model_and_x
    rows = []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda xb: rows.append(len(xb)) or encode(xb))
    metrics.summary(model, x, batch_size=128, n_images=8)
    assert sum(rows) == len(x), rows  # 128 + 128 + 44: the reconstructions reuse the codes


def test_the_numbers_equal_evaluate_and_the_codes(model_and_x):
    model, x = model_and_x
    s = metrics.summary(model, x, threshold=0.01)
    e = metrics.evaluate(model, x)
    assert (s["rate"], s["distortion"]) == pytest.approx((e["kl"], e["rec"]), rel=1e-6)
    assert s["neg_elbo"] == pytest.approx(e["loss"], rel=1e-6)
    mu, logvar = metrics.encode_all(model, x)
    var = mu.var(0)
    assert s["active"] == int((var > 0.01).sum()) and torch.allclose(torch.as_tensor(s["mu_var"]), var, rtol=1e-5)
    kl = L.kl_per_dim(mu, logvar).mean(0)
    assert torch.allclose(torch.as_tensor(s["kl_per_dim"]), kl, rtol=1e-5)
    assert s["rate"] == pytest.approx(float(kl.sum()), rel=1e-5)
