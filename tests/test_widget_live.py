"""vaeutils.widgets.live, the live β trainer of unit 05, driven headlessly: its pure pictures (the rate–distortion
trail, the reconstruction strip), its thread (start, β change, stop, close, a second trainer, the time limit, kernel
interrupts) on the offline MNIST's first 256 images (``mnist_tiny``, conftest.py), and its arguments: values its
slider cannot show are refused (it would train at β = 100 while the slider showed 31.6), and so are refresh
intervals it could never keep (``update_every=inf`` never refreshed).
"""

import io
import math
import os
import signal
import textwrap
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from vaeutils import config
from vaeutils.widgets import live as LV
from vaeutils.widgets import live_beta_trainer


def wait_until(condition, timeout=30.0):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


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
def trainer(mnist_tiny):
    t = live_beta_trainer(mnist_tiny, device="cpu", hidden=(64,), latent_dim=4, n_eval=64, update_every=0.05, threads=1)
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


def test_live_trainer_close_stops_the_thread(mnist_tiny):
    t = live_beta_trainer(mnist_tiny, device="cpu", hidden=(64,), latent_dim=4, n_eval=64, update_every=0.05, threads=1,
                          start=True)
    assert wait_until(lambda: t.updates >= 1)
    thread = t.thread
    t.close()
    assert not thread.is_alive() and t.comm is None


def test_starting_a_second_trainer_stops_the_first(mnist_tiny, trainer):
    trainer.start()
    other = live_beta_trainer(mnist_tiny, device="cpu", hidden=(32,), latent_dim=2, n_eval=32, threads=1)
    try:
        other.start()
        assert not trainer.running and other.running
    finally:
        other.close()


def test_live_trainer_stops_after_max_seconds(mnist_tiny):
    t = live_beta_trainer(mnist_tiny, device="cpu", hidden=(32,), latent_dim=2, n_eval=32, threads=1, max_seconds=0.3,
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


@pytest.fixture
def python_sigint(monkeypatch):
    """Python's own SIGINT handler (KeyboardInterrupt), whatever the test run inherited (``nohup``, ``trap '' INT``
    or a CI runner start it with SIGINT ignored), with the trainer's hook to be installed over it afresh; the
    handler the run had is put back afterwards."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    monkeypatch.setattr(LV, "_hooks_installed", False)
    yield
    signal.signal(signal.SIGINT, old)


def test_an_ignored_sigint_stays_ignored(monkeypatch):
    """Under ``nohup`` or in a background job SIGINT is ignored: a trainer's hook must not take it over."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    monkeypatch.setattr(LV, "_hooks_installed", False)
    try:
        LV._install_interrupt_hooks()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_sigint_stops_the_trainer_then_reaches_the_old_handler(python_sigint, mnist_tiny):
    trainer = live_beta_trainer(mnist_tiny, device="cpu", hidden=(64,), latent_dim=4, n_eval=64, update_every=0.05,
                                threads=1)
    try:
        handler = signal.getsignal(signal.SIGINT)
        assert getattr(handler, "vaelab_live_trainer", False), "constructing a trainer installs the SIGINT hook"
        trainer.start()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2.0)
        assert wait_until(lambda: not trainer.running, 5.0)
    finally:
        trainer.close()


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
            d = dataclasses.replace(d, train_x=d.train_x[:256], test_x=d.test_x[:64], source="mnist_tiny")
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


# --------------------------------------------------------------------------- arguments

SMALL = {"device": "cpu", "hidden": (8,), "latent_dim": 2, "n_eval": 16, "n_images": 2, "threads": 1}


@pytest.fixture
def make_trainer(random_image_data):
    made = []

    def make(**kw):
        t = live_beta_trainer(random_image_data, **{**SMALL, **kw})
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


@pytest.mark.parametrize("beta", [100.0, 0.01, 0.0, -1.0, math.inf, math.nan])
def test_beta_outside_the_slider_is_refused(make_trainer, beta):
    with pytest.raises(ValueError, match=r"beta must be a finite number >= 0.0316.*<= 31.6.*slider shows 0.032"):
        make_trainer(beta=beta)


def test_beta_at_the_ends_of_the_slider_and_numpy_numbers_are_taken(make_trainer):
    lo, hi = LV.BETA_RANGE
    assert make_trainer(beta=lo).beta == pytest.approx(lo) and make_trainer(beta=hi).beta == pytest.approx(hi)
    t = make_trainer(beta=np.float32(2.0))
    assert t.beta == 2.0 and t.beta_slider.value == pytest.approx(2.0)  # what it trains at is what it shows


@pytest.mark.parametrize("update_every", [math.inf, math.nan, 0.0, -0.5, 11.0, "0.2", True])
def test_refresh_intervals_it_could_not_keep_are_refused(make_trainer, update_every):
    with pytest.raises(ValueError, match="update_every must be"):
        make_trainer(update_every=update_every)


def test_numpy_refresh_interval_is_taken(make_trainer):
    assert make_trainer(update_every=np.float64(0.5)).update_every == 0.5


def test_a_device_that_is_not_here_is_refused_by_name():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        live_beta_trainer(device="cuda")
    with pytest.raises(ValueError, match="not a device name"):
        live_beta_trainer(device="gpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"beta": -1.0}, "beta"), ({"n_eval": 1}, "n_eval"), ({"threads": 0}, "threads"),
     ({"update_every": 0}, "update_every"), ({"max_seconds": -5}, "max_seconds"), ({"data": "mnist"}, "ImageData")],
)
def test_live_trainer_bad_arguments_are_named(mnist_tiny, kwargs, match):
    kwargs = {"data": mnist_tiny, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        live_beta_trainer(**kwargs)
