"""The executed course as a static site in ``build/``: every unit in order, then the app page.

    python -m coursekit course notebooks build

The course is built in a temporary folder next to the output and moved in at the end, so a failing notebook
leaves the previous ``build/`` untouched; only what the course wrote there (listed in ``build/.course-files``)
is replaced, so ``build/student`` and ``build/slides`` stay. The KL and β explorers run in the page without a
kernel and every other widget is a snapshot (``coursekit.site``).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import site
from .notebooks import execute, read

# Built after the units, as the last page of the course: the classroom dashboard.
EXTRA_PAGES = ("beta_explorer_app.ipynb",)
# In the output folder: the names the last build_course wrote there (the only ones the next one replaces).
OWNED = ".course-files"
# What build_course wrote before it kept that list (an older build/ is cleaned up as far as that goes).
_OWNED_BEFORE = ("*.html", "mathjax")


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
    from vaeutils import config

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
            nb = read(path)
            title, text = describe(nb)
            print(f"executing {path} ...", flush=True)
            start = time.perf_counter()
            try:
                execute(nb, path.parent, timeout=timeout, extra_arguments=site.KERNEL_ARGS)
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
    import argparse

    from nbclient.exceptions import CellExecutionError

    from . import paths
    from .notebooks import NotebookError

    parser = argparse.ArgumentParser(prog="python -m coursekit course", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default=paths.NOTEBOOKS, type=Path)
    parser.add_argument("out", nargs="?", default=paths.ROOT / "build", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    args = parser.parse_args(argv)
    try:
        pages = build_course(args.notebooks, args.out, args.timeout)
    except (CellExecutionError, NotebookError, FileNotFoundError) as err:
        print(f"\n{err}\nthe course was not built; {args.out}/ is unchanged", file=sys.stderr)
        return 1
    print(f"wrote {len(pages)} pages to {args.out}/ (open {args.out}/index.html)")
    return 0
