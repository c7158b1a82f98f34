"""Notebook housekeeping: strip outputs before a commit, check that notebooks are clean, build the course.

    python -m vaeutils.nbtools strip notebooks/*.ipynb    # clear outputs, execution counts, widget state
    python -m vaeutils.nbtools check notebooks/*.ipynb    # exit 1 listing the notebooks that still carry any
    python -m vaeutils.nbtools course notebooks build     # execute every notebook in order -> build/*.html

Committed notebooks carry no outputs (they diff cleanly); ``make course`` produces the executed copies:
the units, then the app page, with the KL and β explorers live in the page and every other widget a
snapshot (``vaeutils.site``). The course is built in a temporary folder next to the output and moved in at
the end, so a failing notebook leaves the previous ``build/`` untouched; only what the course wrote there
(listed in ``build/.course-files``) is replaced, so ``build/student`` and ``build/slides`` stay.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

# Cell metadata that records a particular run rather than the lesson (nbclient timings, JupyterLab extensions).
RUN_METADATA = ("execution", "ExecuteTime")
# Built after the units, as the last page of the course: the classroom dashboard.
EXTRA_PAGES = ("beta_explorer_app.ipynb",)
# In the output folder: the names the last build_course wrote there (the only ones the next one replaces).
OWNED = ".course-files"
# What build_course wrote before it kept that list (an older build/ is cleaned up as far as that goes).
_OWNED_BEFORE = ("*.html", "mathjax")


def dirt(nb) -> list[str]:
    """What in a notebook records a run: outputs, execution counts, saved widget state (empty list: clean)."""
    found = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    if n := sum(bool(c.get("outputs")) for c in code):
        found.append(f"{n} cell(s) with outputs")
    if n := sum(c.get("execution_count") is not None for c in code):
        found.append(f"{n} execution count(s)")
    if "widgets" in nb.metadata:
        found.append("saved widget state")
    if n := sum(any(k in c.metadata for k in RUN_METADATA) for c in nb.cells):
        found.append(f"{n} cell(s) with run timings")
    return found


def strip(nb):
    """Clear, in place, everything ``dirt`` reports; returns the notebook."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)
    return nb


def strip_files(paths) -> list[Path]:
    """Strip each notebook file; rewrites only those that change. Returns the rewritten paths."""
    changed = []
    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        before = nbformat.writes(nb)
        after = nbformat.writes(strip(nb))
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed.append(path)
    return changed


# --------------------------------------------------------------------------- the course index

def describe(nb) -> tuple[str, str]:
    """(title, one-line description): the ``# `` heading and the first sentence of the first paragraph in the
    markdown before the first code cell."""
    opening = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            break
        if cell.cell_type == "markdown":
            opening.append(cell.source)
    title, paragraph = "", []
    for line in "\n\n".join(opening).splitlines():
        text = line.strip()
        if text.startswith("# ") and not title:
            title = text[2:].strip()
        elif text and not text.startswith(("#", "-", "*", ">", "|", "<")) and title:
            paragraph.append(text)
        elif paragraph:
            break
    sentence = re.split(r"(?<=[.!?])\s", " ".join(paragraph), maxsplit=1)[0]
    return title, sentence.replace("**", "").replace("`", "")


def _index_html(entries, mode: str) -> str:
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(page)}">{html.escape(title or page)}</a></td>'
        f"<td>{html.escape(text)}</td><td>{seconds:.0f} s</td></tr>"
        for page, title, text, seconds in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>VAE Loss Lab</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.3em .8em;text-align:left}}
tr:nth-child(even){{background:#f3f3f3}}</style></head>
<body><h1>VAE Loss Lab</h1>
<p>The notebooks in course order, executed ({html.escape(mode)} mode) by <code>make course</code>.</p>
<table><tr><th>notebook</th><th>what it covers</th><th>run time</th></tr>
{rows}
</table></body></html>
"""


def _install(staging: Path, out: Path) -> None:
    """Move everything in ``staging`` into ``out``, replacing what the previous build listed in ``out/OWNED``
    (and what it wrote before keeping that list) and leaving every other entry of ``out`` alone."""
    out.mkdir(parents=True, exist_ok=True)
    listed = out / OWNED
    if listed.is_file():
        old = set(listed.read_text(encoding="utf-8").splitlines())
    else:
        old = {p.name for pattern in _OWNED_BEFORE for p in out.glob(pattern)}
    new = sorted(p.name for p in staging.iterdir())
    names = {n for n in old | set(new) if n and n not in (".", "..") and "/" not in n and "\\" not in n}
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
    try:
        for name in sorted(names):
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, trash / name)
            if name in new:
                os.replace(staging / name, out / name)
        listed.write_text("".join(f"{n}\n" for n in [*new, OWNED]), encoding="utf-8")
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def build_course(notebooks="notebooks", out="build", timeout: int = 1800, pages=None) -> list[Path]:
    """Execute ``NN_*.ipynb`` in number order, then the app (:data:`EXTRA_PAGES`), each in its own folder as
    working directory, and write one HTML page per notebook plus ``index.html`` into ``out``. The explorers
    that describe themselves (``site_view()``) run in the page without a kernel; other widgets are
    snapshots. All or nothing: ``out`` changes only on success, and only in the entries the course owns.
    ``pages``: file names in ``notebooks`` to build instead (a small site, e.g. for a benchmark)."""
    from nbconvert.preprocessors import ExecutePreprocessor

    from . import config, site

    if pages is not None:
        paths = [Path(notebooks) / name for name in pages]
        if missing := [str(p) for p in paths if not p.is_file()]:
            raise FileNotFoundError(f"pages not found: {', '.join(missing)}")
    else:
        paths = sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
        if not paths:
            raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {notebooks}")
        paths += [Path(notebooks) / name for name in EXTRA_PAGES if (Path(notebooks) / name).is_file()]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # same file system: rename is atomic
    staging.chmod(0o755)  # mkdtemp makes it private; the built course is meant to be read and served
    try:
        entries, any_live = [], False
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            title, text = describe(nb)
            print(f"executing {path} ...", flush=True)
            start = time.perf_counter()
            try:
                ExecutePreprocessor(timeout=timeout, kernel_name="python3", extra_arguments=site.KERNEL_ARGS
                                    ).preprocess(nb, {"metadata": {"path": str(path.parent.resolve())}})
            except Exception:
                print(f"{path} failed", file=sys.stderr, flush=True)
                raise
            seconds = time.perf_counter() - start
            live = site.live_views(nb, staging, path.stem)  # the explorers run in the page
            site.snapshot_widgets(nb)  # the other widgets as static pictures: no kernel, no network
            body, _ = site.html_exporter(staging).from_notebook_node(
                nb, resources={"metadata": {"name": title or path.stem}})
            (staging / f"{path.stem}.html").write_text(site.live_page(body) if live else body, encoding="utf-8")
            any_live = any_live or bool(live)
            entries.append((f"{path.stem}.html", title, text, seconds))
            print(f"  done in {seconds:.1f} s" + (f"; live: {', '.join(live)}" if live else ""), flush=True)
        if any_live:
            site.copy_live_assets(staging)
        mode = "smoke" if config.is_smoke() else "full"
        (staging / "index.html").write_text(_index_html(entries, mode), encoding="utf-8")
        _install(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / page for page, *_ in entries] + [out / "index.html"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaeutils.nbtools", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("strip", "clear outputs, execution counts and widget state in place"),
                       ("check", "exit 1 listing notebooks that carry outputs or run state")):
        sub.add_parser(name, help=text).add_argument("files", nargs="+", type=Path)
    course = sub.add_parser("course", help="execute every notebook in order and write HTML")
    course.add_argument("notebooks", nargs="?", default="notebooks", type=Path)
    course.add_argument("out", nargs="?", default="build", type=Path)
    course.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    args = parser.parse_args(argv)

    if args.command == "strip":
        for path in strip_files(args.files):
            print(f"stripped {path}")
        return 0
    if args.command == "check":
        dirty = [(p, d) for p in args.files if (d := dirt(nbformat.read(p, as_version=nbformat.NO_CONVERT)))]
        for path, found in dirty:
            print(f"{path}: {', '.join(found)}")
        if dirty:
            print("run `make strip` (python -m vaeutils.nbtools strip FILES) before committing")
        return 1 if dirty else 0
    from nbconvert.preprocessors import CellExecutionError

    try:
        pages = build_course(args.notebooks, args.out, args.timeout)
    except CellExecutionError as err:
        print(f"\n{err}\nthe course was not built; {args.out}/ is unchanged", file=sys.stderr)
        return 1
    print(f"wrote {len(pages)} pages to {args.out}/ (open {args.out}/index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
