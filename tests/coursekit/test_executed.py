"""Executed copies made side by side (``coursekit execute --jobs N``, ``coursekit course --jobs N``): each stale
notebook runs in its own process and kernel, its copy written with its stamp; a failing one is named, leaves no
copy and stops the ones not started; bad ``--jobs`` values are refused with the fix."""

from __future__ import annotations

import nbformat
import pytest

from coursekit import executed
from coursekit.notebooks import NotebookError

pytestmark = pytest.mark.slow


def _notebook(folder, name, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / name
    nbformat.write(nb, path)
    return path


def _meets(me, other):
    """Code for a cell that says ``me`` started, then waits (up to a minute) until ``other`` has: it finishes only
    when the two notebooks run at the same time."""
    return ("import pathlib, time\n"
            f"pathlib.Path({me!r}).touch()\n"
            "deadline = time.monotonic() + 60\n"
            f"while not pathlib.Path({other!r}).exists():\n"
            "    assert time.monotonic() < deadline, 'the other notebook never started: not side by side'\n"
            "    time.sleep(0.05)\n"
            "print('met')")


def test_two_notebooks_run_at_the_same_time_and_each_copy_is_current(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "executed"
    src.mkdir()
    a, b = str(tmp_path / "a-started"), str(tmp_path / "b-started")
    pairs = [(_notebook(src, "01_a.ipynb", _meets(a, b)), out), (_notebook(src, "02_b.ipynb", _meets(b, a)), out)]
    assert executed.execute_side_by_side(pairs, timeout=120, jobs=2) == 2
    for path, _ in pairs:
        copy = out / path.name
        assert executed.is_current(copy, executed.read(path))
        assert "met" in nbformat.read(copy, as_version=4).cells[0].outputs[0]["text"]
    assert executed.execute_side_by_side(pairs, timeout=120, jobs=2) == 0  # both current: nothing runs


def test_a_failing_notebook_is_named_and_leaves_no_copy(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "executed"
    src.mkdir()
    good = _notebook(src, "01_good.ipynb", "x = 1")
    bad = _notebook(src, "02_bad.ipynb", "raise ZeroDivisionError('the failing cell')")
    with pytest.raises(NotebookError, match=r"(?s)02_bad\.ipynb: CellExecutionError.*the failing cell"):
        executed.execute_side_by_side([(good, out), (bad, out)], timeout=120, jobs=2)
    assert not (out / bad.name).exists()
    assert executed.is_current(out / good.name, executed.read(good))  # the one running beside it finished


def test_execute_course_with_jobs_returns_the_copies_in_course_order(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "executed"
    src.mkdir()
    for name in ("02_second.ipynb", "01_first.ipynb"):
        _notebook(src, name, f"print({name!r})")
    done = executed.execute_course(src, out, timeout=120, jobs=2)
    assert [p.name for p, _, _ in done] == ["01_first.ipynb", "02_second.ipynb"]
    assert [nb.cells[0].outputs[0]["text"].strip() for _, nb, _ in done] == ["01_first.ipynb", "02_second.ipynb"]


@pytest.mark.parametrize("jobs", [0, -1, 1.5, "2"])
def test_jobs_must_be_a_whole_number_of_at_least_one(tmp_path, jobs):
    with pytest.raises(ValueError, match="jobs must be a whole number >= 1"):
        executed.execute_side_by_side([], jobs=jobs)


@pytest.mark.parametrize("module", ["executed", "course"])
@pytest.mark.parametrize("value", ["0", "two"])
def test_the_jobs_option_names_the_fix(module, value, capsys):
    from coursekit import course

    main = {"executed": executed.main, "course": course.main}[module]
    with pytest.raises(SystemExit) as exit_:
        main(["--jobs", value])
    assert exit_.value.code == 2
    assert f"--jobs: {value!r} is not a whole number >= 1 (e.g. --jobs 2)" in capsys.readouterr().err


def test_make_course_with_jobs_runs_both_editions_side_by_side_first(monkeypatch, tmp_path):
    from coursekit import course

    calls = []
    monkeypatch.setattr(executed, "execute_side_by_side", lambda pairs, timeout, jobs: calls.append((pairs, jobs)))
    monkeypatch.setattr(executed, "execute_course", lambda *a, **k: calls.append("execute"))
    monkeypatch.setattr(course, "build_course", lambda *a, **k: tmp_path / "index.html")
    assert course.main(["--out", str(tmp_path / "site"), "--jobs", "2"]) == 0
    (pairs, jobs), *rest = calls
    assert jobs == 2 and rest == ["execute", "execute"]
    outs = {out for _, out in pairs}
    assert outs == {course.EXECUTED, course.ZH_EXECUTED}
    assert {p.name for p, o in pairs if o == course.EXECUTED} == {p.name for p, o in pairs if o == course.ZH_EXECUTED}
