"""The live β trainer: a small VAE trains in a background thread while the student drags β.

Rate, distortion, a rate–distortion trail and a few reconstructions refresh several times a second.
Each step is ``train.train_step``, the same step ``fit`` takes; each refresh is ``metrics.summary``
on held-out images. It stops on its Stop button, on a kernel interrupt (busy or idle), and when the
widget is closed. The pictures come from plain functions in ``widgets.live_pictures``
(:func:`recon_strip_png`, :func:`rd_trail_svg`) that the tests call directly.
"""

from __future__ import annotations

import html
import signal
import threading
import time
import weakref

import ipywidgets as widgets
import torch

from .. import checks
from .. import config as _config
from .. import cpu as _cpu
from .. import data as _data
from .. import metrics as _metrics
from .. import precision as _precision
from ..i18n import _, tr
from ..losses import ELBOLoss
from ..models import build_model
from ..train import make_optimizer, train_step
from . import sliders
from .live_pictures import rd_trail_svg, recon_strip_png

# ------------------------------------------------------------------- stopping on a kernel interrupt

_RUNNING: weakref.WeakSet = weakref.WeakSet()  # live trainers whose thread is running
_hooks_installed = False


def stop_all_trainers(timeout: float = 2.0) -> int:
    """Stop every running live β trainer; returns how many were stopped."""
    trainers = list(_RUNNING)
    for t in trainers:
        t.stop(timeout=timeout)
    return len(trainers)


def _chain_sigint(previous):
    def on_sigint(signum, frame):
        for t in list(_RUNNING):
            t.stop(timeout=0)  # ask the threads to stop; never block inside a signal handler
        if callable(previous):
            previous(signum, frame)

    on_sigint.vaelab_live_trainer = True
    return on_sigint


def _after_cell(result) -> None:
    if isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt):
        stop_all_trainers()


def _install_interrupt_hooks() -> None:
    """Make a kernel interrupt stop the live trainers, busy or idle.

    While a cell runs, the interrupt raises KeyboardInterrupt in it: an IPython ``post_run_cell``
    hook sees that and stops the trainers. While the kernel is idle, ipykernel ignores SIGINT (its
    handler between messages is ``kernel.saved_sigint_handler``); that handler is wrapped so that it
    first stops the trainers. Outside IPython the process's SIGINT handler is wrapped the same way
    (unless SIGINT is ignored, as under ``nohup`` or in a background job: then it stays ignored).
    """
    global _hooks_installed
    if _hooks_installed:
        return
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        shell.events.register("post_run_cell", _after_cell)
    kernel = getattr(shell, "kernel", None)
    if kernel is not None and hasattr(kernel, "saved_sigint_handler"):
        kernel.saved_sigint_handler = _chain_sigint(kernel.saved_sigint_handler)
    elif threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):  # ignored SIGINT stays ignored
        signal.signal(signal.SIGINT, _chain_sigint(signal.getsignal(signal.SIGINT)))
    _hooks_installed = True


# --------------------------------------------------------------------------- the live trainer

def _default_threads(device: torch.device) -> int:
    """Half the cores this process may use (its affinity and cgroup quota, ``cpu.usable_cores``):
    the other half stays with the kernel answering the sliders. ``VAELAB_THREADS`` set to a number
    caps it."""
    if device.type != "cpu":
        return torch.get_num_threads()
    fixed = _cpu.requested_threads()
    return max(1, min(_cpu.usable_cores() // 2, fixed or _cpu.usable_cores()))


class LiveBetaTrainer(widgets.VBox):
    """Trains a small MLP VAE in a background thread while ``beta_slider`` sets β.

    Attributes for code and tests: ``beta_slider``, ``start_button``, ``stop_button``,
    ``reset_button``, ``image`` (test images over their reconstructions, PNG), ``trail`` (SVG of the
    rate–distortion trail), ``info`` and ``status`` (HTML), ``thread``, ``running``, ``steps``,
    ``updates`` (views refreshed), ``history`` (one dict per refresh: seconds, step, beta, rate,
    distortion, active), ``error``.
    Methods: ``start()``, ``stop(timeout)``, ``reset()``, ``close()`` (stops, then closes).
    """

    def __init__(self, data=None, beta: float = 1.0, *, hidden=(256,), latent_dim: int = 10,
                 batch_size: int = 128, lr: float = 1e-3, device=None, update_every: float = 0.15,
                 n_images: int = 6, n_eval: int = 500, threads: int | None = None,
                 max_seconds: float | None = 600.0, seed: int = 0):
        # first, so that close() works even if a check below fails
        self._stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        _check_beta_value(beta)
        for name, value, low in (("latent_dim", latent_dim, 1), ("batch_size", batch_size, 1),
                                 ("n_images", n_images, 1), ("n_eval", n_eval, 2),
                                 ("seed", seed, 0)):
            checks.integer(name, value, low=low)
        checks.positive("lr", lr)
        checks.number("update_every", update_every, 0.0, 10.0, low_open=True,
                      hint="seconds between refreshes")
        if max_seconds is not None:
            checks.positive("max_seconds", max_seconds, hint="or None: no limit")
        data = _data.binarized(data)
        self.device = _config.get_device() if device is None else _config.check_device(device)
        checks.optional_integer("threads", threads, low=1)
        self.threads = _default_threads(self.device) if threads is None else threads
        self.precision = _precision.resolve(None, self.device)  # VAELAB_PRECISION, as for fit
        self.train_x = data.train_x.to(self.device)
        self.eval_x = data.test_x[:n_eval].to(self.device)
        self.show_x = self.eval_x[:n_images]
        self.hidden, self.latent_dim = tuple(hidden), latent_dim
        self.batch_size, self.lr = batch_size, float(lr)
        self.update_every, self.max_seconds, self.seed = float(update_every), max_seconds, seed
        self._beta = float(beta)
        self._reset_requested = False
        self.steps = self.updates = 0
        self.history: list[dict] = []
        self.error: BaseException | None = None
        self._build_model()

        self.beta_slider = sliders.FloatLogSlider(
            value=beta, base=10, min=-1.5, max=1.5, step=0.01,
            description="β", continuous_update=True, readout_format=".3g",
            layout=widgets.Layout(width="420px"))
        self.start_button = widgets.Button(description=_("Start"), icon="play",
                                           button_style="success",
                                           layout=widgets.Layout(width="90px"))
        self.stop_button = widgets.Button(description=_("Stop"), icon="stop", button_style="danger",
                                          disabled=True, layout=widgets.Layout(width="90px"))
        self.reset_button = widgets.Button(description=_("Reset weights"), icon="refresh",
                                           layout=widgets.Layout(width="130px"))
        strip_height = (2 * self.show_x.shape[-2] + 3) * 3  # two rows of images, 3x enlarged
        self.image = widgets.Image(format="png",
                                   value=recon_strip_png(self.show_x.cpu(), self.show_x.cpu()),
                                   layout=widgets.Layout(height=f"{strip_height}px"))
        self.trail = widgets.HTML(layout=widgets.Layout(width="330px", height="240px"))
        self.info = widgets.HTML(layout=widgets.Layout(min_height="24px"))
        self.status = widgets.HTML(value=_("Press Start, then drag β."))
        self.beta_slider.observe(self._on_beta, "value")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        controls = widgets.HBox([self.beta_slider, self.start_button, self.stop_button,
                                 self.reset_button])
        views = widgets.HBox([widgets.VBox([self.image, self.info]), self.trail])
        super().__init__([controls, views, self.status])
        if self.comm is not None:
            self.comm.on_close(lambda _msg: self.stop(timeout=0))  # the front end closed the widget
        _install_interrupt_hooks()

    # ---- state shared with the training thread: β (a float, written here, read there), flags
    @property
    def beta(self) -> float:
        return self._beta

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _beta_schedule(self, step: int) -> float:
        return self._beta

    def _on_beta(self, change) -> None:
        self._beta = float(change["new"])

    def _build_model(self) -> None:
        # seeded weights, without reseeding the notebook's own RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.model = build_model("mlp", in_shape=tuple(self.train_x.shape[1:]),
                                     hidden=self.hidden, latent_dim=self.latent_dim).to(self.device)
        self.optimizer = make_optimizer(list(self.model.parameters()), self.lr)
        self.loss = ELBOLoss(beta=self._beta_schedule)  # β read from the slider at every step

    def reset(self) -> None:
        """Start again from fresh weights (at the next step when running)."""
        if self.running:
            self._reset_requested = True
        else:
            self._build_model()
            self.steps = 0
            self.history.clear()
            self.status.value = _("Weights reset. Press Start.")

    def start(self) -> None:
        """Start training in a background thread (a second call while running does nothing).
        Any other running live trainer is stopped first: two would only share the same cores."""
        if self.running:
            return
        for other in list(_RUNNING):
            if other is not self:
                other.stop()
        self._stop_event.clear()
        self.error = None
        self.thread = threading.Thread(target=self._train_loop, name="live-beta-trainer",
                                       daemon=True)
        _RUNNING.add(self)
        self.start_button.disabled, self.stop_button.disabled = True, False
        threads = tr("1 thread") if self.threads == 1 else tr(f"{self.threads} threads")
        self.status.value = tr(f"Training on {self.device} ({threads})…")
        self.thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop and wait up to ``timeout`` seconds; True when it has ended."""
        self._stop_event.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread() and timeout > 0:
            thread.join(timeout)
        return not self.running

    def close(self) -> None:
        """Stop training, then close the widget."""
        self.stop()
        super().close()

    def _train_loop(self) -> None:
        previous_threads = torch.get_num_threads()
        if self.device.type == "cpu":
            # leaves the other cores to the kernel and the browser
            torch.set_num_threads(self.threads)
        t_start = time.perf_counter()
        # a fixed cadence: a slow step does not push every later view back
        next_due = t_start + self.update_every
        reason = _("Stopped")
        try:
            gen = torch.Generator().manual_seed(self.seed + self.steps)  # batch order
            # binarization, z
            noise = torch.Generator(device=self.device).manual_seed(self.seed + self.steps + 1)
            n = len(self.train_x)
            order, pos = torch.randperm(n, generator=gen), 0
            self.model.train()
            while not self._stop_event.is_set():
                if self._reset_requested:
                    self._reset_requested = False
                    self._build_model()
                    self.model.train()
                    self.steps = 0
                    self.history.clear()
                if pos + self.batch_size > n:
                    order, pos = torch.randperm(n, generator=gen), 0
                idx = order[pos:pos + self.batch_size].to(self.device)
                pos += self.batch_size
                xb = torch.bernoulli(self.train_x[idx], generator=noise)
                train_step(self.model, self.optimizer, self.loss, xb, self.steps, generator=noise,
                           precision=self.precision)
                self.steps += 1
                now = time.perf_counter()
                if now >= next_due:
                    self._publish(now - t_start)
                    next_due = max(next_due + self.update_every,
                                   time.perf_counter() + 0.25 * self.update_every)
                if self.max_seconds is not None and now - t_start > self.max_seconds:
                    reason = tr(f"Stopped after {self.max_seconds:g} s (press Start to go on)")
                    break
        except Exception as err:  # shown in the widget: a thread has nowhere else to report
            self.error = err
            reason = tr(f"Stopped by an error: {html.escape(str(err))}")
        finally:
            if self.device.type == "cpu":
                torch.set_num_threads(previous_threads)
            _RUNNING.discard(self)
            self.start_button.disabled, self.stop_button.disabled = False, True
            self.status.value = tr(f"{reason}; step {self.steps}.")

    def _publish(self, seconds: float) -> None:
        """Measure on the held-out images and refresh the views (from the training thread)."""
        rd = _metrics.summary(self.model, self.eval_x)
        active = rd["active"]
        recon = self.model.reconstruct(self.show_x)
        self.model.train()
        beta = self._beta
        entry = {"seconds": seconds, "step": self.steps, "beta": beta, "rate": rd["rate"],
                 "distortion": rd["distortion"], "active": active}
        trail = [*self.history[-299:], entry]
        self.image.value = recon_strip_png(self.show_x, recon)
        self.trail.value = rd_trail_svg([h["rate"] for h in trail],
                                        [h["distortion"] for h in trail], fit_last=60)
        self.info.value = tr(f'<span class="vaelab-live-info">β = <b>{beta:.3g}</b> &nbsp; '
                           f"step {self.steps} &nbsp; rate <b>{rd['rate']:.2f}</b> nats &nbsp; "
                           f"distortion <b>{rd['distortion']:.2f}</b> nats &nbsp; "
                           f"−ELBO {rd['neg_elbo']:.2f} &nbsp; "
                           f"active units {active}/{self.latent_dim}</span>")
        self.history.append(entry)  # last, so whoever sees the entry also sees the views it shows
        self.updates += 1


BETA_RANGE = (10 ** -1.5, 10 ** 1.5)  # the slider's range: β from 0.032 to 31.6


def _check_beta_value(beta) -> None:
    checks.number("beta", beta, *BETA_RANGE, hint="the slider shows 0.032 to 31.6")


def live_beta_trainer(data=None, beta: float = 1.0, *, hidden=(256,), latent_dim: int = 10,
                      batch_size: int = 128, lr: float = 1e-3, device=None,
                      update_every: float = 0.15, n_images: int = 6, n_eval: int = 500,
                      threads: int | None = None, max_seconds: float | None = 600.0, seed: int = 0,
                      start: bool = False) -> LiveBetaTrainer:
    """A small MLP VAE (784-256-10 by default) trained in a background thread while you drag β.

    Every ``update_every`` seconds the rate, distortion and active units on ``n_eval`` binarized
    test images, a rate–distortion trail and ``n_images`` reconstructions refresh. The kernel stays
    free:
    training runs in a thread with ``threads`` CPU threads (default half the cores; torch's setting
    is process-wide, so it is restored when training stops). It stops on Stop, on a kernel
    interrupt, when the widget is closed, and after ``max_seconds`` (None: never). GPU if present,
    else CPU (``device`` overrides). ``start=True`` starts at once.
    """
    trainer = LiveBetaTrainer(data, beta, hidden=hidden, latent_dim=latent_dim,
                              batch_size=batch_size, lr=lr, device=device,
                              update_every=update_every, n_images=n_images, n_eval=n_eval,
                              threads=threads, max_seconds=max_seconds, seed=seed)
    if start:
        trainer.start()
    return trainer
