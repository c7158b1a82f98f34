"""Decks as `make slides` writes them, opened from file:// in Debian's Chromium with every request
that is not a local file refused. At 1280x720 and at 1024x768 every slide, horizontal and vertical,
is stepped through and checked: no element's box outside the slide or the screen (or outside a box
that clips it), no ``pre`` or table wider than its container, every image loaded, every formula
typeset, headings with their Greek letters as written, slide text of at least 24 px at 1280x720.

Two decks come from small notebooks made here (one printed to PDF); the real units' decks are built
from the executed copies in ``build/executed`` when there are some (``python -m coursekit execute``,
which ``make test`` runs first), and each writes three screenshots (title, a figure, an exercise)
and its fit count to ``build/slides/preview/``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import paths
from coursekit import slides as kit
from coursekit.__main__ import main as kit_main
from coursekit.browser import browser_unavailable, page_problems
from coursekit.notebooks import read
from coursekit.slides_html import open_deck

_missing = browser_unavailable()
if _missing is None and not (kit.NODE_MODULES / "reveal.js").is_dir():
    _missing = f"no {kit.NODE_MODULES / 'reveal.js'} (run `npm ci`)"
if _missing and os.environ.get("CI"):  # in CI a missing browser is a broken set-up, not a skip
    raise RuntimeError(f"browser tests cannot run: {_missing}")
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(_missing is not None, reason=_missing or "")]

SIZES = [(1280, 720), (1024, 768)]
MIN_TEXT_PX = 24  # the slide text, at 1280x720
PREVIEW = paths.ROOT / "build" / "slides" / "preview"
EXECUTED = paths.ROOT / "build" / "executed"
EXECUTED_UNITS = [p.stem for p in paths.units(EXECUTED)] if EXECUTED.is_dir() else []
ZH_EXECUTED = EXECUTED / "zh"  # the Chinese edition's units (`make slides LANG=zh`)
ZH_UNITS = [p.stem for p in paths.units(ZH_EXECUTED)] if ZH_EXECUTED.is_dir() else []

# What is wrong on the slide shown now (an empty list when nothing is). A formula counts as one box.
CHECK_JS = r"""
() => {
  const slide = Reveal.getCurrentSlide(), problems = [], tol = 1.5;
  const vw = window.innerWidth, vh = window.innerHeight;
  const area = document.querySelector('.reveal .slides').getBoundingClientRect();
  const name = el => el.tagName.toLowerCase() +
      (typeof el.className === 'string' && el.className.trim()
       ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const clip = el => {
    let r = {left: Math.max(0, area.left), top: Math.max(0, area.top),
             right: Math.min(vw, area.right), bottom: Math.min(vh, area.bottom)};
    for (let a = el.parentElement; a && a !== slide.parentElement; a = a.parentElement) {
      const st = getComputedStyle(a);
      if (st.overflowX === 'visible' && st.overflowY === 'visible') continue;
      const b = a.getBoundingClientRect();
      r = {left: Math.max(r.left, b.left), top: Math.max(r.top, b.top),
           right: Math.min(r.right, b.right), bottom: Math.min(r.bottom, b.bottom)};
    }
    return r;
  };
  for (const el of slide.querySelectorAll('*')) {
    if (el.closest('aside.notes, script, style, mjx-assistive-mml')) continue;
    if (el.parentElement.closest('mjx-container')) continue;
    const st = getComputedStyle(el);
    if (st.display === 'none' || st.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width < 0.5 || r.height < 0.5) continue;
    const c = clip(el);
    const box = q => `[${q.left | 0}, ${q.top | 0}, ${q.right | 0}, ${q.bottom | 0}]`;
    if (r.left < c.left - tol || r.top < c.top - tol ||
        r.right > c.right + tol || r.bottom > c.bottom + tol)
      problems.push(`${name(el)} ${box(r)} is cut off by ${box(c)}: ` +
                    (el.textContent || '').trim().slice(0, 40));
  }
  const texts = document.createTreeWalker(slide.querySelector('.vl-frame'), NodeFilter.SHOW_TEXT);
  while (texts.nextNode()) {  // text running past a box that clips it: no element box of its own
    const node = texts.currentNode;
    if (!node.data.trim() || node.parentElement.closest('script, style, mjx-container')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect(), c = clip(node);
    if (r.width >= 0.5 && (r.left < c.left - tol || r.right > c.right + tol ||
                           r.top < c.top - tol || r.bottom > c.bottom + tol))
      problems.push(`text "${node.data.trim().slice(0, 40)}" is cut off`);
  }
  for (const el of slide.querySelectorAll('pre, pre code, table, .vl-visual, .vl-frame')) {
    const st = getComputedStyle(el);
    const clips = st.overflowX !== 'visible' || st.overflowY !== 'visible';
    if (clips && (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1))
      problems.push(`${name(el)} hides part of itself: ${el.scrollWidth}x${el.scrollHeight} ` +
                    `shown in ${el.clientWidth}x${el.clientHeight}`);
    if (['PRE', 'TABLE'].includes(el.tagName) &&
        el.getBoundingClientRect().width > el.parentElement.getBoundingClientRect().width + 1)
      problems.push(`${name(el)} is wider than its container`);
  }
  for (const img of slide.querySelectorAll('img'))
    if (!img.complete || img.naturalWidth === 0) problems.push(`image not loaded: ${img.alt}`);
  const errors = slide.querySelectorAll('mjx-merror, merror').length;
  if (errors) problems.push(`${errors} formula(s) that MathJax could not typeset`);
  const walk = document.createTreeWalker(slide.querySelector('.vl-frame'), NodeFilter.SHOW_TEXT);
  let text = '';
  while (walk.nextNode())
    if (!walk.currentNode.parentElement.closest('script, style'))
      text += walk.currentNode.data + ' ';
  const tex = text.match(/.{0,30}(\$|\\[a-zA-Z]{2,}).{0,30}/);
  if (tex) problems.push(`TeX left untypeset: ${tex[0]}`);
  for (const h of slide.querySelectorAll('h1, h2, h3')) {
    if (getComputedStyle(h).textTransform !== 'none')
      problems.push(`heading ${h.innerText} is transformed`);
    for (const ch of (h.dataset.title || '').match(/[\u0370-\u03ff]/g) || [])
      if (!h.innerText.includes(ch)) problems.push(`heading "${h.innerText}" lost its ${ch}`);
  }
  const scale = Reveal.getScale(), small = [];
  for (const el of slide.querySelectorAll('.vl-text p, .vl-text li')) {
    const px = parseFloat(getComputedStyle(el).fontSize) * scale;
    if (px < %(min_px)s - 0.01) small.push(px.toFixed(1));
  }
  return {indices: Reveal.getIndices(), problems, small, kind: slide.className,
          visual: (slide.querySelector('.vl-visual') || {className: ''}).className};
}
""".replace("%(min_px)s", str(MIN_TEXT_PX))


class Offline:
    """Refuses, and records, every request that is not a local file."""

    def __init__(self):
        self.refused: list[str] = []

    def __call__(self, route):
        if route.request.url.startswith(("file://", "data:")):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()


def step_through(browser, deck, shots: dict | None = None) -> dict:
    """Open ``deck`` at each size, step through every slide with ``Reveal.next()`` and check each;
    ``shots``: {"title"|"figure"|"exercise": path} for screenshots at 1280x720. Returns the counts
    and the problems found, by size."""
    result = {"slides": 0, "fit": {}, "problems": [], "refused": [], "visited": {}}
    for width, height in SIZES:
        page = browser.new_page(viewport={"width": width, "height": height})
        offline = Offline()
        try:
            page.route("**/*", offline)
            open_deck(page, deck)
            total = page.evaluate("Reveal.getTotalSlides()")
            page.evaluate("Reveal.slide(0, 0)")
            fit, seen, taken = 0, [], set()
            for _ in range(total):
                r = page.evaluate(CHECK_JS)
                seen.append((r["indices"]["h"], r["indices"]["v"]))
                small = width == 1280 and r["small"]
                bad = r["problems"] + ([f"slide text of {r['small']} px"] if small else [])
                fit += not bad
                where = f"{deck.name} at {width}x{height}, slide {seen[-1]}"
                result["problems"] += [f"{where}: {p}" for p in bad]
                if shots and width == 1280:
                    kind = ("title" if "vl-title" in r["kind"]
                            else "exercise" if "vl-exercise" in r["kind"]
                            else "figure" if "vl-figure" in r["visual"] else None)
                    if kind in shots and kind not in taken:
                        page.wait_for_timeout(600)  # the fade between slides ends
                        page.screenshot(path=str(shots[kind]))
                        taken.add(kind)
                page.evaluate("Reveal.next()")
            assert len(set(seen)) == total == len(seen), f"{deck.name}: stepped through {seen}"
            assert page_problems(page) == []
            result["slides"], result["fit"][f"{width}x{height}"] = total, fit
            result["visited"][f"{width}x{height}"] = seen
            result["refused"] += offline.refused
        finally:
            page.close()
    return result


# --------------------------------------------------------------------------- small decks, made here

def _png(width_in: float, height_in: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_in, height_in))
    ax.plot([0, 1, 2, 3], [0, 1, 4, 9], "o-")
    ax.set(xlabel="β", ylabel="rate (nats)", title="a wide figure")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _display(data: dict):
    return new_output("display_data", data=data)


def lecture_notebook() -> nbformat.NotebookNode:
    """A unit with everything a deck has to fit: a long title, a wide and a tall figure, a long
    table, a wide table of long cells, a code excerpt of long lines, a widget snapshot, display
    maths, Greek letters in headings, and graded exercises."""
    long_rows = "\n".join(f"| {b:g} | {b * 1.5:.2f} | {100 - b:.2f} | {b % 7} | {'x' * (b % 9)} |"
                          for b in range(1, 26))
    cell = "a long cell of explanation that wraps " * 2
    wide_rows = "\n".join("| " + " | ".join([cell] * 4) + " |" for _ in range(4))
    code = "\n".join(f"value_{k} = compute_something_long(argument_{k}, another_argument, "
                     f"yet_another_one={k})" for k in range(12))
    img = f'<img src="data:image/png;base64,{_png(4, 3)}">'
    widget = ('<div class="vaelab-snapshot"><div class="note">a snapshot</div><div class="row">'
              f'{img}{img}<div class="ctl"><span>β</span><input type="range" disabled>'
              "<code>4.0</code></div></div></div>")
    figure = {"text/plain": "<Figure>"}
    graded = {"nbgrader": {"grade": False, "grade_id": "ex1", "locked": False, "schema_version": 3,
                           "solution": True, "task": False}}
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = [
        new_markdown_cell("# 42 · A unit whose title is long enough to need two lines on the "
                          "slide: β, σ and the rate–distortion plane\n\n"
                          "The unit's opening paragraph, for the notes."),
        new_markdown_cell("## What you will learn\n\n"
                          "* the β-weighted objective $D + \\beta R$, and why\n"
                          "* the **rate–distortion plane**: lines of equal ELBO\n"
                          "* capacity control\n"
                          "* two live tools: a slider over the trained sweep, and a live model"),
        new_markdown_cell("## Time plan\n\n| section | minutes |\n| --- | --- |\n"
                          "| 1. One model per β | 20 |\n| 2. σ is a β | 25 |\n"
                          "| Exercises | 25 |\n| **total** | **70** |"),
        new_markdown_cell("## 1. One model per β\n\nEach model of the sweep is measured on the "
                          "test digits: rate $R$ and distortion $D$, their sum "
                          "$-\\mathrm{ELBO} = D + R$, and the active units. "
                          + "The notes go on. " * 30),
        new_code_cell("plot()", execution_count=1,
                      outputs=[_display({"image/png": _png(11, 3), **figure})]),
        new_markdown_cell("The same on a tall figure:"),
        new_code_cell("tall()", execution_count=2,
                      outputs=[_display({"image/png": _png(4, 9), **figure})]),
        new_code_cell("table()", execution_count=3, outputs=[_display({
            "text/markdown": "| β | R | D | active | bar |\n| --- | --- | --- | --- | --- |\n"
                             + long_rows})]),
        new_code_cell("wide()", execution_count=4, outputs=[_display({
            "text/markdown": "| one | two | three | four |\n| --- | --- | --- | --- |\n"
                             + wide_rows})]),
        new_markdown_cell("### The price of a nat, $-\\,dD/dR$\n\n$$\n\\beta_i \\;\\le\\; "
                          "-\\frac{D_{i+1} - D_i}{R_{i+1} - R_i} \\;\\le\\; \\beta_{i+1}.\n$$"),
        new_markdown_cell("## 2. σ is a β\n\nA Gaussian decoder's σ weighs the KL: "
                          "$\\beta = 2\\sigma^2$."),
        new_code_cell(code, execution_count=5, metadata={"slides": {
            "role": "slide", "excerpt": "1-12", "title": "The code, read aloud"}}),
        new_code_cell("explorer", execution_count=6,
                      outputs=[_display({"text/html": widget, "text/plain": "Explorer"})]),
        new_markdown_cell("## Summary\n\n- β is the price of a nat: a long bullet that goes on and "
                          "on about the price\n- σ is a β\n- the plane shows both"),
        new_markdown_cell("## Exercises\n\n**Exercise 1.** Read the frontier. Estimate the test "
                          "distortion a model would reach at the rate halfway between β = 1 and "
                          "β = 2, by linear interpolation along the sweep's curve. Is a model "
                          "trained for that rate likely to do better or worse than your estimate, "
                          "and why?"),
        new_code_cell("### BEGIN SOLUTION\nd_mid = 1\n### END SOLUTION", metadata=graded),
        new_markdown_cell("**Exercise 2.** Compute `paid_per_nat`. Between which two numbers must "
                          "it lie?"),
        new_markdown_cell("## References\n\n" + "\n".join(
            f"- A. Author{k}, B. Author (20{k:02d}). *A title that is long enough to wrap on the "
            f"slide, number {k}.* A venue." for k in range(12))),
    ]
    return nb


def plain_notebook() -> nbformat.NotebookNode:
    """A notebook with none of a unit's structure: no title, time plan or exercises; a figure."""
    nb = new_notebook()
    nb.cells = [new_markdown_cell("Some prose without a heading, for the notes."),
                new_code_cell("plot()", execution_count=1,
                              outputs=[_display({"image/png": _png(5, 4),
                                                 "text/plain": "<Figure>"})])]
    return nb


@pytest.fixture(scope="module")
def small_decks(tmp_path_factory):
    src = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("slides")
    nbformat.write(lecture_notebook(), src / "42_lecture.ipynb")
    nbformat.write(plain_notebook(), src / "43_plain.ipynb")
    assert kit_main(["slides", str(src), str(out)]) == 0  # outputs as saved: nothing executed
    return out


def test_small_decks_fit_every_slide_at_both_sizes_offline(browser, small_decks):
    for name in ("42_lecture", "43_plain"):
        deck = small_decks / f"{name}{kit.SUFFIX}"
        result = step_through(browser, deck)
        assert result["problems"] == [], "\n".join(result["problems"][:20])
        assert result["refused"] == [], f"the deck asked the network for {result['refused']}"
        visited = result["visited"]["1280x720"]
        if name == "42_lecture":
            assert any(v > 0 for _, v in visited)  # vertical slides, and horizontal ones
            assert len({h for h, _ in visited}) > 5
            assert result["slides"] >= 14


def test_the_check_sees_what_it_must_reject(browser, small_decks):
    """The check itself: upper-cased headings, a table pushed off the slide, a picture that did not
    load and TeX left as text are each reported."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        open_deck(page, small_decks / f"42_lecture{kit.SUFFIX}")
        page.evaluate("Reveal.slide(2, 0)")  # "1. One model per β", with its figure
        assert page.evaluate(CHECK_JS)["problems"] == []
        page.add_style_tag(content=".reveal h2 { text-transform: uppercase !important; }")
        assert any("lost its β" in p for p in page.evaluate(CHECK_JS)["problems"])
        page.evaluate("""() => {
          const s = Reveal.getCurrentSlide();
          s.querySelector('.vl-text').insertAdjacentHTML('beforeend',
            '<table style="width: 1500px"><tr><td>wide</td></tr></table><p>$x^2$ raw</p>' +
            '<p style="width: 100px; white-space: nowrap">a line that runs past its box and off ' +
            'the slide, far to the right of its edge, where nobody at the back can read it</p>');
          s.querySelector('img').src = 'missing.png';
        }""")
        page.wait_for_timeout(300)
        problems = "\n".join(page.evaluate(CHECK_JS)["problems"])
        assert "is cut off" in problems and "wider than its container" in problems
        assert "image not loaded" in problems and "TeX left untypeset" in problems
        assert 'text "a line that runs past its box' in problems
    finally:
        page.close()


def test_small_deck_pdf_has_a_page_per_slide(small_decks):
    html = (small_decks / f"42_lecture{kit.SUFFIX}").read_text()
    pdf = (small_decks / "42_lecture.slides.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == html.count('<section class="vl-slide')


def test_small_deck_has_speaker_notes_and_exercise_slides(small_decks):
    html = (small_decks / f"42_lecture{kit.SUFFIX}").read_text()
    assert html.count('<aside class="notes">') == html.count('<section class="vl-slide')
    assert "The notes go on. The notes go on." in html  # the full prose, in the notes
    assert "Exercise 1 — 13 minutes" in html and "Exercise 2 — 12 minutes" in html
    assert "d_mid = 1" not in html  # never the solution


# --------------------------------------------------------------------------- the real units

def _decks(out, folder, names):
    pages = {name: kit.deck_page(read(folder / f"{name}.ipynb"), name) for name in names}
    kit.write_decks(pages, out, pdf=False)
    return out


@pytest.fixture(scope="module")
def real_decks(tmp_path_factory):
    """The decks of the units executed in build/executed, built the way `make slides` builds them
    (HTML only: the PDF is checked on the small deck)."""
    return _decks(tmp_path_factory.mktemp("real-slides"), EXECUTED, EXECUTED_UNITS)


@pytest.fixture(scope="module")
def zh_decks(tmp_path_factory):
    """The Chinese edition's decks, from build/executed/zh, as `make slides LANG=zh` builds them."""
    return _decks(tmp_path_factory.mktemp("zh-slides"), ZH_EXECUTED, ZH_UNITS)


NO_UNITS = "no executed units in build/executed: run `python -m coursekit execute` (make test does)"


@pytest.mark.parametrize("name", EXECUTED_UNITS or [
    pytest.param("none", marks=pytest.mark.skip(reason=NO_UNITS))])
def test_unit_deck_fits_every_slide_at_both_sizes(browser, real_decks, name):
    PREVIEW.mkdir(parents=True, exist_ok=True)
    shots = {kind: PREVIEW / f"{name}-{kind}.png" for kind in ("title", "figure", "exercise")}
    result = step_through(browser, real_decks / f"{name}{kit.SUFFIX}", shots)
    summary = {"slides": result["slides"], "fit": result["fit"], "problems": result["problems"]}
    (PREVIEW / f"{name}.fit.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    assert result["refused"] == [], f"the deck asked the network for {result['refused']}"
    assert result["problems"] == [], "\n".join(result["problems"][:20])
    missing = [kind for kind, path in shots.items() if not path.is_file()]
    assert missing == [], f"the deck has no {missing} slide"


@pytest.mark.parametrize("name", ZH_UNITS or [
    pytest.param("none", marks=pytest.mark.skip(reason="no Chinese units in build/executed/zh"))])
def test_chinese_unit_deck_fits_every_slide_at_both_sizes(browser, zh_decks, name):
    deck = zh_decks / f"{name}{kit.SUFFIX}"
    text = deck.read_text(encoding="utf-8")
    assert '<html lang="zh-Hans">' in text and "分钟" in text  # Chinese headings, minutes in Chinese
    if name not in ("00_setup_and_data",):
        assert re.search(r'data-title="练习 \d+ — \d+ 分钟"', text), "no Chinese exercise slide"
    result = step_through(browser, deck, {})
    assert result["refused"] == [], f"the deck asked the network for {result['refused']}"
    assert result["problems"] == [], "\n".join(result["problems"][:20])
