"""vaeutils.precision: the setting's values, the environment variable, the fallback of auto, bad input; and what
bf16 does to training (same weights dtype, finite, close to fp32 on a small model)."""

import pytest
import torch

from vaeutils import precision as P
from vaeutils import train as T
from vaeutils.models import MLPVAE


def test_default_is_fp32_and_the_environment_can_change_it(monkeypatch):
    monkeypatch.delenv(P.ENV, raising=False)
    assert P.requested() == "fp32" and P.resolve(None, "cpu") == "fp32"
    monkeypatch.setenv(P.ENV, "BF16")
    assert P.requested() == "bf16" and P.resolve(None, "cpu") == "bf16"
    assert P.requested("fp32") == "fp32"  # the argument wins over the environment


def test_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(P, "_cpu_has_fast_bf16", lambda: True)
    assert P.resolve("auto", "cpu") == "bf16"
    monkeypatch.setattr(P, "_cpu_has_fast_bf16", lambda: False)
    assert P.resolve("auto", "cpu") == "fp32"
    assert P.resolve("bf16", "cpu") == "bf16"  # asked for explicitly: honoured even where it is slow
    assert P.resolve("auto", "meta") == "fp32"  # a device with no fast bf16 path


@pytest.mark.parametrize("bad", ["fp16", "BF16 ", 16, "float32"])
def test_bad_settings_name_the_argument(bad):
    with pytest.raises(ValueError, match="precision"):
        P.requested(bad)


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(P.ENV, "half")
    with pytest.raises(ValueError, match=P.ENV):
        P.requested()


def test_autocast_context():
    x = torch.randn(4, 8)
    w = torch.randn(8, 3)
    with P.autocast("cpu", "bf16"):
        assert (x @ w).dtype == torch.bfloat16
    with P.autocast("cpu", "fp32"):
        assert (x @ w).dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        P.autocast("cpu", "auto")  # resolve first


def _train(precision, seed):
    torch.manual_seed(0)
    x = (torch.rand(256, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    model = MLPVAE(in_shape=(1, 8, 8), hidden=(32,), latent_dim=4)
    history = T.fit(model, x, epochs=8, batch_size=64, lr=3e-3, test_x=x, seed=seed, progress=False,
                    precision=precision)
    return model, history


def test_bf16_trains_with_float32_weights_and_lands_near_fp32():
    m32, h32 = _train("fp32", 0)
    m16, h16 = _train("bf16", 0)
    assert h32["precision"] == "fp32" and h16["precision"] == "bf16"
    assert all(p.dtype == torch.float32 for p in m16.parameters())  # master weights stay float32
    first, last32, last16 = h32["test"][0]["loss"], h32["test"][-1]["loss"], h16["test"][-1]["loss"]
    assert last32 < first - 1.0  # it learned something, so the comparison below means something
    assert abs(last16 - last32) < 0.02 * last32, (last16, last32)  # bf16 rounding, not a different model
    assert h16["train"][0]["loss"] != h32["train"][0]["loss"]  # the bf16 path really ran


def test_train_vae_keys_the_precision(tmp_path, monkeypatch):
    from vaeutils import cache, config

    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)

    class Data:
        train_x = (torch.rand(64, 1, 4, 4) < 0.5).float()
        test_x = train_x[:16]
        name, source = "random", "uniform noise"

    kw = dict(data=Data(), hidden=(8,), latent_dim=2, epochs=1, batch_size=32, progress=False, name="prec")
    assert not T.train_vae(**kw, precision="fp32").loaded
    assert not T.train_vae(**kw, precision="bf16").loaded  # a different key: never an fp32 model for bf16
    assert T.train_vae(**kw, precision="fp32").loaded
    assert cache.clear("prec*") == 2
