"""The kit never shows a traceback: ``check``, ``student`` and ``slides`` report a malformed notebook in one line
naming the file, exit with status 1 and write nothing; a path that does not exist is a usage error (status 2,
one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import __main__ as kit
from coursekit import paths
from coursekit import slides as sl
from coursekit.__main__ import main as kit_main

GOOD = nbformat.writes(new_notebook(cells=[new_markdown_cell("# A unit\n\nSome prose."), new_code_cell("x = 1")]))


def _edited(edit) -> bytes:
    data = json.loads(GOOD)
    edit(data)
    return json.dumps(data).encode("utf-8")


def _set(key, value):
    return lambda d: d.update({key: value})


def _cell(index, edit):
    return lambda d: edit(d["cells"][index])


# kind -> (the file's bytes, what the one line says)
MALFORMED = {
    "invalid JSON": (b'{"cells": [', "invalid JSON at line 1"),
    "empty file": (b"", "the file is empty"),
    "blank file": (b"  \n", "the file is empty"),
    "not UTF-8": (GOOD.replace("Some prose", "Some pros\u00e9").encode("latin-1"), "not UTF-8 text"),
    "a JSON list": (b"[1, 2]", "not a notebook (the file holds a JSON array"),
    "JSON null": (b"null", "not a notebook (the file holds a JSON null"),
    "no cells": (_edited(lambda d: d.pop("cells")), "not a notebook (no 'cells' list)"),
    "cells not a list": (_edited(_set("cells", {})), "'cells' must be a list"),
    "no metadata": (_edited(lambda d: d.pop("metadata")), "missing notebook metadata"),
    "no nbformat": (_edited(lambda d: d.pop("nbformat")), "no integer 'nbformat' field"),
    "nbformat 3": (_edited(_set("nbformat", 3)), "nbformat 3 is not supported"),
    "nbformat_minor a string": (_edited(_set("nbformat_minor", "x")), "no integer 'nbformat_minor' field"),
    "a cell that is no object": (_edited(lambda d: d["cells"].insert(0, "text")), "cell 0 is not an object"),
    "a cell without source": (_edited(_cell(1, lambda c: c.pop("source"))), "cell 1 has no source"),
    "a cell of unknown type": (_edited(_cell(0, _set("cell_type", "heading"))), "cell 0 has no valid cell_type"),
    "a cell without metadata": (_edited(_cell(0, lambda c: c.pop("metadata"))), "cell 0 has no metadata"),
    "a code cell without outputs": (_edited(_cell(1, lambda c: c.pop("outputs"))),
                                    "cell 1: 'outputs' is a required property"),
    "outputs not a list": (_edited(_cell(1, _set("outputs", "x"))), "not a valid notebook"),
    "an unknown cell field": (_edited(_cell(1, _set("bogus", 1))), "('bogus' was unexpected)"),
}
KINDS = pytest.mark.parametrize("kind", MALFORMED)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def course(tmp_path: Path, kind: str) -> Path:
    """notebooks/ with a good unit and the malformed one, 02_bad.ipynb."""
    src = tmp_path / "notebooks"
    src.mkdir()
    (src / "01_good.ipynb").write_text(GOOD, encoding="utf-8")
    (src / "02_bad.ipynb").write_bytes(MALFORMED[kind][0])
    return src


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and 'File "' not in text, text


def the_line(text: str, kind: str) -> str:
    """The one line of ``text`` naming 02_bad.ipynb, checked to say what is wrong."""
    lines = [line for line in text.splitlines() if "02_bad" in line]
    assert len(lines) == 1, text
    assert MALFORMED[kind][1] in lines[0] and "02_bad.ipynb" in lines[0], lines[0]
    return lines[0]


@KINDS
@pytest.mark.parametrize("how", ["folder", "files", "one file"])
def test_check_reports_a_malformed_notebook_in_one_line(tmp_path, capsys, kind, how):
    src = course(tmp_path, kind)
    args = {"folder": [str(src)], "files": [str(src / "02_bad.ipynb"), str(src / "01_good.ipynb")],
            "one file": [str(src / "02_bad.ipynb")]}[how]
    before = snapshot(tmp_path)
    assert kit_main(["check", *args]) == 1
    out, err = capsys.readouterr()
    no_traceback(out, err)
    line = the_line(out, kind)
    if how == "one file":
        assert out.splitlines() == [line] and err == ""
    else:
        assert "01_good: " in out  # the other units are still checked
    assert snapshot(tmp_path) == before


@KINDS
def test_student_reports_a_malformed_notebook_and_keeps_the_folder(tmp_path, capsys, kind):
    src = course(tmp_path, kind)
    out = tmp_path / "student"
    out.mkdir()
    (out / "01_good.ipynb").write_text("the previous copy")
    (out / "README.md").write_text("the previous README")
    (tmp_path / "student.zip").write_bytes(b"the previous zip")
    before = snapshot(tmp_path)
    assert kit_main(["student", str(src), str(out)]) == 1
    stdout, err = capsys.readouterr()
    no_traceback(stdout, err)
    assert err.splitlines() == [the_line(err, kind)] and err.startswith("error: ") and stdout == ""
    assert snapshot(tmp_path) == before  # no staging folder, zip or copy left behind


@KINDS
def test_slides_report_a_malformed_notebook_before_building_anything(tmp_path, capsys, monkeypatch, kind):
    """Without reveal.js, Chromium or a kernel: the notebooks are read before any of them is needed."""
    src = course(tmp_path, kind)
    out = tmp_path / "slides"
    out.mkdir()
    (out / "00_other.slides.html").write_text("a deck built for another notebook")
    monkeypatch.setattr(sl, "NODE_MODULES", tmp_path / "no_node_modules")

    def must_not_run(*args, **kwargs):
        raise AssertionError("a notebook was executed")

    monkeypatch.setattr("coursekit.executed.executed", must_not_run)
    before = snapshot(tmp_path)
    assert kit_main(["slides", str(src), str(out)]) == 1
    stdout, err = capsys.readouterr()
    no_traceback(stdout, err)
    assert err.splitlines() == [the_line(err, kind)] and err.startswith("error: ") and stdout == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("option", ["--outline", "--write-tags"])
def test_slides_outline_and_write_tags_report_a_malformed_notebook(tmp_path, capsys, option):
    src = course(tmp_path, "a cell without source")
    before = snapshot(tmp_path)
    assert kit_main(["slides", option, str(src / "02_bad.ipynb")]) == 1
    stdout, err = capsys.readouterr()
    no_traceback(stdout, err)
    assert err.splitlines() == [the_line(err, "a cell without source")]
    assert snapshot(tmp_path) == before


def test_check_in_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(MALFORMED["no cells"][0])
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    env.pop("COURSEKIT_TRACEBACK", None)
    run = subprocess.run([sys.executable, "-m", "coursekit", "check", str(bad)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    no_traceback(run.stdout, run.stderr)
    assert run.stdout.splitlines() == [f"{bad}: not a notebook (no 'cells' list)"] and run.stderr == ""


# --------------------------------------------------------------------------- paths that are not there


@pytest.mark.parametrize("args, named", [
    (["check", "{tmp}/missing.ipynb"], "missing.ipynb"),
    (["check", "{tmp}/no_such_folder"], "no_such_folder"),
    (["check", "{tmp}/notebooks", "{tmp}/missing.ipynb"], "missing.ipynb"),
    (["student", "{tmp}/no_such_folder", "{tmp}/student"], "no_such_folder"),
    (["student", "{tmp}/notebooks/01_good.ipynb", "{tmp}/student"], "not a folder of notebooks"),
    (["slides", "{tmp}/no_such_folder", "{tmp}/slides"], "no_such_folder"),
    (["slides", "--outline", "{tmp}/missing.ipynb"], "missing.ipynb"),
    (["slides", "--write-tags", "{tmp}/notebooks/01_good.ipynb", "{tmp}/missing.ipynb"], "missing.ipynb"),
    (["strip", "{tmp}/missing.ipynb"], "missing.ipynb"),
    (["dirty", "{tmp}/missing.ipynb"], "missing.ipynb"),
])
def test_a_path_that_is_not_there_is_a_usage_error(tmp_path, capsys, args, named):
    course(tmp_path, "invalid JSON")
    before = snapshot(tmp_path)
    assert kit_main([a.format(tmp=tmp_path) for a in args]) == 2
    out, err = capsys.readouterr()
    no_traceback(out, err)
    assert len(err.splitlines()) == 1 and named in err and f"python -m coursekit {args[0]}: error: " in err
    assert out == ""  # nothing checked, nothing written
    assert snapshot(tmp_path) == before


def test_an_error_no_command_foresaw_is_one_line(monkeypatch, capsys):
    import coursekit.check

    def broken(*args, **kwargs):
        raise RuntimeError("something unforeseen\nwith a second line")

    monkeypatch.delenv("COURSEKIT_TRACEBACK", raising=False)
    monkeypatch.setattr(coursekit.check, "check_paths", broken)
    assert kit.run(["check", str(paths.ROOT)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and "RuntimeError: something unforeseen" in err
    assert "COURSEKIT_TRACEBACK=1" in err
    monkeypatch.setenv("COURSEKIT_TRACEBACK", "1")
    with pytest.raises(RuntimeError):
        kit.run(["check", str(paths.ROOT)])
