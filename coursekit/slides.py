"""One reveal.js deck per unit, from the executed notebook, that shows with no network.

    python -m coursekit slides notebooks build/slides

The decks load reveal.js, require.js and jQuery from ``node_modules`` (``npm ci``) and MathJax from
``jupyter-server-mathjax``, copied next to them.
"""

from __future__ import annotations

import copy
import shutil
import sys
import time
from pathlib import Path

from . import paths, site
from .notebooks import execute, read, write_atomic

NODE_MODULES = paths.NODE_MODULES
REVEAL_DIR, JS_DIR = "reveal.js", "js"
# What the decks load, copied from node_modules: nbconvert's reveal template expects reveal.js 4 under
# <prefix>/dist and <prefix>/plugin, and loads it through require.js (jQuery for tall slides).
_VENDOR = (("reveal.js/dist", f"{REVEAL_DIR}/dist"), ("reveal.js/plugin", f"{REVEAL_DIR}/plugin"),
           ("requirejs/require.js", f"{JS_DIR}/require.js"), ("jquery/dist/jquery.min.js", f"{JS_DIR}/jquery.min.js"))
_VENDOR_SKIP = ("*.map", "*.esm.js")
# nbconvert's reveal template imports mermaid from a CDN as an ES module; no unit draws mermaid diagrams.
SLIDES_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def slide_deck(nb):
    """A copy of ``nb`` in which every cell has a slide type: the author's where one is set, else a ``# ``/``## ``
    heading starts a slide, a ``### `` heading a subslide, and anything else continues the current one."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        show = cell.metadata.get("slideshow")
        if isinstance(show, dict) and show.get("slide_type"):
            continue
        first = cell.source.lstrip() if cell.cell_type == "markdown" else ""
        kind = "slide" if first.startswith(("# ", "## ")) else "subslide" if first.startswith("### ") else "-"
        cell.metadata["slideshow"] = {**(show if isinstance(show, dict) else {}), "slide_type": kind}
    return nb


def copy_reveal(deck_dir, node_modules=NODE_MODULES) -> None:
    """Copy reveal.js, require.js and jQuery from ``node_modules`` next to the decks."""
    node_modules, deck_dir = Path(node_modules), Path(deck_dir)
    if missing := [src for src, _ in _VENDOR if not (node_modules / src).exists()]:
        raise FileNotFoundError(f"{node_modules / missing[0]} is missing: run `npm ci` in {paths.ROOT} "
                                "(`make slides` does it for you)")
    for src, dst in _VENDOR:
        source, target = node_modules / src, deck_dir / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_VENDOR_SKIP))
        else:
            shutil.copy2(source, target)


def slides_exporter(deck_dir, node_modules=NODE_MODULES):
    """nbconvert's SlidesExporter with every script and style sheet read from ``deck_dir`` (copied there)."""
    from nbconvert import SlidesExporter

    copy_reveal(deck_dir, node_modules)
    # The theme: nbconvert's default, "simple", fetches Google fonts, "white" ships its own. Scrolling: a figure
    # taller than the screen scrolls instead of being cut off.
    exporter = SlidesExporter(raw_template=SLIDES_TEMPLATE, reveal_url_prefix=REVEAL_DIR, reveal_theme="white",
                              require_js_url=f"{JS_DIR}/require.js", jquery_url=f"{JS_DIR}/jquery.min.js",
                              reveal_scroll=True, embed_images=True)
    if site.copy_mathjax(deck_dir):
        exporter.mathjax_url = f"{site.MATHJAX_DIR}/MathJax.js?config={site.MATHJAX_CONFIG}"
    return exporter


def build_slides(src, out, node_modules=NODE_MODULES, timeout: int = 1800) -> list[Path]:
    """One ``<unit>.slides.html`` per ``NN_*.ipynb`` of ``src`` in ``out``; a notebook whose code cells have no
    outputs (as committed) is executed first, in its own folder."""
    units = paths.units(src)
    if not units:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {src}")
    notebooks = [read(path) for path in units]  # every file readable before anything is written
    out = Path(out)
    exporter = slides_exporter(out, node_modules)
    decks = []
    for path, nb in zip(units, notebooks):
        code, note = [c for c in nb.cells if c.cell_type == "code"], "outputs as saved"
        if code and not any(c.outputs for c in code):
            start = time.perf_counter()
            print(f"executing {path} ...", flush=True)
            execute(nb, path.parent, timeout=timeout)
            note = f"executed in {time.perf_counter() - start:.1f} s"
        site.snapshot_widgets(nb)  # widgets as static pictures: the deck loads no widget manager from a CDN
        body, _ = exporter.from_notebook_node(slide_deck(nb), resources={"metadata": {"name": path.stem}})
        deck = out / f"{path.stem}.slides.html"
        write_atomic(deck, body)
        print(f"wrote {deck} ({note})", flush=True)
        decks.append(deck)
    return decks




def main(argv=None) -> int:
    import argparse

    from nbclient.exceptions import CellExecutionError

    parser = argparse.ArgumentParser(prog="python -m coursekit slides", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    parser.add_argument("out", nargs="?", default=paths.ROOT / "build" / "slides", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    args = parser.parse_args(argv)
    try:
        build_slides(args.notebooks, args.out, NODE_MODULES, timeout=args.timeout)
    except (ValueError, FileNotFoundError, CellExecutionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
