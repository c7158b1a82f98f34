"""The course site: the executed course as a Jupyter Book (Sphinx, myst-nb, sphinx-book-theme).

    python -m coursekit course      # run what is stale into build/executed, then build build/site/

1. The units and the app come executed from ``build/executed/`` (``coursekit.executed``: each
   notebook run once, reused while current). The site never runs a kernel: myst-nb's execution is
   off.
2. A staging folder, ``build/book/source/``, gets the executed notebooks with the KL and β
   explorers made live (``site.live_views``) and every other widget snapshotted
   (``site.snapshot_widgets``); the sources page beside them, as in ``notebooks/`` (the units link
   to ``sources.md#s2``); the class-server guide and the instructor guides under ``guides/``; and,
   from ``coursekit/book/``, the landing page, ``_toc.yml`` and ``_config.yml``. MathJax 3 is a
   local copy (``node_modules/mathjax``, from ``npm ci``); the live views' script and style go to
   ``_static/``.
3. Jupyter Book writes the HTML into ``build/book/_build/html``; a Sphinx warning fails the build.
4. :func:`check_site`: every relative link and anchor of every page resolves, and no page loads a
   script, style, font or picture from another host.
5. The HTML replaces ``build/site/`` by renames. A failure at any step leaves the previous site as
   it was; nothing outside ``build/book`` and ``build/site`` is touched (``build/executed``,
   ``build/student`` and ``build/slides`` stay).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from . import paths, site
from .executed import course_notebooks
from .notebooks import read

BOOK = Path(__file__).with_name("book")  # _config.yml, _toc.yml and the landing page (index.md)
BUILD = paths.ROOT / "build"
DOCS = paths.ROOT / "docs"
EXECUTED = BUILD / "executed"
WORK = BUILD / "book"  # source/ (the staging folder) and _build/ (Sphinx's output)
SITE = BUILD / "site"
GUIDES = "guides"  # in the book: guides/classroom.md, guides/instructor/NN_name.md
MATHJAX = paths.NODE_MODULES / "mathjax" / "es5"  # MathJax 3, pinned in package.json
# What the pages use of it: the TeX-to-CommonHTML build, its fonts, and what it loads on demand.
_MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui",
                  "a11y")
# What the hand-written builder that came before wrote into build/ was listed in this file.
_OLD_LIST = ".course-files"
_NEVER_REMOVE = {"executed", "student", "slides", "site", "book"}


class BookError(Exception):
    """The site cannot be built: a page missing or left out of the table of contents, a failed
    Sphinx build, a broken link."""


def toc_pages(toc=BOOK / "_toc.yml") -> list[str]:
    """The pages of the book in the order of its table of contents (``05_beta_vae``, no suffix)."""
    import yaml

    data = yaml.safe_load(Path(toc).read_text(encoding="utf-8"))
    names = [data["root"]]
    for part in data.get("parts", []):
        names += [chapter["file"] for chapter in part.get("chapters", [])]
    return names


def page_sources(executed=EXECUTED, notebooks=paths.NOTEBOOKS, docs=DOCS, book=BOOK) -> dict[str, Path]:
    """Every page the book must have (its name in the book) and the file it comes from: the landing
    page, the executed units and app, the sources page, the guides (``docs=None``: none, as in the
    Chinese edition)."""
    pages = {"index": Path(book) / "index.md"}
    pages |= {p.stem: Path(executed) / p.name for p in course_notebooks(notebooks)}
    pages["sources"] = Path(notebooks) / "sources.md"
    if docs is None:
        return pages
    pages[f"{GUIDES}/classroom"] = Path(docs) / "classroom.md"
    for guide in sorted((Path(docs) / "instructor").glob("*.md")):
        pages[f"{GUIDES}/instructor/{guide.stem}"] = guide
    return pages


@dataclass(frozen=True)
class BookEdition:
    """One language of the site: ``lang`` (``en``, ``zh``), its book folder (landing page and table of
    contents) and, when the other edition is built too, the link to it on every page: ``other_label``
    (the other language's name), ``other_root`` (its folder, relative to this edition's root) and
    ``other_pages`` (the pages it has; a page it lacks links to its landing page)."""

    lang: str = "en"
    other_label: str = ""
    other_root: str = ""
    other_pages: tuple[str, ...] = ()

    @property
    def book(self) -> Path:
        return BOOK if self.lang == "en" else BOOK / self.lang

    def config(self) -> str:
        """The book's _config.yml: the English one, with this edition's language and switch."""
        import yaml

        data = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
        config = data["sphinx"]["config"]
        if self.lang == "zh":
            data["title"] = "VAE Loss Lab（中文版）"
            config["language"] = "zh_CN"
            config["html_theme_options"]["search_bar_text"] = "搜索课程…"
        config["vaelab_switch"] = {"label": self.other_label, "root": self.other_root,
                                   "pages": list(self.other_pages)}
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


ZH_NOTEBOOKS = paths.NOTEBOOKS / "zh"
ZH_EXECUTED = EXECUTED / "zh"


def stage(staging, executed=EXECUTED, notebooks=paths.NOTEBOOKS, docs=DOCS, edition=None) -> dict[str, list]:
    """Write the book's sources into ``staging`` (emptied first). Returns the live views of each
    page that has some. Raises :class:`BookError` when the table of contents and the course
    disagree. ``edition``: a :class:`BookEdition` (the language, its book folder, the switch to the other
    edition); default English alone."""
    staging, edition = Path(staging), edition or BookEdition()
    book = edition.book
    pages, toc = page_sources(executed, notebooks, docs, book), book / "_toc.yml"
    listed = toc_pages(toc)
    problems = [f"{name} is in the course but not in {toc}" for name in pages if name not in listed]
    problems += [f"{name} is in {toc} but not in the course" for name in listed
                 if name not in pages]
    for source in pages.values():
        if not source.is_file():
            run = " (run `python -m coursekit execute`)" if source.suffix == ".ipynb" else ""
            problems.append(f"{source} is missing{run}")
    if problems:
        raise BookError("; ".join(problems))
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    shutil.copyfile(toc, staging / "_toc.yml")
    (staging / "_config.yml").write_text(edition.config(), encoding="utf-8")
    live = {}
    for name, source in pages.items():
        target = staging / f"{name}{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix != ".ipynb":
            shutil.copyfile(source, target)
            continue
        nb = read(source)
        if kinds := site.live_views(nb, staging / "_extra", name):  # the explorers run in the page
            live[name] = kinds
        site.snapshot_widgets(nb)  # the other widgets as static pictures: no kernel, no network
        target.write_text(nbformat.writes(nb), encoding="utf-8")
    (staging / "_extra").mkdir(exist_ok=True)
    site.copy_live_assets(staging / "_static")
    copy_mathjax(staging / "_extra" / "_static")
    return live


def copy_mathjax(folder) -> Path:
    """Copy what the pages use of MathJax 3 into ``folder/mathjax``: TeX in, CommonHTML out with its
    own web fonts, and what those load on demand (TeX packages, the menu, accessibility). Speech
    (4 MB) stays out."""
    if not (MATHJAX / "tex-chtml.js").is_file():
        raise BookError(f"no MathJax in {MATHJAX}: run `npm ci` (`make course` does it for you)")
    target = Path(folder) / "mathjax"
    for part in _MATHJAX_PARTS:
        if (MATHJAX / part).is_dir():
            shutil.copytree(MATHJAX / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(MATHJAX / part, target / part)
    return target


def build_html(staging, out) -> Path:
    """Jupyter Book's HTML build of ``staging`` into ``out/_build/html``, from scratch; a warning is
    an error. Returns the HTML folder; raises :class:`BookError` when the build fails."""
    out = Path(out)
    shutil.rmtree(out / "_build", ignore_errors=True)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(staging), "--path-output", str(out), "--builder", "html", "--warningiserror",
               "--keep-going", "--quiet"]
    scratch = out / "tmp"  # jieba (the Chinese search index) keeps its dictionary cache in TMPDIR: here, not /tmp
    scratch.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, cwd=staging, stdin=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(scratch)})
    html = out / "_build" / "html"
    if done.returncode != 0 or not (html / "index.html").is_file():
        raise BookError(f"Jupyter Book failed (exit status {done.returncode}): see above")
    return html


# ------------------------------------------------------------------- checking the built site

# Elements and attributes that make the browser fetch something when the page opens.
_LOADS = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"), ("video", "src"),
          ("audio", "src"), ("embed", "src"), ("object", "data"), ("link", "href")}


class _Page(HTMLParser):
    """The ids of one HTML page, the links it follows (``<a href>``) and what it loads."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(attrs["href"])
        for element, key in _LOADS:
            if tag == element and attrs.get(key):
                self.loads.append(attrs[key])


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _external(url: str) -> bool:
    return url.startswith("//") or urlsplit(url).scheme not in ("", "data", "blob")


def check_site(html) -> list[str]:
    """What is wrong with the built site in ``html``: a relative link (``<a href>``, a loaded file)
    to a missing file or anchor, or anything a page would load from another host. An empty list
    means all is well."""
    html = Path(html).resolve()
    pages = {p: _parse(p) for p in sorted(html.rglob("*.html"))
             if "_static" not in p.relative_to(html).parts}
    problems = []
    for path, page in pages.items():
        where = path.relative_to(html).as_posix()
        problems += [f"{where}: loads {u} from another host" for u in page.loads if _external(u)]
        for url in page.links + [u for u in page.loads if not _external(u)]:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith("//"):
                continue  # a link to another site: followed only when clicked
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if html not in target.parents:
                problems.append(f"{where}: {url} leads out of the site")
            elif not target.is_file():
                problems.append(f"{where}: {url} does not exist")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: {url} has no anchor #{parts.fragment}")
    return problems


# ------------------------------------------------------------------- the book's Sphinx extension

# An anchor written as HTML in a page's Markdown (the sources page: <a id="s2"></a>), so that links
# to it work on GitHub and in JupyterLab too.
_HTML_ANCHOR = re.compile(r"""<a\s(?:[^>]*\s)?(?:id|name)\s*=\s*["']([^"']+)["']""")


def _register_html_anchors(app, doctree) -> None:
    """Make the HTML anchors of a page targets MyST knows: ``[S2](sources.md#s2)`` from another page
    and ``[S2](#s2)`` from the same page resolve (a link to a missing anchor stays a warning)."""
    from docutils import nodes

    docname, slugs = app.env.docname, None
    std = app.env.get_domain("std")
    for node in doctree.findall(nodes.raw):
        if "html" not in node.get("format", "").split():
            continue
        for name in _HTML_ANCHOR.findall(node.astext()):
            if slugs is None:
                slugs = app.env.metadata[docname].setdefault("myst_slugs", {})
            slugs.setdefault(name, (node.line or 0, name, name))
            std.anonlabels.setdefault(name, (docname, name))


def _language_switch(app, pagename, templatename, context, doctree) -> None:
    """Put a link to the same page in the other edition at the top of every page
    (``vaelab_switch`` in the book's configuration; nothing when there is no other edition)."""
    switch = app.config.vaelab_switch or {}
    if not switch.get("label") or "body" not in context:
        return
    target = pagename if pagename in switch.get("pages", ()) else "index"
    href = "../" * pagename.count("/") + switch["root"] + target + ".html"
    lang = "zh-Hans" if switch["label"] != "English" else "en"
    context["body"] = (f'<p class="vaelab-language"><a href="{href}" hreflang="{lang}" lang="{lang}">'
                       f'{switch["label"]}</a></p>\n' + context["body"])


def _chinese_words(app) -> None:
    """For the Chinese edition's search index: the glossary's terms as words of their own, so that a
    search for 后验坍塌 finds the pages on posterior collapse (jieba, which Sphinx uses to split Chinese,
    would cut it into 后验 and 坍塌, and a query is not split in the browser)."""
    if not str(app.config.language or "").startswith("zh"):
        return
    import jieba

    from .i18n import Edition as Catalogs
    from .i18n import read_glossary

    for term in read_glossary(Catalogs(root=paths.ROOT).glossary):
        for chinese in term.chinese:
            if re.fullmatch(r"[\u4e00-\u9fff]{2,}", chinese):
                jieba.add_word(chinese)


def setup(app):
    """The Sphinx extension the book loads (``extensions`` in its ``_config.yml``)."""
    app.connect("builder-inited", _chinese_words)
    app.connect("doctree-read", _register_html_anchors)
    app.add_config_value("vaelab_switch", {}, "html")
    app.connect("html-page-context", _language_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ------------------------------------------------------------------- installing

def install(html, site_dir) -> None:
    """Put the folder ``html`` in the place of ``site_dir`` by renames: the old site is moved aside,
    the new one moved in, and the old one deleted only then (put back if the move fails)."""
    html, site_dir = Path(html), Path(site_dir)
    site_dir.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{site_dir.name}-", dir=site_dir.parent))
    try:
        new, old = aside / "new", aside / "old"
        try:
            os.replace(html, new)
        except OSError:  # another file system: copied next to the site first, then renamed
            shutil.copytree(html, new)
        new.chmod(0o755)
        if site_dir.exists():
            os.replace(site_dir, old)
        try:
            os.replace(new, site_dir)
        except OSError:
            if old.exists():
                os.replace(old, site_dir)
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def remove_old_site(build=BUILD) -> list[str]:
    """Delete what the hand-written builder that came before left in ``build`` (the entries it
    listed in ``build/.course-files``: its pages, ``live/``, ``mathjax/``); returns their names."""
    listed = Path(build) / _OLD_LIST
    if not listed.is_file():
        return []
    names = [n for n in listed.read_text(encoding="utf-8").splitlines()
             if n and n not in _NEVER_REMOVE | {".", ".."} and not re.search(r"[/\\]", n)]
    for name in names:
        entry = Path(build) / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
    listed.unlink(missing_ok=True)
    return names


def _build_edition(work, executed, notebooks, docs, edition) -> Path:
    """Stage and build one edition's book in ``work``; returns its HTML folder."""
    live = stage(work / "source", executed, notebooks, docs, edition)
    for name, kinds in live.items():
        print(f"  {edition.lang}/{name}: live {', '.join(kinds)}", flush=True)
    print(f"staged {len(toc_pages(edition.book / '_toc.yml'))} pages ({edition.lang}) in {work / 'source'}; "
          "building with Jupyter Book ...", flush=True)
    return build_html(work / "source", work)


def build_course(executed=EXECUTED, out=SITE, notebooks=paths.NOTEBOOKS, docs=DOCS,
                 work=WORK, zh_executed=None, zh_notebooks=ZH_NOTEBOOKS) -> Path:
    """Build the site from the executed notebooks in ``executed`` into ``out`` (``build/site``),
    staging and building in ``work``; returns ``out/index.html``. With ``zh_executed`` (the executed
    Chinese units of ``zh_notebooks``), the Chinese edition goes to ``out/zh/``, and every page links
    to its counterpart in the other language. All or nothing: ``out`` changes only when every step
    passed."""
    work = Path(work)
    english = BookEdition()
    if zh_executed is not None:
        zh_pages = tuple(page_sources(zh_executed, zh_notebooks, None, BOOK / "zh"))
        en_pages = tuple(page_sources(executed, notebooks, docs))
        english = BookEdition("en", "中文", "zh/", zh_pages)
        chinese = BookEdition("zh", "English", "../", en_pages)
    html = _build_edition(work, executed, notebooks, docs, english)
    if zh_executed is not None:
        zh_html = _build_edition(work / "zh", zh_executed, zh_notebooks, None, chinese)
        os.replace(zh_html, html / "zh")
    if problems := check_site(html):
        listed = "\n  ".join(problems[:40])
        raise BookError(f"{len(problems)} problems in the built site:\n  {listed}")
    install(html, out)
    return Path(out) / "index.html"


def main(argv=None) -> int:
    import argparse

    from nbclient.exceptions import CellExecutionError

    from .executed import execute_course
    from .notebooks import NotebookError

    parser = argparse.ArgumentParser(prog="python -m coursekit course",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=SITE, type=Path, help=f"the site (default {SITE})")
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds allowed per cell when a notebook runs (default 1800)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    zh = bool(course_notebooks(ZH_NOTEBOOKS)) if ZH_NOTEBOOKS.is_dir() else False
    try:
        execute_course(paths.NOTEBOOKS, EXECUTED, args.timeout)
        if zh:  # the Chinese edition (notebooks/zh/, made by `make zh`): its own executed copies
            execute_course(ZH_NOTEBOOKS, ZH_EXECUTED, args.timeout)
        t1 = time.perf_counter()
        index = build_course(EXECUTED, args.out, zh_executed=ZH_EXECUTED if zh else None)
    except (CellExecutionError, NotebookError, FileNotFoundError, BookError) as err:
        print(f"\n{err}\nthe site was not built; {args.out}/ is unchanged", file=sys.stderr)
        return 1
    if args.out.resolve() == SITE.resolve():
        remove_old_site(BUILD)
    print(f"built the site in {time.perf_counter() - t1:.0f} s (and {t1 - t0:.0f} s to bring "
          f"build/executed up to date): open {index}")
    return 0
