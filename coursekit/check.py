"""The check of a unit against the unit shape (../DESIGN: What you will learn, Before this unit, a Time plan
that fits a session and agrees with the content, short code cells, graded exercises with nbgrader's metadata and
their wrong answers, Summary, References), and of what a student cannot follow (links that break or leave the
folder a student opens, repository paths a student does not have).

    python -m coursekit check notebooks            # every NN_*.ipynb of the folder, and its Markdown pages
    python -m coursekit check notebooks/05_beta_vae.ipynb

For each unit it prints the session time estimated from the content, section by section, beside the Time plan:
prose at 100 words a minute (words of Markdown cells), code at 15 s a line (non-empty lines of code cells),
counted per ``## `` section from the first numbered section through Summary. The Exercises count as the
minutes of their Time plan row; ``## Going further``, ``## References`` and all after them are not counted. The
opening (title, What you will learn, Before this unit, Time plan, setup cell) counts toward a first row named
"Setup" (or "Opening", "Introduction"), else toward section 1; a Summary without a row of its own counts toward
the last numbered section. Problems: an estimate over 90 minutes, a row more than 15 % (and more than half a
minute) away from its sections' estimate, a section without a row, a row that names no section.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path
from urllib.parse import unquote

from . import paths
from .notebooks import NotebookError, missing_paths, read, usage_error
from .student import CODE_STUB, GRADE_ID, HIDDEN_TESTS, SOLUTION, _has_points, _nbgrader, _replace_region, _where

HEADINGS = ("What you will learn", "Before this unit", "Time plan", "Summary", "Exercises", "References")
MAX_MINUTES = 90
MAX_CELL_LINES = 25
WORDS_PER_MINUTE = 100
MINUTES_PER_CODE_LINE = 0.25
ROW_TOLERANCE, ROW_SLACK_MINUTES = 0.15, 0.5
EXERCISES_PER_UNIT = (3, 4)
MIN_WRONG_ANSWERS = 3
EXERCISE_KINDS = ("compute", "predict-then-check", "find-the-bug", "explain-a-measurement", "design-a-run")
EXERCISES_DIR = Path("docs") / "instructor" / "exercises"  # beside notebooks/, for NN_name.yaml
REPO_FOLDERS = ("vaeutils", "tests", "benchmarks", "coursekit", "docs")


_HEADING = re.compile(r"^\s{0,3}(?:#{1,6}\s+(?P<h>.+?)\s*#*\s*$|\*\*(?P<b>[^*]+)\*\*)")


def _headings(nb) -> dict[str, tuple[int, int]]:
    """Where (cell, line) each of HEADINGS first appears, as a Markdown heading or a bold lead-in."""
    found = {}
    for ci, cell in enumerate(nb.cells):
        for li, line in enumerate(cell.source.splitlines() if cell.cell_type == "markdown" else ()):
            text = (m.group("h") or m.group("b")).strip().lower() if (m := _HEADING.match(line)) else ""
            for h in (h for h in HEADINGS if text.startswith(h.lower())):
                found.setdefault(h, (ci, li))
    return found


def _table_after(nb, ci: int, li: int) -> list[list[str]]:
    """The rows of the first Markdown table after line ``li`` of cell ``ci``, before the next heading."""
    lines, rows = nb.cells[ci].source.splitlines()[li + 1:], []
    for cell in itertools.takewhile(lambda c: c.cell_type == "markdown", nb.cells[ci + 1:]):
        lines += cell.source.splitlines()
    for line in lines:
        if line.lstrip().startswith("#"):
            break
        if line.strip().startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r)]


def _is_total(label: str) -> bool:
    return label.strip("*_ ").lower() in ("total", "in total", "sum")  # the total row, not a section on TC


def time_plan_rows(rows: list[list[str]]) -> tuple[list[tuple[str, float]], float | None, list[str]]:
    """``(rows as (label, minutes) without the total row, the stated total or None, problems)`` of a Time plan
    table given as its rows of cells, header first."""
    if len(rows) < 2:
        return [], None, ["the Time plan has no table of sections and minutes"]
    col = next((i for i, c in enumerate(rows[0]) if "min" in c.lower()), None)
    if col is None:
        return [], None, [f"the Time plan table has no minutes column (headers: {rows[0]}); name one 'minutes'"]
    found, stated, problems = [], None, []
    for row in rows[1:]:
        m = re.match(r"(\d+(?:\.\d+)?)", row[col].strip("* ") if col < len(row) else "")
        if m is None:
            problems.append(f"the Time plan row {row} has no number of minutes")
        elif _is_total(row[0]):
            stated = float(m.group(1))
        else:
            found.append((row[0].strip("*_ "), float(m.group(1))))
    return found, stated, problems


def time_plan_minutes(rows: list[list[str]]) -> tuple[float, list[str]]:
    """The minutes a time-plan table adds up to (a "total" row is checked, not added), and its problems."""
    found, stated, problems = time_plan_rows(rows)
    total = sum(m for _, m in found)
    if stated is not None and stated != total:
        problems.append(f"the Time plan says a total of {stated:g} min but its rows add up to {total:g}")
    return total, problems


def _time_plan(nb) -> tuple[list[tuple[str, float]], list[str]]:
    at = _headings(nb)
    if "Time plan" not in at:
        return [], []
    found, _, _ = time_plan_rows(_table_after(nb, *at["Time plan"]))
    return found, []


def _shape_problems(nb) -> list[str]:
    at = _headings(nb)
    problems = [f"no heading '{h}' (write it as '## {h}')" for h in HEADINGS if h not in at]
    present = [h for h in HEADINGS if h in at]
    if [at[h] for h in present] != sorted(at[h] for h in present):
        problems.append(f"the headings are out of order: {', '.join(sorted(present, key=at.get))} "
                        f"(expected {', '.join(present)})")
    if "Time plan" in at:
        minutes, bad = time_plan_minutes(_table_after(nb, *at["Time plan"]))
        problems += bad
        if minutes > MAX_MINUTES:
            problems.append(f"the Time plan adds up to {minutes:g} min, over the {MAX_MINUTES} of a session")
    return problems


# --------------------------------------------------------------------------- the session-time estimate

_H2 = re.compile(r"^##\s+(?!#)(?P<t>.*?)\s*#*\s*$")
_NUMBERED = re.compile(r"^(\d+)(?:\.\d+)*\.?(?=\s|$)")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_SETUP = re.compile(r"^(set[- ]?up|opening|introduction|intro\b|start)", re.I)
_UNCOUNTED = ("going further", "references")


@dataclasses.dataclass
class Section:
    """A ``## `` section of a unit as the estimate counts it: ``key`` is "opening", the section number ("4"),
    "summary", "exercises", or the lower-case title of another heading."""
    key: str
    title: str
    words: int = 0
    code_lines: int = 0

    @property
    def minutes(self) -> float:
        return self.words / WORDS_PER_MINUTE + self.code_lines * MINUTES_PER_CODE_LINE

    @property
    def label(self) -> str:
        return {"opening": "setup", "summary": "summary", "exercises": "exercises"}.get(
            self.key, f"{self.key}." if self.key.isdigit() else self.title)


def count_words(markdown: str) -> int:
    """Words of Markdown prose: tokens with a letter or digit, a link counted by its text, tags dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"<[^>]+>", " ", text)
    return sum(1 for token in text.split() if re.search(r"\w", token))


def _section_key(title: str, seen_numbered: bool) -> str | None:
    """The key of a ``## title`` heading; None for Going further / References (nothing after is counted)."""
    lower = title.strip("*_ ").lower()
    if m := _NUMBERED.match(lower):
        return m.group(1)
    for key in ("summary", "exercises"):
        if lower.startswith(key):
            return key
    if lower.startswith(_UNCOUNTED):
        return None
    return lower if seen_numbered else "opening"


def sections(nb) -> list[Section]:
    """The counted sections of a unit, in order: the opening, numbered sections, Summary, Exercises and any
    other ``## `` heading among them; stops at Going further or References."""
    found = [Section("opening", "opening")]
    numbered = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            found[-1].code_lines += sum(1 for line in cell.source.splitlines() if line.strip())
            continue
        if cell.cell_type != "markdown":
            continue
        fenced, chunk = False, []
        for line in cell.source.splitlines():
            m = None if fenced else _H2.match(line)
            if _FENCE.match(line):
                fenced = not fenced
            if m is None:
                chunk.append(line)
                continue
            found[-1].words += count_words("\n".join(chunk))
            chunk = [m.group("t")]
            key = _section_key(m.group("t"), numbered)
            if key is None:
                return found
            numbered = numbered or key.isdigit()
            if key != found[-1].key:
                found.append(Section(key, m.group("t").strip()))
        found[-1].words += count_words("\n".join(chunk))
    return found


def _row_keys(label: str, others: dict[str, str]) -> set[str]:
    """The section keys a Time plan row names: "4. …" or "4–5 …", "Exercises", "Summary", "Setup", or the title
    of another heading."""
    lower = label.strip("*_ ").lower().lstrip("§ ")
    if m := re.match(r"(\d+)(?:\s*[–—-]\s*(\d+))?(?:\.\d+)*\.?(?=\s|$|[.:])", lower):
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        return {str(n) for n in range(first, max(first, last) + 1)}
    for key in ("exercises", "summary"):
        if lower.startswith(key.rstrip("s")):
            return {key}
    if _SETUP.match(lower):
        return {"opening"}
    return {key for key, title in others.items() if title.startswith(lower) or lower.startswith(title)}


@dataclasses.dataclass
class Estimate:
    """The session-time estimate of a unit: ``parts`` are ``(label, estimated minutes, planned minutes or
    None, note)``; ``problems`` are sentences (without the unit's name)."""
    total: float
    plan_total: float | None
    parts: list[tuple[str, float, float | None, str]]
    problems: list[str]

    def line(self, name: str) -> str:
        plan = "no time plan" if self.plan_total is None else f"time plan {self.plan_total:g}"
        parts = ", ".join(f"{label} {est:.1f} (" + ("no row" if p is None else f"plan {p:g}") + note + ")"
                          for label, est, p, note in self.parts)
        return f"{name}: {self.total:.0f} min by the estimate ({plan}); sections: {parts}"


def _agrees(plan: float, est: float) -> bool:
    return abs(plan - est) <= max(ROW_TOLERANCE * est, ROW_SLACK_MINUTES) + 1e-9


def estimate(nb) -> Estimate:
    """The session time of unit ``nb`` estimated from its content, beside its Time plan (module docstring)."""
    secs = {s.key: s for s in sections(nb)}
    rows, problems = _time_plan(nb)
    others = {k: s.title.lower() for k, s in secs.items() if not k.isdigit() and k not in ("opening", "summary",
                                                                                            "exercises")}
    groups: dict[frozenset, float] = {}
    labels: dict[frozenset, list[str]] = {}
    for label, minutes in rows:
        keys = frozenset(_row_keys(label, others))
        if not keys:
            problems.append(f"the Time plan row '{label}' names no section: start it with the section number "
                            "('4. …'), or 'Exercises', 'Summary', 'Setup'")
        elif "summary" in label.lower() and "exercise" in label.lower():
            problems.append(f"the Time plan row '{label}' joins Summary and Exercises: give the Exercises a row "
                            "of their own (they count as its minutes)")
        else:
            groups[keys] = groups.get(keys, 0.0) + minutes
            labels.setdefault(keys, []).append(label)
    keyed = {}
    for keys in groups:
        for k in keys:
            if k in keyed:
                problems.append(f"section {secs[k].label if k in secs else k} is in two Time plan rows")
            keyed[k] = keys
    minutes = {k: s.minutes for k, s in secs.items()}
    if "exercises" in secs:
        minutes["exercises"] = groups.get(keyed.get("exercises", frozenset()), 0.0)
    numbered = [k for k in secs if k.isdigit()]
    merged = {}  # key -> the key whose row it counts toward
    if "opening" not in keyed and numbered:
        merged["opening"] = numbered[0]
    if "summary" in secs and "summary" not in keyed and numbered:
        merged["summary"] = numbered[-1]
    for k, into in merged.items():
        minutes[into] += minutes.pop(k)
    parts, seen = [], set()
    for k, sec in secs.items():
        if k in merged:
            continue
        keys = keyed.get(k)
        if keys is None:
            problems.append(f"section '{sec.title}' has no Time plan row (start a row with "
                            f"'{sec.label if k.isdigit() else sec.title}')")
            parts.append((sec.label, minutes[k], None, ""))
            continue
        if keys in seen:
            continue
        seen.add(keys)
        est, plan = sum(minutes.get(x, 0.0) for x in keys), groups[keys]
        label = "–".join(sorted(secs[x].label.rstrip(".") for x in keys if x in secs)) or sec.label
        label = label + "." if label[-1].isdigit() else label
        note = "".join(f"; with the {secs[w].label if w == 'summary' else 'opening'}"
                       for w, into in merged.items() if into in keys)
        parts.append((label, est, plan, note))
        if k != "exercises" and not _agrees(plan, est):
            named = "' + '".join(labels[keys])
            problems.append(f"the Time plan gives '{named}' {plan:g} min but the estimate of the section is "
                            f"{est:.1f} min{note.replace(';', ',')} (more than {ROW_TOLERANCE:.0%} apart): "
                            "change the row or the section")
    total = sum(minutes.values())
    if total > MAX_MINUTES:
        problems.append(f"{total:.0f} min by the estimate, over the {MAX_MINUTES} of a session: move what does not "
                        "fit to '## Going further' (after the Exercises, outside the time plan)")
    return Estimate(total, sum(m for _, m in rows) if rows else None, parts, problems)


# --------------------------------------------------------------------------- links and paths a student can follow

_SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
_MD_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.M)
_HTML_ATTR = re.compile(r"<[a-zA-Z][^>]*?\s(?:href|src)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.S)
_ID_ATTR = re.compile(r"\s(?:id|name)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_FENCED = re.compile(r"^\s{0,3}(```|~~~).*?^\s{0,3}\1", re.S | re.M)
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)


def _without_code(markdown: str) -> str:
    return _INLINE_CODE.sub(" ", _FENCED.sub(" ", markdown))


def markdown_links(markdown: str) -> list[str]:
    """Every link and image target of Markdown text (inline, reference-style, HTML href/src), outside code."""
    text = _without_code(markdown)
    found = [m.group(1).strip("<>") for m in _MD_LINK.finditer(text)]
    found += [m.group(1) for m in _REF_LINK.finditer(text)]
    return found + html_links(text)


def html_links(html: str) -> list[str]:
    """The href and src targets of HTML text."""
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _HTML_ATTR.finditer(html)]


def _slugs(heading: str) -> set[str]:
    """The anchors a heading gets: JupyterLab's (spaces to '-') and GitHub's/MyST's (lower case, no
    punctuation)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[*_`]", "", re.sub(r"<[^>]+>", "", text)).strip()
    return {text.replace(" ", "-"), re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")}


def anchors_of_markdown(markdown: str) -> set[str]:
    """The anchors Markdown text defines: its headings and its HTML ``id``/``name`` attributes."""
    found = {m.group(1) if m.group(1) is not None else m.group(2) for m in _ID_ATTR.finditer(markdown)}
    for line in _FENCED.sub(" ", markdown).splitlines():
        if m := re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line):
            found |= _slugs(m.group(1))
    return found


def _markdown_of(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


_ANCHORS: dict[tuple, set[str]] = {}  # (path, mtime, size) -> anchors: a site's pages are linked many times


def anchors_of(path: Path) -> set[str]:
    """The anchors a page defines (a notebook's Markdown cells, a Markdown file, or an HTML page's ids)."""
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _ANCHORS:
        _ANCHORS[key] = _read_anchors(path)
    return _ANCHORS[key]


def _read_anchors(path: Path) -> set[str]:
    if path.suffix == ".ipynb":
        return anchors_of_markdown(_markdown_of(read(path)))
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix in (".html", ".htm"):
        return {m.group(1) if m.group(1) is not None else m.group(2) for m in _ID_ATTR.finditer(text)}
    return anchors_of_markdown(text)


def link_problem(target: str, page: Path, root: Path, own_anchors: set[str] | None = None,
                 on_disk: bool = True) -> str | None:
    """Why the relative link ``target`` on ``page`` does not work for a student who opened ``root``: it leaves
    ``root``, its file does not exist, or its anchor is not on the page it names. None when it works (or is not
    a relative link). ``own_anchors``: the anchors of ``page`` itself (as checked, perhaps not yet saved);
    ``on_disk=False``: the page is not on disk, so only links leaving ``root`` and its own anchors are checked."""
    target = target.strip()
    if not target or _SCHEME.match(target):
        return None
    file_part, _, anchor = target.partition("#")
    file_part = unquote(file_part.split("?")[0])
    root = Path(root).resolve()
    if file_part:
        if file_part.startswith("/"):
            return f"link '{target}' is an absolute path: link relative to the page"
        dest = (Path(page).resolve().parent / file_part).resolve()
        if dest != root and root not in dest.parents:
            return f"link '{target}' leaves {root.name}/, the folder a student opens"
        if not on_disk:
            return None
        if not dest.exists():
            return f"link '{target}': {dest.relative_to(root)} does not exist"
    else:
        dest = Path(page).resolve()
    if anchor and dest.suffix in (".md", ".ipynb", ".html", ".htm"):
        try:
            known = own_anchors if (not file_part and own_anchors is not None) else anchors_of(dest)
        except (OSError, NotebookError) as err:
            return f"link '{target}': cannot read {dest.name} ({err})"
        if unquote(anchor) not in known:
            return f"link '{target}': {dest.name} has no anchor #{unquote(anchor)}"
    return None


def page_link_problems(path, root) -> list[str]:
    """The broken or escaping relative links of a Markdown file, HTML page or notebook, named by file (and cell
    for a notebook)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = read(path)
        return [f"{path.name}: {p}" for p in _cell_link_problems(nb, path, root)]
    text = path.read_text(encoding="utf-8", errors="replace")
    links = html_links(text) if path.suffix in (".html", ".htm") else markdown_links(text)
    return [f"{path.name}: {p}" for t in dict.fromkeys(links) if (p := link_problem(t, path, root))]


def _cell_link_problems(nb, path: Path, root: Path, on_disk: bool = True) -> list[str]:
    own, problems = anchors_of_markdown(_markdown_of(nb)), []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for target in dict.fromkeys(markdown_links(cell.source)):
            if problem := link_problem(target, path, root, own, on_disk):
                problems.append(f"{_where(index, cell)}: {problem}")
    return problems


_REPO_PATH = re.compile(r"(?<![\w./-])(?:\.\./)*(?:" + "|".join(REPO_FOLDERS) + r")/[\w./*…-]*")
_SHOWS_CODE = re.compile(r"getsource|%pycat|%load\b|\?\?")


def _module(repo_path: str) -> str:
    return re.sub(r"\.py$", "", repo_path.lstrip("./").rstrip("/")).replace("/", ".")


def _repo_path_problems(nb) -> list[str]:
    """Markdown cells that cite a repository path a student does not have (``vaeutils/…``, ``tests/…``, …),
    unless a code cell of the unit shows that code (``inspect.getsource``, ``%pycat``, ``%load``, ``??``)."""
    shown = [c.source for c in nb.cells if c.cell_type == "code" and _SHOWS_CODE.search(c.source)]
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        prose = re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", " ", cell.source)
        for found in dict.fromkeys(m.group(0).rstrip(".…") for m in _REPO_PATH.finditer(prose)):
            module = _module(found)
            if module.count(".") and any(module in s or found in s for s in shown):
                continue
            problems.append(f"{_where(index, cell)} cites {found}, which a student working from the notebooks "
                            "cannot open: name the function (e.g. `vaeutils.losses.kl_per_dim`) or show its code")
    return problems


# --------------------------------------------------------------------------- exercises and their wrong answers

@dataclasses.dataclass
class Exercise:
    """An auto-graded exercise: its solution cell and the locked test cell after it."""
    grade_id: str
    solution: int
    test: int
    test_id: str


def autograded(nb) -> list[Exercise]:
    """The auto-graded exercises of ``nb``: each code solution cell followed by its grade cell."""
    found, pending = [], None
    for index, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        if meta.get("solution") and not meta.get("grade") and cell.cell_type == "code":
            pending = index
        elif meta.get("grade") and not meta.get("solution") and pending is not None:
            found.append(Exercise(_nbgrader(nb.cells[pending]).get("grade_id"), pending, index,
                                  meta.get("grade_id")))
            pending = None
    return found


def written_answers(nb) -> list[int]:
    """The manually graded written answers: Markdown cells with nbgrader solution, grade and points."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
            and _nbgrader(c).get("solution") and _nbgrader(c).get("grade") and _has_points(_nbgrader(c))]


def exercise_file(notebook) -> Path:
    """Where the wrong answers of a unit live: ``docs/instructor/exercises/NN_name.yaml`` beside the
    notebooks' folder."""
    notebook = Path(notebook).resolve()
    return notebook.parent.parent / EXERCISES_DIR / f"{notebook.stem}.yaml"


class ExerciseFileError(ValueError):
    """A wrong-answers file the kit cannot use; the message is one line naming the file."""


def _show(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(paths.ROOT))
    except ValueError:
        return str(path)


def load_wrong_answers(path) -> dict[str, dict]:
    """The entries of a wrong-answers file (``grade_id: {kind, targets, wrong: [{why, code, message}, …]}``),
    or an :class:`ExerciseFileError` for a file that is missing, not YAML or not a mapping of entries."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ExerciseFileError(f"{_show(path)}: cannot be read ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise ExerciseFileError(f"{_show(path)}: not valid YAML{at} ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict) or not data:
        raise ExerciseFileError(f"{_show(path)}: expected a mapping of grade_id to entries, e.g. "
                                "'05-ex1: {kind: compute, targets: …, wrong: [...]}'")
    return {str(k): v for k, v in data.items()}


def entry_problems(gid: str, entry) -> list[str]:
    """What keeps one wrong-answers entry from being usable by the wrong-answer test."""
    if not isinstance(entry, dict):
        return [f"entry {gid!r} is not a mapping with kind, targets and wrong"]
    problems = []
    if entry.get("kind") not in EXERCISE_KINDS:
        problems.append(f"entry {gid!r}: kind {entry.get('kind')!r} is not one of {', '.join(EXERCISE_KINDS)}")
    if not isinstance(entry.get("targets"), str) or not entry["targets"].strip():
        problems.append(f"entry {gid!r} names no misconception it targets ('targets: …')")
    wrong = entry.get("wrong")
    if not isinstance(wrong, list) or len(wrong) < MIN_WRONG_ANSWERS:
        n = len(wrong) if isinstance(wrong, list) else 0
        problems.append(f"entry {gid!r} has {n} wrong answers; list at least {MIN_WRONG_ANSWERS} under 'wrong:'")
        wrong = wrong if isinstance(wrong, list) else []
    for k, item in enumerate(wrong):
        missing = [f for f in ("why", "code", "message")
                   if not isinstance(item, dict) or not isinstance(item.get(f), str) or not item[f].strip()]
        if missing:
            problems.append(f"entry {gid!r}, wrong answer {k + 1}: no {', '.join(missing)}")
    return problems


def _count_exercises(nb) -> int:
    """The numbered exercises of the Exercises section (``**Exercise N…``), else its graded items."""
    numbers, inside = set(), False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if m := _H2.match(line):
                inside = m.group("t").strip("*_ ").lower().startswith("exercises")
            elif inside and (m := re.match(r"^\s*\*\*Exercise\s+(\d+)", line)):
                numbers.add(m.group(1))
    return len(numbers) or len(autograded(nb)) + len(written_answers(nb))


def _wrong_answer_problems(nb, path: Path | None) -> list[str]:
    low, high = EXERCISES_PER_UNIT
    problems = []
    if not low <= (n := _count_exercises(nb)) <= high:
        problems.append(f"{n} exercises; a unit has {low}–{high} ('**Exercise N.**' in the Exercises section)")
    if not written_answers(nb):
        problems.append("no written answer: a Markdown cell with nbgrader metadata {\"grade\": true, \"solution\": "
                        "true, \"points\": N, …} holding the model answer between ### BEGIN/END SOLUTION")
    ids = [e.grade_id for e in autograded(nb) if isinstance(e.grade_id, str)]  # a bad grade_id: see above
    if path is None or not ids:
        return problems
    file = exercise_file(path)
    if not file.is_file():
        return problems + [f"no wrong answers for {', '.join(ids)}: write {_show(file)} (one entry per "
                           f"auto-graded exercise, at least {MIN_WRONG_ANSWERS} wrong answers each)"]
    try:
        entries = load_wrong_answers(file)
    except ExerciseFileError as err:
        return problems + [str(err)]
    for gid in ids:
        if gid not in entries:
            problems.append(f"{_show(file)} has no entry for the auto-graded exercise {gid!r}")
        else:
            problems += [f"{_show(file)}: {p}" for p in entry_problems(gid, entries[gid])]
    problems += [f"{_show(file)}: entry {gid!r} is no auto-graded exercise of the unit (they are "
                 f"{', '.join(ids)})" for gid in entries if gid not in ids]
    return problems


def _exercise_problems(nb) -> list[str]:
    problems, ids, open_solution, exercises = [], {}, None, 0
    for index, cell in enumerate(nb.cells):
        where, meta = _where(index, cell), _nbgrader(cell)
        try:
            _, replaced = _replace_region(cell.source, SOLUTION, CODE_STUB, where)
            _replace_region(cell.source, HIDDEN_TESTS, (), where)
        except ValueError as err:
            problems.append(str(err))
            replaced = False
        if replaced and not meta.get("solution"):
            problems.append(f"{where} has a solution region but no nbgrader solution metadata")
        if not any(meta.get(key) for key in ("solution", "grade", "locked", "task")):
            continue
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: nbgrader metadata needs \"schema_version\": 3")
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not GRADE_ID.match(gid):
            problems.append(f"{where}: grade_id {gid!r} is not letters, digits, '-' or '_'")
        elif ids.setdefault(gid, index) != index:
            problems.append(f"{where}: grade_id {gid!r} is already used by cell {ids[gid]}")
        if meta.get("grade") and not _has_points(meta):
            problems.append(f"{where} is a grade cell without points (\"points\": <n> in its nbgrader metadata)")
        if meta.get("grade") and not meta.get("solution"):
            if not meta.get("locked"):
                problems.append(f"{where} is a test cell that is not locked (\"locked\": true)")
            if open_solution is not None:
                exercises += 1
            open_solution = None
        elif meta.get("solution") and meta.get("grade"):
            exercises += 1  # a manually graded answer grades itself
        elif meta.get("solution"):
            if open_solution is not None:
                problems.append(f"{open_solution} has no grade cell after it before the next solution cell")
            open_solution = where
    if open_solution is not None:
        problems.append(f"{open_solution} has no grade cell after it")
    if not exercises:
        problems.append("no graded exercise (a solution cell followed by a locked test cell with points)")
    return problems


# --------------------------------------------------------------------------- the unit, the folder, the CLI

def check_unit(nb, name: str, path=None, root=None) -> list[str]:
    """The ways the unit ``nb`` (file ``name``) departs from the unit shape, as sentences naming ``name``; an
    empty list when it has none. With the notebook's ``path`` its links are followed (relative to ``root``, the
    folder a student opens: by default the notebook's own) and its wrong answers are read
    (:func:`exercise_file`); without it only what the notebook alone shows is checked."""
    problems = _shape_problems(nb) + estimate(nb).problems
    for index, cell in enumerate(nb.cells):
        n = len(cell.source.rstrip().splitlines())
        if cell.cell_type == "code" and n > MAX_CELL_LINES:
            problems.append(f"{_where(index, cell)} has {n} lines, over {MAX_CELL_LINES}: split it or move the "
                            "plumbing into vaeutils")
        if "seeds/" in cell.source or "seeds/" in json.dumps(cell.get("outputs", [])):
            problems.append(f"{_where(index, cell)} mentions seeds/, which students do not have")
    if "seeds/" in json.dumps(nb.metadata):
        problems.append("the notebook metadata mentions seeds/, which students do not have")
    problems += _exercise_problems(nb) + _wrong_answer_problems(nb, Path(path) if path else None)
    problems += _repo_path_problems(nb)
    if path is not None:
        problems += _cell_link_problems(nb, Path(path), Path(root) if root else Path(path).resolve().parent)
    else:  # not on disk: a folder of its own, where only links that leave it and its own anchors can be told
        folder = Path("/nonexistent-unit-folder")
        problems += _cell_link_problems(nb, folder / name, folder, on_disk=False)
    return [f"{name}: {p}" for p in problems]


def check_paths(paths, report=print) -> list[str]:
    """Problems of each given notebook, and of every unit notebook and Markdown page inside each given folder;
    ``report`` gets each unit's session-time line."""
    problems = []
    for path in map(Path, paths):
        files = paths_in(path)
        if not files:
            problems.append(f"{path}: no unit notebooks (NN_*.ipynb) found")
        root = path if path.is_dir() else path.parent
        for f in files:
            try:
                nb = read(f)
            except NotebookError as err:
                problems.append(str(err))
                continue
            report(estimate(nb).line(f.stem))
            problems += check_unit(nb, f.name, f, root)
        for page in sorted(path.glob("*.md")) if path.is_dir() else ():
            problems += page_link_problems(page, root)
    return problems


def paths_in(path: Path) -> list[Path]:
    """The unit notebooks of a folder, or the file itself."""
    return paths.units(path) if path.is_dir() else [path]


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m coursekit check", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[paths.NOTEBOOKS], type=Path,
                        help="unit notebooks, or folders of them (default: notebooks/)")
    args = parser.parse_args(argv)
    if problem := missing_paths(args.paths):
        return usage_error(parser.prog, problem)
    problems = check_paths(args.paths)
    print("\n".join(problems) if problems else "no problems found")
    return 1 if problems else 0
