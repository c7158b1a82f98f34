"""The real nbgrader round trip on the real units (issue 27): ``nbgrader generate_assignment`` of every unit (one
assignment, ``units``), then ``nbgrader autograde`` of three submissions:

* ``blank``: the release copies untouched, which must score 0;
* ``solved``: the source notebooks (the reference solutions), full marks on every auto-graded cell;
* ``wrong``: the source notebooks with, in every auto-graded exercise, the first wrong answer of its entry in
  ``docs/instructor/exercises/NN_name.yaml`` in place of the solution, 0 on every auto-graded cell.

The kernels nbgrader starts inherit the environment: offline, and the course's own data folder and model cache
(``data/``, warm after ``make models`` or a run of the notebooks; ``VAELAB_COURSE_DATA`` points elsewhere), so
autograding runs each unit on cached models. A unit nbgrader cannot grade is reported without hiding the others;
the wall time of each step is printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import nbformat
import pytest

from coursekit import check, paths
from coursekit.notebooks import read
from coursekit.student import student_copy, with_answer

pytestmark = pytest.mark.slow
ASSIGNMENT = "units"
STUDENTS = ("blank", "solved", "wrong")
CELL_TIMEOUT = 900  # seconds a cell may take (nbgrader's default, 30, is shorter than a cold training cell)
# VAELAB_NBGRADER_UNITS="00 05" grades only those units (a quick local run); CI grades them all
_ONLY = os.environ.get("VAELAB_NBGRADER_UNITS", "").replace(",", " ").split()
UNITS = [u for u in paths.units() if not _ONLY or u.name[:2] in _ONLY]


def _nbgrader(root, *args, timeout=3600) -> tuple[float, str | None]:
    """Run ``nbgrader ARGS`` in the course folder ``root``: ``(seconds it took, None)``, or the seconds and what
    went wrong (nbgrader's error lines) when it failed."""
    # nbgrader runs the `alembic` command to set up its gradebook: the venv's bin folder must be on PATH
    data = os.environ.get("VAELAB_COURSE_DATA") or str(paths.ROOT / "data")
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
           "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTER_DATA_DIR": str(root / ".data"),
           "VAELAB_OFFLINE": "1", "VAELAB_DATA": data}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if done.returncode == 0:
        return seconds, None
    log = (done.stdout + done.stderr).splitlines()
    errors = [line for line in log if "| ERROR]" in line or "Error:" in line or "Exception:" in line]
    return seconds, f"nbgrader {' '.join(args)} failed:\n" + "\n".join((errors or log)[-15:])


def _wrong_copy(nb, unit) -> tuple[nbformat.NotebookNode, list[str]]:
    """``nb`` with the first wrong answer of each auto-graded exercise, and the exercises that have none."""
    file = check.exercise_file(unit)
    entries = check.load_wrong_answers(file) if file.is_file() else {}
    nb, missing = nbformat.from_dict(nb), []
    for ex in check.autograded(nb):
        wrong = entries.get(ex.grade_id, {}).get("wrong") if isinstance(entries.get(ex.grade_id), dict) else None
        if wrong:
            nb.cells[ex.solution].source = with_answer(nb.cells[ex.solution].source, wrong[0]["code"])
        else:
            missing.append(ex.grade_id)
    return nb, missing


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The course folder after generate_assignment and autograde (when nbgrader fails on a submission, which
    drops it whole, again one unit at a time, so that the unit that fails does not hide the others): ``(root,
    {(student, unit): what went wrong}, exercises without a wrong answer)``."""
    pytest.importorskip("nbgrader", reason="nbgrader is pinned in requirements.txt: run `make venv`")
    root = tmp_path_factory.mktemp("nbgrader-units")
    (root / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(root)!r}\nc.CourseDirectory.course_id = 'vaelab'\n"
        f"c.Execute.timeout = {CELL_TIMEOUT}\n")
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    units = UNITS
    for unit in units:
        shutil.copy(unit, source / unit.name)
    seconds, failed = _nbgrader(root, "generate_assignment", ASSIGNMENT)
    assert failed is None, failed
    missing = []
    for student in STUDENTS:
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for unit in units:
            if student == "blank":
                shutil.copy(root / "release" / ASSIGNMENT / unit.name, folder / unit.name)
            elif student == "solved":
                shutil.copy(unit, folder / unit.name)
            else:
                nb, none = _wrong_copy(read(unit), unit)
                missing += none
                nbformat.write(nb, folder / unit.name)
    times, failures = {"generate_assignment": seconds}, {}
    for student in STUDENTS:
        times[student], failed = _nbgrader(root, "autograde", ASSIGNMENT, "--student", student)
        if failed:  # nbgrader drops the whole submission: grade unit by unit to tell which one fails
            print(f"autograde {student}: {failed}\nagain, one unit at a time")
            for unit in units:
                took, failed = _nbgrader(root, "autograde", ASSIGNMENT, "--student", student, "--notebook",
                                         unit.stem)
                times[student] += took
                if failed:
                    failures[student, unit.stem] = failed
    print(f"nbgrader round trip on {len(units)} units: "
          + ", ".join(f"{k if k == 'generate_assignment' else 'autograde ' + k} {t:.0f} s" for k, t in times.items())
          + f"; {sum(times.values()):.0f} s in all")
    return root, failures, missing


def _not_graded(failures, student) -> str:
    return "\n".join(f"{unit}: {text}" for (who, unit), text in failures.items() if who == student)


def _grades(root, student) -> dict[str, list]:
    """unit name -> the grades of its submitted notebook (the units that were graded)."""
    from nbgrader.api import Gradebook, MissingEntry

    found = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for unit in UNITS:
            try:
                nb = gb.find_submission_notebook(unit.stem, ASSIGNMENT, student)
            except MissingEntry:
                continue
            found[unit.stem] = [(g.name, g.cell_type, g.auto_score, g.max_score, g.needs_manual_grade)
                                for g in nb.grades]
    return found


def test_the_release_is_the_student_copy(graded):
    root, _, _ = graded
    for unit in UNITS:
        release = nbformat.read(root / "release" / ASSIGNMENT / unit.name, as_version=4)
        ours = student_copy(read(unit))
        assert [c.source for c in ours.cells] == [c.source for c in release.cells], unit.name


def test_a_blank_copy_scores_zero(graded):
    root, failures, _ = graded
    assert not _not_graded(failures, "blank"), "units nbgrader could not grade:\n" + _not_graded(failures, "blank")
    scored = [f"{unit}: {name} scored {auto} of {top}" for unit, grades in _grades(root, "blank").items()
              for name, _, auto, top, _ in grades if auto]
    assert not scored, "\n".join(scored)


def test_the_solutions_score_full_marks_on_every_autograded_cell(graded):
    root, failures, _ = graded
    assert not _not_graded(failures, "solved"), "units nbgrader could not grade:\n" + _not_graded(failures, "solved")
    grades = _grades(root, "solved")
    short = [f"{unit}: {name} scored {auto} of {top}" for unit, cells in grades.items()
             for name, kind, auto, top, _ in cells if kind == "code" and auto != top]
    assert not short, "\n".join(short)
    assert all(any(kind == "code" for _, kind, *_ in cells) for cells in grades.values()), grades


def test_wrong_answers_score_zero_on_every_autograded_cell(graded):
    root, failures, missing = graded
    assert not _not_graded(failures, "wrong"), "units nbgrader could not grade:\n" + _not_graded(failures, "wrong")
    grades = _grades(root, "wrong")
    scored = [f"{unit}: {name} scored {auto} of {top}" for unit, cells in grades.items()
              for name, kind, auto, top, _ in cells if kind == "code" and auto]
    problems = [f"no wrong answer to substitute for {', '.join(missing)}"] if missing else []
    assert not (scored or problems), "\n".join(problems + scored)
