"""Links resolve where the student is (issue 27): no relative link that breaks (a missing file or anchor) or leaves
the folder, in the three places a student opens the course:

* ``notebooks/`` (JupyterLab's root under ``make lab``): every notebook's Markdown cells and every Markdown page;
* the student folder (``make student``), built here into a temporary folder;
* the course site (``make course``: Jupyter Book's HTML in ``build/site``), when it has been built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit import check, paths
from coursekit.student import build_student

PAGES = ("*.ipynb", "*.md")


def _pages(folder: Path, patterns=PAGES) -> list[Path]:
    return sorted(p for pattern in patterns for p in folder.rglob(pattern)
                  if ".ipynb_checkpoints" not in p.parts and not any(part.startswith(".") for part in
                                                                       p.relative_to(folder).parts))


def _problems(folder: Path, patterns=PAGES) -> list[str]:
    return [f"{page.parent.relative_to(folder).as_posix()}/{p}".removeprefix("./")
            for page in _pages(folder, patterns) for p in check.page_link_problems(page, folder)]


def test_links_under_notebooks_resolve():
    pages = _pages(paths.NOTEBOOKS)
    assert any(p.name == "sources.md" for p in pages) and any(p.suffix == ".ipynb" for p in pages)
    problems = _problems(paths.NOTEBOOKS)
    assert not problems, "links under notebooks/ that break or leave it:\n" + "\n".join(problems)


def test_links_in_the_student_folder_resolve(tmp_path):
    out = tmp_path / "student"
    build_student(paths.NOTEBOOKS, out)  # refuses, naming them, when a link would break
    pages = _pages(out)
    assert {"README.md", "sources.md"} <= {p.name for p in pages}
    problems = _problems(out)
    assert not problems, "links in the student folder that break or leave it:\n" + "\n".join(problems)


def _site() -> Path | None:
    for folder in (paths.ROOT / "build" / "site", paths.ROOT / "build" / "book" / "_build" / "html"):
        if (folder / "index.html").is_file():
            return folder
    return None


def test_links_on_the_course_site_resolve():
    site = _site()
    if site is None:
        pytest.skip("no course site in build/site: run `make course` (python -m coursekit course) first")
    pages = _pages(site, ("*.html",))
    assert any(p.name == "index.html" for p in pages)
    problems = [p for p in _problems(site, ("*.html",)) if "/_static/" not in f"/{p}"]
    assert not problems, f"links on the site ({site.relative_to(paths.ROOT)}) that break or leave it:\n" + \
        "\n".join(problems[:60]) + (f"\n… and {len(problems) - 60} more" if len(problems) > 60 else "")


def test_the_link_check_catches_what_it_should(tmp_path):
    """The three checks above would fail: on a page with a broken link, a missing anchor, an escaping link."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(
        '<a href="a.html#top">ok</a><a href="a.html#gone">x</a><a href="../out.html">y</a>'
        '<img src="missing.png"><a href="https://example.org/">web</a><a href="#here" id="here">self</a>')
    (tmp_path / "site" / "a.html").write_text('<h1 id="top">A</h1>')
    problems = _problems(tmp_path / "site", ("*.html",))
    assert problems == ["index.html: link 'a.html#gone': a.html has no anchor #gone",
                        "index.html: link '../out.html' leaves site/, the folder a student opens",
                        "index.html: link 'missing.png': missing.png does not exist"]
