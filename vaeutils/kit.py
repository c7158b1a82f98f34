"""The classroom kit around the units: student copies without the answers, a check of each unit against the
v2 shape, and one reveal.js deck per unit that shows with no network.

    python -m vaeutils.kit student notebooks build/student   # answers replaced by stubs, outputs cleared
    python -m vaeutils.kit slides notebooks build/slides     # <unit>.slides.html per unit (executed first if needed)
    python -m vaeutils.kit check notebooks                   # problems of the units in SHAPED_UNITS (or of FILES)

Exercises follow nbgrader's conventions (``### BEGIN SOLUTION`` / ``### END SOLUTION`` in a solution cell, then a
locked test cell with points); :func:`student_copy` removes answers as ``nbgrader generate_assignment`` does, so a
student working alone gets the notebook a graded class gets. The decks load reveal.js, require.js and jQuery
from ``node_modules`` (``npm ci``) and MathJax from ``jupyter-server-mathjax``, copied next to them.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from . import config, site

# every unit is in the v2 shape: `check` and tests/test_kit.py check each NN_*.ipynb of notebooks/
SHAPED_UNITS = tuple(sorted(p.name for p in (config.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))

HEADINGS = ("What you will learn", "Before this unit", "Time plan", "Summary", "Exercises", "References")
MAX_MINUTES = 90
MAX_CELL_LINES = 25
SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)
GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")  # what nbgrader accepts as a grade_id
SOLUTION_META = '{"nbgrader": {"grade": false, "grade_id": "<id>", "locked": false, "solution": true, ...}}'
RUN_METADATA = ("execution", "ExecuteTime")  # per-run cell metadata (nbclient timings, a Lab extension)

NODE_MODULES = config.ROOT / "node_modules"
UNIT_GLOB = "[0-9][0-9]_*.ipynb"
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


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _has_points(meta: dict) -> bool:
    points = meta.get("points")
    return isinstance(points, int | float) and not isinstance(points, bool) and points > 0


def _where(index: int, cell) -> str:
    """How a message names a cell: its number, its grade_id if it has one, and its first line."""
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")[:40]
    gid = _nbgrader(cell).get("grade_id")
    return f"cell {index}" + (f" ({gid!r})" if gid else "") + f" [{cell.cell_type}: {first!r}]"


def _replace_region(source: str, markers: tuple[str, str], stub: tuple[str, ...], where: str) -> tuple[str, bool]:
    """``source`` with every ``markers`` region replaced by ``stub`` at the indentation of its BEGIN line, as
    nbgrader does; True when a region was found."""
    begin, end = markers
    out, inside, found = [], False, False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"{where}: a second '### {begin}' before '### {end}'; close the first region")
            inside = found = True
            out.extend(re.match(r"\s*", line).group(0) + s for s in stub)
        elif end in line:
            if not inside:
                raise ValueError(f"{where}: '### {end}' without a '### {begin}' before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '### {begin}' has no '### {end}'; end the region")
    return "\n".join(out), found


def student_copy(nb):
    """A copy of ``nb`` without the answers: each solution region becomes ``# YOUR CODE HERE`` /
    ``raise NotImplementedError()`` (``YOUR ANSWER HERE`` in Markdown), as does a solution cell without one;
    hidden tests go, outputs are cleared. ValueError, naming the cell, for an unclosed region, a region in a cell
    without nbgrader solution metadata, a grade cell without points."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        where, meta = _where(index, cell), _nbgrader(cell)
        stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        source, replaced = _replace_region(cell.source, SOLUTION, stub, where)
        if replaced and not meta.get("solution"):
            raise ValueError(f"{where} has a solution region but no nbgrader solution metadata: {SOLUTION_META}")
        if meta.get("grade") and not _has_points(meta):
            raise ValueError(f"{where} is a grade cell without points; add \"points\": <n> to its nbgrader metadata")
        if meta.get("solution") and not replaced:
            source = "\n".join(stub)  # the whole cell is the answer
        source, hidden = _replace_region(source, HIDDEN_TESTS, (), where)
        if hidden and not meta.get("grade"):
            raise ValueError(f"{where} has hidden tests but is not a grade cell")
        cell.source = source
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)
    return nb


_HEADING = re.compile(r"^\s{0,3}(?:#{1,6}\s+(?P<h>.+?)\s*#*\s*$|\*\*(?P<b>[^*]+)\*\*)")


def _headings(nb) -> dict[str, tuple[int, int]]:
    """Where (cell, line) each of HEADINGS first appears, as a Markdown heading or a bold lead-in."""
    found = {}
    for ci, cell in enumerate(nb.cells):
        for li, line in enumerate(cell.source.splitlines() if cell.cell_type == "markdown" else ()):
            text = (m.group("h") or m.group("b")).strip().lower() if (m := _HEADING.match(line)) else ""
            for h in (h for h in HEADINGS if text.startswith(h.lower())):
                found.setdefault(h, (ci, li))
    return found


def _table_after(nb, ci: int, li: int) -> list[list[str]]:
    """The rows of the first Markdown table after line ``li`` of cell ``ci``, before the next heading."""
    lines, rows = nb.cells[ci].source.splitlines()[li + 1:], []
    for cell in itertools.takewhile(lambda c: c.cell_type == "markdown", nb.cells[ci + 1:]):
        lines += cell.source.splitlines()
    for line in lines:
        if line.lstrip().startswith("#"):
            break
        if line.strip().startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r)]


def time_plan_minutes(rows: list[list[str]]) -> tuple[float, list[str]]:
    """The minutes a time-plan table adds up to (a "total" row is checked, not added), and its problems."""
    if len(rows) < 2:
        return 0.0, ["the Time plan has no table of sections and minutes"]
    col = next((i for i, c in enumerate(rows[0]) if "min" in c.lower()), None)
    if col is None:
        return 0.0, [f"the Time plan table has no minutes column (headers: {rows[0]}); name one 'minutes'"]
    total, stated, problems = 0.0, None, []
    for row in rows[1:]:
        m = re.match(r"(\d+(?:\.\d+)?)", row[col].strip("* ") if col < len(row) else "")
        if m is None:
            problems.append(f"the Time plan row {row} has no number of minutes")
        elif row[0].strip("*_ ").lower() in ("total", "in total", "sum"):  # the total row itself, not a section on TC
            stated = float(m.group(1))
        else:
            total += float(m.group(1))
    if stated is not None and stated != total:
        problems.append(f"the Time plan says a total of {stated:g} min but its rows add up to {total:g}")
    return total, problems


def _shape_problems(nb) -> list[str]:
    at = _headings(nb)
    problems = [f"no heading '{h}' (write it as '## {h}')" for h in HEADINGS if h not in at]
    present = [h for h in HEADINGS if h in at]
    if [at[h] for h in present] != sorted(at[h] for h in present):
        problems.append(f"the headings are out of order: {', '.join(sorted(present, key=at.get))} "
                        f"(expected {', '.join(present)})")
    if "Time plan" in at:
        minutes, bad = time_plan_minutes(_table_after(nb, *at["Time plan"]))
        problems += bad
        if minutes > MAX_MINUTES:
            problems.append(f"the Time plan adds up to {minutes:g} min, over the {MAX_MINUTES} of a session")
    return problems


def _exercise_problems(nb) -> list[str]:
    problems, ids, open_solution, exercises = [], {}, None, 0
    for index, cell in enumerate(nb.cells):
        where, meta = _where(index, cell), _nbgrader(cell)
        try:
            _, replaced = _replace_region(cell.source, SOLUTION, CODE_STUB, where)
            _replace_region(cell.source, HIDDEN_TESTS, (), where)
        except ValueError as err:
            problems.append(str(err))
            replaced = False
        if replaced and not meta.get("solution"):
            problems.append(f"{where} has a solution region but no nbgrader solution metadata")
        if not any(meta.get(key) for key in ("solution", "grade", "locked", "task")):
            continue
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: nbgrader metadata needs \"schema_version\": 3")
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not GRADE_ID.match(gid):
            problems.append(f"{where}: grade_id {gid!r} is not letters, digits, '-' or '_'")
        elif ids.setdefault(gid, index) != index:
            problems.append(f"{where}: grade_id {gid!r} is already used by cell {ids[gid]}")
        if meta.get("grade") and not _has_points(meta):
            problems.append(f"{where} is a grade cell without points (\"points\": <n> in its nbgrader metadata)")
        if meta.get("grade") and not meta.get("solution"):
            if not meta.get("locked"):
                problems.append(f"{where} is a test cell that is not locked (\"locked\": true)")
            if open_solution is not None:
                exercises += 1
            open_solution = None
        elif meta.get("solution") and meta.get("grade"):
            exercises += 1  # a manually graded answer grades itself
        elif meta.get("solution"):
            if open_solution is not None:
                problems.append(f"{open_solution} has no grade cell after it before the next solution cell")
            open_solution = where
    if open_solution is not None:
        problems.append(f"{open_solution} has no grade cell after it")
    if not exercises:
        problems.append("no graded exercise (a solution cell followed by a locked test cell with points)")
    return problems


def check_unit(nb, name: str) -> list[str]:
    """The ways the unit ``nb`` (file ``name``) departs from the v2 shape, as sentences naming ``name``; an
    empty list when it has none."""
    problems = _shape_problems(nb)
    for index, cell in enumerate(nb.cells):
        n = len(cell.source.rstrip().splitlines())
        if cell.cell_type == "code" and n > MAX_CELL_LINES:
            problems.append(f"{_where(index, cell)} has {n} lines, over {MAX_CELL_LINES}: split it or move the "
                            "plumbing into vaeutils")
        if "seeds/" in cell.source or "seeds/" in json.dumps(cell.get("outputs", [])):
            problems.append(f"{_where(index, cell)} mentions seeds/, which students do not have")
    if "seeds/" in json.dumps(nb.metadata):
        problems.append("the notebook metadata mentions seeds/, which students do not have")
    problems += _exercise_problems(nb)
    return [f"{name}: {p}" for p in problems]


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
        raise FileNotFoundError(f"{node_modules / missing[0]} is missing: run `npm ci` in {config.ROOT} "
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


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename it: a reader sees the old file or the
    new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the copies are handed out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_student(src, out) -> list[Path]:
    """Student copies of every ``src/*.ipynb`` in ``out``. Every copy is made before any is written, so a
    malformed exercise leaves ``out`` as it was."""
    paths = sorted(Path(src).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks in {src}")
    copies = []
    for path in paths:
        try:
            copies.append(student_copy(nbformat.read(path, as_version=4)))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    for path, nb in zip(paths, copies):
        _write_atomic(Path(out) / path.name, nbformat.writes(nb))
    return [Path(out) / path.name for path in paths]


def build_slides(src, out, node_modules=NODE_MODULES, timeout: int = 1800) -> list[Path]:
    """One ``<unit>.slides.html`` per ``NN_*.ipynb`` of ``src`` in ``out``; a notebook whose code cells have no
    outputs (as committed) is executed first, in its own folder."""
    from nbconvert.preprocessors import ExecutePreprocessor

    paths = sorted(Path(src).glob(UNIT_GLOB))
    if not paths:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {src}")
    out = Path(out)
    exporter = slides_exporter(out, node_modules)
    decks = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        code, note = [c for c in nb.cells if c.cell_type == "code"], "outputs as saved"
        if code and not any(c.outputs for c in code):
            start = time.perf_counter()
            print(f"executing {path} ...", flush=True)
            ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(
                nb, {"metadata": {"path": str(path.parent.resolve())}})
            note = f"executed in {time.perf_counter() - start:.1f} s"
        site.snapshot_widgets(nb)  # widgets as static pictures: the deck loads no widget manager from a CDN
        body, _ = exporter.from_notebook_node(slide_deck(nb), resources={"metadata": {"name": path.stem}})
        deck = out / f"{path.stem}.slides.html"
        _write_atomic(deck, body)
        print(f"wrote {deck} ({note})", flush=True)
        decks.append(deck)
    return decks


def check_paths(paths) -> list[str]:
    """Problems of each given notebook, and of the SHAPED_UNITS inside each given folder."""
    problems = []
    for path in map(Path, paths):
        for f in [path / name for name in SHAPED_UNITS] if path.is_dir() else [path]:
            problems += (check_unit(nbformat.read(f, as_version=4), f.name) if f.is_file()
                         else [f"{f.name}: listed in SHAPED_UNITS but not found in {path}"])
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaeutils.kit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="student copies of every notebook, answers removed")
    slides = sub.add_parser("slides", help="one offline reveal.js deck per unit")
    for p, out in ((student, "build/student"), (slides, "build/slides")):
        p.add_argument("notebooks", nargs="?", default="notebooks", type=Path)
        p.add_argument("out", nargs="?", default=out, type=Path)
    slides.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    check = sub.add_parser("check", help="problems of the units in SHAPED_UNITS (a folder) or of the given files")
    check.add_argument("paths", nargs="*", default=[Path("notebooks")], type=Path)
    args = parser.parse_args(argv)

    if args.command == "check":
        if not SHAPED_UNITS and all(p.is_dir() for p in args.paths):
            print("no unit is listed in vaeutils.kit.SHAPED_UNITS yet; pass a notebook to check it")
        problems = check_paths(args.paths)
        print("\n".join(problems) if problems else "no problems found")
        return 1 if problems else 0
    from nbconvert.preprocessors import CellExecutionError

    try:
        if args.command == "student":
            print("\n".join(f"wrote {path}" for path in build_student(args.notebooks, args.out)))
        else:
            build_slides(args.notebooks, args.out, NODE_MODULES, timeout=args.timeout)
    except (ValueError, FileNotFoundError, CellExecutionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
