"""Student copies of the units: the answers removed by nbgrader's own preprocessors (``ClearSolutions``,
``ClearHiddenTests``, ``ClearOutput``), so a student working alone gets the notebook a graded class gets.

    python -m coursekit student notebooks build/student     # the folder, and build/student.zip beside it

The folder is ready to hand out: the student copies, what their Markdown links to or embeds from the
notebooks' folder (the sources page, figures), and a README.md that says how to start and how to check an
answer; the zip holds the same folder. It is made all or nothing: everything is written into a staging folder
first, and the previous folder and zip stay as they were until the new ones are complete.

Exercises follow nbgrader's conventions: ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in a solution cell, then
a locked test cell with points; hidden tests between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path
from urllib.parse import unquote

import nbformat

from .i18n import notebook_language
from .notebooks import NotebookError, missing_paths, read, strip, usage_error

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


def with_answer(source: str, code: str) -> str:
    """``source`` (a solution cell) with its solution region replaced by ``code``, indented like the region's
    BEGIN line: the cell as a student who wrote ``code`` runs it."""
    lines = tuple(textwrap.dedent(code).strip("\n").split("\n"))
    replaced, found = _replace_region(source, SOLUTION, lines, "the solution cell")
    if not found:
        raise ValueError("the cell has no '### BEGIN SOLUTION' region to put an answer in")
    return replaced


def hidden_tests(source: str) -> str:
    """The hidden tests of a grade cell (the lines between its HIDDEN TESTS markers), dedented; "" if none."""
    kept, inside = [], False
    for line in source.split("\n"):
        if HIDDEN_TESTS[0] in line:
            inside = True
        elif HIDDEN_TESTS[1] in line:
            inside = False
        elif inside:
            kept.append(line)
    return textwrap.dedent("\n".join(kept)).strip("\n")


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


ZIP_FOLDER = "vae-loss-lab"  # the folder a student gets when unzipping build/student.zip

README = """# VAE Loss Lab: your copy of the course

A course on the loss of a variational autoencoder, one notebook per session. These are the student copies:
the answers to the exercises are taken out, everything else is as the class sees it.

{units}

## Start

* **On the class server** this folder is open in JupyterLab: start with `{first}`.
* **On your own computer** the notebooks need the course's Python package (`vaeutils`) and the libraries it
  pins. In a copy of the course repository run `make venv` once (`make lab` there starts JupyterLab on the
  instructor's notebooks, with the answers). Then start JupyterLab in this folder with that environment:
  `/path/to/the/course/.venv/bin/jupyter lab`, or `jupyter lab` with the environment active.
* Run a unit from the top (Run → Run All Cells) before the exercises: they use what the unit computed. The first
  run of a unit trains its small models on the CPU (a minute or two); later runs load them.
* `sources.md` describes the articles the units discuss; the units link to it.

## The exercises and your answers

* Write your answer in the exercise's cell, in place of `# YOUR CODE HERE` and `raise NotImplementedError()`,
  keeping the names the exercise asks for. A written answer goes in the cell that says "YOUR ANSWER HERE".
* **Check it: run the test cell under the exercise.** It prints `right` when your answer passes the visible
  checks. Otherwise it says `not yet` and points at the mistake your answer looks like (a sign, a sum where a
  mean belongs, a variance where a standard deviation belongs, ...), never at the answer itself. Change the
  answer and run both cells again.
* The visible checks catch the usual mistakes, not every one. Your work is graded by hidden tests that the
  instructor's copy adds to the same test cells, and a person reads the written answers: passing the visible
  checks is a good sign, not the grade.
* Leave the test cells as they are (they are locked); hand in the notebook with your answers in place.
"""


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (m := re.search(r"^#\s+(.+)$", cell.source, re.M)):
            return m.group(1).strip()
    return fallback


README_ZH = """# VAE Loss Lab：你的课程副本

这是一门讲变分自编码器损失函数的课程，每次课一个 notebook。这里是学生副本：练习的答案已经去掉，其余内容与课堂上看到的
完全相同。

{units}

## 开始

* **在课程服务器上**，JupyterLab 已经打开了这个文件夹：从 `{first}` 开始。
* **在自己的电脑上**，这些 notebook 需要课程的 Python 包（`vaeutils`）及其固定版本的依赖库。在课程仓库的副本里运行一次
  `make venv`（在那里运行 `make lab` 会用教师版 notebook 启动 JupyterLab，其中带有答案）。然后用这个环境在本文件夹中启动
  JupyterLab：`/path/to/the/course/.venv/bin/jupyter lab`，或者在激活该环境后运行 `jupyter lab`。
* 做练习之前，先把单元从头运行一遍（Run → Run All Cells）：练习要用到单元算出的结果。第一次运行某个单元时，它会在 CPU 上
  训练自己的小模型（一两分钟）；之后再运行就直接加载。
* 图中的中文需要 CJK 字体：`sudo apt-get install fonts-noto-cjk`（没有这个字体时，图中标签保持英文，
  打印的文字仍是中文）。
* `sources.md` 介绍各单元讨论的文章；单元中有指向它的链接。

## 练习与你的答案

* 把答案写在练习的单元格里，替换 `# YOUR CODE HERE` 和 `raise NotImplementedError()`，并保留练习要求的变量名。文字
  作答写在标有 "YOUR ANSWER HERE" 的单元格里。
* **检查答案：运行练习下方的测试单元格。** 答案通过可见检查时，它打印“正确”；否则它说“还不对”，并指出你的答案像是犯了
  哪种错误（符号反了、该取平均的地方求了和、该用标准差的地方用了方差……），但从不给出答案本身。修改答案后，把两个单元格
  再运行一遍。
* 可见检查能发现常见错误，但不是全部。评分依据是教师版在同一个测试单元格里加入的隐藏测试，文字作答由老师阅读：通过可见
  检查是个好兆头，但不等于成绩。
* 测试单元格保持原样（它们是锁定的）；提交时 notebook 里要带着你的答案。
"""


def student_readme(notebooks: dict) -> str:
    """The README.md of the student folder: the units in order (``notebooks``: file name -> notebook), how to
    start, how to check an answer; in Chinese for the Chinese edition."""
    names = sorted(notebooks)
    units = "\n".join(f"| `{name}` | {_title(notebooks[name], name)} |" for name in names)
    if any(notebook_language(nb) == "zh" for nb in notebooks.values()):
        return README_ZH.format(units="| notebook | 内容 |\n| --- | --- |\n" + units, first=names[0])
    return README.format(units="| notebook | what it is |\n| --- | --- |\n" + units, first=names[0])


def linked_files(src, notebooks: dict) -> dict[str, Path]:
    """The files of ``src`` that the Markdown of ``notebooks`` (file name -> notebook) links to or embeds,
    followed through the Markdown pages they link (``relative path -> file``; notebooks themselves excluded).
    A ValueError lists the links that break or leave ``src``."""
    from .check import link_problem, markdown_links

    src = Path(src).resolve()
    found, problems = {}, []
    todo = [(src / name, "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))
            for name, nb in sorted(notebooks.items())]
    while todo:
        page, text = todo.pop(0)
        for target in dict.fromkeys(markdown_links(text)):
            if problem := link_problem(target, page, src):
                problems.append(f"{page.relative_to(src)}: {problem}")
                continue
            file_part = target.partition("#")[0].split("?")[0]
            if not file_part or re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)", target):
                continue
            dest = (page.parent / unquote(file_part)).resolve()
            rel = dest.relative_to(src).as_posix()
            if dest.is_dir():
                problems.append(f"{page.relative_to(src)}: link '{target}' names a folder; link its files")
            elif rel not in found and rel not in notebooks:
                found[rel] = dest
                if dest.suffix == ".md":
                    try:
                        todo.append((dest, dest.read_text(encoding="utf-8")))
                    except UnicodeDecodeError as err:
                        raise ValueError(f"{dest}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    if problems:
        raise ValueError("links a student could not follow: " + "; ".join(problems))
    return found


def build_student(src, out, zip_path=None) -> list[Path]:
    """The student folder ``out`` (student copies of every ``src/*.ipynb``, the files they link to, a
    README.md) and ``zip_path`` (default: ``out`` with ``.zip``) holding it. All or nothing: a malformed
    notebook, a broken link or a failed write leaves ``out`` and the zip as they were. Returns the files of
    ``out``."""
    src, out = Path(src), Path(out)
    zip_path = Path(zip_path) if zip_path else out.with_name(out.name + ".zip")
    paths = sorted(src.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks in {src}")
    copies = {}
    for path in paths:
        try:
            copies[path.name] = student_copy(read(path))
        except NotebookError:
            raise
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    files = {name: nbformat.writes(nb).encode("utf-8") for name, nb in copies.items()}
    files["README.md"] = student_readme(copies).encode("utf-8")
    for rel, path in linked_files(src, copies).items():
        files[rel] = path.read_bytes()
    _publish(files, out, zip_path)
    return [out / rel for rel in sorted(files)]


def _publish(files: dict[str, bytes], out: Path, zip_path: Path) -> None:
    """Write ``files`` (relative path -> bytes) as the folder ``out`` and the zip ``zip_path``: staged beside
    them, then swapped in; on any failure the previous folder and zip are left as they were."""
    out.parent.mkdir(parents=True, exist_ok=True)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    fd, zip_tmp = tempfile.mkstemp(prefix=f".{zip_path.name}.", suffix=".tmp", dir=zip_path.parent)
    os.close(fd)
    old, swapped = out.with_name(f".{out.name}.old-{os.getpid()}"), False
    try:
        for rel, data in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, 0o644)  # handed out: world-readable
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            os.chmod(folder, 0o755)
        with zipfile.ZipFile(zip_tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel in sorted(files):
                archive.writestr(f"{ZIP_FOLDER}/{rel}", files[rel])
        os.chmod(zip_tmp, 0o644)
        if out.exists():
            os.rename(out, old)
        os.rename(staging, out)
        swapped = True
        os.replace(zip_tmp, zip_path)
    except BaseException:
        if swapped:
            shutil.rmtree(out, ignore_errors=True)
        if old.exists() and not out.exists():
            os.rename(old, out)
        shutil.rmtree(staging, ignore_errors=True)
        Path(zip_tmp).unlink(missing_ok=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def main(argv=None) -> int:
    import argparse

    from . import paths

    parser = argparse.ArgumentParser(prog="python -m coursekit student", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    parser.add_argument("out", nargs="?", default=paths.ROOT / "build" / "student", type=Path)
    parser.add_argument("--zip", type=Path, default=None, help="the zip to write (default: OUT.zip)")
    args = parser.parse_args(argv)
    if problem := missing_paths([args.notebooks], folder=True):
        return usage_error(parser.prog, problem)
    try:
        written = build_student(args.notebooks, args.out, args.zip)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    zip_path = args.zip or args.out.with_name(args.out.name + ".zip")
    n = sum(p.suffix == ".ipynb" for p in written)
    print(f"wrote {args.out}: {n} student notebooks, README.md and {len(written) - n - 1} linked file(s)")
    print(f"wrote {zip_path}")
    return 0
