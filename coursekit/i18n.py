"""The Chinese edition, single-sourced: gettext catalogs of the English text, and the Chinese units built from
the English units and those catalogs, so that the two editions cannot drift apart.

    python -m coursekit zh update                  # refresh the catalogs in i18n/zh/ (and vaeutils') from English
    python -m coursekit zh build [--allow-missing] [--only 05 ...]   # notebooks/zh/ from English + catalogs
    python -m coursekit zh check                   # exit 1 listing what is stale, fuzzy or untranslated

The catalogs (gettext ``.po`` files; edit them with Poedit or polib; i18n/README.md for translators):

- ``i18n/zh/notebooks/NN_name.po`` per unit and ``beta_explorer_app.po`` for the app: one entry per non-empty
  markdown cell, ``msgctxt`` = the cell id, ``msgid`` = the cell's English source, ``msgstr`` = its Chinese;
- ``i18n/zh/sources.po``: the sources page ``notebooks/sources.md`` by paragraph (a list item is a paragraph;
  a paragraph with no words, such as ``<a id="s0"></a>`` or ``---``, is copied as it is);
- ``vaeutils/locale/zh/LC_MESSAGES/vaeutils.po``: what vaeutils prints and draws (it reads this file at run time,
  see ``vaeutils.i18n``): every literal string passed to ``_()``, ``_fig()`` or ``N_()`` in vaeutils or in the
  units' code, and the literal ``hint=``, ``misconceptions=`` keys and ``lesson.table`` header cells the units
  pass to vaeutils (which translates them when it shows them).

``update`` merges the English into each catalog: a changed English text marks its entry fuzzy (the old msgstr
kept, the English it translated kept as ``#| msgid``), a removed one becomes obsolete (``#~``, kept while it has a
translation), a new one is added untranslated. A cell whose id changed but whose text did not keeps its
translation; a new text much like a removed one (an edited paragraph of the sources page) takes over its
translation as a fuzzy entry, as msgmerge does.

``build`` writes ``notebooks/zh/``: the English notebook with its markdown cells replaced by their translations,
outputs stripped, cell ids and code kept, except that the setup cell passes the language (``config.setup(seed=0)``
→ ``config.setup(seed=0, lang="zh")``); and ``notebooks/zh/sources.md`` beside the units, so that their
``sources.md#s2`` links lead to the Chinese page. A missing, fuzzy or untranslated entry stops the build with a
list (``--allow-missing`` builds a draft that keeps those texts in English and prints how many).

``check`` rebuilds in memory and compares with the committed ``notebooks/zh/``, and lists fuzzy, untranslated and
inconsistent entries (a translation that drops a formula, a code span, a link, a heading or an nbgrader marker of
its English) and glossary problems (``i18n/zh/glossary.tsv``): CI runs it, so an English edit without its
translation fails.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import polib

from . import paths
from .notebooks import NotebookError, read, strip, write_atomic

LANG = "zh"
LANGUAGE_TAG = {"zh": "zh_CN"}
WRAP = 78  # polib's and msgmerge's line width in .po files
KEYWORDS = ("_", "_fig", "N_")  # vaeutils' gettext functions whose string arguments go in its catalog
NOT_TERMS = ("prior to",)  # English phrases that contain a glossary term but do not use it as the term


class I18nError(ValueError):
    """A problem that stops a command; the message names the file and what to do."""


@dataclass(frozen=True)
class Edition:
    """Where the files of one language's edition are, under ``root`` (the repository, or a test's copy)."""

    root: Path = paths.ROOT
    lang: str = LANG

    @property
    def english(self) -> Path:
        return Path(self.root) / "notebooks"

    @property
    def out(self) -> Path:
        return self.english / self.lang

    @property
    def catalogs(self) -> Path:
        return Path(self.root) / "i18n" / self.lang

    @property
    def glossary(self) -> Path:
        return self.catalogs / "glossary.tsv"

    @property
    def sources(self) -> Path:
        return self.english / "sources.md"

    @property
    def sources_po(self) -> Path:
        return self.catalogs / "sources.po"

    @property
    def package(self) -> Path:
        return Path(self.root) / "vaeutils"

    @property
    def package_po(self) -> Path:
        return self.package / "locale" / self.lang / "LC_MESSAGES" / "vaeutils.po"

    def notebooks(self) -> list[Path]:
        """The English units in course order, then the app (the notebooks that get a translation)."""
        found = paths.units(self.english)
        app = self.english / paths.APP_NOTEBOOK.name
        return found + ([app] if app.is_file() else [])

    def catalog(self, notebook: Path) -> Path:
        return self.catalogs / "notebooks" / f"{Path(notebook).stem}.po"

    def target(self, notebook: Path) -> Path:
        return self.out / Path(notebook).name

    def rel(self, path: Path) -> str:
        try:
            return Path(path).resolve().relative_to(Path(self.root).resolve()).as_posix()
        except ValueError:
            return str(path)


# --------------------------------------------------------------------------------------------------------------
# What is to be translated: items, and catalogs merged from them


@dataclass(frozen=True)
class Item:
    """One English text to translate: ``msgctxt`` (a cell id, or None), the text, where it comes from."""

    msgctxt: str | None
    msgid: str
    occurrences: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return entry_key(self)


def entry_key(entry) -> str:
    """The identity of an entry in its catalog: the cell id where there is one, else the English text."""
    return f"\x04{entry.msgctxt}" if entry.msgctxt is not None else entry.msgid


def notebook_items(nb, rel_path: str) -> list[Item]:
    """One item per non-empty markdown cell, keyed by the cell id, in the order of the notebook."""
    items, seen = [], set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or not cell.source.strip():
            continue
        cid = cell.get("id")
        if not cid:
            raise I18nError(f"{rel_path}: markdown cell {i} has no id (save the notebook as nbformat 4.5)")
        if cid in seen:
            raise I18nError(f"{rel_path}: two cells have the id {cid!r}; give each cell its own id")
        seen.add(cid)
        items.append(Item(cid, cell.source, ((rel_path, ""),)))
    return items


_LIST_ITEM = re.compile(r"^(?:[*+-]|\d+[.)])\s")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HTML_TAG = re.compile(r"<[^>]*>")


def _words(text: str) -> bool:
    """Whether a paragraph has anything to translate (letters outside HTML tags)."""
    return bool(re.search(r"[^\W\d_]", _HTML_TAG.sub("", text)))


def paragraphs(markdown: str) -> list[tuple[str, bool]]:
    """``markdown`` cut into pieces whose concatenation is ``markdown``: (paragraph, True) for a paragraph or
    list item to translate, (text, False) for the blank lines and line ends between them and for paragraphs
    without words. A fenced code block stays whole."""
    pieces: list[tuple[str, bool]] = []
    block: list[str] = []
    fence = None

    def flush():
        if block:
            text = "".join(block)
            body = text.rstrip("\n")
            pieces.append((body, _words(body)))
            if len(text) > len(body):
                pieces.append((text[len(body):], False))
            block.clear()

    for line in markdown.splitlines(keepends=True):
        if fence:
            block.append(line)
            if line.lstrip().startswith(fence):
                fence = None
            continue
        if m := _FENCE.match(line):
            fence = m.group(1)
            block.append(line)
            continue
        if not line.strip():
            flush()
            if pieces and not pieces[-1][1] and not _words(pieces[-1][0]) and pieces[-1][0].strip() == "":
                pieces[-1] = (pieces[-1][0] + line, False)
            else:
                pieces.append((line, False))
            continue
        if block and _LIST_ITEM.match(line) and _LIST_ITEM.match(block[0]):
            flush()
        block.append(line)
    flush()
    assert "".join(p for p, _ in pieces) == markdown
    return pieces


def page_items(markdown: str, rel_path: str) -> list[Item]:
    """One item per paragraph to translate of a markdown page, without context (a repeated paragraph is one
    entry)."""
    items, seen = [], set()
    for text, translate in paragraphs(markdown):
        if translate and text not in seen:
            seen.add(text)
            items.append(Item(None, text, ((rel_path, ""),)))
    return items


# a str.format field (the messages use .format, never %: "30% of the time" is text)
_FIELD = re.compile(r"(?<!\{)\{[^{}]*\}(?!\})")


# the answer checks of vaeutils.lesson: their hint= and the keys of misconceptions= are feedback a student reads
# (argument errors, e.g. checks.number(..., hint=...), stay English like every error message)
CHECK_CALLS = ("check_close", "check_function", "check_choice")
HINT_KEYWORDS = ("hint",)  # lesson.check_close(..., hint="...")
KEY_KEYWORDS = ("misconceptions",)  # lesson.check_close(..., misconceptions={"the hint": wrong_value})
HEADER_CALLS = ("table", "markdown_table")  # lesson.table(header, rows): the header's cells


def _name(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)


PRINT_CALLS = ("print",)  # what a unit prints: each literal or f-string argument
FIGURE_CALLS = {"set_title": 0, "set_xlabel": 0, "set_ylabel": 0, "suptitle": 0, "supxlabel": 0,
                "supylabel": 0, "title": 0, "xlabel": 0, "ylabel": 0, "set_text": 0, "annotate": 0,
                "text": 2, "figtext": 2}  # matplotlib's text, by the position of its string argument
TEXT_KEYWORDS = ("title", "xlabel", "ylabel", "label", "desc")  # ax.set(title=…), plot(label=…), tqdm


def template(node) -> str | None:
    """The message an f-string prints, as a template: its literal text with each expression as a
    ``{field}`` written as in the code (``f"rate {r:.2f}"`` → ``"rate {r:.2f}"``); vaeutils.i18n.tr
    matches the printed text against it. None for an f-string whose fields cannot be written so
    (an expression or a format spec with braces of its own)."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            continue
        source = ast.unparse(value.value)
        spec = value.format_spec
        if spec is not None and not all(isinstance(v, ast.Constant) for v in spec.values):
            return None
        spec_text = "".join(str(v.value) for v in spec.values) if spec is not None else ""
        if any(c in source + spec_text for c in "{}"):
            return None
        conversion = f"!{chr(value.conversion)}" if value.conversion != -1 else ""
        parts.append("{" + source + conversion + (":" + spec_text if spec_text else "") + "}")
    return "".join(parts)


def _texts(node):
    """The string literals and f-strings in the expression ``node``, not counting subscripts' keys
    (``r["rate"]``) nor the pieces of an f-string."""
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        yield node
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(node, ast.Subscript) and child is node.slice:
            continue
        if isinstance(node, ast.Call) and child is node.func:
            continue
        yield from _texts(child)


def code_messages(tree) -> tuple[list[tuple[str, int]], list[tuple[int, str]]]:
    """The messages a student sees that a piece of code shows, as (text, line): the literal
    argument of ``_()``, ``_fig()``, ``N_()``; a ``hint=`` and the keys of a ``misconceptions=``
    dict of an answer check (``lesson.check_close`` …); the cells of ``lesson.table``'s header and the
    texts written in its rows;
    what ``print`` is given; matplotlib's titles, axis labels, legend labels and texts; a progress
    bar's ``desc``. An f-string becomes a template (:func:`template`). And (line, why) for a message
    that no catalog can hold."""
    found, problems = [], []

    def take(node, what):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.value, node.lineno))
        elif isinstance(node, ast.JoinedStr):
            text = template(node)
            if text is None:
                problems.append((node.lineno, f"{what} is an f-string whose fields hold braces; compute "
                                              f"the field first (a name) so that it can be translated"))
            else:
                found.append((text, node.lineno))

    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = _name(call)
        if name in KEYWORDS:
            arg = call.args[0] if len(call.args) == 1 and not call.keywords else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((arg.value, call.lineno))
            else:
                problems.append((call.lineno, f"{name}() needs one literal string (numbers and names go in as "
                                              f"{{fields}}: _(\"β = {{beta}}\").format(beta=b))"))
        for kw in call.keywords if name in CHECK_CALLS else ():
            if kw.arg in HINT_KEYWORDS:
                take(kw.value, f"{kw.arg}=")
            elif kw.arg in KEY_KEYWORDS and isinstance(kw.value, ast.Dict):
                for key in kw.value.keys:
                    take(key, f"a key of {kw.arg}=")
        header = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "header"), None)
        if name in HEADER_CALLS and isinstance(header, (ast.List, ast.Tuple)):
            for cell in header.elts:
                take(cell, "a table header cell")
        rows = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "rows"), None)
        if name in HEADER_CALLS and rows is not None:
            for text in _texts(rows):  # the row labels written in the call
                take(text, "a table cell")
        if name == "tr" and call.args:  # vaeutils.i18n.tr(text): a literal or an f-string (a template)
            take(call.args[0], "tr()'s text")
        if name in PRINT_CALLS and isinstance(call.func, ast.Name):
            for arg in call.args:
                take(arg, "a printed text")
        if name in FIGURE_CALLS and len(call.args) > FIGURE_CALLS[name]:
            take(call.args[FIGURE_CALLS[name]], f"the text of {name}()")
        for kw in call.keywords:
            if kw.arg in TEXT_KEYWORDS:
                take(kw.value, f"{kw.arg}=")
    found.sort(key=lambda x: x[1])
    return found, sorted(problems)


def message_items(edition: Edition) -> tuple[list[Item], list[str]]:
    """The entries of vaeutils' catalog: the messages of vaeutils' own code, then those the units and the app
    hand to it (:func:`code_messages`), each once with every file it appears in; and what cannot be translated.
    A message with no Latin letter (``"β"``) has nothing to translate and gets no entry."""
    by_text: dict[str, list[str]] = {}
    problems = []

    def add(messages, where):
        for text, _line in messages:
            if re.search(r"[A-Za-z]", _FIELD.sub("", text)) and where not in by_text.setdefault(text, []):
                by_text[text].append(where)

    root = Path(edition.root)
    for path in sorted(edition.package.rglob("*.py")) if edition.package.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except SyntaxError as err:
            problems.append(f"{rel}:{err.lineno}: cannot be parsed ({err.msg})")
            continue
        messages, bad = code_messages(tree)
        add(messages, rel)
        problems += [f"{rel}:{line}: {why}" for line, why in bad]
    for notebook in edition.notebooks():
        rel = edition.rel(notebook)
        for cell in read(notebook).cells:
            tree = _parse_cell(cell.source) if cell.cell_type == "code" else None
            if tree is not None:
                messages, bad = code_messages(tree)
                add(messages, rel)
                problems += [f"{rel} cell {cell.get('id')} line {line}: {why}" for line, why in bad]
    items = []
    for text, places in by_text.items():
        flags = ("python-brace-format",) if re.search(r"(?<!\{)\{[^{}]*\}", text) else ()
        items.append(Item(None, text, tuple((p, "") for p in places), flags))
    return items, problems


def header(edition: Edition, what: str) -> tuple[str, dict]:
    comment = (f"Chinese (Simplified) translation of VAE Loss Lab: {what}.\n"
               "Refresh with `python -m coursekit zh update`, translate the msgstr lines (Poedit or polib), then\n"
               "`make zh`. i18n/README.md says how; i18n/zh/glossary.tsv fixes the terms.")
    metadata = {
        "Project-Id-Version": "VAE Loss Lab",
        "Language": LANGUAGE_TAG.get(edition.lang, edition.lang),
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
        "Plural-Forms": "nplurals=1; plural=0;",
    }
    return comment, metadata


def load(path: Path, edition: Edition | None = None) -> polib.POFile | None:
    """The catalog at ``path`` (None when there is none yet), or an :class:`I18nError` naming the file."""
    if not Path(path).is_file():
        return None
    try:
        return polib.pofile(str(path), wrapwidth=WRAP)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        where = edition.rel(path) if edition else str(path)
        raise I18nError(f"{where}: not a readable gettext catalog ({err}); fix it or restore it from git") from None


@dataclass
class MergeStats:
    new: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in (("new", self.new), ("newly fuzzy", self.fuzzy),
                                               ("newly obsolete", self.obsolete), ("moved", self.reused)) if v]
        return ", ".join(parts) or "unchanged"


def _label(entry) -> str:
    if entry.msgctxt is not None:
        return entry.msgctxt
    lines = [line for line in entry.msgid.splitlines() if _words(line)] or [""]
    first = lines[0].strip()
    return repr(first[:50] + ("…" if len(first) > 50 else ""))


def merge(old: polib.POFile | None, items: list[Item], comment: str, metadata: dict) -> tuple[polib.POFile,
                                                                                                MergeStats]:
    """The catalog for ``items``: what ``old`` translated carried over, changed texts fuzzy, gone texts obsolete."""
    stats = MergeStats()
    po = polib.POFile(wrapwidth=WRAP)
    po.header = comment
    po.metadata = {**metadata, **(old.metadata if old is not None else {})}
    for key in ("POT-Creation-Date", "PO-Revision-Date"):  # dates would make every update a diff
        po.metadata.pop(key, None)
    # the current entry of a key wins over an obsolete one of the same key
    previous = {entry_key(e): e for e in sorted(old or [], key=lambda e: not e.obsolete)}
    wanted = {item.key for item in items}
    # translations whose key is gone: a new text may take one over (the same text under a new cell id as it is,
    # a similar text as a fuzzy entry, as msgmerge does); what is left becomes obsolete
    orphans = [e for e in old or [] if e.msgstr and entry_key(e) not in wanted]
    for item in items:
        was = previous.get(item.key)
        entry = polib.POEntry(msgctxt=item.msgctxt, msgid=item.msgid, occurrences=list(item.occurrences))
        entry.flags = list(item.flags)
        if was is None and (was := _adopt(item, orphans)) is not None:
            orphans = [o for o in orphans if o is not was]
            (stats.reused if was.msgid == item.msgid and not was.fuzzy else stats.fuzzy).append(_label(item))
            was = copy.copy(was)
            was.obsolete = False
        elif was is None:
            stats.new.append(_label(item))
        elif was.msgid != item.msgid and was.msgstr and not was.fuzzy:
            stats.fuzzy.append(_label(item))
        elif was.obsolete and was.msgstr:
            stats.reused.append(_label(item))
        if was is not None:
            entry.msgstr = was.msgstr
            entry.tcomment = was.tcomment
            if was.msgid == item.msgid:
                if was.fuzzy:
                    entry.flags.insert(0, "fuzzy")
                    entry.previous_msgid = was.previous_msgid
            elif was.msgstr:
                entry.flags.insert(0, "fuzzy")
                # the English the translation was made for: the oldest one, if it was fuzzy already
                entry.previous_msgid = was.previous_msgid if was.fuzzy and was.previous_msgid else was.msgid
        po.append(entry)
    left = {id(e) for e in orphans}
    for e in old or []:
        if id(e) not in left:
            continue  # carried over, taken over by a new text, or untranslated (nothing worth keeping)
        if not e.obsolete:
            stats.obsolete.append(_label(e))
        gone = polib.POEntry(msgctxt=e.msgctxt, msgid=e.msgid, msgstr=e.msgstr, tcomment=e.tcomment,
                             obsolete=True)
        gone.flags = [f for f in e.flags if f == "fuzzy"]
        gone.previous_msgid = e.previous_msgid if e.fuzzy else None
        po.append(gone)
    return po, stats


SIMILAR = 0.6  # how alike a new English text and a removed one must be for the old translation to be offered


def _adopt(item: Item, orphans: list):
    """The removed entry whose translation a new text takes over: the same text (a cell whose id changed), else
    the most similar one above :data:`SIMILAR`, else None."""
    for e in orphans:
        if e.msgid == item.msgid:
            return e
    best, score = None, SIMILAR
    for e in orphans:
        matcher = difflib.SequenceMatcher(None, e.msgid, item.msgid, autojunk=False)
        if matcher.real_quick_ratio() > score and matcher.quick_ratio() > score and matcher.ratio() > score:
            best, score = e, matcher.ratio()
    return best


def render(po: polib.POFile) -> str:
    text = str(po)
    return text if text.endswith("\n") else text + "\n"


# --------------------------------------------------------------------------------------------------------------
# Translating: looking entries up, checking that a translation keeps what must not change


@dataclass(frozen=True)
class Problem:
    """One thing that keeps a catalog or a built file from being current."""

    where: str  # a file, relative to the repository
    kind: str  # missing | changed | untranslated | fuzzy | inconsistent | glossary | stale | differs | error
    key: str = ""  # the cell id, or the first words of the text
    detail: str = ""

    def __str__(self) -> str:
        head = " ".join(x for x in (self.kind, self.key) if x)
        return f"{self.where}: {head}" + (f": {self.detail}" if self.detail else "")


GAPS = ("missing", "changed", "untranslated", "fuzzy")  # what --allow-missing fills with English

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_FENCED = re.compile(r"^\s{0,3}(```|~~~).*?^\s{0,3}\1", re.S | re.M)
_MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?!\s)(?:\\.|[^$\\])+?(?<!\s)\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)
_LINK_TARGET = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)[^)]*\)")
_HTML_ID = re.compile(r"<[^>]*\s(?:id|name|href|src)\s*=\s*\"([^\"]*)\"[^>]*>")
_STRUCTURE = re.compile(r"^\s{0,3}(#{1,6}(?=\s)(?:\s+\d+(?:\.\d+)*\.?(?=\s))?|[*+-](?=\s)|\d+[.)](?=\s)|\|)")
_MARKERS = re.compile(r"^\s*#*\s*(BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS)\b", re.M)


def _spans(text: str) -> tuple[list[str], str]:
    """The fenced blocks and code spans of markdown ``text``, and the text without them."""
    found = [m.group(0).strip() for m in _FENCED.finditer(text)]
    text = _FENCED.sub(" ", text)
    found += [m.group(2).strip() for m in _CODE_SPAN.finditer(text)]
    return found, _CODE_SPAN.sub(" ", text)


def _maths(text: str) -> list[str]:
    return [re.sub(r"\s+", " ", m.group(0)) for m in _MATH.finditer(_spans(text)[1])]


def _structure(text: str) -> list[str]:
    out = []
    for line in _FENCED.sub("", text).splitlines():
        if m := _STRUCTURE.match(line):
            out.append(re.sub(r"\s+", " ", m.group(1)))
    return out


def consistency(msgid: str, msgstr: str, fields: bool = False) -> list[str]:
    """What a translation changed that must stay as in the English: code and formulas (numbers and identifiers
    are never translated), link targets and anchors, the headings (level and section number), list items, table
    rows and nbgrader's markers; with ``fields``, the ``{fields}`` and ``%`` formats of a message."""
    problems = []

    def compare(name, english, chinese):  # as sets: a translation may say a thing once where English says it twice
        ce, cz = set(english), set(chinese)
        if ce != cz:
            lost = ", ".join(repr(x) for x in sorted(ce - cz))
            extra = ", ".join(repr(x) for x in sorted(cz - ce))
            problems.append(f"{name} differ from the English" + (f"; missing {lost}" if lost else "")
                            + (f"; not in the English {extra}" if extra else ""))

    if fields:
        compare("the format fields", _FIELD.findall(msgid), _FIELD.findall(msgstr))
        return problems
    compare("the code spans", _spans(msgid)[0], _spans(msgstr)[0])
    compare("the formulas", _maths(msgid), _maths(msgstr))
    compare("the link targets", _LINK_TARGET.findall(_spans(msgid)[1]), _LINK_TARGET.findall(_spans(msgstr)[1]))
    compare("the HTML ids and links", _HTML_ID.findall(msgid), _HTML_ID.findall(msgstr))
    compare("nbgrader's markers", _MARKERS.findall(msgid), _MARKERS.findall(msgstr))
    if _structure(msgid) != _structure(msgstr):
        problems.append(f"the headings, list items or table rows differ from the English "
                        f"({' '.join(_structure(msgid)) or 'none'} vs {' '.join(_structure(msgstr)) or 'none'})")
    return problems


def lookup(po: polib.POFile | None, item: Item, where: str, fields: bool = False) -> tuple[str | None,
                                                                                          Problem | None]:
    """The translation of ``item`` in ``po``, or None and the problem (missing, changed, untranslated, fuzzy,
    inconsistent)."""
    entry = None
    if po is not None:
        entry = next((e for e in po if not e.obsolete and entry_key(e) == item.key), None)
    label = _label(item)
    if entry is None:
        return None, Problem(where, "missing", label, "not in the catalog; run `python -m coursekit zh update`")
    if entry.msgid != item.msgid:
        return None, Problem(where, "changed", label, "the English changed since the catalog was updated; run "
                                                      "`python -m coursekit zh update` and revise the translation")
    if entry.fuzzy:
        return None, Problem(where, "fuzzy", label, "revise the translation against the new English, then "
                                                    "remove the fuzzy flag")
    if not entry.msgstr.strip():
        return None, Problem(where, "untranslated", label)
    if bad := consistency(item.msgid, entry.msgstr, fields=fields):
        return None, Problem(where, "inconsistent", label, "; ".join(bad))
    return entry.msgstr, None


# --------------------------------------------------------------------------------------------------------------
# The setup cell, and building


def _is_setup_call(node) -> bool:
    """``config.setup(...)``, ``vaeutils.config.setup(...)`` or ``setup(...)`` (imported from vaeutils.config)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "setup"
    if isinstance(func, ast.Attribute) and func.attr == "setup":
        value = func.value
        return (isinstance(value, ast.Name) and value.id == "config") or (
            isinstance(value, ast.Attribute) and value.attr == "config")
    return False


def _parse_cell(source: str):
    """The cell's code as a Python AST, IPython's ``%magic`` and ``!shell`` lines blanked (same line numbers)."""
    lines = [("" if line.lstrip().startswith(("%", "!")) else line) for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _setup_call(source: str):
    """The top-level ``config.setup(...)`` call of a code cell (a statement or an assignment's value), or None."""
    tree = _parse_cell(source)
    if tree is None:
        return None
    for stmt in tree.body:
        value = getattr(stmt, "value", None)
        if isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign)) and _is_setup_call(value):
            uses_setup_name = isinstance(value.func, ast.Name)
            if uses_setup_name and not re.search(r"from\s+vaeutils\.config\s+import\s[^\n]*\bsetup\b", source):
                continue
            return value
    return None


def notebook_language(nb) -> str:
    """The language a notebook runs in: the constant ``lang=`` of its setup cell's ``config.setup(...)``
    (``"zh"`` in the Chinese edition), else ``"en"``."""
    for cell in nb.cells:
        call = _setup_call(cell.source) if cell.cell_type == "code" else None
        if call is not None:
            lang = next((k.value for k in call.keywords if k.arg == "lang"), None)
            return lang.value if isinstance(lang, ast.Constant) and isinstance(lang.value, str) else "en"
    return "en"


def localize_setup(source: str, lang: str, where: str = "the setup cell") -> str:
    """``source`` with ``lang=...`` passed to its ``config.setup(...)`` call, or an :class:`I18nError`."""
    call = _setup_call(source)
    if call is None:
        raise I18nError(f"{where}: no top-level config.setup(...) call")
    if any(k.arg == "lang" for k in call.keywords):
        raise I18nError(f"{where}: config.setup(...) already passes lang=; the English unit must not choose one")
    if any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args):
        raise I18nError(f"{where}: config.setup(...) takes *args or **kwargs; pass seed= explicitly")
    lines = source.split("\n")
    args = [*call.args, *call.keywords]
    if args:
        last = max(args, key=lambda a: (a.end_lineno, a.end_col_offset))
        row, col, text = last.end_lineno - 1, last.end_col_offset, f', lang="{lang}"'
    else:  # just before the closing parenthesis
        row, col, text = call.end_lineno - 1, call.end_col_offset - 1, f'lang="{lang}"'
    raw = lines[row].encode("utf-8")  # ast's columns count UTF-8 bytes
    lines[row] = (raw[:col] + text.encode("utf-8") + raw[col:]).decode("utf-8")
    new = "\n".join(lines)
    check = _setup_call(new)
    if check is None or not any(k.arg == "lang" for k in check.keywords):
        raise I18nError(f"{where}: could not pass lang= to config.setup(...); write the call on one line")
    return new


def setup_cell_index(nb, where: str) -> int:
    """The index of the first code cell with a top-level ``config.setup(...)`` call, or an :class:`I18nError`."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _setup_call(cell.source) is not None:
            return i
    raise I18nError(f"{where}: no code cell calls config.setup(...) at top level; every unit needs the setup "
                    f"cell (device = config.setup(seed=0)), where the Chinese edition passes lang=\"zh\"")


_RELATIVE = re.compile(r"^(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)")


def relink(markdown: str, kept: set[str]) -> str:
    """Relative link targets of a page moved one folder down (notebooks/ → notebooks/zh/): a target in ``kept``
    (the translated pages: units, the app, sources.md) keeps its name, so it leads to the Chinese page; any other
    gets ``../``."""
    def fix(target: str) -> str:
        bare = target.strip("<>")
        name = bare.split("#")[0].split("?")[0]
        if not name or not _RELATIVE.match(bare) or name in kept:
            return target
        return target.replace(bare, "../" + bare, 1)

    def md(m):
        return m.group(0).replace(m.group(1), fix(m.group(1)), 1)

    def html(m):
        return m.group(0).replace(m.group(2), fix(m.group(2)), 1)

    spans = []

    def hide(m):
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE_SPAN.sub(hide, _FENCED.sub(hide, markdown))
    text = _LINK_TARGET.sub(md, text)
    text = re.sub(r"(<[^>]*\s(?:href|src)\s*=\s*\")([^\"]*)\"", lambda m: m.group(1) + fix(m.group(2)) + '"', text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


@dataclass
class Built:
    """A built file: where it goes, its text, the gaps filled with English (``--allow-missing``)."""

    target: Path
    text: str
    english_cells: int = 0
    total: int = 0


def build_notebook(edition: Edition, notebook: Path, allow_missing: bool = False) -> tuple[Built | None,
                                                                                           list[Problem]]:
    """The translated notebook's text (None when a problem stops it) and the problems found."""
    where = edition.rel(notebook)
    try:
        english = read(notebook)
    except NotebookError as err:
        return None, [Problem(where, "error", "", str(err))]
    cat_path = edition.catalog(notebook)
    cat_where = edition.rel(cat_path)
    try:
        po = load(cat_path, edition)
        items = {item.msgctxt: item for item in notebook_items(english, where)}
        setup_at = setup_cell_index(english, where)
    except I18nError as err:  # the message names the file
        return None, [Problem(where, "error", "", str(err))]
    kept = {p.name for p in edition.notebooks()} | {edition.sources.name}
    nb = strip(copy.deepcopy(english))
    problems, gaps = [], 0
    for cell in nb.cells:
        if cell.cell_type != "markdown" or cell.get("id") not in items:
            continue
        text, problem = lookup(po, items[cell.id], cat_where)
        if problem is not None:
            if allow_missing and problem.kind in GAPS:
                gaps += 1
                text = cell.source
            else:
                problems.append(problem)
                continue
        cell.source = relink(text, kept)
    try:
        nb.cells[setup_at].source = localize_setup(nb.cells[setup_at].source, edition.lang,
                                                   f"{where} cell {nb.cells[setup_at].get('id')}")
    except I18nError as err:
        problems.append(Problem(where, "error", "", str(err)))
    if problems:
        return None, problems
    nb.metadata["vaelab"] = {"lang": edition.lang, "english": f"../{notebook.name}"}
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        return None, [Problem(where, "error", "", f"the built notebook is not valid: {str(err).splitlines()[0]}")]
    return Built(edition.target(notebook), nbformat.writes(nb), gaps, len(items)), []


def build_sources(edition: Edition, allow_missing: bool = False) -> tuple[Built | None, list[Problem]]:
    """The translated sources page (paragraph by paragraph), or None and the problems."""
    where = edition.rel(edition.sources_po)
    try:
        po = load(edition.sources_po, edition)
    except I18nError as err:
        return None, [Problem(where, "error", "", str(err))]
    english = edition.sources.read_text(encoding="utf-8")
    kept = {p.name for p in edition.notebooks()} | {edition.sources.name}
    out, problems, gaps, total = [], [], 0, 0
    for text, translate in paragraphs(english):
        if not translate:
            out.append(text)
            continue
        total += 1
        chinese, problem = lookup(po, Item(None, text), where)
        if problem is not None:
            if allow_missing and problem.kind in GAPS:
                gaps += 1
                chinese = text
            else:
                problems.append(problem)
                continue
        out.append(relink(chinese, kept))
    if problems:
        return None, list(dict.fromkeys(problems))
    return Built(edition.out / edition.sources.name, "".join(out), gaps, total), []


def build_all(edition: Edition, allow_missing: bool = False, only=()) -> tuple[list[Built], list[Problem]]:
    """Every translated notebook (``only``: those whose name starts with one of the prefixes) and the sources
    page; the problems of all of them."""
    built, problems = [], []
    for notebook in edition.notebooks():
        if only and not any(notebook.name.startswith(p) for p in only):
            continue
        b, p = build_notebook(edition, notebook, allow_missing)
        problems += p
        if b is not None:
            built.append(b)
    if edition.sources.is_file() and (not only or any("sources".startswith(p) for p in only)):
        b, p = build_sources(edition, allow_missing)
        problems += p
        if b is not None:
            built.append(b)
    return built, problems


def stale_outputs(edition: Edition) -> list[Path]:
    """Files in notebooks/zh/ that no English notebook or page produces any more."""
    if not edition.out.is_dir():
        return []
    expected = {edition.target(n).name for n in edition.notebooks()} | {edition.sources.name}
    return sorted(p for p in edition.out.iterdir()
                  if p.is_file() and p.suffix in (".ipynb", ".md") and p.name not in expected)


# --------------------------------------------------------------------------------------------------------------
# The glossary


@dataclass(frozen=True)
class Term:
    """A row of the glossary: the English term, its Chinese (alternatives), a note, the renderings refused."""

    english: str  # "*": a row of renderings refused wherever they appear
    chinese: tuple[str, ...]
    note: str = ""
    refuse: tuple[str, ...] = ()

    @property
    def pattern(self) -> re.Pattern:
        return english_pattern(self.english)


def read_glossary(path: Path) -> list[Term]:
    """The glossary's rows (tab-separated: english, chinese, note, refuse; ``a | b`` lists alternatives; lines
    starting with ``#`` and the header row are skipped), or an :class:`I18nError` naming the bad line."""
    terms = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == "english":
            continue
        if len(cols) < 2 or len(cols) > 4 or not cols[0].strip() or (cols[0] != "*" and not cols[1].strip()):
            raise I18nError(f"{path}:{n}: a row is english<TAB>chinese[<TAB>note[<TAB>refused | renderings]]")
        cols += [""] * (4 - len(cols))

        def alts(text):
            return tuple(a.strip() for a in text.split("|") if a.strip())

        terms.append(Term(cols[0].strip(), alts(cols[1]), cols[2].strip(), alts(cols[3])))
    return terms


def _word_forms(word: str) -> str:
    """A regex for an English word and its plural, possessive and verb forms (British -ise spellings too)."""
    w = word.lower()
    forms = {w, w + "s", w + "es", w + "'s", w + "s'"}
    if w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
        forms |= {w[:-1] + "ies"}
    if w.endswith("e"):
        forms |= {w + "d", w[:-1] + "ing"}
    elif w.endswith("ing"):
        stem = w[:-3]
        forms |= {stem, stem + "s", stem + "ed", stem + "e", stem + "es", stem + "ed"}
    else:
        forms |= {w + "ed", w + "ing"}
    alts = sorted((re.escape(f) for f in forms), key=len, reverse=True)
    pattern = "(?:" + "|".join(alts) + ")"
    return re.sub(r"(?<=i)z", "[sz]", pattern)  # -ization / -isation


def english_pattern(term: str) -> re.Pattern:
    """The term in running English: any case, its last word inflected, hyphens, dashes or spaces between words
    (or none), ``-ize``/``-ise``."""
    words = re.split(r"[\s\-–—]+", term.strip())
    parts = [re.sub(r"(?<=i)z", "[sz]", re.escape(w.lower())) for w in words[:-1]] + [_word_forms(words[-1])]
    return re.compile(r"(?<![\w-])" + r"[\s\-–—]?".join(parts) + r"(?![\w])", re.I)


def prose(markdown: str) -> str:
    """The words of a text: no code, formulas, link targets, HTML tags, or titles in 《…》 (a Chinese source
    cited by its own title keeps its own words)."""
    text = _spans(markdown)[1]
    text = _MATH.sub(" ", text)
    text = _LINK_TARGET.sub("]", text)
    text = _HTML_TAG.sub(" ", text)
    return re.sub(r"《[^》]*》", " ", text)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def glossary_problems(msgid: str, msgstr: str, terms: list[Term]) -> list[str]:
    """How a translation breaks the glossary: an English term whose Chinese is missing, or a refused rendering
    (one that is not also the Chinese of another term the English uses)."""
    english = prose(msgid)
    for phrase in NOT_TERMS:
        english = re.sub(re.escape(phrase), " ", english, flags=re.I)
    chinese = _squash(prose(msgstr))
    present = [t for t in terms if t.english != "*" and t.pattern.search(english)]
    accounted = {_squash(c) for t in present for c in t.chinese}
    problems = []
    for t in present:
        if not any(_squash(c) in chinese for c in t.chinese):
            problems.append(f"'{t.english}' should be {' or '.join(t.chinese)}")
    for t in [*present, *(t for t in terms if t.english == "*")]:
        for wrong in t.refuse:
            w = _squash(wrong)
            if w in chinese and not any(w in a for a in accounted):
                what = f"for '{t.english}'" if t.english != "*" else "anywhere"
                problems.append(f"{wrong} is refused {what}" + (f" (use {' or '.join(t.chinese)})"
                                                                if t.english != "*" else ""))
    return problems


# --------------------------------------------------------------------------------------------------------------
# The commands


def catalogs_of(edition: Edition) -> list[tuple[Path, list[Item], str, bool]]:
    """(catalog, its items, what it translates, whether entries are format strings) for everything there is."""
    out = []
    for notebook in edition.notebooks():
        where = edition.rel(notebook)
        out.append((edition.catalog(notebook), notebook_items(read(notebook), where), where, False))
    if edition.sources.is_file():
        out.append((edition.sources_po, page_items(edition.sources.read_text(encoding="utf-8"),
                                                   edition.rel(edition.sources)), edition.rel(edition.sources),
                    False))
    if edition.package.is_dir():
        items, _problems = message_items(edition)
        out.append((edition.package_po, items, "what vaeutils prints and draws (its own messages,\nand the "
                                               "hints, misconceptions and table headers the units pass it)", True))
    return out


def update(edition: Edition, echo=print) -> int:
    """Refresh every catalog from the English; returns the number of catalogs rewritten."""
    written = 0
    for path, items, what, _fields in catalogs_of(edition):
        comment, metadata = header(edition, what)
        old = load(path, edition)
        po, stats = merge(old, items, comment, metadata)
        text = render(po)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
            written += 1
        done = len([e for e in po if not e.obsolete and e.translated()])
        echo(f"{edition.rel(path)}: {done}/{len(items)} translated; {stats.line()}")
    for stale in stale_catalogs(edition):
        echo(f"{edition.rel(stale)}: no English notebook of that name any more (delete it, or keep it to copy from)")
    if edition.package.is_dir() and (problems := message_items(edition)[1]):
        echo(f"{len(problems)} message(s) a student would see in English (no catalog can hold them):")
        for problem in problems:
            echo(f"  {problem}")
    return written


def stale_catalogs(edition: Edition) -> list[Path]:
    folder = edition.catalogs / "notebooks"
    names = {edition.catalog(n).name for n in edition.notebooks()}
    return sorted(p for p in folder.glob("*.po") if p.name not in names) if folder.is_dir() else []


def build(edition: Edition, allow_missing: bool = False, only=(), echo=print) -> list[Problem]:
    """Write the Chinese notebooks and sources page (all or nothing); returns the problems that stopped it."""
    built, problems = build_all(edition, allow_missing, only)
    if problems:
        return problems
    for b in built:
        if not b.target.is_file() or b.target.read_text(encoding="utf-8") != b.text:
            write_atomic(b.target, b.text)
            echo(f"wrote {edition.rel(b.target)}")
        if b.english_cells:
            echo(f"{edition.rel(b.target)}: DRAFT, {b.english_cells} of {b.total} texts left in English "
                 f"(untranslated, fuzzy or changed)")
    if not only:
        for stale in stale_outputs(edition):
            stale.unlink()
            echo(f"removed {edition.rel(stale)} (its English page is gone)")
    return []


def _selected(path: Path, only) -> bool:
    """Whether the catalog ``path`` is one of ``only`` (prefixes of its name: 05, beta, sources, vaeutils)."""
    return not only or any(path.name.startswith(p) for p in only)


def check(edition: Edition, only=()) -> list[Problem]:
    """Everything that keeps the Chinese edition from being current; empty when CI may pass. ``only``: the
    catalogs whose name starts with one of these prefixes (05, beta, sources, vaeutils), for a translator."""
    problems = []
    try:
        cats = [c for c in catalogs_of(edition) if _selected(c[0], only)]
    except (I18nError, NotebookError) as err:
        return [Problem(edition.rel(edition.catalogs), "error", "", str(err))]
    built, build_problems = build_all(edition, only=only) if cats and not (
        only and all(c[0] == edition.package_po for c in cats)) else ([], [])
    problems += build_problems
    for b in built:
        if not b.target.is_file():
            problems.append(Problem(edition.rel(b.target), "differs", "", "missing; run `make zh` and commit it"))
        elif b.target.read_text(encoding="utf-8") != b.text:
            problems.append(Problem(edition.rel(b.target), "differs", "",
                                    "not what the English and the catalog give; run `make zh` and commit it"))
    for stale in [] if only else stale_outputs(edition):
        problems.append(Problem(edition.rel(stale), "stale", "", "no English page produces it; run `make zh`"))
    for stale in [] if only else stale_catalogs(edition):
        problems.append(Problem(edition.rel(stale), "stale", "", "no English notebook of that name"))
    # the package's catalog (vaeutils falls back to English silently, so CI is where a gap shows)
    if edition.package.is_dir() and _selected(edition.package_po, only):
        for text in message_items(edition)[1]:
            where, _, detail = text.partition(": ")
            problems.append(Problem(where, "untranslatable", "", detail))
    for path, items, _what, fields in cats:
        if path != edition.package_po:
            continue
        try:
            po = load(path, edition)
        except I18nError as err:
            problems.append(Problem(edition.rel(path), "error", "", str(err)))
            continue
        for item in items:
            problem = lookup(po, item, edition.rel(path), fields=fields)[1]
            if problem is not None:
                problems.append(problem)
    problems += glossary_check(edition, [c[0] for c in cats])
    return list(dict.fromkeys(problems))


def glossary_check(edition: Edition, catalogs) -> list[Problem]:
    """Every translated, current entry of ``catalogs`` against the glossary."""
    if not edition.glossary.is_file():
        return [Problem(edition.rel(edition.glossary), "error", "", "the glossary is missing")]
    terms = read_glossary(edition.glossary)
    problems = []
    for path in catalogs:
        po = load(path, edition)
        for e in po or []:
            if e.obsolete or e.fuzzy or not e.msgstr:
                continue
            for text in glossary_problems(e.msgid, e.msgstr, terms):
                problems.append(Problem(edition.rel(path), "glossary", _label(e), text))
    return problems


def report(problems: list[Problem], echo=print) -> None:
    """The problems, grouped by file and kind (cell ids listed together), then a count per kind."""
    groups: dict[tuple[str, str], list[Problem]] = {}
    for p in problems:
        groups.setdefault((p.where, p.kind), []).append(p)
    for (where, kind), ps in groups.items():
        if kind in ("untranslated", "missing") and len(ps) > 1:
            echo(f"{where}: {len(ps)} {kind}: {', '.join(p.key for p in ps)}")
            if ps[0].detail:
                echo(f"    ({ps[0].detail})")
        else:
            for p in ps:
                echo(str(p))
    counts = Counter(p.kind for p in problems)
    echo(f"{len(problems)} problem(s): " + ", ".join(f"{n} {k}" for k, n in counts.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit zh",
                                     description="the Chinese edition from gettext catalogs (i18n/README.md)")
    parser.add_argument("--root", type=Path, default=paths.ROOT, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("update", help="refresh the catalogs from the English units, sources page and vaeutils")
    b = sub.add_parser("build", help="write notebooks/zh/ from the English units and the catalogs")
    b.add_argument("--allow-missing", action="store_true",
                   help="a draft: untranslated and fuzzy texts stay English (their count is printed)")
    b.add_argument("--only", nargs="+", default=(), metavar="PREFIX",
                   help="only the notebooks whose name starts with PREFIX (05, beta, sources)")
    c = sub.add_parser("check", help="exit 1 unless notebooks/zh/ is what the catalogs give and nothing is "
                                     "fuzzy or untranslated")
    c.add_argument("--only", nargs="+", default=(), metavar="PREFIX",
                   help="only the catalogs whose name starts with PREFIX (05, beta, sources, vaeutils)")
    args = parser.parse_args(argv)
    edition = Edition(root=args.root.resolve())
    try:
        if args.command == "update":
            update(edition)
            return 0
        if args.command == "build":
            problems = build(edition, args.allow_missing, tuple(args.only))
            if problems:
                report(problems, echo=lambda s: print(s, file=sys.stderr))
                print("nothing written: translate these (or `build --allow-missing` for a draft)", file=sys.stderr)
                return 1
            return 0
        problems = check(edition, tuple(args.only))
    except (I18nError, NotebookError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if problems:
        report(problems)
        print("the Chinese edition is not current: `make zh` after translating (i18n/README.md)")
        return 1
    print(f"the Chinese edition is current: {len(edition.notebooks())} notebooks, the sources page, vaeutils")
    return 0


if __name__ == "__main__":
    sys.exit(main())
