"""Every committed notebook is valid, clean (no outputs, counts or widget state), uses the python3 kernel and
opens with a markdown title; and the kit commands that keep them so work."""


import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import notebooks, paths
from coursekit.__main__ import main as kit_main

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("*.ipynb"))


def test_the_course_has_its_first_notebook():
    assert "00_setup_and_data.ipynb" in [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_valid_clean_python3_and_titled(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "set the kernel to python3"
    assert notebooks.dirt(nb) == [], f"run `make strip`: {notebooks.dirt(nb)}"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), "open with a '# Title' cell"


def dirty_notebook():
    code = new_code_cell("print(1)", execution_count=3, outputs=[new_output("stream", name="stdout", text="1\n")])
    code.metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    nb = new_notebook(cells=[new_markdown_cell("# Title\n\nWhat this is about. More.\n\n- a point"), code])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_check_and_strip_commands(tmp_path, capsys):
    path = tmp_path / "01_dirty.ipynb"
    nbformat.write(dirty_notebook(), path)
    assert kit_main(["dirty", str(path)]) == 1
    assert "01_dirty.ipynb: 1 cell(s) with outputs, 1 execution count(s), saved widget state" in capsys.readouterr().out
    assert kit_main(["strip", str(path)]) == 0
    stripped = nbformat.read(path, as_version=4)
    assert notebooks.dirt(stripped) == [] and stripped.cells[1].source == "print(1)"
    assert stripped.metadata.kernelspec.name == "python3"
    assert notebooks.strip_files([path]) == []  # nothing left to change: the file is not rewritten
    assert kit_main(["dirty", str(path)]) == 0

