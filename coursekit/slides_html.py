"""A deck's outline (:mod:`coursekit.slides_plan`) written as one reveal.js page, and that page
printed to PDF by Debian's Chromium.

The page loads reveal.js (its notes plugin for the speaker view), the deck's own style and script
(``slides_assets/``) and MathJax 3 from folders next to it; its figures are embedded. Every slide is
a frame of :data:`WIDTH` × :data:`HEIGHT` CSS pixels that reveal.js scales to the screen: a title,
the short text, and one visual that takes the rest of the frame (an image scaled with
``object-fit``; a table, formula or code excerpt scaled by ``deck.js`` once MathJax has typeset it).
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from .slides_plan import Deck, Slide, Visual, plain_title, table_rows

WIDTH, HEIGHT = 1280, 720  # the slide in CSS pixels: a 16:9 projector at its native size
MAX_SCALE = 1.6  # a small table or formula is enlarged at most this much to fill its space
REVEAL_DIR, ASSETS_DIR = "reveal.js", "deck"
ASSETS = Path(__file__).with_name("slides_assets")
ASSET_FILES = ("deck.css", "deck.js")
READY_ATTRIBUTE = "data-deck-ready"  # on <html> once the maths is typeset, the visuals fitted

MATHJAX_DIR = "mathjax"
MATHJAX_SCRIPT = f"{MATHJAX_DIR}/tex-chtml-full.js"  # MathJax 3 (npm): every TeX package, built in
# TeX in, CommonHTML out with MathJax's own web fonts beside it; formulas in speaker notes stay TeX.
MATHJAX_INLINE = """window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
        displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: "notes|tex2jax_ignore", enableMenu: false},
  startup: {typeset: false}
};"""


def markdown_html(markdown: str, links: bool = True) -> str:
    """Markdown (with ``$`` formulas left for MathJax) as HTML, by nbconvert's own Markdown filter.
    Relative links keep only their text; ``links=False``: every link (a slide is projected, not
    clicked)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    out = markdown2html_mistune(markdown)
    # a link into the course's folder (sources.md, another unit) does not resolve beside the decks
    keep = r"https?://" if links else r"(?!)"
    return re.sub(rf'<a\b(?![^>]*href="{keep})[^>]*>(.*?)</a>', r"\1", out, flags=re.DOTALL)


def inline_html(markdown: str) -> str:
    """One line of Markdown (a title) as inline HTML."""
    out = markdown_html(markdown, links=False).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", out, flags=re.DOTALL)


def table_html(markdown: str) -> str:
    """A Markdown table as an HTML table, cell by cell (see :func:`slides_plan.table_rows`), each
    cell's Markdown rendered inline; other Markdown as :func:`markdown_html` renders it."""
    rows = table_rows(markdown)
    if rows is None:
        return markdown_html(markdown, links=False)
    head = "".join(f"<th>{inline_html(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>"
                   for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(visual: Visual) -> str:
    payload = visual.source.strip()
    if visual.mime == "image/svg+xml":
        payload = base64.b64encode(payload.encode("utf-8")).decode("ascii")
    return f"data:{visual.mime};base64,{payload}"


def visual_html(visual: Visual) -> str:
    """The visual as the element that fills the space below the slide's text."""
    where = "".join(f' data-{k}="{v}"' for k, v in (("cell", visual.cell),
                                                      ("output", visual.output)) if v is not None)
    kind = visual.kind
    if kind == "figure":
        alt = f"figure of cell {visual.cell}" if visual.cell is not None else "figure"
        return (f'<div class="vl-visual vl-figure"{where}>'
                f'<img src="{_data_uri(visual)}" alt="{alt}"></div>')
    if kind == "table":
        inner = table_html(visual.source) if visual.mime == "text/markdown" else visual.source
    elif kind == "widget":
        inner = visual.source
    elif kind == "math":
        inner = f'<div class="vl-formula">{html.escape(visual.source, quote=False)}</div>'
    elif kind in ("code", "output"):
        inner = f"<pre><code>{html.escape(visual.source, quote=False)}</code></pre>"
    elif kind == "list":
        inner = markdown_html(visual.source, links=False)
        return (f'<div class="vl-visual vl-list"{where}><div class="vl-fit vl-wrap">{inner}</div>'
                "</div>")
    else:
        raise ValueError(f"unknown visual kind {kind!r}")
    return f'<div class="vl-visual vl-{kind}"{where}><div class="vl-fit">{inner}</div></div>'


def _heading(tag: str, markdown: str) -> str:
    title = html.escape(plain_title(markdown))
    return f'<{tag} data-title="{title}">{inline_html(markdown)}</{tag}>'


def _minutes(n: int, lang: str, short: bool = False) -> str:
    if lang == "zh":
        return f"{n} 分钟"
    return f"{n} min" if short else f"{n} minute{'s' if n != 1 else ''}"


def slide_html(slide: Slide, lang: str = "en") -> str:
    """One ``<section>``: title, text, visual, and the prose in ``<aside class="notes">``."""
    kind = slide.kind
    title = slide.title
    if kind == "exercise" and slide.minutes:
        title = f"{title} — {_minutes(slide.minutes, lang)}"
    parts = []
    if kind == "title":
        parts.append(_heading("h1", title))
        if slide.subtitle:
            parts.append(_heading("h3", slide.subtitle))
    else:
        badge = (f'<span class="vl-minutes">{_minutes(slide.minutes, lang, short=True)}</span>'
                 if slide.minutes and kind != "exercise" else "")
        parts.append(f'<header class="vl-header">{_heading("h2", title)}{badge}</header>')
        if kind == "exercise" and slide.subtitle:
            parts.append(_heading("h3", slide.subtitle))
    if slide.text.strip():
        parts.append(f'<div class="vl-text">{markdown_html(slide.text, links=False)}</div>')
    if slide.visual is not None:
        parts.append(visual_html(slide.visual))
    classes = f"vl-slide vl-{kind}" + ("" if slide.visual or slide.text.strip() else " vl-divider")
    notes = "\n".join(markdown_html(n) for n in slide.notes)
    cells = ",".join(map(str, slide.cells))
    return (f'<section class="{classes}" data-cells="{cells}">'
            f'<div class="vl-frame">{"".join(parts)}</div>'
            f'<aside class="notes">{notes}</aside></section>')


def deck_html(deck: Deck, mathjax_url: str | None) -> str:
    """The whole page of one deck; ``mathjax_url`` relative to it (None: formulas stay as TeX)."""
    groups = []
    for group in deck.groups():
        inner = "\n".join(slide_html(s, deck.lang) for s in group)
        groups.append(inner if len(group) == 1 else f"<section>\n{inner}\n</section>")
    config = {"width": WIDTH, "height": HEIGHT, "maxScale": MAX_SCALE, "ready": READY_ATTRIBUTE}
    mathjax = (f"<script>{MATHJAX_INLINE}</script>\n"
               f'<script src="{mathjax_url}"></script>\n') if mathjax_url else ""
    title = html.escape(plain_title(deck.title))
    return f"""<!DOCTYPE html>
<html lang="{"zh-Hans" if deck.lang == "zh" else "en"}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="{REVEAL_DIR}/dist/reset.css">
<link rel="stylesheet" href="{REVEAL_DIR}/dist/reveal.css">
<link rel="stylesheet" href="{REVEAL_DIR}/dist/theme/white.css">
<link rel="stylesheet" href="{ASSETS_DIR}/deck.css">
</head>
<body>
<div class="reveal"><div class="slides">
{chr(10).join(groups)}
</div></div>
<script>window.VL_DECK = {json.dumps(config)};</script>
<script src="{REVEAL_DIR}/dist/reveal.js"></script>
<script src="{REVEAL_DIR}/plugin/notes/notes.js"></script>
{mathjax}<script src="{ASSETS_DIR}/deck.js"></script>
</body>
</html>
"""


# --------------------------------------------------------------------------- PDF

def _local_only(route) -> None:
    if route.request.url.startswith(("file://", "data:")):
        route.continue_()
    else:
        route.abort()


def open_deck(page, deck: Path, query: str = "", timeout_ms: int = 60_000) -> None:
    """Open ``deck`` in a Playwright page with every request that is not a local file refused, and
    wait until its maths is typeset and its visuals fitted."""
    page.route("**/*", _local_only)
    page.goto(Path(deck).resolve().as_uri() + query, wait_until="load", timeout=timeout_ms)
    page.wait_for_selector(f"html[{READY_ATTRIBUTE}]", state="attached", timeout=timeout_ms)


def print_pdfs(decks: list[Path]) -> list[Path]:
    """``<deck>.pdf`` beside each deck: reveal.js's print layout (``?print-pdf``), one page a slide,
    by Debian's Chromium, offline. Runs in a thread of its own, so that a caller already driving a
    browser (a test) can call it too."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print_pdfs, [Path(d) for d in decks]).result()


def _print_pdfs(decks: list[Path]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from .browser import launch_chromium

    pdfs = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            for deck in decks:
                open_deck(page, deck, "?print-pdf")
                page.wait_for_function("() => document.querySelector('.pdf-page') !== null",
                                       timeout=60_000)
                pdf = deck.with_suffix(".pdf")
                page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
                pdfs.append(pdf)
        finally:
            browser.close()
    return pdfs
