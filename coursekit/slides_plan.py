"""Which cells of a unit become which slides: the selection (cell metadata ``slides``, see
:mod:`coursekit.slides` for the schema), the defaults derived when a cell carries none, and the
outline of a deck that :mod:`coursekit.slides_html` writes out.

    deck = plan_deck(executed_notebook, "05_beta_vae")
    for slide in deck.slides: print(slide.kind, slide.title, slide.visual)

Nothing here renders HTML; a :class:`Slide` holds Markdown (its title, its short text, its speaker
notes) and at most one :class:`Visual` (a figure or table output of a code cell, a table or display
formula of the prose, a code excerpt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .i18n import notebook_language

KEY = "slides"  # cell metadata: {"role": …, "title": …, "text": …, "excerpt": …, "minutes": …}
ROLES = ("slide", "notes", "figure", "exercise", "skip")
FIELDS = ("role", "title", "text", "excerpt", "minutes")
TEXT_WORDS = 40  # words of slide text at most (a derived lead stops at a sentence within this)
TITLE_SLIDE_WORDS = 50  # the "what you will learn" bullets of the title slide
EXCERPT_LINES = 14  # lines of code a slide can show at a readable size
TABLE_ROWS = 10  # rows of a table on one slide; a longer table continues on the next

IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")
TABLE_MIMES = ("text/html", "text/markdown")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_EXERCISE = re.compile(r"^\s*(?:\*\*|__)?\s*(?:Exercise\s+|练习\s*)(\d+)\b[^\n]*?(?:\*\*|__)", re.IGNORECASE)
# Inside the Exercises section a bold number alone also opens an exercise: "**2.** Compute ..."
_EXERCISE_NUMBER = re.compile(r"^\s*(?:\*\*|__)\s*(?:Exercise\s+|练习\s*)?(\d+)\s*[.:)]?\s*(?:\*\*|__)",
                              re.IGNORECASE)
_EXERCISE_HEADING = re.compile(r"^(?:Exercise\s+|练习\s*)(\d+)\b", re.IGNORECASE)
# The headings the deck reads, as the English units and the Chinese edition write them, and the word it writes
# on an exercise slide
HEADINGS = {"learn": ("what you will learn", "学习目标"), "plan": ("time plan", "时间安排"),
            "references": ("references", "参考文献"), "exercise": ("exercise", "练习"), "total": ("total", "合计")}
EXERCISE = {"en": "Exercise", "zh": "练习"}

_LIST_ITEM = re.compile(r"^(\s*)(?:[*+-]|\d+[.)])\s+")
_SECTION_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)[.)]?\s")


class SlideMetadataError(ValueError):
    """A cell's ``slides`` metadata the deck cannot follow; the message names cell and fix."""


# --------------------------------------------------------------------------- the pieces of a deck

@dataclass
class Visual:
    """What fills the slide below its text: one output of a code cell (``kind`` "figure" for an
    image, "table" for HTML/Markdown, "widget" for a widget's snapshot), or from the prose a
    "table", a "math" display formula or a "list" (references), or a "code" excerpt."""

    kind: str
    source: str = ""  # Markdown, TeX, code, or the output's HTML/base64 payload
    mime: str = ""
    cell: int | None = None
    output: int | None = None


@dataclass
class Slide:
    kind: str  # "title", "section" (opens a group), "sub" (below it), "exercise"
    title: str  # Markdown, one line
    text: str = ""  # Markdown shown on the slide
    notes: list[str] = field(default_factory=list)  # Markdown for the speaker notes
    visual: Visual | None = None
    cells: list[int] = field(default_factory=list)
    minutes: int | None = None
    explicit_text: bool = False
    formula: str = ""  # the first display formula of its prose: the visual of a slide that has none
    subtitle: str = ""
    number: int | None = None  # an exercise's number


@dataclass
class Deck:
    name: str
    title: str
    slides: list[Slide]
    plan: list[tuple[str, int]]  # the time plan's rows: (label, minutes)
    lang: str = "en"

    def groups(self) -> list[list[Slide]]:
        """Horizontal groups: a "title" or "section" slide and the slides below it."""
        out: list[list[Slide]] = []
        for s in self.slides:
            if s.kind in ("title", "section") or not out:
                out.append([s])
            else:
                out[-1].append(s)
        return out


# --------------------------------------------------------------------------- Markdown, by blocks

@dataclass
class Block:
    kind: str  # heading, para, list, table, math, code, html
    text: str
    level: int = 0


def blocks(markdown: str) -> list[Block]:
    """The Markdown of a cell cut into headings, paragraphs, lists, tables, display formulas
    (``$$ … $$``) and fenced code, in order (enough Markdown for the course's prose, not all of
    CommonMark)."""
    out: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if m := _HEADING.match(line):
            out.append(Block("heading", m.group(2), len(m.group(1))))
            i += 1
        elif stripped.startswith(("```", "~~~")):
            fence, j = stripped[:3], i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence):
                j += 1
            out.append(Block("code", "\n".join(lines[i:j + 1])))
            i = j + 1
        elif stripped.startswith("$$") or stripped.startswith(r"\begin{"):
            j = i
            closing = "$$" if stripped.startswith("$$") else r"\end{"
            rest = stripped[2:] if closing == "$$" else stripped
            while closing not in rest and j + 1 < len(lines):
                j += 1
                rest = lines[j]
            out.append(Block("math", "\n".join(lines[i:j + 1]).strip()))
            i = j + 1
        elif stripped.startswith("|"):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(Block("table", "\n".join(lines[i:j])))
            i = j
        elif _LIST_ITEM.match(line):
            j = i + 1
            while j < len(lines) and lines[j].strip() and (lines[j].startswith((" ", "\t"))
                                                          or _LIST_ITEM.match(lines[j])):
                j += 1
            out.append(Block("list", "\n".join(lines[i:j])))
            i = j
        elif stripped.startswith("<") and not stripped.startswith("<http"):
            j = i + 1
            while j < len(lines) and lines[j].strip():
                j += 1
            out.append(Block("html", "\n".join(lines[i:j])))
            i = j
        else:
            j = i + 1
            while j < len(lines) and lines[j].strip() and not (
                    _HEADING.match(lines[j]) or lines[j].strip().startswith(("$$", "|", "```"))
                    or _LIST_ITEM.match(lines[j])):
                j += 1
            out.append(Block("para", "\n".join(lines[i:j])))
            i = j
    return out


def join(blocks_: list[Block]) -> str:
    parts = []
    for b in blocks_:
        parts.append(f"{'#' * b.level} {b.text}" if b.kind == "heading" else b.text)
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- short text from prose

# A token is a formula, inline code, a link, or a run of other non-space characters (which stops where a
# formula or code starts: Chinese writes "（后验坍塌：$I(x; z)$" with no space before the maths).
_TOKEN = re.compile(r"\$\$.+?\$\$|\$[^$]+\$|`[^`]*`|\[[^\]]*\]\([^)]*\)|[^\s$`]+|\S", re.DOTALL)
_ABBREVIATIONS = {"al.", "e.g.", "i.e.", "vs.", "cf.", "etc.", "fig.", "eq.", "approx.", "resp."}


def words(markdown: str) -> int:
    """Words as a reader counts them: a formula, a piece of code or a link is one word."""
    text = re.sub(r"(?m)^\s*(?:[*+-]|\d+[.)]|#+)\s+", " ", markdown)
    return sum(1 for t in _TOKEN.findall(text) if re.search(r"\w|\$", t))


def _is_word(token: str) -> bool:
    return bool(re.search(r"\w|\$", token))


def _sentences(text: str) -> list[str]:
    """Sentences of one paragraph, cut after . ? ! followed by a capital, a digit or a formula."""
    text = " ".join(text.split())
    tokens = list(_TOKEN.finditer(text))
    out, start = [], 0
    for k, m in enumerate(tokens):
        tok = m.group()
        nxt = tokens[k + 1].group() if k + 1 < len(tokens) else ""
        plain = tok.rstrip("*_)\"'”’")
        if (plain.endswith((".", "?", "!")) and tok.lower() not in _ABBREVIATIONS and nxt
                and re.match(r"[\"'“(*_]*[A-Z0-9$`\[]", nxt)):
            out.append(text[start:m.end()].strip())
            start = m.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def _balance(text: str) -> str:
    """Close emphasis left open by a cut (``**`` pairs, then single ``*`` pairs)."""
    bare = re.sub(r"\$[^$]*\$|`[^`]*`", "", text)
    if bare.count("**") % 2:
        text += "**"
        bare += "**"
    if re.sub(r"\*\*", "", bare).count("*") % 2:
        text += "*"
    return text


def _cut(sentence: str, limit: int) -> str:
    """At most ``limit`` words of one sentence: up to a clause boundary when there is one in the
    second half, else at the limit, with an ellipsis."""
    if words(sentence) <= limit:
        return sentence
    kept, count = [], 0
    for m in _TOKEN.finditer(sentence):
        count += _is_word(m.group())
        if count > limit:
            break
        kept.append(m)
    for k in range(len(kept) - 1, max(len(kept) // 2, 1) - 1, -1):
        dash_follows = k + 1 < len(kept) and kept[k + 1].group() in ("—", "–")
        if kept[k].group().endswith((",", ";", ":")) or dash_follows:
            kept = kept[:k + 1]
            break
    text = sentence[:kept[-1].end()].rstrip(",;:—– ") if kept else ""
    return _balance(text) + "…"


def _first_clause(item: str, limit: int) -> str:
    """The head of a bullet: its first sentence, stopped at a colon, semicolon or parenthesis, in
    ``limit`` words at most."""
    first = _sentences(item)[0] if item.strip() else ""
    end = len(first)
    tokens = list(_TOKEN.finditer(first))
    for k, m in enumerate(tokens):
        tok = m.group()
        if tok.startswith("(") and k:
            end = tokens[k - 1].end()
            break
        if tok.endswith((":", ";")) and k >= 2:
            end = m.end() - 1
            break
    return _cut(_balance(first[:end].rstrip(",;:— ")), limit)


def list_items(markdown_list: str) -> list[str]:
    """The top-level items of a Markdown list, each joined into one line (without its marker)."""
    items: list[str] = []
    for line in markdown_list.splitlines():
        m = _LIST_ITEM.match(line)
        if m and not m.group(1):
            items.append(line[m.end():].strip())
        elif items:
            items[-1] += " " + line.strip()
    return items


def lead(markdown: str, limit: int = TEXT_WORDS) -> str:
    """The slide text derived from a piece of prose: the first paragraph's sentences while they fit
    in ``limit`` words (the first one cut at a clause if it alone is longer), or, when the prose
    opens with a list, the head of each item while they fit. Formulas, code and links stay whole."""
    for b in blocks(markdown):
        if b.kind == "para":
            out: list[str] = []
            for s in _sentences(b.text):
                if out and words(" ".join(out + [s])) > limit:
                    break
                out.append(_cut(s, limit) if not out else s)
                if words(" ".join(out)) >= limit or out[-1].endswith("…"):
                    break
            return " ".join(out)
        if b.kind == "list":
            items = list_items(b.text)
            budget = max(6, limit // max(len(items), 1))
            heads: list[str] = []
            for item in items:
                head = _first_clause(item, budget)
                if heads and words("\n".join(heads + [head])) > limit:
                    break
                heads.append(head)
            return "\n".join(f"- {h}" for h in heads)
        if b.kind in ("math", "table", "code", "heading"):
            return ""
    return ""


def exercise_name(text: str) -> str:
    """What an exercise's bold lead or heading adds to its number: "**Exercise 1 — a baseline.**"
    gives "a baseline" ("" when it is the number alone)."""
    m = re.match(r"\s*(?:\*\*|__)(.*?)(?:\*\*|__)", text) or re.match(r"\s*(.*)", text)
    name = re.sub(r"^\s*(?:Exercise\s+|练习\s*)?\d+", "", m.group(1).strip(), flags=re.IGNORECASE)
    name = name.strip(" .:;—–-")
    return name[1:-1].strip() if name.startswith("(") and name.endswith(")") else name


def _exercise_body(markdown: str) -> str:
    """The task without its bold lead ("**Exercise 2.**", "**Exercise 2 — name.**", "**2.**")."""
    m = re.match(r"\s*(?:\*\*|__)(.*?)(?:\*\*|__)", markdown)
    if m and re.match(r"\s*(?:Exercise\s+|练习\s*)?\d+", m.group(1), re.IGNORECASE):
        return markdown[m.end():].strip()
    return markdown.strip()


def exercise_lead(markdown: str, limit: int = TEXT_WORDS) -> str:
    """The text of an exercise's slide: its first sentence and its first question, within ``limit``
    words (the question alone when both do not fit)."""
    body = _exercise_body(markdown)
    paras = [b.text for b in blocks(body) if b.kind in ("para", "list")]
    sentences = [s for p in paras for s in _sentences(p)]
    if not sentences:
        return ""
    question = next((s for s in sentences if s.rstrip("*_ ").endswith("?")), None)
    chosen = [sentences[0]] if question in (None, sentences[0]) else [sentences[0], question]
    if words(" ".join(chosen)) > limit and question is not None:
        chosen = [question]
    if len(chosen) == 1 and question is None:
        return lead(body, limit)
    return _cut(" ".join(chosen), limit) if words(" ".join(chosen)) > limit else " ".join(chosen)


def plain_title(markdown: str) -> str:
    """A heading as text: emphasis and code marks gone, formulas kept."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"(\*\*|__|`)", "", text).strip()


# --------------------------------------------------------------------------- the time plan

def time_plan(nb) -> list[tuple[str, int]]:
    """The rows of the unit's Time plan table as ``(label, minutes)`` (empty when there is none)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        bs = blocks(cell.source)
        for k, b in enumerate(bs):
            if b.kind == "heading" and b.text.strip().lower().startswith(HEADINGS["plan"]):
                table = next((t for t in bs[k + 1:] if t.kind in ("table", "heading")), None)
                if table is None or table.kind != "table":
                    return []
                rows = []
                for line in table.text.splitlines():
                    cells = [c.strip() for c in line.strip().strip("|").split("|")]
                    if len(cells) < 2 or set(cells[0]) <= set("-: "):
                        continue
                    label, value = plain_title(cells[0]), plain_title(cells[-1])
                    if re.fullmatch(r"\d+", value) and label.lower() not in HEADINGS["total"]:
                        rows.append((label, int(value)))
                return rows
    return []


def section_minutes(plan: list[tuple[str, int]], title: str) -> int | None:
    """The minutes the time plan gives a ``## N. …`` section (by its number), or a named one."""
    title = plain_title(title)
    m = _SECTION_NUMBER.match(title)
    for label, minutes in plan:
        if m:
            lm = _SECTION_NUMBER.match(label)
            if lm and lm.group(1) == m.group(1):
                return minutes
        elif label.lower() == title.lower():
            return minutes
    return None


def exercise_minutes(plan: list[tuple[str, int]]) -> int | None:
    """Minutes the time plan gives the exercises (a row naming them, e.g. "Exercises" or "Summary
    and exercises")."""
    return next((m for label, m in plan if any(w in label.lower() for w in HEADINGS["exercise"])), None)


# --------------------------------------------------------------------------- cell roles

def selection(cell) -> dict:
    """The cell's ``slides`` metadata, checked: a dict with known keys and a known role."""
    meta = cell.metadata.get(KEY)
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise SlideMetadataError(f"metadata '{KEY}' must be an object like "
                                 f'{{"role": "notes"}}, got {type(meta).__name__}')
    unknown = sorted(set(meta) - set(FIELDS))
    if unknown:
        raise SlideMetadataError(f"metadata '{KEY}' has unknown key(s) {unknown}; "
                                 f"known: {list(FIELDS)}")
    role = meta.get("role")
    if role is not None and role not in ROLES:
        raise SlideMetadataError(f"metadata '{KEY}.role' is {role!r}; use one of {list(ROLES)}")
    for key in ("title", "text", "excerpt"):
        if key in meta and not isinstance(meta[key], str):
            raise SlideMetadataError(f"metadata '{KEY}.{key}' must be a string")
    if "minutes" in meta and not (isinstance(meta["minutes"], int) and meta["minutes"] > 0):
        raise SlideMetadataError(f"metadata '{KEY}.minutes' must be a positive whole number")
    return dict(meta)


def is_graded(cell) -> bool:
    """An nbgrader solution or test cell (never on a slide: the class sees the slides); a "task"
    cell is the statement of a task, and stays."""
    meta = cell.metadata.get("nbgrader") or {}
    return bool(meta.get("solution") or meta.get("grade"))


def is_progress_bar(html: str) -> bool:
    """A widget's snapshot that is only a progress bar (tqdm's): no picture to show."""
    return "<progress" in html and "<img" not in html and "<svg" not in html


def shown_outputs(cell) -> list[tuple[int, Visual]]:
    """The outputs of a code cell that can fill a slide: images, tables (HTML or Markdown) and
    widgets (as the snapshot :func:`coursekit.site.snapshot_widgets` made); printed text is left to
    the notes."""
    found = []
    for k, out in enumerate(cell.get("outputs", [])):
        shown = out.get("output_type") in ("display_data", "execute_result")
        data = out.get("data", {}) if shown else {}
        for mime in IMAGE_MIMES:
            if mime in data:
                payload = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                found.append((k, Visual("figure", payload, mime, cell=None, output=k)))
                break
        else:
            if WIDGET_VIEW in data or "vaelab-snapshot" in "".join(data.get("text/html", "")):
                html = "".join(data.get("text/html", ""))
                if not is_progress_bar(html):
                    found.append((k, Visual("widget", html, "text/html", output=k)))
            elif "text/markdown" in data or "text/html" in data:
                mime = "text/markdown" if "text/markdown" in data else "text/html"
                found.append((k, Visual("table", "".join(data[mime]), mime, output=k)))
    return found


def table_rows(markdown: str) -> list[list[str]] | None:
    """The cells of a Markdown table, row by row (the header first, the delimiter row left out), or
    None when ``markdown`` is not one table. Generated tables do not always escape a ``|`` inside a
    cell (``p(z|x)``, ``|KL − C|``): a row with more cells than the delimiter row is split again at
    the pipes that stand between spaces only."""
    lines = [line.strip() for line in markdown.strip().splitlines() if line.strip()]
    if (len(lines) < 2 or not all(line.startswith("|") for line in lines)
            or not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?", lines[1])):
        return None
    width = len(_cells(lines[1], strict=False))  # the delimiter row says how many columns
    rows = []
    for line in lines[:1] + lines[2:]:
        cells = _cells(line, strict=False)
        if len(cells) > width:
            cells = _cells(line, strict=True)
        rows.append((cells + [""] * width)[:width])
    return rows


def _cells(line: str, strict: bool) -> list[str]:
    """A row's cells, split at pipes outside code, formulas and escapes (``strict``: and only at
    pipes with a space or the line's end on both sides)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells, start, code, math = [], 0, False, False
    for k, ch in enumerate(body):
        if ch == "`":
            code = not code
        elif ch == "$" and not code:
            math = not math
        elif ch == "|" and not code and not math and (k == 0 or body[k - 1] != "\\"):
            spaced = (k == 0 or body[k - 1] == " ") and (k + 1 == len(body) or body[k + 1] == " ")
            if spaced or not strict:
                cells.append(body[start:k])
                start = k + 1
    cells.append(body[start:])
    return [c.strip().replace("\\|", "|") for c in cells]


def split_table(markdown: str, rows: int = TABLE_ROWS) -> list[str]:
    """A Markdown table of more than ``rows`` rows cut into tables of at most ``rows`` rows (as even
    as can be), each with the header; anything that is not one plain table comes back whole."""
    lines = [line for line in markdown.strip().splitlines() if line.strip()]
    if (len(lines) < 3 or not all(line.lstrip().startswith("|") for line in lines)
            or not set(lines[1].replace("|", "").strip()) <= set("-: ")):
        return [markdown]
    head, body = lines[:2], lines[2:]
    if len(body) <= rows:
        return [markdown]
    parts = -(-len(body) // rows)
    size = -(-len(body) // parts)
    return ["\n".join(head + body[k:k + size]) for k in range(0, len(body), size)]


def _split_visuals(visuals: list[Visual]) -> list[Visual]:
    out = []
    for v in visuals:
        if v.kind == "table" and v.mime == "text/markdown":
            out += [Visual(v.kind, part, v.mime, v.cell, v.output)
                    for part in split_table(v.source)]
        else:
            out.append(v)
    return out


def derived_role(cell) -> str:
    """The role of a cell that says nothing: headings start slides, prose goes to the notes (with
    its tables shown), code is skipped unless it draws a figure or a table; nbgrader cells and
    Jupyter's ``slideshow`` "skip" are skipped, its "notes" go to the notes."""
    if is_graded(cell):
        return "skip"
    show = cell.metadata.get("slideshow")
    slide_type = show.get("slide_type") if isinstance(show, dict) else None
    if slide_type == "skip":
        return "skip"
    if cell.cell_type == "markdown":
        if slide_type == "notes":
            return "notes"
        bs = blocks(cell.source)
        if any(b.kind == "heading" for b in bs):
            return "slide"
        if bs and bs[0].kind == "para" and _EXERCISE.match(bs[0].text):
            return "exercise"
        return "figure" if any(b.kind == "table" for b in bs) else "notes"
    if cell.cell_type == "code":
        return "figure" if shown_outputs(cell) else "skip"
    return "skip"


def role(cell) -> str:
    return selection(cell).get("role") or derived_role(cell)


def excerpt_lines(spec: str, source: str) -> str:
    """The lines of ``source`` that ``spec`` names: "all", "3-8", "3-8, 12" (1-based, inclusive)."""
    lines = source.splitlines()
    if spec.strip().lower() == "all":
        return "\n".join(lines)
    chosen: list[int] = []
    for part in re.split(r"[,\s]+", spec.strip().lower().removeprefix("lines").strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise SlideMetadataError(f"metadata '{KEY}.excerpt' is {spec!r}; write \"all\" or "
                                     'line ranges like "3-8, 12"')
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= lo <= hi <= len(lines):
            raise SlideMetadataError(f"metadata '{KEY}.excerpt' {spec!r} names lines outside "
                                     f"1-{len(lines)}")
        chosen.extend(range(lo, hi + 1))
    return "\n".join(lines[k - 1] for k in sorted(set(chosen)))


# --------------------------------------------------------------------------- the outline

class _Builder:
    def __init__(self, name: str, plan: list[tuple[str, int]], lang: str = "en"):
        self.name, self.plan, self.lang = name, plan, lang
        self.slides: list[Slide] = []
        self.section = ""  # title of the current ## group
        self.section_kind = ""  # "learn", "references", "exercises" or ""
        self.intro: list[str] = []  # prose after a visual, ending in ":": it opens the next one
        self.open_lead = False  # the next prose gives the current slide its text
        self.title = name

    @property
    def current(self) -> Slide | None:
        return self.slides[-1] if self.slides else None

    def new(self, kind: str, title: str, cell: int, text: str | None = None) -> Slide:
        self.flush_intro()
        slide = Slide(kind, title, cells=[cell])
        if text is not None:
            slide.text, slide.explicit_text = text, True
        self.slides.append(slide)
        self.open_lead = text is None
        return slide

    def flush_intro(self) -> None:
        if self.intro and self.current:
            self.current.notes.extend(self.intro)
        self.intro = []

    def note(self, markdown: str, cell: int) -> None:
        if not markdown.strip():
            return
        if self.current is None:
            self.new("title", self.name, cell)
        slide = self.current
        if cell not in slide.cells:
            slide.cells.append(cell)
        if self.open_lead and not slide.explicit_text and slide.kind != "title":
            slide.text = exercise_lead(markdown) if slide.kind == "exercise" else lead(markdown)
            self.open_lead = False
        if not slide.formula:
            slide.formula = next((b.text for b in blocks(markdown) if b.kind == "math"), "")
        if slide.visual is not None and markdown.rstrip().endswith(":"):
            self.intro.append(markdown)
        else:
            self.flush_intro()
            slide.notes.append(markdown)

    def show(self, visual: Visual, cell: int, text: str | None = None,
             title: str | None = None) -> None:
        slide = self.current
        if (slide is None or slide.visual is not None or slide.kind in ("title", "exercise")
                or title):
            intro = self.intro
            self.intro = []
            slide = self.new("sub", title or self.section or self.title, cell, text)
            if intro:
                slide.notes.extend(intro)
                if text is None:
                    slide.text, slide.explicit_text = lead(intro[-1]), True
            self.open_lead = False
        elif text is not None:
            slide.text, slide.explicit_text = text, True
        slide.visual = visual
        self.open_lead = False
        if cell not in slide.cells:
            slide.cells.append(cell)

    def heading(self, level: int, text: str, cell: int, meta: dict) -> None:
        low = plain_title(text).lower()
        if level == 1:
            self.title = text
            self.new("title", meta.get("title", text), cell, meta.get("text"))
            self.section, self.section_kind = "", ""
            return
        if low.startswith(HEADINGS["learn"]) and self.current and self.current.kind == "title":
            self.section_kind = "learn"
            self.current.subtitle = text
            self.open_lead = False
            return
        exercise = _EXERCISE_HEADING.match(plain_title(text))
        if exercise and self.section_kind == "exercises":
            self.exercise(int(exercise.group(1)), "", cell, meta, title=text)
            return
        if level == 2 or not self.slides:
            self.section = text
            self.section_kind = ("references" if low.startswith(HEADINGS["references"]) else
                                 "exercises" if any(w in low for w in HEADINGS["exercise"]) else "")
            slide = self.new("section", meta.get("title", text), cell, meta.get("text"))
            slide.minutes = section_minutes(self.plan, text)
            if self.section_kind == "exercises":
                slide.minutes = exercise_minutes(self.plan)
        else:
            self.new("sub", meta.get("title", text), cell, meta.get("text"))

    def exercise(self, number: int, markdown: str, cell: int, meta: dict, title: str = "") -> None:
        slide = self.new("exercise", f"{EXERCISE[self.lang]} {number}", cell, meta.get("text"))
        slide.subtitle = exercise_name(title or markdown)
        slide.minutes = meta.get("minutes")
        slide.number = number
        if markdown.strip():
            slide.notes.append(markdown)
            if not slide.explicit_text:
                slide.text = exercise_lead(markdown)
        self.open_lead = not markdown.strip() and not slide.explicit_text

    def prose(self, markdown: str, cell: int, meta: dict, explicit_role: str | None) -> None:
        """A markdown cell with role slide/figure/notes/exercise (derived structure inside)."""
        parts = blocks(markdown)
        pending: list[Block] = []
        first_slide = True
        # "slide" on a cell with headings: its headings open the slides (prose before the first one
        # stays with the slide before); on a cell without, the cell opens one itself
        opens = explicit_role == "exercise" or (explicit_role == "slide"
                                                and not any(b.kind == "heading" for b in parts))

        def flush():
            nonlocal pending
            if pending:
                self.body(pending, cell)
            pending = []

        for index, b in enumerate(parts):
            number = None
            if b.kind == "para":
                number = _EXERCISE.match(b.text) or (self.section_kind == "exercises"
                                                     and _EXERCISE_NUMBER.match(b.text))
            if b.kind == "heading":
                flush()
                self.heading(b.level, b.text, cell, meta if first_slide else {})
                first_slide = False
            elif number and (self.section_kind == "exercises" or explicit_role == "exercise"):
                flush()
                rest = parts[index + 1:]
                stop = next((k for k, r in enumerate(rest) if r.kind == "heading"
                             or (r.kind == "para" and _EXERCISE_NUMBER.match(r.text))), len(rest))
                body = [b, *rest[:stop]]
                self.exercise(int(number.group(1)), join(body), cell, meta if first_slide else {})
                first_slide = False
                for r in rest[:stop]:
                    r.kind = "done"
            elif b.kind != "done":
                if first_slide and opens and not pending:
                    title = meta.get("title") or self.section or self.title
                    if explicit_role == "exercise":
                        done = len([s for s in self.slides if s.kind == "exercise"])
                        self.exercise(done + 1, markdown, cell, meta)
                        return
                    self.new("sub", title, cell, meta.get("text"))
                    first_slide = False
                pending.append(b)
        flush()

    def body(self, parts: list[Block], cell: int) -> None:
        """Prose under a heading: notes (and the slide's text); its tables are shown, the references
        listed; "what you will learn" becomes the title slide's list."""
        md = join(parts)
        if self.section_kind == "learn" and self.current and self.current.kind == "title":
            slide = self.current
            if cell not in slide.cells:
                slide.cells.append(cell)
            if not slide.explicit_text and not slide.text:
                slide.text = lead(md, TITLE_SLIDE_WORDS)
            heading = plain_title(slide.subtitle or "What you will learn")
            slide.notes.append(f"**{heading}**\n\n{md}")
            return
        if self.section_kind == "references" and self.current and self.current.visual is None:
            lists = [b for b in parts if b.kind == "list"]
            if lists:
                self.current.visual = Visual("list", "\n\n".join(b.text for b in lists))
                self.open_lead = False
        tables = [b for b in parts if b.kind == "table"]
        prose = [b for b in parts if b.kind != "table"]
        if prose:
            self.note(join(prose), cell)
        for t in _split_visuals([Visual("table", b.text, "text/markdown", cell=cell)
                                 for b in tables]):
            self.show(t, cell)


def plan_deck(nb, name: str) -> Deck:
    """The outline of the deck of an executed unit ``nb`` (widgets already snapshotted): every cell
    placed by its role, the time plan's minutes on the groups and the exercises."""
    plan, lang = time_plan(nb), notebook_language(nb)
    b = _Builder(name, plan, lang)
    for index, cell in enumerate(nb.cells):
        try:
            meta = selection(cell)
            r = meta.get("role") or derived_role(cell)
            if r == "skip":
                continue
            if cell.cell_type == "markdown":
                if r == "notes":
                    b.note(cell.source, index)
                else:
                    b.prose(cell.source, index, meta, meta.get("role"))
            elif cell.cell_type == "code":
                code(b, cell, index, meta, r)
        except SlideMetadataError as err:
            raise SlideMetadataError(f"cell {index}: {err}") from None
    if not b.slides:
        b.new("title", name, 0)
    b.flush_intro()
    for s in b.slides:
        if s.kind == "title" and not s.text and s.notes:
            s.text = lead(s.notes[0])
        if s.visual is None and s.formula and s.kind not in ("title", "exercise"):
            s.visual = Visual("math", s.formula)
    _exercise_minutes(b.slides, plan)
    title = next((s.title for s in b.slides if s.kind == "title"), name)
    return Deck(name, title, b.slides, plan, lang)


def code(b: _Builder, cell, index: int, meta: dict, r: str) -> None:
    if r == "notes":
        b.note(f"```python\n{cell.source}\n```", index)
        return
    visuals = _split_visuals([v for _, v in shown_outputs(cell)])
    if not visuals and meta.get("role") == "figure":  # asked for: the printed text
        printed = "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                          if o.get("output_type") == "stream")
        visuals = [Visual("output", printed.rstrip())] if printed.strip() else []
    for v in visuals:
        v.cell = index
    excerpt = meta.get("excerpt")
    if excerpt:
        lines = excerpt_lines(excerpt, cell.source)
        if len(lines.splitlines()) > EXCERPT_LINES:
            raise SlideMetadataError(f"the excerpt has {len(lines.splitlines())} lines; a slide "
                                     f"shows {EXCERPT_LINES} at most (name fewer in "
                                     f"'{KEY}.excerpt')")
        visuals.insert(0, Visual("code", lines, cell=index))
    if r == "slide" and not visuals:
        b.new("sub", meta.get("title") or b.section or b.title, index, meta.get("text"))
        return
    for k, v in enumerate(visuals):
        first = k == 0
        b.show(v, index, text=meta.get("text") if first else None,
               title=(meta.get("title") if first and (r == "slide" or meta.get("title")) else None)
               or (b.section or b.title if first and r == "slide" else None))


def _exercise_minutes(slides: list[Slide], plan) -> None:
    """Minutes per exercise: the cell's own, else the time plan's exercise minutes shared among the
    rest."""
    exercises = [s for s in slides if s.kind == "exercise"]
    total = exercise_minutes(plan)
    if not exercises or total is None:
        return
    fixed = sum(s.minutes for s in exercises if s.minutes)
    rest = [s for s in exercises if not s.minutes]
    if rest:  # whole minutes that add up to the time plan's
        each, extra = divmod(max(total - fixed, len(rest)), len(rest))
        for k, s in enumerate(rest):
            s.minutes = each + (k < extra)


def derived_tags(nb) -> list[dict]:
    """The selection a notebook gets by default, one ``slides`` dict per cell (its own where it has
    one), for ``python -m coursekit slides --write-tags``."""
    out = []
    for cell in nb.cells:
        meta = selection(cell)
        out.append({**meta, "role": meta.get("role") or derived_role(cell)})
    return out
