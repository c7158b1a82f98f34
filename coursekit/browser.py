"""What the browser tests share: servers (Voila, JupyterLab) in their own process group, a headless
Debian Chromium driven by Playwright, and ways to move an ipywidgets slider the way a person does.

Widgets are found by CSS classes the app notebook adds (``beta-slider``, ``beta-explorer``, ...), not by
the internal markup of ipywidgets, so a change of layout inside a widget does not break the tests.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .paths import ROOT

CHROMIUM = os.environ.get("VAELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WIDGET_ERROR = "Error displaying widget"
SERVER_START_S = 120.0


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (it is in requirements.txt: run `make venv`)"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set VAELAB_CHROMIUM)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session (so stopping it also stops its kernels), logging to a file.

    ``with Server(argv, ready_path, port, ...) as server:`` waits until ``GET ready_path`` answers with
    ``ready_status``, and stops the whole process group on exit."""

    def __init__(self, argv, port: int, log_path: Path, ready_path: str = "/", ready_status=range(100, 600),
                 env=None, cwd=None):
        self.argv, self.port, self.log_path = list(argv), port, Path(log_path)
        self.ready_path, self.ready_status, self.env, self.cwd = ready_path, ready_status, env, cwd
        self.process: subprocess.Popen | None = None
        self.start_seconds = float("nan")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def _status(self) -> int | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", self.ready_path)
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    def start(self, timeout: float = SERVER_START_S) -> Server:
        t0 = time.perf_counter()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env, cwd=self.cwd, start_new_session=True)
        while time.perf_counter() - t0 < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[2:4]} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._status() in self.ready_status:
                self.start_seconds = time.perf_counter() - t0
                return self
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # start_new_session: the group id is the leader's pid
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # kernels outlive a killed server unless their group goes too
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def server_environment(tmp_path: Path) -> dict:
    """Environment for the servers: smoke mode (small, fast models), offline data, vaeutils importable,
    Jupyter's runtime and settings in ``tmp_path`` so nothing of the user's set-up leaks in or out."""
    from coursekit.app import server_env

    env = server_env()
    env.update(SMOKE="1", VAELAB_OFFLINE="1", PYTHONUNBUFFERED="1",
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"))
    env.pop("VAELAB_DEVICE", None)
    return env


def voila_server(notebook: Path, tmp_path: Path, env: dict) -> Server:
    """Voila on ``notebook`` with the same command line as ``make app`` (``coursekit.app.voila_argv``)."""
    from coursekit.app import voila_argv

    port = free_port()
    # Voila answers on its static folder without starting a kernel; the page itself would run the notebook.
    return Server(voila_argv(notebook, port=port), port, tmp_path / "voila.log", ready_path="/voila/static/",
                  env=env, cwd=str(ROOT))


def lab_server(root_dir: Path, tmp_path: Path, env: dict) -> tuple[Server, str]:
    """JupyterLab on ``root_dir`` with ``window.jupyterapp`` exposed, so a test can run Lab's own commands
    (the ones its menus call). Returns the server and its token."""
    token = secrets.token_hex(16)
    port = free_port()
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={root_dir}",
            f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    server = Server(argv, port, tmp_path / "lab.log", ready_path=f"/api/status?token={token}", ready_status=(200,),
                    env=env, cwd=str(root_dir))
    return server, token


def launch_chromium(playwright):
    """Debian's Chromium, headless, with the flags that keep it quiet and offline."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def page_problems(page) -> list[str]:
    """Widget or cell errors visible on the page (empty when everything rendered)."""
    text = page.evaluate("() => document.body ? document.body.innerText : ''")
    problems = [line for line in text.splitlines() if WIDGET_ERROR in line or "Traceback" in line
                or "There was an error when executing cell" in line]
    return problems


def image_sources(page, root_selector: str) -> list[str]:
    """The ``src`` of every image inside the first element matching ``root_selector``."""
    return page.eval_on_selector(root_selector, "root => [...root.querySelectorAll('img')].map(i => i.src)")


WATCH_JS = """
([rootSelector, textSelector]) => {
  const root = document.querySelector(rootSelector);
  const sources = () => [...root.querySelectorAll('img')].map(i => i.src).join('|');
  const text = () => textSelector ? [...root.querySelectorAll(textSelector)].map(e => e.textContent).join('|') : '';
  const w = {t0: null, image_ms: null, text_ms: null, frame_ms: null, before: sources(), before_text: text()};
  window.__vaelabWatch = w;
  // The moment the person acts: the first key press or pointer press after the watch is set.
  const start = () => { if (w.t0 === null) w.t0 = performance.now(); };
  document.addEventListener('keydown', start, {capture: true, once: true});
  document.addEventListener('pointerdown', start, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    if (w.t0 === null) return;
    if (w.image_ms === null && sources() !== w.before) {
      w.image_ms = performance.now() - w.t0;
      requestAnimationFrame(() => requestAnimationFrame(() => { w.frame_ms = performance.now() - w.t0; }));
    }
    if (w.text_ms === null && textSelector && text() !== w.before_text) w.text_ms = performance.now() - w.t0;
    if (w.image_ms !== null && (w.text_ms !== null || !textSelector)) observer.disconnect();
  });
  observer.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
}
"""


def watch_updates(page, root_selector: str, text_selector: str | None = None) -> None:
    """Start timing: the next key or pointer press is t = 0; record when an image inside ``root_selector``
    changes (``image_ms``), when the text of ``text_selector`` inside it changes (``text_ms``), and two
    animation frames after the image change (``frame_ms``, the new picture is on screen)."""
    page.evaluate(WATCH_JS, [root_selector, text_selector])


def watched(page, timeout_s: float = 10.0, need_text: bool = False) -> dict:
    """Wait for the change started by :func:`watch_updates`; returns its timings in ms (None: no change)."""
    condition = ("() => { const w = window.__vaelabWatch; return w && w.frame_ms !== null"
                 + (" && w.text_ms !== null" if need_text else "") + "; }")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        pass  # the caller asserts on the timings it gets back
    return page.evaluate("() => ({...window.__vaelabWatch})")


def slider_position(page, slider_selector: str) -> float:
    """The slider's position as the handle reports it (``aria-valuenow``: the index for a SelectionSlider)."""
    return float(page.get_attribute(f"{slider_selector} .noUi-handle", "aria-valuenow"))


def press_slider_key(page, slider_selector: str, key: str = "ArrowRight", times: int = 1) -> None:
    """Focus the slider's handle and press ``key`` (ArrowLeft/ArrowRight one step, Home/End the ends), as
    a keyboard user does. Works for every ipywidgets slider, including a SelectionSlider whose readout
    does not accept typing."""
    handle = page.locator(f"{slider_selector} .noUi-handle")
    handle.focus()
    for _ in range(times):
        handle.press(key)


def type_into_readout(page, slider_selector: str, value: str) -> None:
    """Click the slider's readout, replace its text with ``value`` and press Enter (numeric sliders)."""
    readout = page.locator(f"{slider_selector} .widget-readout")
    readout.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def drag_slider_to(page, slider_selector: str, fraction: float) -> None:
    """Drag the handle with the mouse to ``fraction`` (0 = left end, 1 = right end) of the track."""
    handle = page.locator(f"{slider_selector} .noUi-handle").bounding_box()
    track = page.locator(f"{slider_selector} .noUi-base").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], track["y"] + track["height"] / 2, steps=8)
    page.mouse.up()

