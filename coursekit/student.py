"""Student copies of the units: the answers removed by nbgrader's own preprocessors (``ClearSolutions``,
``ClearHiddenTests``, ``ClearOutput``), so a student working alone gets the notebook a graded class gets.

    python -m coursekit student notebooks build/student

Exercises follow nbgrader's conventions: ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in a solution cell, then
a locked test cell with points; hidden tests between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat

from .notebooks import NotebookError, read, strip, write_atomic

SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)
GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")  # what nbgrader accepts as a grade_id
SOLUTION_META = '{"nbgrader": {"grade": false, "grade_id": "<id>", "locked": false, "solution": true, ...}}'


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


def _check_markers(nb) -> None:
    """The checks nbgrader makes only halfway through: ValueError naming the cell for an unclosed region, a
    solution region in a cell without solution metadata, hidden tests outside a grade cell, a grade cell
    without points."""
    for index, cell in enumerate(nb.cells):
        where, meta = _where(index, cell), _nbgrader(cell)
        _, replaced = _replace_region(cell.source, SOLUTION, CODE_STUB, where)
        if replaced and not meta.get("solution"):
            raise ValueError(f"{where} has a solution region but no nbgrader solution metadata: {SOLUTION_META}")
        if meta.get("grade") and not _has_points(meta):
            raise ValueError(f"{where} is a grade cell without points; add \"points\": <n> to its nbgrader metadata")
        _, hidden = _replace_region(cell.source, HIDDEN_TESTS, (), where)
        if hidden and not meta.get("grade"):
            raise ValueError(f"{where} has hidden tests but is not a grade cell")


def student_copy(nb):
    """A copy of ``nb`` without the answers, made by nbgrader's preprocessors: each solution region becomes
    ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (``YOUR ANSWER HERE`` in Markdown), as does a
    solution cell without one; hidden tests go, outputs are cleared."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    _check_markers(nb)
    nb = copy.deepcopy(nb)
    resources = {}
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    return strip(nb)


def build_student(src, out) -> list[Path]:
    """Student copies of every ``src/*.ipynb`` in ``out``. Every copy is made before any is written, so a
    malformed notebook or exercise leaves ``out`` as it was."""
    paths = sorted(Path(src).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks in {src}")
    copies = []
    for path in paths:
        try:
            copies.append(student_copy(read(path)))
        except NotebookError:
            raise
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    for path, nb in zip(paths, copies):
        write_atomic(Path(out) / path.name, nbformat.writes(nb))
    return [Path(out) / path.name for path in paths]


def main(argv=None) -> int:
    import argparse

    from . import paths

    parser = argparse.ArgumentParser(prog="python -m coursekit student", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    parser.add_argument("out", nargs="?", default=paths.ROOT / "build" / "student", type=Path)
    args = parser.parse_args(argv)
    try:
        print("\n".join(f"wrote {path}" for path in build_student(args.notebooks, args.out)))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
