"""The check of a unit against the unit shape (../DESIGN: What you will learn, Before this unit, a Time plan
that adds up to at most 90 minutes, short code cells, graded exercises with nbgrader's metadata, Summary,
References), and of what a student cannot follow.

    python -m coursekit check notebooks            # every NN_*.ipynb of the folder
    python -m coursekit check notebooks/05_beta_vae.ipynb
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from . import paths
from .notebooks import NotebookError, read
from .student import CODE_STUB, GRADE_ID, HIDDEN_TESTS, SOLUTION, _has_points, _nbgrader, _replace_region, _where

HEADINGS = ("What you will learn", "Before this unit", "Time plan", "Summary", "Exercises", "References")
MAX_MINUTES = 90
MAX_CELL_LINES = 25


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


def check_paths(paths) -> list[str]:
    """Problems of each given notebook, and of every unit notebook inside each given folder."""
    problems = []
    for path in map(Path, paths):
        files = paths_in(path)
        if not files:
            problems.append(f"{path}: no unit notebooks (NN_*.ipynb) found")
        for f in files:
            try:
                problems += check_unit(read(f), f.name)
            except NotebookError as err:
                problems.append(str(err))
    return problems


def paths_in(path: Path) -> list[Path]:
    """The unit notebooks of a folder, or the file itself."""
    return paths.units(path) if path.is_dir() else [path]




def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m coursekit check", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[paths.NOTEBOOKS], type=Path,
                        help="unit notebooks, or folders of them (default: notebooks/)")
    args = parser.parse_args(argv)
    problems = check_paths(args.paths)
    print("\n".join(problems) if problems else "no problems found")
    return 1 if problems else 0
