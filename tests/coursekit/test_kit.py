"""The classroom kit: student copies, the check of a unit's v2 shape, slide defaults, the CLI, and the round
trip through nbgrader (generate the student version, autograde a blank and a full answer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import check as ck
from coursekit import paths
from coursekit import slides as sl
from coursekit import student as st
from coursekit.__main__ import main as kit_main

SOLUTION = "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"
TEST = 'assert square(3) == 9, "square(3) should be 9: multiply x by itself"'


def solution_meta(gid: str) -> dict:
    return {"nbgrader": {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3,
                         "solution": True, "task": False}}


def grade_meta(gid: str, points=1) -> dict:
    meta = {"grade": True, "grade_id": gid, "locked": True, "schema_version": 3, "solution": False, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def unit(minutes=(20, 30, 25), total="75") -> nbformat.NotebookNode:
    """A small unit of the v2 shape: the opening sections, one code cell, one graded exercise."""
    rows = "\n".join(f"| part {i} | {m} |" for i, m in enumerate(minutes))
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        new_markdown_cell("# 99 · A tiny unit\n\n## What you will learn\n- squares\n- asserts"),
        new_markdown_cell("## Before this unit\nUnit 01, and multiplication."),
        new_markdown_cell(f"## Time plan\n\n| section | minutes |\n| --- | ---: |\n{rows}\n| **total** | **{total}**"),
        new_code_cell("x = 3\nprint(x * x)", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="9\n")]),
        new_markdown_cell("## Summary\nA square is a product."),
        new_markdown_cell("## Exercises\n**1.** Write `square`."),
        new_code_cell(SOLUTION, metadata=solution_meta("square")),
        new_code_cell(TEST, metadata=grade_meta("square-test", points=2)),
        new_markdown_cell("## References\n- Kingma and Welling, *Auto-Encoding Variational Bayes*."),
    ]
    return nb


# --------------------------------------------------------------------------- student_copy

def test_student_copy_removes_the_answer_and_keeps_the_rest():
    nb = unit()
    student = st.student_copy(nb)
    code = student.cells[6].source
    assert "x * x" not in code and code == "def square(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert student.cells[7].source == TEST and student.cells[7].metadata == nb.cells[7].metadata
    assert student.cells[3].outputs == [] and student.cells[3].execution_count is None
    assert nb.cells[6].source == SOLUTION and nb.cells[3].outputs, "the original is left alone"
    namespace = {}
    exec(code, namespace)  # noqa: S102 - the student's starting point must run, and fail when called
    with pytest.raises(NotImplementedError):
        namespace["square"](3)


def test_student_copy_stubs_whole_answers_and_drops_hidden_tests():
    nb = unit()
    nb.cells.append(new_markdown_cell("Because a square is x times x.", metadata=solution_meta("why")))
    nb.cells.append(new_code_cell("y = 1", metadata=solution_meta("whole")))
    hidden = TEST + "\n### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n### END HIDDEN TESTS"
    nb.cells.append(new_code_cell(hidden, metadata=grade_meta("hidden-test")))
    student = st.student_copy(nb)
    assert student.cells[-3].source == "YOUR ANSWER HERE"
    assert student.cells[-2].source == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert student.cells[-1].source == TEST


@pytest.mark.parametrize("source, metadata, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", solution_meta("f"), "has no '### END SOLUTION'"),
    ("### END SOLUTION", solution_meta("f"), "without a '### BEGIN SOLUTION'"),
    (SOLUTION, {}, "no nbgrader solution metadata"),
    (TEST, grade_meta("t", points=None), "grade cell without points"),
])
def test_student_copy_names_the_malformed_cell(source, metadata, message):
    nb = unit()
    nb.cells.insert(4, new_code_cell(source, metadata=metadata))
    with pytest.raises(ValueError, match=message) as err:
        st.student_copy(nb)
    assert str(err.value).startswith("cell 4 ")


# --------------------------------------------------------------------------- check_unit

def test_a_well_formed_unit_has_no_problems():
    assert ck.check_unit(unit(), "99_tiny.ipynb") == []


def test_time_plan_is_parsed():
    minutes, problems = ck.time_plan_minutes([["section", "min"], ["a", "10"], ["b", "**12.5 min**"]])
    assert minutes == 22.5 and problems == []


def _problems(nb) -> str:
    found = ck.check_unit(nb, "99_tiny.ipynb")
    assert found and all(p.startswith("99_tiny.ipynb: ") for p in found)
    return "\n".join(found)


def test_check_catches_a_long_cell():
    nb = unit()
    nb.cells[3].source = "\n".join(f"a{i} = {i}" for i in range(26))
    assert "has 26 lines, over 25" in _problems(nb)


def test_check_catches_a_time_plan_over_a_session():
    assert "adds up to 95 min, over the 90" in _problems(unit(minutes=(40, 30, 25), total="95"))


def test_check_catches_a_wrong_total_and_a_missing_minutes_column():
    assert "a total of 80 min but its rows add up to 75" in _problems(unit(total="80"))
    nb = unit()
    nb.cells[2].source = nb.cells[2].source.replace("minutes", "length")
    assert "no minutes column" in _problems(nb)


@pytest.mark.parametrize("heading", ck.HEADINGS)
def test_check_catches_a_missing_heading(heading):
    nb = unit()
    for cell in nb.cells:
        cell.source = cell.source.replace(f"## {heading}", "## Something else")
    assert f"no heading '{heading}'" in _problems(nb)


def test_check_catches_headings_out_of_order():
    nb = unit()
    nb.cells[4], nb.cells[8] = nb.cells[8], nb.cells[4]
    assert "out of order" in _problems(nb)


def test_check_catches_seeds():
    nb = unit()
    nb.cells[4].source += "\nSee ../shared/seeds/article.md."
    assert "cell 4 [markdown: '## Summary'] mentions seeds/" in _problems(nb)


def test_check_catches_a_solution_without_a_grade_cell():
    nb = unit()
    del nb.cells[7]
    text = _problems(nb)
    assert "cell 6 ('square') [code: 'def square(x):'] has no grade cell after it" in text
    assert "no graded exercise" in text


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb.cells[7].metadata.nbgrader.update(grade_id="square"), "'square' is already used by cell 6"),
    (lambda nb: nb.cells[7].metadata.nbgrader.pop("points"), "grade cell without points"),
    (lambda nb: nb.cells[7].metadata.nbgrader.update(locked=False), "not locked"),
    (lambda nb: nb.cells[7].metadata.nbgrader.update(grade_id="square test"), "is not letters"),
    (lambda nb: nb.cells[6].metadata.pop("nbgrader"), "solution region but no nbgrader solution metadata"),
    (lambda nb: setattr(nb.cells[6], "source", "### BEGIN SOLUTION\nx = 1"), "has no '### END SOLUTION'"),
])
def test_check_catches_inconsistent_exercise_metadata(change, message):
    nb = unit()
    change(nb)
    assert message in _problems(nb)


@pytest.mark.parametrize("name", [p.name for p in paths.units()])
def test_shaped_units_keep_their_shape(name):
    path = paths.NOTEBOOKS / name
    assert ck.check_unit(nbformat.read(path, as_version=4), name) == []


# --------------------------------------------------------------------------- slides

def test_slide_deck_fills_in_the_missing_slide_types():
    nb = unit()
    nb.cells[1].metadata["slideshow"] = {"slide_type": "skip"}
    nb.cells.append(new_markdown_cell("### A detail"))
    deck = sl.slide_deck(nb)
    kinds = [c.metadata.slideshow.slide_type for c in deck.cells]
    assert kinds == ["slide", "skip", "slide", "-", "slide", "slide", "-", "-", "slide", "subslide"]
    assert "slideshow" not in nb.cells[0].metadata


@pytest.mark.skipif(not (sl.NODE_MODULES / "reveal.js").is_dir(), reason="node_modules/reveal.js missing: npm ci")
def test_deck_loads_everything_from_its_own_folder(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    nb = unit()
    nb.cells = [c for c in nb.cells if c.cell_type == "markdown"]  # nothing to execute: no kernel needed
    nb.cells.append(new_markdown_cell("Maths: $\\tfrac12\\mu^2$"))
    nbformat.write(nb, src / "99_tiny.ipynb")
    assert kit_main(["slides", str(src), str(tmp_path / "out")]) == 0
    deck = tmp_path / "out" / "99_tiny.slides.html"
    assert f"wrote {deck}" in capsys.readouterr().out
    html = deck.read_text()
    links = re.findall(r'(?:src|href)="([^"#]+)"', html) + re.findall(r'"([^"]+\.js)"', html)
    assert "import mermaid" not in html and "reveal.js/dist/reveal.js" in links and "js/require.js" in links
    for link in links:
        assert (tmp_path / "out" / link.split("?")[0]).is_file(), f"{link} is not in the deck's folder"
    assert any(link.startswith("mathjax/MathJax.js?config=") for link in links)


def test_slides_without_reveal_says_run_npm_ci(tmp_path, monkeypatch, capsys):
    (tmp_path / "00_x.ipynb").write_text(nbformat.writes(new_notebook()))
    monkeypatch.setattr(sl, "NODE_MODULES", tmp_path / "node_modules")
    assert kit_main(["slides", str(tmp_path), str(tmp_path / "out")]) == 1
    assert "run `npm ci`" in capsys.readouterr().err
    assert not (tmp_path / "out" / "00_x.slides.html").exists()


# --------------------------------------------------------------------------- the CLI

def _course(tmp_path, *notebooks):
    src = tmp_path / "notebooks"
    src.mkdir()
    for name, nb in notebooks:
        nbformat.write(nb, src / name)
    return src, tmp_path / "student"


def test_student_cli_writes_every_copy(tmp_path, capsys):
    src, out = _course(tmp_path, ("01_a.ipynb", unit()), ("02_b.ipynb", unit()))
    assert kit_main(["student", str(src), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_a.ipynb", "02_b.ipynb"]
    assert "raise NotImplementedError()" in nbformat.read(out / "01_a.ipynb", as_version=4).cells[6].source
    assert oct((out / "01_a.ipynb").stat().st_mode & 0o777) == "0o644"
    assert capsys.readouterr().out.count("wrote ") == 2


def test_student_cli_writes_nothing_when_a_notebook_is_malformed(tmp_path, capsys):
    bad = unit()
    bad.cells[6].source = "### BEGIN SOLUTION\nx = 1"
    src, out = _course(tmp_path, ("01_a.ipynb", unit()), ("02_b.ipynb", bad))
    out.mkdir()
    (out / "01_a.ipynb").write_text("the previous copy")
    assert kit_main(["student", str(src), str(out)]) == 1
    assert "02_b.ipynb: cell 6" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["01_a.ipynb"] and (out / "01_a.ipynb").read_text() == "the previous copy"


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    src, out = _course(tmp_path, ("01_a.ipynb", unit()))
    out.mkdir()

    def disk_full(*args):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="no space"):
        st.build_student(src, out)
    assert list(out.iterdir()) == []


def test_check_cli_reports_every_unit_of_a_folder(tmp_path, capsys):
    bad = unit()
    del bad.cells[1]
    src, _ = _course(tmp_path, ("01_a.ipynb", unit()))
    assert kit_main(["check", str(src)]) == 0
    nbformat.write(bad, src / "02_b.ipynb")
    assert kit_main(["check", str(src)]) == 1
    out = capsys.readouterr().out
    assert "02_b.ipynb: no heading 'Before this unit'" in out and "01_a.ipynb" not in out
    assert kit_main(["check", str(src / "02_b.ipynb")]) == 1
    capsys.readouterr()
    assert kit_main(["check", str(tmp_path / "missing.ipynb")]) == 1
    assert "missing.ipynb: cannot be read" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert kit_main(["check", str(tmp_path / "empty")]) == 1
    assert "no unit notebooks" in capsys.readouterr().out


# --------------------------------------------------------------------------- nbgrader

def _nbgrader(root, *args):
    # nbgrader runs the `alembic` command to set up its gradebook: the venv's bin folder must be on PATH
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
           "JUPYTER_DATA_DIR": str(root / ".data")}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """A course folder after `nbgrader generate_assignment` and `nbgrader autograde`: alice handed in the
    release version untouched, bob the source version (the full answer)."""
    pytest.importorskip("nbgrader", reason="nbgrader is pinned in requirements.txt: run `make venv`")
    root = tmp_path_factory.mktemp("course")
    (root / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(root)!r}\nc.CourseDirectory.course_id = 'vaelab'\n")
    (root / "source" / "ps1").mkdir(parents=True)
    nbformat.write(unit(), root / "source" / "ps1" / "squares.ipynb")
    _nbgrader(root, "generate_assignment", "ps1")
    for student, version in (("alice", "release"), ("bob", "source")):
        (root / "submitted" / student / "ps1").mkdir(parents=True)
        shutil.copy(root / version / "ps1" / "squares.ipynb", root / "submitted" / student / "ps1")
    _nbgrader(root, "autograde", "ps1")
    return root


@pytest.mark.slow
def test_nbgrader_grades_the_blank_copy_zero_and_the_answer_full(graded_course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded_course / 'gradebook.db'}") as gb:
        blank, full = gb.find_submission("ps1", "alice"), gb.find_submission("ps1", "bob")
        assert (blank.score, blank.max_score) == (0, 2)
        assert (full.score, full.max_score) == (2, 2)


@pytest.mark.slow
def test_student_copy_agrees_with_nbgrader_release(graded_course):
    source = nbformat.read(graded_course / "source" / "ps1" / "squares.ipynb", as_version=4)
    release = nbformat.read(graded_course / "release" / "ps1" / "squares.ipynb", as_version=4)
    ours = st.student_copy(source)
    assert [c.source for c in ours.cells] == [c.source for c in release.cells]
    assert [c.get("outputs") for c in ours.cells] == [c.get("outputs") for c in release.cells]
