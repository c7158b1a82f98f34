"""The β tools of unit 05, driven headlessly: the sweep, the explorer's slider, the live trainer's
thread (start, β change, stop, close, kernel interrupt) and the pure functions behind them.

Everything runs on a tiny slice of MNIST with one or two epochs, so the whole file takes seconds.
"""

import io
import os
import signal
import textwrap
import time
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from vaeutils import config
from vaeutils import sweep as S
from vaeutils.widgets import beta as B
from vaeutils.widgets import beta_explorer, live_beta_trainer
from vaeutils.widgets import live as LV

TINY_BETAS = (0.5, 4.0)


@pytest.fixture(scope="module")
def tiny(mnist_tiny):
    return mnist_tiny  # the offline MNIST's first 256 / 64 images, built in a temporary folder (conftest.py)


@pytest.fixture(scope="module")
def tiny_sweep(tiny):
    return S.train_beta_sweep(tiny, TINY_BETAS, epochs=1, cache=False, progress=False)


def wait_until(condition, timeout=30.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- data and sweep

def test_prepare_data_binarizes_the_test_set_only(tiny):
    prepared = S.prepare_data(tiny)
    assert set(prepared.test_x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(prepared.train_x, tiny.train_x)  # training binarizes each batch afresh
    assert torch.equal(S.prepare_data(tiny).test_x, prepared.test_x)  # static: same sample every time
    assert S.prepare_data(prepared) is prepared
    assert "binarized" in prepared.source


def test_prepare_data_rejects_other_objects():
    with pytest.raises(TypeError, match="ImageData"):
        S.prepare_data(torch.zeros(3, 1, 28, 28))


def test_sweep_returns_one_entry_per_beta(tiny_sweep):
    assert [e.beta for e in tiny_sweep] == list(TINY_BETAS)
    beta, model, history = tiny_sweep[0]
    assert beta == 0.5 and model.latent_dim == S.SWEEP_LATENT_DIM and len(history["train"]) == 1


@pytest.mark.parametrize("betas", [(), (1.0,), (2.0, 1.0), (0.0, 1.0), (1.0, 1.0), (1.0, float("nan")), 3.0])
def test_bad_betas_are_named(tiny, betas):
    with pytest.raises((ValueError, TypeError), match="β|betas"):
        S.train_beta_sweep(tiny, betas, epochs=1, cache=False, progress=False)


def test_sweep_trains_once_then_loads_from_the_cache(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    first = S.train_beta_sweep(tiny, TINY_BETAS, epochs=1)
    assert "0 loaded from the cache, 2 trained" in capsys.readouterr().out
    second = S.train_beta_sweep(tiny, TINY_BETAS, epochs=1)
    assert "2 loaded from the cache, 0 trained" in capsys.readouterr().out
    assert len(list(tmp_path.glob(f"{S.SWEEP_NAME}-*.pt"))) == 2
    for a, b in zip(first, second):
        assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_sweep_points_add_up(tiny, tiny_sweep):
    points = S.sweep_points(tiny_sweep, S.prepare_data(tiny).test_x)
    for p in points:
        assert p["neg_elbo"] == pytest.approx(p["rate"] + p["distortion"])
        assert p["kl_per_dim"].sum() == pytest.approx(p["rate"], rel=1e-4)
        assert 0 <= p["active"] <= p["latent_dim"] == S.SWEEP_LATENT_DIM
    with pytest.raises(TypeError, match="triples"):
        S.sweep_points([1, 2], S.prepare_data(tiny).test_x)


# --------------------------------------------------------------------------- the explorer

def test_explorer_slider_swaps_image_numbers_and_highlight(tiny, tiny_sweep):
    ex = beta_explorer(tiny, sweep=tiny_sweep, progress=False, n_images=4, n_samples=8, n_traverse=3)
    assert ex.slider.options == (("0.5", 0.5), ("4", 4.0))
    start_png, start_point, start_html = ex.image.value, ex.highlight, ex.info.value
    assert ex.current_beta == 4.0  # no β = 1 in this sweep, so it opens at the middle
    assert start_png[:8] == b"\x89PNG\r\n\x1a\n"

    ex.slider.value = 0.5  # from Python: the update runs before this line returns
    assert ex.current_beta == 0.5 and ex.current_index == 0
    assert ex.image.value != start_png and ex.image.value == ex.panels[0]
    assert ex.highlight == (ex.points[0]["rate"], ex.points[0]["distortion"]) != start_point
    assert ex.info.value != start_html and "β = 0.5" in ex.info.value
    assert f'data-rate="{ex.points[0]["rate"]:.4f}"' in ex.info.value

    n = ex.n_updates
    ex.slider.value = 4.0
    assert ex.image.value == start_png and ex.highlight == start_point and ex.n_updates == n + 1


def test_explorer_trains_its_own_sweep(tiny):
    ex = beta_explorer(tiny, betas=(0.25, 1.0), epochs=1, cache=False, progress=False, n_images=2, n_samples=4)
    assert ex.betas == (0.25, 1.0) and ex.current_beta == 1.0 and len(ex.panels) == 2


def test_render_beta_panel_checks_its_index(tiny, tiny_sweep):
    points = S.sweep_points(tiny_sweep, S.prepare_data(tiny).test_x)
    images = B.beta_panel_images(tiny_sweep[0].model, S.prepare_data(tiny).test_x[:3], points[0]["kl_per_dim"],
                                 n_samples=4, n_traverse=2, steps=5)
    assert images["traversal"].shape == (2 * 5, 1, 28, 28) and len(images["dims"]) == 2
    assert B.render_beta_panel(points, 1, images)[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="index"):
        B.render_beta_panel(points, 2, images)


# --------------------------------------------------------------------------- unit 05's pictures and sample measures

def test_sweep_gallery_has_a_row_per_beta_and_the_same_codes(tiny, tiny_sweep):
    fig = B.sweep_gallery(tiny_sweep, S.prepare_data(tiny).test_x[:5], n_samples=6, seed=3)
    assert len(fig.axes) == 2 * (len(tiny_sweep) + 1)
    drawn = [ax.images[0].get_array() for ax in fig.axes[3::2]]  # the sample column of every β
    assert all(d.shape == drawn[0].shape for d in drawn) and not (drawn[0] == drawn[1]).all()
    with pytest.raises(TypeError, match="triples"):
        B.sweep_gallery([1, 2], tiny.test_x[:5])


def test_nearest_distance_counts_pixels_and_expected_pixels():
    ref = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32).view(2, 1, 2, 2)
    binary = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.float32).view(3, 1, 2, 2)
    assert B.nearest_distance(binary, ref).tolist() == [1.0, 1.0, 0.0]       # Hamming to the nearest
    grey = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.9, 0.8, 0.1, 0.0]]).view(2, 1, 2, 2)
    # E[pixels differing] of a binary draw from p against t is Σ|p − t|; the nearest reference for each
    assert B.nearest_distance(grey, ref).numpy() == pytest.approx([2.0, 0.4], abs=1e-6)
    g = torch.Generator().manual_seed(0)
    draws = torch.bernoulli(grey[1:].expand(20000, -1, -1, -1), generator=g)
    assert (draws.flatten(1) != ref[0].flatten()).sum(1).float().mean().item() == pytest.approx(0.4, abs=0.02)
    with pytest.raises(ValueError, match="binary"):
        B.nearest_distance(binary, grey)
    with pytest.raises(ValueError, match="same size"):
        B.nearest_distance(binary, torch.zeros(2, 1, 3, 3))


def test_sample_realism_repeats_and_scores_a_copying_decoder_zero(tiny, tiny_sweep):
    ref = S.prepare_data(tiny).test_x
    model = tiny_sweep[0].model
    a, b = B.sample_realism(model, ref, n=50, seed=4), B.sample_realism(model, ref, n=50, seed=4)
    assert (a["distance"] == b["distance"]).all() and a["diversity"] == b["diversity"] > 0
    assert (a["distance"] > 0).all() and a["distance"].shape == (50,)

    class Copier(torch.nn.Module):  # "samples" that are reference images: distance 0, the most "too close"
        latent_dim = 2

        def eval(self):
            return self

        def sample(self, n, generator=None):
            return ref[torch.randint(len(ref), (n,), generator=generator)]

    copied = B.sample_realism(Copier(), ref, n=30)
    assert (copied["distance"] == 0).all()
    with pytest.raises(ValueError, match="n_diversity"):
        B.sample_realism(model, ref, n=10, n_diversity=20)


# --------------------------------------------------------------------------- pure pictures of the live trainer

def test_rd_trail_svg_marks_the_last_point():
    svg = LV.rd_trail_svg([1.0, 5.0, 10.0], [120.0, 100.0, 95.0])
    assert svg.startswith("<svg") and svg.count('class="current"') == 1 and "rate R" in svg
    assert LV.rd_trail_svg([3.0], [90.0]).count("<circle") == 1
    with pytest.raises(ValueError, match="same length"):
        LV.rd_trail_svg([1.0, 2.0], [3.0])
    with pytest.raises(ValueError, match="finite"):
        LV.rd_trail_svg([float("nan")], [1.0])


def test_recon_strip_png_has_two_rows():
    png = LV.recon_strip_png(torch.zeros(3, 1, 28, 28), torch.ones(3, 1, 28, 28), scale=2)
    image = Image.open(io.BytesIO(png))
    assert image.size == ((3 * 29 + 1) * 2, (2 * 29 + 1) * 2)
    with pytest.raises(ValueError, match="same shape"):
        LV.recon_strip_png(torch.zeros(3, 1, 28, 28), torch.zeros(2, 1, 28, 28))


# --------------------------------------------------------------------------- the live trainer

@pytest.fixture
def trainer(tiny):
    t = live_beta_trainer(tiny, device="cpu", hidden=(64,), latent_dim=4, n_eval=64, update_every=0.05, threads=1)
    yield t
    t.close()


def test_live_trainer_start_change_beta_stop(trainer):
    threads_before = torch.get_num_threads()
    assert not trainer.running and trainer.updates == 0
    trainer.start()
    assert trainer.running and trainer.start_button.disabled and not trainer.stop_button.disabled
    assert wait_until(lambda: trainer.updates >= 3), "no live updates within 30 s"
    first_png = trainer.image.value

    trainer.beta_slider.value = 8.0
    assert trainer.beta == 8.0
    assert wait_until(lambda: trainer.history and trainer.history[-1]["beta"] == 8.0)
    assert trainer.image.value != first_png and "β = <b>8</b>" in trainer.info.value
    assert '<circle class="current"' in trainer.trail.value

    assert trainer.stop(timeout=5.0) is True
    assert not trainer.thread.is_alive() and not trainer.running
    frozen = (trainer.updates, trainer.steps)
    time.sleep(0.3)
    assert (trainer.updates, trainer.steps) == frozen  # no work after Stop
    assert "Stopped" in trainer.status.value and not trainer.start_button.disabled
    assert torch.get_num_threads() == threads_before  # the thread count is given back


def test_live_trainer_leaves_the_global_rng_alone(trainer):
    state = torch.random.get_rng_state()
    trainer.reset()
    trainer.start()
    assert wait_until(lambda: trainer.updates >= 2)
    trainer.stop()
    assert torch.equal(torch.random.get_rng_state(), state)  # batches, binarization and z use their own generators


def test_live_trainer_buttons_drive_it(trainer):
    trainer.start_button.click()
    assert wait_until(lambda: trainer.updates >= 1)
    trainer.stop_button.click()
    assert wait_until(lambda: not trainer.running, 5.0)
    steps = trainer.steps
    trainer.reset_button.click()
    assert trainer.steps == 0 < steps and trainer.history == []


def test_live_trainer_close_stops_the_thread(tiny):
    t = live_beta_trainer(tiny, device="cpu", hidden=(64,), latent_dim=4, n_eval=64, update_every=0.05, threads=1,
                          start=True)
    assert wait_until(lambda: t.updates >= 1)
    thread = t.thread
    t.close()
    assert not thread.is_alive() and t.comm is None


def test_starting_a_second_trainer_stops_the_first(tiny, trainer):
    trainer.start()
    other = live_beta_trainer(tiny, device="cpu", hidden=(32,), latent_dim=2, n_eval=32, threads=1)
    try:
        other.start()
        assert not trainer.running and other.running
    finally:
        other.close()


def test_live_trainer_stops_after_max_seconds(tiny):
    t = live_beta_trainer(tiny, device="cpu", hidden=(32,), latent_dim=2, n_eval=32, threads=1, max_seconds=0.3,
                          start=True)
    try:
        assert wait_until(lambda: not t.running, 10.0)
        assert "after 0.3 s" in t.status.value
    finally:
        t.close()


def test_interrupt_while_a_cell_runs_stops_the_trainer(trainer):
    trainer.start()
    LV._after_cell(SimpleNamespace(error_in_exec=KeyboardInterrupt()))  # what IPython reports after Ctrl-C
    assert not trainer.running


def test_sigint_stops_the_trainer_then_reaches_the_old_handler(trainer):
    handler = signal.getsignal(signal.SIGINT)
    assert getattr(handler, "vaelab_live_trainer", False), "constructing a trainer installs the SIGINT hook"
    trainer.start()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2.0)
    assert wait_until(lambda: not trainer.running, 5.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"beta": -1.0}, "beta"), ({"n_eval": 1}, "n_eval"), ({"threads": 0}, "threads"),
     ({"update_every": 0}, "update_every"), ({"max_seconds": -5}, "max_seconds"), ({"data": "mnist"}, "ImageData")],
)
def test_live_trainer_bad_arguments_are_named(tiny, kwargs, match):
    kwargs = {"data": tiny, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        live_beta_trainer(**kwargs)


@pytest.mark.slow
def test_kernel_interrupt_stops_the_trainer_in_a_real_kernel():
    """The real path: a Jupyter kernel, the trainer started in a cell, the kernel interrupted while idle."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(config.ROOT),
                              env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(config.ROOT)})
    try:
        def run(code):
            for _ in range(3):  # right after an error ipykernel briefly aborts queued requests: send again
                reply = kc.execute_interactive(textwrap.dedent(code), timeout=120, output_hook=lambda msg: None)
                if reply["content"]["status"] != "aborted":
                    break
                time.sleep(0.5)
            assert reply["content"]["status"] == "ok", reply["content"]

        run("""
            import dataclasses, time
            from vaeutils import data
            from vaeutils.widgets import live_beta_trainer
            d = data.load("mnist", device="cpu")
            d = dataclasses.replace(d, train_x=d.train_x[:256], test_x=d.test_x[:64], source="tiny")
            t = live_beta_trainer(d, device="cpu", hidden=(32,), latent_dim=2, n_eval=32, threads=1, start=True)
            """)
        run("time.sleep(1.0); assert t.running and t.updates > 0, (t.running, t.updates)")
        km.interrupt_kernel()  # the kernel is idle: only the trainer hears it
        time.sleep(1.5)
        run("assert not t.running, 'still training after the interrupt'; assert 'Stopped' in t.status.value")
        run("t.start(); time.sleep(0.5); assert t.running")
        msg_id = kc.execute("time.sleep(30)")  # busy this time: the interrupt lands in the cell
        time.sleep(1.0)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "error"
        run("time.sleep(0.5); assert not t.running, 'still training after interrupting a cell'")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
