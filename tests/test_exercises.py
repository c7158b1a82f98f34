"""The wrong-answer test of the exercises (issue 27, "Visible checks that reject wrong answers").

For every unit with a wrong-answers file (``docs/instructor/exercises/NN_name.yaml``, format in CONVENTIONS): the
student copy is run in ONE kernel (nbclient, ``VAELAB_OFFLINE=1``, the course's model cache in ``data/cache`` read
through the usual ``VAELAB_DATA``, so the models are warm), every cell before the first exercise once, and then for
each auto-graded exercise:

* the reference solution (from the source notebook), its visible test cell (the student copy's) and its hidden
  tests must pass;
* each wrong answer, substituted for the solution region, must run; the visible test cell must then raise an
  AssertionError whose message contains the entry's ``message`` and not the reference answer's value (at 3 or 4
  significant digits), and the hidden tests must fail;
* the reference solution, its visible and hidden tests run again to restore the unit's state.

A fast test checks that every auto-graded exercise of every unit has an entry with at least three wrong answers.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from coursekit import check, paths
from coursekit.notebooks import read
from coursekit.student import hidden_tests, student_copy, with_answer

UNITS = paths.units()
WITH_ANSWERS = [p for p in UNITS if check.exercise_file(p).is_file()]
CELL_TIMEOUT = 900
PROBE = "@@vaelab-values@@"


def course_env() -> dict:
    """The environment of the course's kernels: offline, the course's own data folder and model cache (the one
    ``make models`` and the notebooks fill; ``VAELAB_COURSE_DATA`` points elsewhere), not the tests' empty one."""
    data = os.environ.get("VAELAB_COURSE_DATA") or str(paths.ROOT / "data")
    return {**os.environ, "VAELAB_OFFLINE": "1", "VAELAB_DATA": data}


# --------------------------------------------------------------------------- every exercise has wrong answers

@pytest.mark.parametrize("path", UNITS, ids=[p.stem for p in UNITS])
def test_every_autograded_exercise_has_three_wrong_answers(path):
    ids = [e.grade_id for e in check.autograded(read(path))]
    file = check.exercise_file(path)
    assert file.is_file(), f"{path.name}: no wrong answers for {', '.join(ids)}: write {file.relative_to(paths.ROOT)}"
    entries = check.load_wrong_answers(file)
    problems = [f"no entry for {gid}" for gid in ids if gid not in entries]
    problems += [p for gid in ids if gid in entries for p in check.entry_problems(gid, entries[gid])]
    problems += [f"entry {gid!r} is no auto-graded exercise of the unit" for gid in entries if gid not in ids]
    assert not problems, f"{file.relative_to(paths.ROOT)}:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- the kernel of one unit

class Kernel:
    """One kernel running code cells one at a time in ``folder``; :meth:`run` returns the CellExecutionError of a
    failing cell, or None."""

    def __init__(self, folder: Path, env: dict):
        from nbclient import NotebookClient

        self.client = NotebookClient(nbformat.v4.new_notebook(), timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
        self.env = env

    def __enter__(self):
        self._context = self.client.setup_kernel(env=self.env)
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

    def run(self, source: str):
        from nbclient.exceptions import CellExecutionError, CellTimeoutError

        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)  # nbclient stores the executed cell back at its index
        try:
            self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        except CellExecutionError as err:
            return err
        except CellTimeoutError:
            first = next((line for line in source.splitlines() if line.strip()), "")
            pytest.fail(f"a cell ran over {CELL_TIMEOUT} s ({first[:80]!r} …): are the unit's models in the "
                        "cache (data/cache; `make models` fills it)?")
        self.last = cell
        return None

    def values(self, names: list[str]) -> dict[str, list[float]]:
        """The numbers (scalars, or tensors and arrays of at most 8 elements) the kernel holds under ``names``."""
        probe = f"""
def _vaelab_values(v):
    import numbers
    try:
        if isinstance(v, bool):
            return None
        if isinstance(v, numbers.Real):
            return [float(v)]
        if hasattr(v, "numel") and v.numel() <= 8:
            return [float(x) for x in v.detach().cpu().flatten().tolist()]
        if hasattr(v, "size") and hasattr(v, "flatten") and v.size <= 8:
            return [float(x) for x in v.flatten().tolist()]
    except Exception:
        return None
    return None
print({PROBE!r} + __import__("json").dumps({{n: _vaelab_values(globals().get(n)) for n in {names!r}}}))
del _vaelab_values
"""
        err = self.run(probe)
        assert err is None, f"the value probe failed: {err}"
        text = "".join(o.get("text", "") for o in self.last.outputs if o.get("name") == "stdout")
        found = json.loads(text.split(PROBE, 1)[1].strip().splitlines()[0])
        return {k: v for k, v in found.items() if v}


def _message(err) -> str:
    return f"{err.ename}: {err.evalue}" if err is not None else "no error"


def answer_names(solution: str, visible: str) -> list[str]:
    """The names whose values are the answer: assigned by the solution cell and read by the visible test, and
    what the test assigns from calling a function the solution defines (``answer = flip_rate(grey)``)."""
    def assigned(tree) -> dict[str, ast.AST]:
        found = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found[node.name] = node
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found[name.id] = node
        return found

    try:
        sol, test = ast.parse(solution), ast.parse(visible)
    except SyntaxError:
        return []
    defined = assigned(sol)
    used = {n.id for n in ast.walk(test) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    names = [n for n in defined if n in used]
    functions = {n for n, node in defined.items() if isinstance(node, ast.FunctionDef)}
    for name, node in assigned(test).items():
        calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and any(c.func.id in functions for c in calls):
            names.append(name)
    return names


def leaks(message: str, values: dict[str, list[float]]) -> list[str]:
    """The answer values that ``message`` shows at 3 or 4 significant digits (values of fewer than three digits
    are not looked for: they are everywhere in prose)."""
    tokens = set(re.findall(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", message))
    found = []
    for name, numbers in values.items():
        for v in numbers:
            for fmt in (".3g", ".4g"):
                text = format(abs(v), fmt)
                if len(re.sub(r"\D", "", text.split("e")[0])) >= 3 and text in tokens:
                    found.append(f"{name} = {text}")
    return sorted(set(found))


# --------------------------------------------------------------------------- the wrong-answer test

def _exercise_report(kernel: Kernel, src, stu, ex, entry) -> list[str]:
    """Run one exercise as the module docstring says; the lines of its report (problems start with 'FAIL')."""
    solution, visible = src.cells[ex.solution].source, stu.cells[ex.test].source
    hidden = hidden_tests(src.cells[ex.test].source)
    lines = []

    def restore():
        for what, code in (("reference solution", solution), ("visible test", visible), ("hidden tests", hidden)):
            if code and (err := kernel.run(code)) is not None:
                return f"FAIL {ex.grade_id}: the {what} fails: {_message(err)}"
        return None

    if problem := restore():
        return [problem]
    if not hidden:
        lines.append(f"FAIL {ex.grade_id}: the test cell has no hidden tests (### BEGIN HIDDEN TESTS)")
    values = kernel.values(answer_names(solution, visible))
    for k, wrong in enumerate(entry["wrong"], 1):
        name = f"{ex.grade_id} wrong answer {k} ({wrong['why']})"
        err = kernel.run(with_answer(solution, wrong["code"]))
        if err is not None:
            lines.append(f"FAIL {name}: its code does not run: {_message(err)}")
        elif (err := kernel.run(visible)) is None:
            lines.append(f"FAIL {name}: the visible check accepts it")
        elif err.ename != "AssertionError":
            lines.append(f"FAIL {name}: the visible check raises {_message(err)}, not an AssertionError with a hint")
        elif wrong["message"].casefold() not in err.evalue.casefold():
            lines.append(f"FAIL {name}: the visible message {err.evalue!r} does not contain {wrong['message']!r}")
        elif shown := leaks(err.evalue, values):
            lines.append(f"FAIL {name}: the visible message shows the answer ({', '.join(shown)}): {err.evalue!r}")
        else:
            lines.append(f"ok   {name}: visible check says {err.evalue!r}")
        if hidden and kernel.run(hidden) is None:
            lines.append(f"FAIL {name}: the hidden tests accept it")
        if problem := restore():
            return [*lines, problem]
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_ANSWERS or [pytest.param(None, marks=pytest.mark.skip(
    reason="no unit has docs/instructor/exercises/NN_name.yaml yet"))], ids=[p.stem for p in WITH_ANSWERS] or None)
def test_visible_checks_reject_the_wrong_answers(path, tmp_path):
    src = read(path)
    stu = student_copy(src)
    nbformat.write(stu, tmp_path / path.name)  # the kernel runs in the student's folder
    entries = check.load_wrong_answers(check.exercise_file(path))
    exercises = check.autograded(src)
    assert exercises, f"{path.name} has no auto-graded exercise"
    graded = {i for ex in exercises for i in (ex.solution, ex.test)}
    report, start, done, unit_seconds = [], time.perf_counter(), 0, 0.0
    with Kernel(tmp_path, course_env()) as kernel:
        for ex in exercises:
            began = time.perf_counter()
            # the unit's own cells up to this exercise's test, once: the reference solution in its place, so that
            # a cell between the solution and the test (a helper the test calls) runs as nbgrader would run it
            for index in range(done, ex.test):
                cell = src.cells[index] if index == ex.solution else stu.cells[index]
                if index in graded and index != ex.solution or cell.cell_type != "code":
                    continue
                if err := kernel.run(cell.source):
                    pytest.fail(f"{path.name}: cell {index} fails before {ex.grade_id}'s test:\n{err}")
            unit_seconds += time.perf_counter() - began
            done = ex.test + 1
            if ex.grade_id not in entries:
                report.append(f"FAIL {ex.grade_id}: no entry in {check.exercise_file(path).name}")
                continue
            report += _exercise_report(kernel, src, stu, ex, entries[ex.grade_id])
    seconds = time.perf_counter() - start
    wrong = sum(len(entries[e.grade_id]["wrong"]) for e in exercises if e.grade_id in entries)
    summary = (f"{path.stem}: {len(exercises)} exercises, {wrong} wrong answers; {seconds:.0f} s in all, "
               f"{unit_seconds:.0f} s of it the unit's own cells")
    print("\n".join([summary, *report]))
    failures = [line for line in report if line.startswith("FAIL")]
    assert not failures, summary + "\n" + "\n".join(failures)
