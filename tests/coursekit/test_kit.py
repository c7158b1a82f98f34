"""The classroom kit: student copies, the check of a unit's v2 shape, slide defaults, the CLI, and the round
trip through nbgrader (generate the student version, autograde a blank and a full answer)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import check as ck
from coursekit import paths
from coursekit import slides as sl
from coursekit import slides_html as sh
from coursekit import slides_plan as sp
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

WRONG = [{"why": f"mistake {k}", "code": f"x = {k}", "message": "square"} for k in range(3)]


def v3_unit() -> nbformat.NotebookNode:
    """A small unit of the v3 shape: opening, two numbered sections, Summary, three exercises (two
    auto-graded, one written answer), References; its Time plan agrees with the estimate of its content."""
    nb = unit()
    prose = " ".join(["word"] * 500)
    ex = [new_markdown_cell("## Exercises\n\n**Exercise 1.** Write `square`."),
          new_code_cell(SOLUTION, metadata=solution_meta("99-ex1")),
          new_code_cell(TEST, metadata=grade_meta("99-ex1-test", points=2)),
          new_markdown_cell("**Exercise 2.** Square 4 into `x`."),
          new_code_cell("### BEGIN SOLUTION\nx = 16\n### END SOLUTION", metadata=solution_meta("99-ex2")),
          new_code_cell('assert x == square(4), "exercise 2: not yet. square it"', metadata=grade_meta("99-ex2-test")),
          new_markdown_cell("**Exercise 3.** Why is a square never negative?")]
    why = {"nbgrader": {**solution_meta("99-ex3-why")["nbgrader"], "grade": True, "points": 1}}
    nb.cells = nb.cells[:3] + [
        new_code_cell("import math\nprint(math.pi)"),
        new_markdown_cell(f"## 1. Squares\n\n{prose} See [S1](sources.md#s1) and [below](#2.-Cubes)."),
        new_code_cell("\n".join(f"a{i} = {i} * {i}" for i in range(8))),
        new_markdown_cell(f"## 2. Cubes\n\n{prose}"),
        new_markdown_cell("## Summary\nA square is a product."),
        *ex,
        new_markdown_cell("### BEGIN SOLUTION\nA product of two equal signs is positive.\n### END SOLUTION",
                          metadata=why),
        new_markdown_cell("## References\n- Kingma and Welling, *Auto-Encoding Variational Bayes*."),
    ]
    est = {"setup": 1, "1.": 1, "2.": 1}
    for _ in range(3):  # the Time plan's own words count toward the opening: settle it
        rows = [("Setup", est["setup"]), ("1. Squares", est["1."]), ("2. Cubes", est["2."]), ("Exercises", 15)]
        table = "\n".join(f"| {label} | {round(m)} |" for label, m in rows)
        nb.cells[2].source = (f"## Time plan\n\n| section | minutes |\n| --- | ---: |\n{table}\n"
                              f"| **total** | **{sum(round(m) for _, m in rows)}** |")
        est = {label: m for label, m, _, _ in ck.estimate(nb).parts}
    return nb


def write_course(tmp_path, nb=None, name="99_tiny.ipynb", wrong=None):
    """A course folder as the repository lays it out: notebooks/ with the unit and sources.md, and the unit's
    wrong answers in docs/instructor/exercises/ (``wrong``: the file's entries; None: two good ones)."""
    import yaml

    src = tmp_path / "notebooks"
    src.mkdir(exist_ok=True)
    nbformat.write(nb if nb is not None else v3_unit(), src / name)
    (src / "sources.md").write_text('# Sources\n\n<a id="s1"></a>\n## S1 — an article\n\n'
                                    'Back to [the unit](99_tiny.ipynb).\n')
    entries = wrong if wrong is not None else {
        gid: {"kind": "compute", "targets": "squares", "wrong": WRONG} for gid in ("99-ex1", "99-ex2")}
    folder = tmp_path / "docs" / "instructor" / "exercises"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name.replace(".ipynb", ".yaml")).write_text(yaml.safe_dump(entries, allow_unicode=True))
    return src


def checked(tmp_path, nb=None, **kw) -> tuple[list[str], list[str]]:
    """(problems, the estimate lines) of the course folder of :func:`write_course`."""
    lines = []
    problems = ck.check_paths([write_course(tmp_path, nb, **kw)], report=lines.append)
    return problems, lines


def test_a_well_formed_unit_has_no_problems(tmp_path):
    assert ck.check_unit(v3_unit(), "99_tiny.ipynb") == []
    problems, lines = checked(tmp_path)
    assert problems == []
    assert re.fullmatch(r"99_tiny: \d+ min by the estimate \(time plan \d+\); sections: setup \d+\.\d \(plan \d+\), "
                        r"1\. \d+\.\d \(plan \d+\), 2\. \d+\.\d \(plan \d+; with the summary\), "
                        r"exercises 15\.0 \(plan 15\)", lines[0]), lines


def test_time_plan_is_parsed():
    minutes, problems = ck.time_plan_minutes([["section", "min"], ["a", "10"], ["b", "**12.5 min**"]])
    assert minutes == 22.5 and problems == []


def test_estimate_counts_prose_and_code_per_section():
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Title\n\n## Time plan\n\n| section | minutes |\n|---|---|\n| 1. A | 4 |\n"
                          "| Exercises | 10 |"),  # 10 words: Title, Time, plan, section, minutes, 1., A, 4, …
        new_code_cell("x = 1\n\ny = 2"),  # 2 lines
        new_markdown_cell("## 1. A\n\n" + "w " * 200 + "[a link](sources.md) `code`"),  # 2 + 200 + 2 + 1
        new_code_cell("\n".join(["z = 3"] * 4)),
        new_markdown_cell("## Summary\n" + "w " * 50),
        new_markdown_cell("## Exercises\n" + "w " * 1000),  # their row counts, not their words
        new_code_cell("\n".join(["q = 1"] * 40)),
        new_markdown_cell("## Going further\n" + "w " * 5000),  # not counted, nor anything after
        new_code_cell("\n".join(["q = 1"] * 400)),
        new_markdown_cell("## References\nnone"),
    ]
    est = ck.estimate(nb)
    opening, section, summary = 10 / 100 + 2 * 0.25, 205 / 100 + 4 * 0.25, 51 / 100
    assert est.total == pytest.approx(opening + section + summary + 10)
    assert est.parts == [("1.", pytest.approx(opening + section + summary), 4, "; with the opening; with the summary"),
                         ("exercises", 10, 10, "")]
    assert est.problems == []
    nb.cells[0].source = nb.cells[0].source.replace("| 1. A | 4 |", "| Setup | 1 |\n| 1. A | 4 |")
    assert [p[0] for p in ck.estimate(nb).parts] == ["setup", "1.", "exercises"]


def _problems(nb) -> str:
    found = ck.check_unit(nb, "99_tiny.ipynb")
    assert found and all(p.startswith("99_tiny.ipynb: ") for p in found)
    return "\n".join(found)


def test_check_catches_a_unit_over_a_session(tmp_path):
    nb = v3_unit()
    nb.cells[6].source += " more" * 9000  # section 2 now takes an hour and a half more than planned
    problems, lines = checked(tmp_path, nb)
    text = "\n".join(problems)
    assert re.search(r"99_tiny.ipynb: 1\d\d min by the estimate, over the 90 of a session", text), text
    assert "the Time plan gives '2. Cubes' " in text and "min by the estimate" in lines[0]


def test_check_catches_a_row_off_by_a_fifth():
    nb = v3_unit()
    est = dict((label, m) for label, m, _, _ in ck.estimate(nb).parts)
    planned = f"{est['1.'] * 1.2:.2f}"
    nb.cells[2].source = re.sub(r"\| 1\. Squares \| \d+ \|", f"| 1. Squares | {planned} |", nb.cells[2].source)
    assert f"the Time plan gives '1. Squares' {planned} min but the estimate of the section is" in _problems(nb)


def test_check_catches_a_section_without_a_row_and_a_row_without_a_section():
    nb = v3_unit()
    nb.cells[2].source = nb.cells[2].source.replace("| 2. Cubes |", "| Discussion |")
    text = _problems(nb)
    assert "section '2. Cubes' has no Time plan row (start a row with '2.')" in text
    assert "the Time plan row 'Discussion' names no section" in text
    nb.cells[2].source = nb.cells[2].source.replace("| Exercises |", "| Summary and exercises |")
    assert "joins Summary and Exercises" in _problems(nb)


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


def test_check_counts_exercises_and_wants_a_written_answer():
    nb = v3_unit()
    nb.cells = [c for c in nb.cells if "Exercise 3" not in c.source and "99-ex3-why" not in json.dumps(c.metadata)]
    text = _problems(nb)
    assert "2 exercises; a unit has 3–4" in text and "no written answer" in text
    nb = v3_unit()
    ex = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))
    nb.cells[ex + 1:ex + 1] = [new_markdown_cell(f"**Exercise {n}.** More.") for n in (7, 8)]
    assert "5 exercises; a unit has 3–4" in _problems(nb)


@pytest.mark.parametrize("target, message", [
    ("sources.md#s9", "link 'sources.md#s9': sources.md has no anchor #s9"),
    ("missing.md", "link 'missing.md': missing.md does not exist"),
    ("figures/plot.png", "link 'figures/plot.png': figures/plot.png does not exist"),
    ("../docs/sources.md#s1", "link '../docs/sources.md#s1' leaves notebooks/, the folder a student opens"),
    ("../README.md", "link '../README.md' leaves notebooks/"),
    ("/etc/passwd", "link '/etc/passwd' is an absolute path"),
    ("#3.-Nowhere", "link '#3.-Nowhere': 99_tiny.ipynb has no anchor #3.-Nowhere"),
])
def test_check_catches_broken_and_escaping_links(tmp_path, target, message):
    nb = v3_unit()
    nb.cells[4].source += f"\n\nRead [this]({target}), or <a href=\"{target}\">this</a>."
    problems, _ = checked(tmp_path, nb)
    hits = [p for p in problems if message in p]
    assert len(hits) == 1 and hits[0].startswith("99_tiny.ipynb: cell 4 [markdown: '## 1. Squares'"), problems


def test_check_follows_only_relative_links_outside_code(tmp_path):
    nb = v3_unit()
    nb.cells[4].source += ("\n\n[web](https://example.org/x) [mail](mailto:a@b.c) `[code](../x.md)`\n\n"
                           "```\n[fenced](../y.md)\n```\n\n![figure](figures/ok.png) [again](sources.md#s1)")
    src = write_course(tmp_path, nb)
    (src / "figures").mkdir()
    (src / "figures" / "ok.png").write_bytes(b"png")
    assert ck.check_paths([src], report=lambda line: None) == []


def test_check_catches_links_of_the_sources_page(tmp_path):
    src = write_course(tmp_path)
    (src / "sources.md").write_text("# Sources\n\nSee [unit 05](05_beta_vae.ipynb) and [docs](../docs/x.md).\n")
    problems = ck.check_paths([src], report=lambda line: None)
    assert "sources.md: link '05_beta_vae.ipynb': 05_beta_vae.ipynb does not exist" in problems
    assert "sources.md: link '../docs/x.md' leaves notebooks/, the folder a student opens" in problems
    assert any("99_tiny.ipynb: " in p and "sources.md has no anchor #s1" in p for p in problems)


@pytest.mark.parametrize("text", ["the code is in `vaeutils/widgets/kl.py`", "see tests/test_widget_kl.py",
                                  "run benchmarks/bench_train.py", "in coursekit/check.py", "docs/classroom.md",
                                  "read ../docs/sources.md"])
def test_check_catches_a_repository_path_in_prose(text):
    nb = v3_unit()
    nb.cells[6].source += f"\n\nAs {text} shows."
    found = re.search(r"cell 6 \[markdown: '## 2\. Cubes'\] cites (\S+), which a student", _problems(nb))
    assert found and found.group(1) in text


def test_a_repository_path_is_fine_where_the_unit_shows_that_code():
    nb = v3_unit()
    nb.cells[6].source += "\n\nThe explorer's callbacks (`vaeutils/widgets/kl.py`, shown below) are plain functions."
    nb.cells.insert(7, new_code_cell("import inspect\nimport vaeutils.widgets.kl\n"
                                     "print(inspect.getsource(vaeutils.widgets.kl.kl_terms_panel))"))
    assert "cites" not in "\n".join(ck.check_unit(nb, "99_tiny.ipynb"))
    nb.cells[6].source += " And https://github.com/x/y/blob/main/tests/test_a.py is a web page."
    assert "cites" not in "\n".join(ck.check_unit(nb, "99_tiny.ipynb"))


def test_check_catches_a_missing_wrong_answer_file(tmp_path):
    src = write_course(tmp_path)
    (tmp_path / "docs" / "instructor" / "exercises" / "99_tiny.yaml").unlink()
    problems = ck.check_paths([src], report=lambda line: None)
    assert problems == ["99_tiny.ipynb: no wrong answers for 99-ex1, 99-ex2: write "
                        f"{tmp_path / 'docs/instructor/exercises/99_tiny.yaml'} (one entry per auto-graded "
                        "exercise, at least 3 wrong answers each)"]


@pytest.mark.parametrize("entries, message", [
    ({"99-ex1": {"kind": "compute", "targets": "t", "wrong": WRONG}},
     "has no entry for the auto-graded exercise '99-ex2'"),
    ({"99-ex1": {"kind": "compute", "targets": "t", "wrong": WRONG[:2]},
      "99-ex2": {"kind": "compute", "targets": "t", "wrong": WRONG}},
     "entry '99-ex1' has 2 wrong answers; list at least 3"),
    ({"99-ex1": {"kind": "guess", "targets": "t", "wrong": WRONG},
      "99-ex2": {"kind": "compute", "targets": "t", "wrong": WRONG}}, "entry '99-ex1': kind 'guess' is not one of"),
    ({"99-ex1": {"kind": "compute", "wrong": WRONG},
      "99-ex2": {"kind": "compute", "targets": "t", "wrong": [*WRONG[:2], {"why": "w", "code": "x = 1"}]}},
     "entry '99-ex2', wrong answer 3: no message"),
    ({"99-ex1": {"kind": "compute", "targets": "t", "wrong": WRONG},
      "99-ex2": {"kind": "compute", "targets": "t", "wrong": WRONG},
      "99-ex9": {"kind": "compute", "targets": "t", "wrong": WRONG}}, "entry '99-ex9' is no auto-graded exercise"),
    (["not", "a", "mapping"], "expected a mapping of grade_id to entries"),
])
def test_check_catches_incomplete_wrong_answers(tmp_path, entries, message):
    problems, _ = checked(tmp_path, wrong=entries)
    assert any(message in p for p in problems), problems


def test_check_catches_a_wrong_answer_file_that_is_not_yaml(tmp_path):
    src = write_course(tmp_path)
    (tmp_path / "docs" / "instructor" / "exercises" / "99_tiny.yaml").write_text("99-ex1: [unclosed\n")
    problems = ck.check_paths([src], report=lambda line: None)
    assert len(problems) == 1 and "99_tiny.yaml: not valid YAML at line 2" in problems[0]


@pytest.mark.parametrize("name", [p.name for p in paths.units()])
def test_shaped_units_keep_their_shape(name):
    """The real units against every check (expected to fail while a unit is being reworked: the message lists
    what is left, with the session-time estimate)."""
    path = paths.NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    problems = ck.check_unit(nb, name, path, paths.NOTEBOOKS)
    assert not problems, "\n" + ck.estimate(nb).line(path.stem) + "\n" + "\n".join(problems)


def test_the_sources_page_links_resolve():
    problems = ck.page_link_problems(paths.NOTEBOOKS / "sources.md", paths.NOTEBOOKS)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- slides

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQED"
       "asKb6QAAAABJRU5ErkJggg==")  # a 2x2 picture


def figure_output(payload=PNG):
    return new_output("display_data", data={"image/png": payload, "text/plain": "<Figure>"})


def slide_unit() -> nbformat.NotebookNode:
    """:func:`unit` with what a deck is made of: a numbered section with a figure, a table output, a
    subsection, asserts, Greek letters, and exercises in the course's form."""
    nb = unit(minutes=(20, 30, 12))
    nb.cells[2].source = nb.cells[2].source.replace("part 0", "1. One model per β").replace(
        "part 1", "2. Squares").replace("part 2", "Exercises")
    nb.cells[3:3] = [
        new_markdown_cell("## 1. One model per β\n\nEach model is trained once. A sentence with "
                          + "many words " * 30 + "follows."),
        new_code_cell("plot()", execution_count=2, outputs=[figure_output()]),
        new_markdown_cell("The picture shows **one** thing: a square."),
        new_code_cell("assert True", execution_count=3, outputs=[new_output("stream", name="stdout",
                                                                            text="ok\n")]),
        new_code_cell("table()", execution_count=4, outputs=[
            new_output("display_data",
                       data={"text/markdown": "| a | b |\n| --- | --- |\n| 1 | 2 |"})]),
        new_markdown_cell("### 1.1 A detail with $\\beta$\n\nThe detail, with $x^2$."),
        new_markdown_cell("## 2. Squares\n\nA square is a product."),
    ]
    ex = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))
    nb.cells[ex].source = "## Exercises\n\n**Exercise 1.** Write `square`. Why is it even?"
    nb.cells[ex + 3:ex + 3] = [new_markdown_cell("**Exercise 2.** Square 4. What do you get?"),
                               new_code_cell("### BEGIN SOLUTION\nx = 16\n### END SOLUTION",
                                             metadata=solution_meta("sq4"))]
    return nb


def test_slide_roles_are_derived_from_the_cells():
    nb = slide_unit()
    roles = [sp.role(c) for c in nb.cells]
    kinds = dict(zip((c.source.splitlines()[0][:20] for c in nb.cells), roles))
    assert kinds["plot()"] == "figure" and kinds["table()"] == "figure"
    assert kinds["assert True"] == "skip"
    assert kinds["## 1. One model per "] == "slide" and kinds["The picture shows **"] == "notes"
    assert kinds["### BEGIN SOLUTION"] == "skip" and kinds["**Exercise 2.** Squa"] == "exercise"
    assert kinds[TEST.splitlines()[0][:20]] == "skip"  # nbgrader's test cell
    nb.cells[4].metadata["slideshow"] = {"slide_type": "skip"}  # Jupyter's own mark is followed
    assert sp.role(nb.cells[4]) == "skip"


def test_slide_text_is_short_keeps_formulas_whole_and_closes_emphasis():
    prose = ("The **rate–distortion plane** puts every model at "
             "$(R, D) = (\\mathrm{KL}, -\\log p)$, and models of equal ELBO lie on lines of slope "
             "−1, which is why β = 1 is special for every model, every data set and every "
             "architecture we try here, **without exception and whatever the optimiser**. "
             "Second sentence.")
    text = sp.lead(prose)
    assert sp.words(text) <= sp.TEXT_WORDS
    assert "$(R, D) = (\\mathrm{KL}, -\\log p)$" in text and text.count("**") % 2 == 0
    assert text.endswith("…")
    items = "- the first point: detail\n- second point (aside)\n- the third point; more\n"
    assert sp.lead(items) == "- the first point\n- second point\n- the third point"
    assert sp.lead("Short one. Short two.") == "Short one. Short two."


def test_slide_tables_keep_their_columns_with_pipes_in_cells():
    table = ("| loss | KL(q ‖ p(z|x)) | line |\n| --- | ---: | --- |\n"
             "| capacity, γ·|KL − C(t)| | $p(z|x)$ | `f(a|b)` |\n| plain | x \\| y | 3 |")
    assert sp.table_rows(table) == [["loss", "KL(q ‖ p(z|x))", "line"],
                                    ["capacity, γ·|KL − C(t)|", "$p(z|x)$", "`f(a|b)`"],
                                    ["plain", "x | y", "3"]]
    html = sh.table_html(table)
    assert html.count("<tr>") == 3 and html.count("<td>") == 6 and "<code>f(a|b)</code>" in html
    assert sp.table_rows("not a table") is None
    rows = "\n".join(f"| {k} | {k * k} |" for k in range(23))
    parts = sp.split_table("| k | k² |\n| --- | --- |\n" + rows)
    assert [len(p.splitlines()) - 2 for p in parts] == [8, 8, 7]  # as even as can be, ≤ 10 rows
    assert all(p.startswith("| k | k² |\n| --- | --- |") for p in parts)


def test_slide_outline_of_a_unit():
    deck = sl.outline(slide_unit(), "99_tiny")
    by_title = {}
    for s in deck.slides:
        by_title.setdefault(s.title, s)
    title = deck.slides[0]
    assert title.kind == "title" and title.title == "99 · A tiny unit" and "- squares" in title.text
    section = by_title["1. One model per β"]
    assert section.minutes == 20 and section.visual.kind == "figure" and section.visual.cell == 4
    assert section.text == "Each model is trained once."
    assert any("The picture shows" in n for n in section.notes)  # the prose is in the notes
    assert any("many words many words" in n for n in section.notes)
    table = [s for s in deck.slides if s.visual and s.visual.kind == "table" and s.visual.cell == 7]
    assert len(table) == 1 and table[0].kind == "sub" and table[0].title == "1. One model per β"
    assert by_title["1.1 A detail with $\\beta$"].kind == "sub"
    assert by_title["2. Squares"].minutes == 30
    exercises = [s for s in deck.slides if s.kind == "exercise"]
    assert [(s.title, s.minutes) for s in exercises] == [("Exercise 1", 6), ("Exercise 2", 6)]
    assert exercises[0].text == "Write `square`. Why is it even?"
    page = sh.deck_html(deck, None)
    assert "Exercise 2 — 6 minutes" in page
    assert "BEGIN SOLUTION" not in page and "x = 16" not in page  # never the answers
    assert page.count('<aside class="notes">') == len(deck.slides)
    assert PNG in page


def test_slide_metadata_chooses_roles_texts_excerpts_and_minutes():
    nb = slide_unit()
    nb.cells[4].metadata["slides"] = {"role": "skip"}  # the figure is left out
    nb.cells[6].metadata["slides"] = {"role": "figure", "text": "What `assert` printed."}
    nb.cells[3].metadata["slides"] = {"text": "β, in short.", "title": "One model per β, briefly"}
    nb.cells[1].metadata["slides"] = {"role": "notes"}
    nb.cells[5].metadata["slides"] = {"role": "slide", "title": "Read the square"}
    nb.cells.insert(8, new_code_cell("a = 1\nb = 2\nc = a + b\nprint(c)", metadata={
        "slides": {"role": "slide", "excerpt": "2-3", "title": "Two lines"}}))
    ex2 = next(i for i, c in enumerate(nb.cells) if c.source.startswith("**Exercise 2."))
    nb.cells[ex2].metadata["slides"] = {"minutes": 2}
    deck = sl.outline(nb, "99_tiny")
    by_title = {}
    for s in deck.slides:
        by_title.setdefault(s.title, s)
    assert PNG not in sh.deck_html(deck, None)
    assert by_title["One model per β, briefly"].text == "β, in short."
    assert "Before this unit" not in by_title
    assert by_title["Read the square"].kind == "sub"
    printed = [s for s in deck.slides if s.visual and s.visual.kind == "output"]
    assert printed[0].visual.source == "ok" and printed[0].text == "What `assert` printed."
    assert by_title["Two lines"].visual.source == "b = 2\nc = a + b"
    assert [s.minutes for s in deck.slides if s.kind == "exercise"] == [10, 2]


@pytest.mark.parametrize("meta, message", [
    ("notes", "must be an object"),
    ({"role": "slides"}, "use one of"),
    ({"colour": "red"}, "unknown key"),
    ({"excerpt": "9-12"}, "names lines outside"),
    ({"minutes": 0}, "positive whole number"),
])
def test_bad_slide_metadata_is_one_line_naming_file_and_cell(tmp_path, capsys, meta, message):
    src = tmp_path / "src"
    src.mkdir()
    nb = slide_unit()
    nb.cells[4].metadata["slides"] = meta
    nbformat.write(nb, src / "99_tiny.ipynb")
    assert kit_main(["slides", str(src), str(tmp_path / "out"), "--no-pdf"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "99_tiny.ipynb: cell 4:" in err and message in err
    assert not (tmp_path / "out").exists()


needs_reveal = pytest.mark.skipif(not (sl.NODE_MODULES / "reveal.js").is_dir(),
                                  reason="node_modules/reveal.js missing: npm ci")


@needs_reveal
def test_slide_deck_loads_everything_from_its_own_folder(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    nb = slide_unit()
    nb.cells.append(new_markdown_cell("Maths: $\\tfrac12\\mu^2$ and [a link](sources.md)"))
    nbformat.write(nb, src / "99_tiny.ipynb")
    assert kit_main(["slides", str(src), str(tmp_path / "out"), "--no-pdf"]) == 0  # as saved
    deck = tmp_path / "out" / "99_tiny.slides.html"
    assert f"wrote {deck}" in capsys.readouterr().out
    html = deck.read_text()
    links = re.findall(r'<(?:script|img|link)\b[^>]*(?:src|href)="([^"#]+)"', html)
    assert "mermaid" not in html and 'href="sources.md"' not in html
    assert "reveal.js/dist/reveal.js" in links
    assert "reveal.js/plugin/notes/notes.js" in links and "deck/deck.js" in links
    assert not [link for link in links if re.match(r"(https?:)?//", link)], "a link to the network"
    for link in links:
        if not link.startswith("data:"):
            assert (tmp_path / "out" / link.split("?")[0]).is_file(), f"{link}: not beside the deck"
    assert "mathjax/tex-chtml-full.js" in links  # MathJax 3, beside the deck
    assert not list((tmp_path / "out").glob(".*staging*")) and not list(tmp_path.glob(".*staging*"))


@needs_reveal
def test_slides_of_a_malformed_notebook_write_nothing_and_keep_the_decks_built(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    nbformat.write(slide_unit(), src / "01_good.ipynb")
    assert kit_main(["slides", str(src), str(out), "--no-pdf"]) == 0
    built = (out / "01_good.slides.html").read_text()
    nbformat.write(slide_unit(), src / "00_new.ipynb")
    (src / "02_bad.ipynb").write_text('{"cells": [', encoding="utf-8")
    capsys.readouterr()
    assert kit_main(["slides", str(src), str(out), "--no-pdf"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "02_bad.ipynb" in err and "invalid JSON" in err
    assert (out / "01_good.slides.html").read_text() == built
    assert not (out / "00_new.slides.html").exists()
    assert not list(tmp_path.glob(".*staging*"))


def test_slides_without_reveal_says_run_npm_ci(tmp_path, monkeypatch, capsys):
    (tmp_path / "00_x.ipynb").write_text(nbformat.writes(new_notebook()))
    monkeypatch.setattr(sl, "NODE_MODULES", tmp_path / "node_modules")
    assert kit_main(["slides", str(tmp_path), str(tmp_path / "out")]) == 1
    assert "run `npm ci`" in capsys.readouterr().err
    assert not (tmp_path / "out" / "00_x.slides.html").exists()


@needs_reveal
def test_slides_without_chromium_say_so_before_running_anything(tmp_path, monkeypatch, capsys):
    import coursekit.browser

    nbformat.write(slide_unit(), tmp_path / "01_x.ipynb")
    monkeypatch.setattr(coursekit.browser, "browser_unavailable", lambda: "no Chromium at /nowhere")
    assert kit_main(["slides", str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "the PDFs need Chromium: no Chromium at /nowhere" in err and "--no-pdf" in err
    assert not (tmp_path / "out").exists()


def test_slides_write_tags_makes_the_selection_explicit_and_keeps_what_is_set(tmp_path, capsys):
    nb = slide_unit()
    nb.cells[4].metadata["slides"] = {"role": "notes"}
    path = tmp_path / "05_x.ipynb"
    nbformat.write(nb, path)
    before = sl.outline(nbformat.read(path, as_version=4), "05_x")
    assert kit_main(["slides", "--write-tags", str(path), "--with-text"]) == 0
    assert f"wrote the slide selection into {path}" in capsys.readouterr().out
    tagged = nbformat.read(path, as_version=4)
    roles = [c.metadata["slides"]["role"] for c in tagged.cells]
    assert roles[4:8] == ["notes", "notes", "skip", "figure"]
    assert tagged.cells[3].metadata["slides"]["text"] == "Each model is trained once."
    after = sl.outline(tagged, "05_x")  # the same deck, now from explicit metadata
    assert [(s.title, s.text, s.visual and s.visual.cell) for s in after.slides] == \
        [(s.title, s.text, s.visual and s.visual.cell) for s in before.slides]
    assert kit_main(["slides", "--write-tags", str(path)]) == 0  # nothing more to write
    assert "wrote" not in capsys.readouterr().out


EXECUTED = paths.ROOT / "build" / "executed"
EXECUTED_UNITS = [p.stem for p in paths.units(EXECUTED)] if EXECUTED.is_dir() else []


NO_EXECUTED = ("no executed units in build/executed: run `python -m coursekit execute` "
               "(make test does)")


@pytest.mark.parametrize("name", EXECUTED_UNITS or [
    pytest.param("none", marks=pytest.mark.skip(reason=NO_EXECUTED))])
def test_slides_write_tags_keeps_a_units_deck(name, tmp_path):
    path = tmp_path / f"{name}.ipynb"
    shutil.copy(EXECUTED / path.name, path)
    key = [(s.kind, s.title, s.text, s.subtitle, s.minutes,
            s.visual and (s.visual.kind, s.visual.cell, s.visual.output, s.visual.source))
           for s in sl.outline(nbformat.read(path, as_version=4), name).slides]
    assert sl.write_tags([path], with_text=True) == [path]
    tagged = nbformat.read(path, as_version=4)
    assert all(sp.KEY in c.metadata for c in tagged.cells)
    assert [(s.kind, s.title, s.text, s.subtitle, s.minutes,
             s.visual and (s.visual.kind, s.visual.cell, s.visual.output, s.visual.source))
            for s in sl.outline(tagged, name).slides] == key


@pytest.mark.parametrize("name", EXECUTED_UNITS or [
    pytest.param("none", marks=pytest.mark.skip(reason=NO_EXECUTED))])
def test_slides_show_every_figure_and_exercise_of_a_unit(name):
    import copy

    from coursekit.notebooks import read
    from coursekit.site import snapshot_widgets

    nb = read(EXECUTED / f"{name}.ipynb")
    page = sl.deck_page(nb, name, None)
    deck = sl.outline(nb, name)
    shown = {(s.visual.cell, s.visual.output) for s in deck.slides
             if s.visual and s.visual.cell is not None}
    snapshots = snapshot_widgets(copy.deepcopy(nb)).cells
    for index, (cell, snapshot) in enumerate(zip(nb.cells, snapshots)):
        if cell.cell_type != "code" or sp.role(cell) == "skip":
            continue
        for k, (out, shot) in enumerate(zip(cell.get("outputs", []), snapshot.get("outputs", []))):
            data = out.get("data", {})
            drawn = "".join(shot.get("data", {}).get("text/html", ""))
            if "<progress" in drawn and "<img" not in drawn:
                continue  # a progress bar, not a figure
            if "image/png" in data:
                figure = "".join(data["image/png"]).strip()
                assert figure in page, f"cell {index}: its figure is missing"
            if any(m in data for m in ("image/png", "text/markdown", "text/html",
                                       "application/vnd.jupyter.widget-view+json")):
                assert (index, k) in shown, f"cell {index}, output {k} is on no slide"
    numbers = sorted({int(m) for c in nb.cells if c.cell_type == "markdown"
                      for m in re.findall(r"^\*\*Exercise (\d+)", c.source, re.M)})
    exercises = [s for s in deck.slides if s.kind == "exercise"]
    assert numbers and [s.title for s in exercises] == [f"Exercise {n}" for n in numbers]
    for n, s in zip(numbers, exercises):
        assert s.minutes and f"Exercise {n} — {s.minutes} minute" in page
    assert all(sp.words(s.text) <= sp.TEXT_WORDS + 5 for s in deck.slides if s.kind != "title")


# --------------------------------------------------------------------------- the CLI

def _course(tmp_path, *notebooks):
    src = tmp_path / "notebooks"
    src.mkdir()
    for name, nb in notebooks:
        nbformat.write(nb, src / name)
    return src, tmp_path / "student"


def test_student_cli_writes_the_folder_and_its_zip(tmp_path, capsys):
    src, out = _course(tmp_path, ("01_a.ipynb", unit()), ("02_b.ipynb", unit()))
    assert kit_main(["student", str(src), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_a.ipynb", "02_b.ipynb", "README.md"]
    assert "raise NotImplementedError()" in nbformat.read(out / "01_a.ipynb", as_version=4).cells[6].source
    assert oct((out / "01_a.ipynb").stat().st_mode & 0o777) == "0o644"
    assert capsys.readouterr().out == (f"wrote {out}: 2 student notebooks, README.md and 0 linked file(s)\n"
                                       f"wrote {tmp_path / 'student.zip'}\n")
    with zipfile.ZipFile(tmp_path / "student.zip") as archive:
        names = sorted(archive.namelist())
        assert names == [f"vae-loss-lab/{n}" for n in ("01_a.ipynb", "02_b.ipynb", "README.md")]
        for name in names:
            assert archive.read(name) == (out / name.split("/", 1)[1]).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a staging file was left behind"


def test_student_folder_bundles_what_the_notebooks_link_to(tmp_path):
    nb = unit()
    nb.cells[4].source += ("\n\nSee [S1](sources.md#s1), ![the plane](figures/plane.png), "
                           '<img src="figures/gallery.svg">, [unit 02](02_b.ipynb) and [the web](https://example.org).')
    src, out = _course(tmp_path, ("01_a.ipynb", nb), ("02_b.ipynb", unit()))
    (src / "figures").mkdir()
    (src / "figures" / "plane.png").write_bytes(b"\x89PNG plane")
    (src / "figures" / "gallery.svg").write_text("<svg/>")
    (src / "figures" / "unused.png").write_bytes(b"not linked")
    (src / "sources.md").write_text(
        '<a id="s1"></a>\n# S1\n\nA [table](tables/s1.csv) and [unit 01](01_a.ipynb#Summary).')
    (src / "tables").mkdir()
    (src / "tables" / "s1.csv").write_text("a,b\n1,2\n")
    written = st.build_student(src, out)
    rel = sorted(p.relative_to(out).as_posix() for p in written)
    assert rel == ["01_a.ipynb", "02_b.ipynb", "README.md", "figures/gallery.svg", "figures/plane.png",
                   "sources.md", "tables/s1.csv"]
    assert (out / "figures" / "plane.png").read_bytes() == b"\x89PNG plane"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == rel
    assert oct((out / "figures").stat().st_mode & 0o777) == "0o755"


def test_student_readme_says_how_to_start_and_how_to_check(tmp_path):
    src, out = _course(tmp_path, ("01_a.ipynb", unit()), ("00_start.ipynb", unit()))
    st.build_student(src, out)
    readme = (out / "README.md").read_text()
    assert "| `00_start.ipynb` | 99 · A tiny unit |" in readme and "start with `00_start.ipynb`" in readme
    for words in ("jupyter lab", "make venv", "run the test cell under the exercise", "`right`", "not yet",
                  "hidden tests", "YOUR CODE HERE", "YOUR ANSWER HERE"):
        assert words in readme, words


@pytest.mark.parametrize("link, message", [
    ("missing.png", "01_a.ipynb: link 'missing.png': missing.png does not exist"),
    ("../docs/sources.md#s1", "01_a.ipynb: link '../docs/sources.md#s1' leaves notebooks/"),
    ("figures", "01_a.ipynb: link 'figures' names a folder"),
])
def test_student_folder_is_not_written_with_a_broken_link(tmp_path, capsys, link, message):
    nb = unit()
    nb.cells[4].source += f"\n\n[this]({link})"
    src, out = _course(tmp_path, ("01_a.ipynb", nb))
    (src / "figures").mkdir()
    out.mkdir()
    (out / "01_a.ipynb").write_text("the previous copy")
    assert kit_main(["student", str(src), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: links a student could not follow: ") and message in err
    assert [p.name for p in out.iterdir()] == ["01_a.ipynb"] and not (tmp_path / "student.zip").exists()


def test_student_cli_writes_nothing_when_a_notebook_is_malformed(tmp_path, capsys):
    bad = unit()
    bad.cells[6].source = "### BEGIN SOLUTION\nx = 1"
    src, out = _course(tmp_path, ("01_a.ipynb", unit()), ("02_b.ipynb", bad))
    out.mkdir()
    (out / "01_a.ipynb").write_text("the previous copy")
    assert kit_main(["student", str(src), str(out)]) == 1
    assert "02_b.ipynb: cell 6" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["01_a.ipynb"] and (out / "01_a.ipynb").read_text() == "the previous copy"


def test_student_folder_replaces_the_previous_one_whole(tmp_path):
    src, out = _course(tmp_path, ("01_a.ipynb", unit()))
    out.mkdir()
    (out / "03_gone.ipynb").write_text("a unit since removed")
    st.build_student(src, out)
    assert sorted(p.name for p in out.iterdir()) == ["01_a.ipynb", "README.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fail_at", ["zip", "swap"])
def test_a_failed_write_leaves_the_previous_folder_and_zip(tmp_path, monkeypatch, fail_at):
    src, out = _course(tmp_path, ("01_a.ipynb", unit()))
    out.mkdir()
    (out / "old.ipynb").write_text("the previous copy")
    (tmp_path / "student.zip").write_bytes(b"the previous zip")

    def disk_full(*args, **kwargs):
        raise OSError("no space left on device")

    if fail_at == "zip":
        monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    else:
        monkeypatch.setattr(os, "replace", disk_full)  # the zip's rename, after the folder's swap
    with pytest.raises(OSError, match="no space"):
        st.build_student(src, out)
    assert [p.name for p in out.iterdir()] == ["old.ipynb"] and (out / "old.ipynb").read_text() == "the previous copy"
    assert (tmp_path / "student.zip").read_bytes() == b"the previous zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "student", "student.zip"]


def test_check_cli_reports_every_unit_of_a_folder(tmp_path, capsys):
    src = write_course(tmp_path)
    assert kit_main(["check", str(src)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("99_tiny: ") and " min by the estimate " in out and out.endswith("no problems found\n")
    bad = v3_unit()
    del bad.cells[1]
    nbformat.write(bad, src / "98_b.ipynb")
    assert kit_main(["check", str(src)]) == 1
    out = capsys.readouterr().out
    assert "98_b.ipynb: no heading 'Before this unit'" in out and "99_tiny.ipynb" not in out
    assert "98_b: " in out and "99_tiny: " in out  # the estimate of every unit
    assert kit_main(["check", str(src / "98_b.ipynb")]) == 1
    capsys.readouterr()
    assert kit_main(["check", str(tmp_path / "missing.ipynb")]) == 2  # a usage error, as argparse's
    assert "error: no such file or folder: " in capsys.readouterr().err
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


def test_the_chinese_student_folder_speaks_chinese(tmp_path):
    """`make student LANG=zh`: the Chinese units' student copies (answers out, the setup cell's
    lang="zh" kept, so the feedback of the checks is Chinese) with a Chinese README."""
    from coursekit import paths

    out = tmp_path / "student-zh"
    st.build_student(paths.NOTEBOOKS / "zh", out)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# VAE Loss Lab：你的课程副本") and "检查答案" in readme
    assert "| `05_beta_vae.ipynb` | 05 · β-VAE" in readme and "fonts-noto-cjk" in readme
    assert (out / "sources.md").read_text(encoding="utf-8").startswith("# ")
    nb = nbformat.read(out / "03_the_elbo_and_training.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert 'config.setup(seed=0, lang="zh")' in code and "### BEGIN SOLUTION" not in code
    assert "证据下界" in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
