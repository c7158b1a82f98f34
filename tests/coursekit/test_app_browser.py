"""The widgets as people meet them: the β explorer app served by Voila, and one notebook in JupyterLab,
driven in Debian's Chromium by Playwright.

A widget that works in the kernel can still fail in the page (a front-end version mismatch shows
"Error displaying widget"; a shared Layout hides a slider). These tests start the real servers on
127.0.0.1, move sliders with the keyboard and the mouse, and assert that the picture and the numbers on
the page change. Timings are measured inside the page (``performance.now()`` from the key press to the
new image) and printed; they are asserted only loosely, the targets are in the README.

Smoke mode (small, fast models) unless ``UPDATE_SCREENSHOTS=1``, which serves the full app and rewrites
the README's screenshots in ``docs/``. Each test leaves its screenshots in its own ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursekit.browser import (
    ROOT,
    browser_unavailable,
    drag_slider_to,
    image_sources,
    lab_server,
    page_problems,
    press_slider_key,
    server_environment,
    slider_position,
    type_into_readout,
    voila_server,
    watch_updates,
    watched,
)

APP = ROOT / "notebooks" / "beta_explorer_app.ipynb"
DOCS = ROOT / "docs"
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS", "").strip().lower() in {"1", "true", "yes"}
PAGE_TIMEOUT_MS = 600_000  # a cold cache trains the sweep while the page is built
FIRST_DRAW_TIMEOUT_MS = 180_000  # the sweep is ready before the server starts: a page draws in well under this
UPDATE_TIMEOUT_S = 10.0
LOOSE_LATENCY_MS = 5000  # fails only when the view does not follow at all; the target (200 ms) is reported

_missing = browser_unavailable()
if _missing and os.environ.get("CI"):  # in CI a missing browser is a broken set-up, not a reason to skip
    raise RuntimeError(f"browser tests cannot run: {_missing}")
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(_missing is not None, reason=_missing or "")]


def _env(tmp: Path) -> dict:
    env = server_environment(tmp)
    if UPDATE_SCREENSHOTS:
        for name in ("SMOKE", "CI"):
            env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """Voila serving the app, started as `make app` starts it: the sweep first (trained when the cache
    lacks it), then the server."""
    tmp = tmp_path_factory.mktemp("voila")
    env = _env(tmp)
    subprocess.run([sys.executable, "-m", "coursekit", "app", "--prepare-only"], env=env, cwd=ROOT, check=True,
                   timeout=PAGE_TIMEOUT_MS / 1000)
    with voila_server(APP, tmp, env) as server:
        print(f"\nvoila ready in {server.start_seconds:.1f} s at {server.base_url}")
        yield server


@pytest.fixture(scope="module")
def app_page(browser, app_server):
    """One page of the app for the tests of this module, loaded once: Voila runs the notebook per page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    t0 = time.perf_counter()
    # The sweep is trained before the server starts, so a page is drawn in well under two minutes. Now and then a
    # Voila page stays blank although its kernel went idle (the class-server benchmark sees it too); such a page is
    # loaded once more, and a second blank page fails the test.
    for attempt in (1, 2):
        page.goto(app_server.base_url, wait_until="commit", timeout=PAGE_TIMEOUT_MS)
        try:
            for selector in (".kl-explorer img", ".beta-explorer img", ".live-trainer img"):
                page.wait_for_selector(selector, state="attached", timeout=FIRST_DRAW_TIMEOUT_MS)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            print("\napp page still blank: loading it once more")
    print(f"\napp page: every widget drawn {time.perf_counter() - t0:.1f} s after the request")
    page.app_state = {"beta_changes": 0}
    yield page
    page.close()


def _save_small_png(source: Path, target: Path, colors: int = 128) -> None:
    """Copy a screenshot into docs/ as a small palette PNG (the README's pictures stay light)."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as im:
        im.convert("RGB").quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


def _beta_info(page) -> dict:
    return page.eval_on_selector(".beta-explorer .vaelab-beta-info", "e => ({...e.dataset})")


def test_app_renders_without_errors(app_page):
    """Every widget of the dashboard is drawn, no code is shown, and no widget or cell error appears."""
    assert page_problems(app_page) == []
    text = app_page.evaluate("() => document.body.innerText")
    assert "config.setup" not in text and "beta_explorer()" not in text, "code cells are shown"
    assert app_page.locator(".cm-editor, .CodeMirror").count() == 0
    for selector in (".kl-mu-slider", ".beta-slider", ".live-beta-slider"):
        assert app_page.locator(selector).is_visible(), f"{selector} is not visible"
    assert app_page.locator("h1", has_text="The β explorer").is_visible()


def test_kl_explorer_follows_its_slider(app_page, tmp_path):
    """Typing μ = 2 into the readout moves q and the KL: the picture changes and the KL reads 2 nats (σ = 1)."""
    root = ".kl-explorer"
    before = image_sources(app_page, root)
    watch_updates(app_page, root)
    type_into_readout(app_page, ".kl-mu-slider", "2")
    timing = watched(app_page, UPDATE_TIMEOUT_S)
    assert timing["image_ms"] is not None, "the KL picture did not change after μ was typed in"
    assert image_sources(app_page, root) != before
    assert "KL(q ‖ p) = 2.0000 nats" in app_page.locator(root).inner_text()
    print(f"\nKL explorer: image {timing['image_ms']:.0f} ms, on screen {timing['frame_ms']:.0f} ms after Enter")
    app_page.locator(root).screenshot(path=tmp_path / "kl_explorer.png")


def test_beta_slider_updates_picture_and_rd_point(app_page, tmp_path):
    """Keys and the mouse move β: the picture and the ringed rate–distortion point follow each move.

    The first change after the page loaded is timed (target < 200 ms on a 2-core CPU, reported)."""
    root, slider = ".beta-explorer", ".beta-slider"
    info0, src0 = _beta_info(app_page), image_sources(app_page, root)
    position0 = slider_position(app_page, slider)
    latencies = []
    for key in ("ArrowRight", "ArrowRight", "ArrowLeft", "ArrowLeft", "ArrowLeft"):
        before_src, before_info = image_sources(app_page, root), _beta_info(app_page)
        watch_updates(app_page, root, ".vaelab-beta-info")
        press_slider_key(app_page, slider, key)
        timing = watched(app_page, UPDATE_TIMEOUT_S, need_text=True)
        assert timing["image_ms"] is not None, f"the β picture did not change after {key}"
        assert timing["text_ms"] is not None, f"the β readout did not change after {key}"
        after_info = _beta_info(app_page)
        assert image_sources(app_page, root) != before_src
        assert after_info["beta"] != before_info["beta"]
        assert (after_info["rate"], after_info["distortion"]) != (before_info["rate"], before_info["distortion"]), \
            "the highlighted rate–distortion point did not move"
        latencies.append(timing["frame_ms"])
        app_page.app_state["beta_changes"] += 1
    assert slider_position(app_page, slider) == position0 - 1
    assert _beta_info(app_page)["beta"] != info0["beta"] and image_sources(app_page, root) != src0

    first, rest = latencies[0], latencies[1:]
    print(f"\nβ explorer in the browser: first change after load {first:.0f} ms (target < 200 ms); "
          f"next {len(rest)}: median {statistics.median(rest):.0f} ms, max {max(rest):.0f} ms")
    assert max(latencies) < LOOSE_LATENCY_MS

    # the mouse: drag the handle to the right end, the largest β
    watch_updates(app_page, root, ".vaelab-beta-info")
    drag_slider_to(app_page, slider, 1.0)
    timing = watched(app_page, UPDATE_TIMEOUT_S, need_text=True)
    assert timing["image_ms"] is not None, "dragging the β handle did not change the picture"
    betas = app_page.eval_on_selector(slider, "e => e.querySelector('.noUi-handle').getAttribute('aria-valuemax')")
    assert slider_position(app_page, slider) == float(betas)

    # back to β = 4 for the pictures: large enough to see the trade-off, small enough to keep some detail
    press_slider_key(app_page, slider, "ArrowLeft", times=2)
    app_page.wait_for_function("() => document.querySelector('.vaelab-beta-info').dataset.beta === '4'",
                               timeout=UPDATE_TIMEOUT_S * 1000)
    explorer_png, rd_png = tmp_path / "beta_explorer.png", tmp_path / "rd_plane.png"
    box, image = app_page.locator(root).bounding_box(), app_page.locator(f"{root} img").bounding_box()
    app_page.screenshot(path=explorer_png, clip={"x": box["x"], "y": box["y"], "height": box["height"],
                                                 "width": image["x"] + image["width"] + 8 - box["x"]})
    # the rate–distortion plane is the top-left panel of the picture
    app_page.screenshot(path=rd_png, clip={"x": image["x"], "y": image["y"] + 0.07 * image["height"],
                                           "width": 0.35 * image["width"], "height": 0.46 * image["height"]})
    if UPDATE_SCREENSHOTS:
        _save_small_png(explorer_png, DOCS / "beta_explorer.png")
        _save_small_png(rd_png, DOCS / "rd_plane.png")
        print(f"wrote {DOCS / 'beta_explorer.png'} and {DOCS / 'rd_plane.png'}")


def test_live_trainer_trains_follows_beta_and_stops(app_page, tmp_path):
    """Start trains in the background (the view refreshes several times a second), typing β = 10 reaches the
    training loop, Stop ends it and the buttons say so."""
    root = ".live-trainer"
    app_page.locator(root).get_by_role("button", name="Start").click()
    app_page.wait_for_selector(f"{root} .vaelab-live-info", timeout=60_000)
    counted = app_page.evaluate(f"""() => new Promise(resolve => {{
        const root = document.querySelector('{root}');
        let n = 0; const t0 = performance.now();
        const obs = new MutationObserver(() => n++);
        obs.observe(root.querySelector('img'), {{attributes: true, attributeFilter: ['src']}});
        setTimeout(() => {{ obs.disconnect(); resolve({{n, seconds: (performance.now() - t0) / 1000}}); }}, 3000);
    }})""")
    rate = counted["n"] / counted["seconds"]
    print(f"\nlive trainer: {rate:.1f} picture updates per second in the browser (target >= 5)")
    assert counted["n"] >= 2, "the live trainer's picture did not refresh while training"

    type_into_readout(app_page, ".live-beta-slider", "10")  # a log slider: 10 is exact, 8 would snap to 7.94
    app_page.wait_for_function(
        f"() => document.querySelector('{root} .vaelab-live-info').textContent.includes('β = 10 ')",
        timeout=UPDATE_TIMEOUT_S * 1000)
    app_page.locator(root).screenshot(path=tmp_path / "live_trainer.png")

    app_page.locator(root).get_by_role("button", name="Stop").click()
    app_page.wait_for_function(f"() => document.querySelector('{root}').innerText.includes('Stopped')",
                               timeout=UPDATE_TIMEOUT_S * 1000)
    assert app_page.locator(root).get_by_role("button", name="Start").is_enabled()
    assert app_page.locator(root).get_by_role("button", name="Stop").is_disabled()
    text = app_page.locator(f"{root} .vaelab-live-info").inner_text()
    app_page.wait_for_timeout(1000)  # nothing moves once training has stopped
    assert app_page.locator(f"{root} .vaelab-live-info").inner_text() == text
    assert page_problems(app_page) == []


def test_notebook_in_jupyterlab(browser, tmp_path):
    """The same notebook in JupyterLab: run all cells with Lab's own command, then the β explorer
    renders through Lab's widget manager and follows its slider."""
    workdir = tmp_path / "lab-root"
    workdir.mkdir()
    shutil.copy(APP, workdir / APP.name)  # a copy: Lab saves what it runs, the repository's notebook stays clean
    env = _env(tmp_path)
    server, token = lab_server(workdir, tmp_path, env)
    with server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{server.base_url}lab/tree/{APP.name}?reset&token={token}", timeout=120_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                                   timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_selector(".beta-explorer img", state="attached", timeout=PAGE_TIMEOUT_MS)
            page.locator(".beta-explorer").scroll_into_view_if_needed()
            assert page_problems(page) == []
            before_src, before_info = image_sources(page, ".beta-explorer"), _beta_info(page)
            watch_updates(page, ".beta-explorer", ".vaelab-beta-info")
            press_slider_key(page, ".beta-slider", "ArrowRight")
            timing = watched(page, UPDATE_TIMEOUT_S, need_text=True)
            assert timing["image_ms"] is not None, "in JupyterLab the β picture did not follow the slider"
            assert image_sources(page, ".beta-explorer") != before_src
            assert _beta_info(page)["beta"] != before_info["beta"]
            print(f"\nJupyterLab: β change on screen after {timing['frame_ms']:.0f} ms")
            page.screenshot(path=tmp_path / "jupyterlab.png")
        finally:
            page.close()


def test_course_page_reads_offline(browser, tmp_path):
    """A page of the course site as `make course` writes it: a widget shows as its snapshot (sliders,
    picture) with no kernel and no network; with a local MathJax the maths is typeset too."""
    import ipywidgets as widgets
    import nbformat
    from test_site import widget_tree

    from coursekit import site
    from vaeutils.widgets.kl import draw_kl_explorer, kl_explorer_state, render_png

    png = render_png(draw_kl_explorer(kl_explorer_state(1.5, sigma=0.5)))
    view = widgets.VBox([widgets.FloatSlider(description="μ", value=1.5), widgets.Image(value=png, format="png")])
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("kl_explorer()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        site.WIDGET_VIEW: {"model_id": view.model_id, "version_major": 2, "version_minor": 0},
        "text/plain": "KLExplorer(...)"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# A page\n\nThe KL is $\\frac{1}{2}(\\mu^2 + \\sigma^2 - 1)$."), cell]
    tree = widget_tree(view)
    nb.metadata["widgets"] = {site.WIDGET_STATE: widgets.Widget.get_manager_state(drop_defaults=False, widgets=tree)}
    for w in tree:
        w.close()
    site.snapshot_widgets(nb)
    body, _ = site.html_exporter(tmp_path).from_notebook_node(nb)
    (tmp_path / "page.html").write_text(body, encoding="utf-8")

    page = browser.new_page(viewport={"width": 1100, "height": 800})
    try:
        page.goto((tmp_path / "page.html").as_uri(), wait_until="load", timeout=60_000)
        snapshot = page.locator(".vaelab-snapshot")
        assert snapshot.is_visible() and "1.50" in snapshot.inner_text()
        assert page.eval_on_selector(".vaelab-snapshot img", "i => i.complete ? i.naturalWidth : 0") > 100
        if site.mathjax_source() is not None:
            page.wait_for_selector(".MathJax", timeout=30_000)
            assert "\\frac" not in page.inner_text("body")
        page.screenshot(path=tmp_path / "course_page.png")
    finally:
        page.close()
