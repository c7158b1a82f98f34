"""A deck as `make slides` writes it, opened from file:// in Debian's Chromium with every request that is
not a local file refused: the slides step on ArrowRight, the executed figure shows and MathJax typesets."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import slides as kit
from coursekit.__main__ import main as kit_main
from coursekit.browser import browser_unavailable, launch_chromium, page_problems

KL = r"$\mathrm{KL}(q\|p) = \tfrac12(\mu^2+\sigma^2-1-\log\sigma^2)$"
FIGURE = ("import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots(figsize=(4, 3))\n"
          "ax.plot([0, 1, 2, 3], [0, 1, 4, 9])\nplt.show()")

_missing = browser_unavailable()
if _missing is None and not (kit.NODE_MODULES / "reveal.js").is_dir():
    _missing = f"no {kit.NODE_MODULES / 'reveal.js'} (run `npm ci`)"
if _missing and os.environ.get("CI"):  # in CI a missing browser is a broken set-up, not a reason to skip
    raise RuntimeError(f"browser tests cannot run: {_missing}")
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.skipif(_missing is not None, reason=_missing or "")]

# The text the reader sees on the slides, without the TeX source MathJax keeps in its <script> elements.
VISIBLE_TEXT_JS = """() => {
  const walk = document.createTreeWalker(document.querySelector('.reveal .slides'), NodeFilter.SHOW_TEXT);
  let text = '';
  while (walk.nextNode()) if (!walk.currentNode.parentElement.closest('script')) text += walk.currentNode.data;
  return text;
}"""
INDICES_JS = "() => require('reveal.js/dist/reveal.js').getIndices()"


def test_deck_steps_shows_its_figure_and_typesets_offline(tmp_path):
    from playwright.sync_api import sync_playwright

    src = tmp_path / "notebooks"
    src.mkdir()
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_markdown_cell("# A tiny deck\n\nThe first slide."),
                new_markdown_cell(f"## The Gaussian KL\n\n{KL}"),
                new_markdown_cell("## A figure"), new_code_cell(FIGURE),
                new_markdown_cell("### A detail\n\nA subslide.")]
    nbformat.write(nb, src / "00_tiny.ipynb")
    assert kit_main(["slides", str(src), str(tmp_path / "slides")]) == 0  # no outputs: executed first
    deck = tmp_path / "slides" / "00_tiny.slides.html"

    refused = []

    def local_only(route):
        if route.request.url.startswith(("file://", "data:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.route("**/*", local_only)
            page.goto(deck.as_uri(), wait_until="load", timeout=60_000)
            page.wait_for_selector(".reveal.ready", timeout=30_000)
            seen = [page.evaluate(INDICES_JS)]
            for _ in range(2):
                page.keyboard.press("ArrowRight")
                page.wait_for_function(f"() => require('reveal.js/dist/reveal.js').getIndices().h === {len(seen)}",
                                       timeout=10_000)
                seen.append(page.evaluate(INDICES_JS))
            assert [s["h"] for s in seen] == [0, 1, 2]
            width = page.eval_on_selector("section.present img", "i => i.complete ? i.naturalWidth : 0")
            assert width > 0, "the executed figure did not load"
            page.wait_for_selector(".MathJax, mjx-container", state="attached", timeout=30_000)
            text = page.evaluate(VISIBLE_TEXT_JS)
            assert "\\mathrm" not in text and "$" not in text, f"maths left untypeset: {text!r}"
            assert page_problems(page) == []
            page.wait_for_timeout(1000)  # the slide transition ends before the picture is taken
            page.screenshot(path=tmp_path / "figure_slide.png")
        finally:
            browser.close()
    assert refused == [], f"the deck asked the network for {refused}"
