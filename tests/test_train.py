"""vaeutils.train: fit and train_step (history, seeds, non-finite losses, the same weights as autograd and
Adam(fused=True) written out by hand), the allocator setting, train_vae's cache, the CLI, devices."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from vaeutils import cache, config
from vaeutils import losses as L
from vaeutils import train as T
from vaeutils.train import cli as C


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(300, 1, 28, 28, generator=g), torch.rand(100, 1, 28, 28, generator=g)


@pytest.fixture
def small_model(tiny_vae):
    """``small_model(seed=0, latent_dim=4)``: the 784-32-4 MLP VAE of these tests, with seeded weights."""
    return lambda seed=0, latent_dim=4: tiny_vae(in_shape=(1, 28, 28), hidden=(32,), latent_dim=latent_dim, seed=seed)


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_history_has_per_epoch_terms_test_rows_and_one_loss_per_step(images, small_model):
    train_x, test_x = images
    h = T.fit(small_model(), train_x, epochs=2, batch_size=64, test_x=test_x, progress=False)
    assert [r["epoch"] for r in h["train"]] == [1, 2] == [r["epoch"] for r in h["test"]]
    assert {"loss", "rec", "kl", "beta", "seconds"} <= set(h["train"][0])
    assert {"loss", "rec", "kl"} <= set(h["test"][0])
    assert len(h["steps"]) == 2 * math.ceil(300 / 64)
    row = h["train"][0]
    assert row["loss"] == pytest.approx(row["rec"] + row["kl"], rel=1e-5)  # β = 1
    assert h["train"][1]["loss"] < h["train"][0]["loss"]


def test_same_seed_same_weights_and_history_on_cpu(images, small_model):
    train_x, test_x = images
    runs = []
    for _ in range(2):
        m = small_model(seed=3)
        h = T.fit(m, train_x, epochs=2, batch_size=50, test_x=test_x, seed=7, progress=False)
        runs.append((weights(m), h))
    (w1, h1), (w2, h2) = runs
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))
    def without_seconds(h):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h["train"]]

    assert without_seconds(h1) == without_seconds(h2) and h1["test"] == h2["test"] and h1["steps"] == h2["steps"]
    # a different seed gives a different run
    m3 = small_model(seed=3)
    T.fit(m3, train_x, epochs=1, batch_size=50, seed=8, progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(w1, weights(m3)))


class PoisonedLoss:
    """ELBOLoss, except that ``term`` becomes ``value`` at step ``bad_step``; records the weights it saw."""

    def __init__(self, bad_step, term="rec", value=float("nan")):
        self.inner, self.bad_step, self.term, self.value = L.ELBOLoss(), bad_step, term, value
        self.seen = {}

    def __call__(self, model, x, step):
        self.seen[step] = weights(model)
        terms = self.inner(model, x, step)
        if step == self.bad_step:
            terms[self.term] = terms[self.term] * self.value
            if self.term != "loss":
                terms["loss"] = terms["rec"] + terms["kl"]
        return terms


@pytest.mark.parametrize("term, value", [("rec", float("nan")), ("kl", float("inf")), ("loss", float("nan"))])
def test_non_finite_term_stops_with_step_and_term_and_keeps_last_good_weights(images, term, value, small_model):
    train_x, _ = images
    m = small_model()
    loss = PoisonedLoss(bad_step=5, term=term, value=value)
    with pytest.raises(T.NonFiniteLossError) as info:
        T.fit(m, train_x, loss, epochs=3, batch_size=32, progress=False)
    err = info.value
    assert err.step == 5 and err.term == term and not math.isfinite(err.value)
    assert "step 5" in str(err) and term in str(err)
    # the last weights that gave a finite loss (those of step 4), not the ones that gave the bad value
    assert all(torch.equal(a, b) for a, b in zip(weights(m), loss.seen[4]))
    assert not all(torch.equal(a, b) for a, b in zip(loss.seen[4], loss.seen[5]))
    assert all(torch.isfinite(p).all() for p in m.parameters())


def test_fit_accepts_a_plain_function_as_loss_with_test_data(images, small_model):
    train_x, test_x = images

    def mse_ae(model, x, step):
        out = model(x)
        rec = (torch.sigmoid(out.out) - x).square().flatten(1).sum(1).mean()
        return {"loss": rec, "rec": rec}

    h = T.fit(small_model(), train_x, mse_ae, epochs=1, batch_size=100, test_x=test_x, progress=False)
    assert "rec" in h["train"][0] and "loss" in h["test"][0]  # the test rows are the −ELBO of evaluate()


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 1.5}, "batch_size"), ({"lr": -1.0}, "lr"),
])
def test_bad_fit_arguments_are_named(images, kwargs, match, small_model):
    with pytest.raises(ValueError, match=match):
        T.fit(small_model(), images[0], progress=False, **kwargs)
    with pytest.raises(ValueError, match="train_x"):
        T.fit(small_model(), images[0][:, 0], progress=False)


def test_fit_trains_on_the_data_device(images, small_model):
    m = small_model()
    T.fit(m, images[0], epochs=1, progress=False)
    assert next(m.parameters()).device == images[0].device
    assert not m.training  # left in eval mode


def test_device_selection_here_and_errors(monkeypatch, capsys):
    monkeypatch.delenv("VAELAB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert config.get_device().type == expected
    with pytest.raises(ValueError, match="device="):
        config.set_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            config.set_device("cuda")
        with pytest.raises(SystemExit) as exit_info:
            C.main(["--device", "cuda", "--epochs", "1"])
        assert exit_info.value.code == 2 and "no CUDA" in capsys.readouterr().err


class _Data:
    def __init__(self, train_x, test_x):
        self.train_x, self.test_x, self.name, self.source = train_x, test_x, "random", "uniform noise"


def test_train_vae_caches_by_config(images, data_dir, capsys):
    d = _Data(*images)
    kw = dict(data=d, hidden=(16,), latent_dim=3, epochs=1, batch_size=100, progress=False, name="nb03-test")
    m1, h1, loaded1 = T.train_vae(**kw)
    m2, h2, loaded2 = T.train_vae(**kw)
    assert (loaded1, loaded2) == (False, True) and h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    _, h3, loaded3 = T.train_vae(**{**kw, "loss": L.ELBOLoss(beta=2.0)})
    assert h3 != h1 and not loaded3
    T.train_vae(**{**kw, "progress": True})
    assert "loaded 'nb03-test' from the cache" in capsys.readouterr().out
    assert cache.clear("nb03-test*") == 2


def test_cli_prints_one_json_object_per_epoch(data_dir, offline, capsys):
    assert C.main(["--dataset", "mnist", "--hidden", "32", "--latent-dim", "4", "--epochs", "2", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in out]  # stdout holds nothing but the JSON lines
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert {"epoch", "train_seconds", "test_loss", "eval_seconds"} <= set(r)
        assert r["train_seconds"] > 0
        # the PyTorch example's convention: per-image Bernoulli NLL summed over pixels + KL
        assert r["test_loss"] == pytest.approx(r["test_rec"] + r["test_kl"], abs=2e-3)
        assert 50 < r["test_loss"] < 600
    assert rows[1]["test_loss"] < rows[0]["test_loss"]


def test_cli_plain_output_and_bad_flags(data_dir, offline, capsys):
    C.main(["--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--batch-size", "500", "--lr", "2e-3"])
    assert "epoch 1:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        C.main(["--dataset", "cifar"])


@pytest.mark.parametrize("argv, flag", [
    (["--batch-size", "0"], "--batch-size"), (["--epochs", "2.5"], "--epochs"), (["--lr", "-1"], "--lr"),
    (["--lr", "inf"], "--lr"), (["--beta", "-0.5"], "--beta"), (["--threads", "0"], "--threads"),
    (["--hidden", "400", "0"], "--hidden"), (["--latent-dim", "x"], "--latent-dim"),
    (["--precision", "fp8"], "--precision"),
])
def test_cli_refuses_bad_values_with_the_flag_and_exit_2_before_loading_data(argv, flag, monkeypatch, capsys):
    def no_data(*args, **kwargs):
        raise AssertionError("the data were loaded before the arguments were checked")

    monkeypatch.setattr(C._data, "load", no_data)
    with pytest.raises(SystemExit) as exit_info:
        C.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and flag in err and "Traceback" not in err, err


def test_lr_schedules(images, small_model):
    train_x, _ = images
    m = small_model()
    before = weights(m)
    seen = []

    def frozen(step, total):
        seen.append((step, total))
        return 0.0

    T.fit(m, train_x, epochs=2, batch_size=100, progress=False, lr_schedule=frozen)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(m)))  # lr 0: Adam moves nothing
    assert seen == [(s, 6) for s in range(6)]
    h = T.fit(small_model(), train_x, epochs=2, batch_size=100, progress=False, lr_schedule="linear")
    assert h["train"][1]["loss"] < h["train"][0]["loss"]
    with pytest.raises(ValueError, match="lr_schedule"):
        T.fit(small_model(), train_x, progress=False, lr_schedule="cosine")


def test_linear_schedule_warms_up_then_decays_to_zero():
    factor = T._lr_factor("linear", steps_per_epoch=40, total_steps=400)
    values = [factor(s) for s in range(400)]
    assert values[0] == pytest.approx(0.1) and max(values) == values[9] == pytest.approx(1 - 9 / 400)
    assert values[-1] == pytest.approx(1 / 400) and all(a >= b for a, b in zip(values[9:], values[10:]))
    assert T._lr_factor(None, 40, 400) is None and T._lr_factor("constant", 40, 400) is None


def test_init_output_bias_predicts_the_mean_image(images, small_model):
    train_x, _ = images
    m = small_model()
    C.init_output_bias(m, train_x)
    with torch.no_grad():
        m.decoder[-1].weight.zero_()
    mean_image = torch.sigmoid(m.decode(torch.zeros(1, 4)))[0]
    torch.testing.assert_close(mean_image, train_x.mean(0).clamp(1e-3, 1 - 1e-3))
    from vaeutils.models import ConvVAE
    with pytest.raises(TypeError, match="MLPVAE"):
        C.init_output_bias(ConvVAE(), train_x)


def test_a_negative_learning_rate_factor_is_refused_at_its_step(images, small_model):
    train_x, _ = images
    with pytest.raises(ValueError, match="lr_schedule returned -0.5 at step 3"):
        T.fit(small_model(), train_x, epochs=1, batch_size=32, progress=False,
              lr_schedule=lambda step, total: 1.0 if step < 3 else -0.5)


@pytest.mark.parametrize("which", ["train_x", "test_x"])
def test_nan_pixels_are_refused_before_training(images, which, small_model):
    train_x, test_x = (t.clone() for t in images)
    (train_x if which == "train_x" else test_x)[2, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=f"{which} contains NaN or inf pixels \\(images \\[2\\]"):
        T.fit(small_model(), train_x, epochs=1, batch_size=32, test_x=test_x, progress=False)


def test_a_nan_gradient_is_reported_at_the_step_that_made_it(images, small_model):
    train_x, _ = images
    model = small_model()
    base = L.ELBOLoss()

    def loss_with_a_nan_gradient_at_step_2(m, x, step):
        terms = base(m, x, step)
        if step == 2:  # finite value, NaN gradient: sqrt at 0 has an infinite slope, times 0
            terms["loss"] = terms["loss"] + 0.0 * torch.sqrt(terms["kl"] * 0.0)
        return terms

    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(T.NonFiniteLossError) as info:
        T.fit(model, train_x, loss_with_a_nan_gradient_at_step_2, epochs=1, batch_size=32, progress=False)
    assert info.value.step == 2 and info.value.term == "gradient"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # steps 0 and 1 did update


@pytest.mark.parametrize("bad, match", [
    (dict(callbacks=5), "callbacks"), (dict(loss_fn="bernoulli"), "loss_fn"), (dict(epochs=0), "epochs"),
    (dict(batch_size=2.5), "batch_size"), (dict(lr=float("nan")), "lr"),
])
def test_fit_names_bad_arguments(images, bad, match, small_model):
    with pytest.raises((TypeError, ValueError), match=match):
        T.fit(small_model(), images[0], **{"progress": False, **bad})


def test_a_loss_without_a_loss_key_is_refused_clearly(images, small_model):
    with pytest.raises(TypeError, match="'loss'"):
        T.fit(small_model(), images[0], lambda m, x, step: {"rec": x.sum()}, epochs=1, progress=False)


def test_train_vae_refuses_a_loss_it_cannot_key_and_trains_it_uncached(images):
    d = _Data(*images)
    kw = dict(data=d, hidden=(16,), latent_dim=3, epochs=1, batch_size=100, progress=False, name="lambda-test")
    with pytest.raises(TypeError, match="no stable description.*cache=False"):
        T.train_vae(**kw, loss=L.ELBOLoss(beta=lambda s: 1.0))
    assert not T.train_vae(**kw, loss=L.ELBOLoss(beta=lambda s: 1.0), cache=False).loaded


def test_tune_allocator_is_on_for_glibc_and_off_when_asked(monkeypatch):
    import platform
    T.tune_allocator.cache_clear()
    assert T.tune_allocator() is (platform.libc_ver()[0] == "glibc")
    T.tune_allocator.cache_clear()
    monkeypatch.setenv("VAELAB_TUNE_MALLOC", "0")
    assert T.tune_allocator() is False
    T.tune_allocator.cache_clear()


def by_hand(model, train_x, *, epochs, batch_size, lr, seed, beta=1.0):
    """fit's loop written out: the seeded streams, the shuffled index slices, the ELBO (Bernoulli NLL + β KL),
    autograd's backward and torch.optim.Adam with its fused kernel; returns the loss of every step."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the reparameterisation noise comes from the global stream
        gen = torch.Generator().manual_seed(seed)  # the order of the examples from fit's own generator
        for _ in range(epochs):
            perm = torch.randperm(len(train_x), generator=gen)
            for i in range(0, len(train_x), batch_size):
                xb = train_x.index_select(0, perm[i:i + batch_size])
                mu, logvar = model.encode(xb)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
                logits = model.decode(z)
                rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").flatten(1).sum(1).mean()
                kl = (0.5 * (mu.square() + logvar.exp() - 1 - logvar)).sum(1).mean()
                loss = rec + beta * kl
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
    model.eval()
    return losses


def test_fit_is_autograd_and_fused_adam_written_out(images, small_model):
    """What unit 03 says fit runs is what runs: the same weights, to float32 rounding, as the loop by hand."""
    train_x, _ = images
    ours, theirs = small_model(seed=1), small_model(seed=1)
    h = T.fit(ours, train_x, L.ELBOLoss(beta=0.5), epochs=2, batch_size=64, lr=3e-3, seed=4, progress=False)
    steps = by_hand(theirs, train_x, epochs=2, batch_size=64, lr=3e-3, seed=4, beta=0.5)
    assert h["steps"] == pytest.approx(steps, rel=1e-5)
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not all(torch.equal(a, b) for a, b in zip(weights(small_model(seed=1)), weights(ours)))  # it trained


def test_train_step_makes_the_same_update_as_fused_adam_by_hand(images, small_model):
    xb = images[0][:32]
    ours, theirs = small_model(seed=2), small_model(seed=2)
    opt = T.make_optimizer(ours.parameters(), lr=1e-2)
    assert opt.defaults["fused"] or opt.defaults["foreach"]
    ref = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=opt.defaults["fused"] or None)
    loss = L.ELBOLoss()
    for step in range(3):
        values = T.train_step(ours, opt, loss, xb, step, generator=torch.Generator().manual_seed(step))
        terms = loss(theirs, xb, step, generator=torch.Generator().manual_seed(step))
        ref.zero_grad()
        terms["loss"].backward()
        ref.step()
        assert values["loss"] == pytest.approx(terms["loss"].item(), rel=1e-6)
        assert set(values) == set(terms) and all(isinstance(v, float) for v in values.values())
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
