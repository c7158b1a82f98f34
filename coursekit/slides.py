"""Lecture decks: one reveal.js deck and its PDF per unit, from the executed unit, shown with no
network.

    python -m coursekit slides [notebooks] [out]   # build/slides/<unit>.slides.html, .slides.pdf
    python -m coursekit slides --outline notebooks/05_beta_vae.ipynb     # which cell, which slide
    python -m coursekit slides --write-tags notebooks/05_beta_vae.ipynb  # the selection, explicit

A slide has a title, a short text (about 40 words at most) and one visual that fills the rest of it:
a figure or table the unit's code drew, a table or display formula of its prose, or a short code
excerpt. The unit's prose goes to the speaker notes of the slide it belongs to (reveal.js's notes
plugin: press ``S`` for the speaker view). A ``## N. …`` section opens a group of slides (its
minutes from the unit's Time plan beside its title), a ``### …`` heading or a further visual adds a
slide below it, and each exercise has a slide "Exercise 2 — 5 minutes". The title slide carries the
unit's title and the heads of "What you will learn".

The selection is kept with the notebook, in cell metadata ``slides`` (all keys optional)::

    {"role": "slide" | "notes" | "figure" | "exercise" | "skip",
     "title": "a slide title instead of the heading",
     "text": "the slide's text instead of the derived lead (Markdown; \\"\\" for none)",
     "excerpt": "all" | "3-8" | "3-8, 12",     # code cells: these lines on the slide (14 at most)
     "minutes": 10}                            # exercise cells: instead of the time plan's share

- ``slide``: the cell opens a slide. Markdown: each heading in it opens one (titled by the heading),
  its prose is the notes and its first paragraph or list, shortened, the slide's text. Code: its
  excerpt and its first figure on a new slide titled by ``title`` or the current section.
- ``notes``: speaker notes of the current slide only.
- ``figure``: code: each image, table or widget it displays fills a slide (the current one while
  that has no visual, else a new one below it); a cell that only prints shows its printed text.
  Markdown: its tables are shown, its prose goes to the notes.
- ``exercise``: one exercise slide from the cell (its text: the task's first sentence and its
  question).
- ``skip``: nothing on the slides.

Without ``role`` a cell gets a derived one (:func:`coursekit.slides_plan.derived_role`): a markdown
cell with a heading is ``slide``, one opening with "**Exercise N.**" is ``exercise``, one with a
table is ``figure``, other prose is ``notes``; a code cell with an image, table or widget output is
``figure``, other code is ``skip``; nbgrader's solution and test cells, and cells Jupyter's
slideshow marks "skip", are ``skip``. ``--write-tags`` writes these derived roles into the notebook
(keeping every role already there), so that the selection can then be edited by hand;
``--with-text`` also writes each slide's derived text.

The decks are built from the executed copies of :mod:`coursekit.executed` (``build/executed``, run
when stale), so their numbers and figures are the executed unit's own; a notebook that already holds
outputs is used as it is. reveal.js and MathJax 3 come from ``node_modules`` (``npm ci``), copied
next to the decks, so that nothing is fetched from the network. Every notebook is read before
anything runs and every deck is made (HTML and PDF, in a staging folder) before any is written: a
malformed notebook is reported in one line and leaves ``out`` as it was.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from . import paths, site
from . import slides_html as html_
from .notebooks import NotebookError, missing_paths, read, usage_error, write_atomic
from .slides_plan import KEY, SlideMetadataError, derived_tags, plan_deck

NODE_MODULES = paths.NODE_MODULES
REVEAL_DIR = html_.REVEAL_DIR
SUFFIX = ".slides.html"
# What the decks load from node_modules: reveal.js's script, styles, theme (with its fonts) and the
# speaker-notes plugin; MathJax 3 with its fonts.
_MATHJAX = "mathjax/es5"
_VENDOR = (("reveal.js/dist", f"{REVEAL_DIR}/dist"),
           ("reveal.js/plugin/notes", f"{REVEAL_DIR}/plugin/notes"),
           (f"{_MATHJAX}/tex-chtml-full.js", html_.MATHJAX_SCRIPT),
           (f"{_MATHJAX}/output/chtml/fonts/woff-v2",
            f"{html_.MATHJAX_DIR}/output/chtml/fonts/woff-v2"))
_VENDOR_SKIP = ("*.map", "*.esm.js")


def _need_reveal(node_modules) -> None:
    if missing := [src for src, _ in _VENDOR if not (Path(node_modules) / src).exists()]:
        raise FileNotFoundError(f"{Path(node_modules) / missing[0]} is missing: run `npm ci` in "
                                f"{paths.ROOT} (`make slides` does it for you)")


def _need_chromium() -> None:
    from .browser import browser_unavailable

    if why := browser_unavailable():
        raise FileNotFoundError(f"the PDFs need Chromium: {why}; or build the decks alone with "
                                "--no-pdf")


def copy_reveal(deck_dir, node_modules=NODE_MODULES) -> None:
    """Copy reveal.js, MathJax 3 and the deck's own style and script next to the decks."""
    node_modules, deck_dir = Path(node_modules), Path(deck_dir)
    _need_reveal(node_modules)
    for src, dst in _VENDOR:
        if (node_modules / src).is_dir():
            shutil.copytree(node_modules / src, deck_dir / dst, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(*_VENDOR_SKIP))
        else:
            (deck_dir / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(node_modules / src, deck_dir / dst)
    assets = deck_dir / html_.ASSETS_DIR
    assets.mkdir(parents=True, exist_ok=True)
    for name in html_.ASSET_FILES:
        shutil.copy2(html_.ASSETS / name, assets / name)


def outline(nb, name: str):
    """The deck's outline (:class:`coursekit.slides_plan.Deck`) of an executed notebook."""
    nb = site.snapshot_widgets(copy.deepcopy(nb))  # widgets as static pictures: no widget manager
    return plan_deck(nb, name)


def deck_page(nb, name: str, mathjax: str | None = html_.MATHJAX_SCRIPT) -> str:
    """The reveal.js page of one unit, from its executed notebook (``mathjax=None``: formulas stay
    TeX)."""
    return html_.deck_html(outline(nb, name), mathjax)


def _has_outputs(nb) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return not code or any(c.get("outputs") for c in code)


def read_units(src) -> list[tuple[Path, object]]:
    """``(path, notebook)`` for every ``NN_*.ipynb`` of ``src``, each read and its slide metadata
    checked: a :class:`NotebookError` (one line naming the file) before anything is built."""
    units = paths.units(src)
    if not units:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {src}")
    sources = [(path, read(path)) for path in units]
    for path, nb in sources:
        _check_metadata(path, nb)
    return sources


def executed_units(src, executed_dir=None, timeout: int = 1800,
                   sources=None) -> list[tuple[Path, object, str]]:
    """``(path, executed notebook, how)`` for every ``NN_*.ipynb`` of ``src``: as saved when it
    holds outputs (or has no code), else its executed copy (:func:`coursekit.executed.executed`) in
    ``executed_dir``. Every notebook is read, and its slide metadata checked, before any runs
    (``sources``: as :func:`read_units` returned them)."""
    from . import executed

    sources = read_units(src) if sources is None else sources
    out = []
    for path, nb in sources:
        if _has_outputs(nb):
            out.append((path, nb, "outputs as saved"))
            continue
        done, seconds = executed.executed(path, executed_dir or executed.OUT, timeout)
        out.append((path, done, f"executed copy, {seconds:.1f} s to run"))
    return out


def _check_metadata(path, nb) -> None:
    from .slides_plan import excerpt_lines, selection

    for index, cell in enumerate(nb.cells):
        try:
            meta = selection(cell)
            if meta.get("excerpt") and cell.cell_type == "code":
                excerpt_lines(meta["excerpt"], cell.source)
        except SlideMetadataError as err:
            raise NotebookError(f"{path}: cell {index}: {err}") from None


def write_decks(pages: dict[str, str], out, node_modules=NODE_MODULES,
                pdf: bool = True) -> list[Path]:
    """Write ``{unit name: page}`` as ``out/<name>.slides.html`` (and ``.slides.pdf``) with what the
    pages load beside them: all made in a staging folder first, then moved into ``out`` together; on
    any failure ``out`` is left as it was."""
    out = Path(out)
    if pdf:
        _need_chromium()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-staging-", dir=out.parent))
    try:
        copy_reveal(stage, node_modules)
        decks = []
        for name, page in pages.items():
            deck = stage / f"{name}{SUFFIX}"
            deck.write_text(page, encoding="utf-8")
            decks.append(deck)
        made = decks + (html_.print_pdfs(decks) if pdf else [])
        out.mkdir(parents=True, exist_ok=True)
        copy_reveal(out, node_modules)
        written = []
        for path in made:
            os.chmod(path, 0o644)
            os.replace(path, out / path.name)
            written.append(out / path.name)
        return written
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def build_slides(src=paths.NOTEBOOKS, out=paths.ROOT / "build" / "slides",
                 node_modules=NODE_MODULES, timeout: int = 1800, pdf: bool = True,
                 executed_dir=None) -> list[Path]:
    """A deck (and its PDF) per ``NN_*.ipynb`` of ``src`` in ``out``, from the executed units. The
    executed copies go to ``build/executed`` for the course's notebooks, else to
    ``<out>.executed``."""
    src, out = Path(src), Path(out)
    if executed_dir is None:
        same = src.resolve() == paths.NOTEBOOKS.resolve()
        executed_dir = None if same else out.parent / f"{out.name}.executed"
    sources = read_units(src)  # a malformed notebook first, in one line, before anything is built
    _need_reveal(node_modules)  # before any notebook runs
    if pdf:
        _need_chromium()
    units = executed_units(src, executed_dir, timeout, sources)
    pages = {}
    for path, nb, how in units:
        start = time.perf_counter()
        try:
            deck = outline(nb, path.stem)
        except SlideMetadataError as err:
            raise NotebookError(f"{path}: {err}") from None
        pages[path.stem] = html_.deck_html(deck, html_.MATHJAX_SCRIPT)
        print(f"{path.name}: {len(deck.slides)} slides ({how}; outlined in "
              f"{time.perf_counter() - start:.1f} s)", flush=True)
    start = time.perf_counter()
    written = write_decks(pages, out, node_modules, pdf=pdf)
    for path in written:
        print(f"wrote {path}")
    made = "decks and PDFs" if pdf else "decks"
    print(f"{len(pages)} {made} in {time.perf_counter() - start:.1f} s", flush=True)
    return written


# --------------------------------------------------------------------------- explicit selection

def write_tags(files, with_text: bool = False) -> list[Path]:
    """Write each cell's role (derived where it has none) into ``metadata["slides"]`` of each
    notebook; ``with_text``: also each slide's derived text. Roles and texts already set are kept.
    Returns the notebooks that changed."""
    notebooks = [(Path(p), read(p)) for p in files]  # all readable before any is written
    changed = []
    for path, nb in notebooks:
        _check_metadata(path, nb)
        before = nbformat.writes(nb)
        shown = site.snapshot_widgets(copy.deepcopy(nb))  # as the deck sees the outputs
        texts = _derived_texts(shown, path.stem) if with_text else {}
        for index, (cell, tags) in enumerate(zip(nb.cells, derived_tags(shown))):
            if index in texts and "text" not in tags:
                tags["text"] = texts[index]
            cell.metadata[KEY] = tags
        after = nbformat.writes(nb)
        if after != before:
            write_atomic(path, after)
            changed.append(path)
    return changed


def _derived_texts(nb, name: str) -> dict[int, str]:
    """Cell index → the derived text of the slide it opens (cells that open one slide)."""
    deck = plan_deck(nb, name)
    texts: dict[int, str] = {}
    for s in deck.slides:
        if s.cells and not s.explicit_text and s.text and s.kind != "title":
            texts.setdefault(s.cells[0], s.text)
    counts: dict[int, int] = {}
    for s in deck.slides:
        if s.cells:
            counts[s.cells[0]] = counts.get(s.cells[0], 0) + 1
    return {k: v for k, v in texts.items() if counts.get(k) == 1}


def print_outline(path, executed_dir=None) -> None:
    """Print which cells make which slide; from the executed copy when it is current (so that the
    figures count), else from the notebook as it is."""
    from . import executed

    nb = read(path)
    _check_metadata(path, nb)
    copy_path = Path(executed_dir or executed.OUT) / Path(path).name
    if not _has_outputs(nb) and executed.is_current(copy_path, nb):
        nb = read(copy_path)
        print(f"(from the executed copy {copy_path})")
    elif not _has_outputs(nb):
        print("(no outputs and no current executed copy, so no figures: run python -m coursekit "
              "execute)")
    deck = outline(nb, Path(path).stem)
    for s in deck.slides:
        visual = "-" if s.visual is None else s.visual.kind if s.visual.cell is None \
            else f"{s.visual.kind} of cell {s.visual.cell}"
        minutes = f"{s.minutes} min" if s.minutes else ""
        print(f"{s.kind:<9} {minutes:>6}  {s.title[:60]:<60}  {visual:<18} cells {s.cells}")


def main(argv=None) -> int:
    import argparse

    from nbclient.exceptions import CellExecutionError

    parser = argparse.ArgumentParser(prog="python -m coursekit slides",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    add = parser.add_argument
    add("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    add("out", nargs="?", default=paths.ROOT / "build" / "slides", type=Path)
    add("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    add("--no-pdf", action="store_true", help="the HTML decks only")
    add("--executed", type=Path, help="folder of the executed copies (default build/executed)")
    add("--write-tags", nargs="+", type=Path, metavar="NOTEBOOK",
        help="write the derived selection into these notebooks' cell metadata, and stop")
    add("--with-text", action="store_true", help="with --write-tags: the slide texts too")
    add("--outline", type=Path, metavar="NOTEBOOK", help="print a notebook's slides, and stop")
    args = parser.parse_args(argv)
    given = args.write_tags or ([args.outline] if args.outline else [])
    if problem := missing_paths(given) if given else missing_paths([args.notebooks], folder=True):
        return usage_error(parser.prog, problem)
    try:
        if args.write_tags:
            for path in write_tags(args.write_tags, with_text=args.with_text):
                print(f"wrote the slide selection into {path}")
            return 0
        if args.outline:
            print_outline(args.outline, args.executed)
            return 0
        build_slides(args.notebooks, args.out, NODE_MODULES, timeout=args.timeout,
                     pdf=not args.no_pdf, executed_dir=args.executed)
    except (ValueError, FileNotFoundError, CellExecutionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
