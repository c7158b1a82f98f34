"""The instructor guides quote the units, not numbers from elsewhere (issue 26).

* Every number a guide (``docs/instructor/NN_name.md``) quotes appears in the executed unit
  (``build/executed/NN_name.ipynb``, made by ``python -m coursekit execute``): in its outputs or its Markdown, as a
  value that rounds to the number as the guide writes it (84.3 matches 84.27; 84 matches 83.9; a percentage may
  also be a fraction). Not looked for: section, unit, exercise, cell and list numbers, years, minutes, numbers
  inside code spans, link targets, references, and the guide's own quotes of notebook text (between quotation
  marks or in a block quote).
* The guide's Time plan has the notebook's rows and minutes.
"""

from __future__ import annotations

import re

import pytest

from coursekit import check, paths
from coursekit.executed import OUT as EXECUTED
from coursekit.executed import is_current
from coursekit.notebooks import read

GUIDES = sorted((paths.ROOT / "docs" / "instructor").glob("[0-9][0-9]_*.md"))

# What a guide writes that is not a measured number: removed before numbers are looked for.
_NOT_QUOTED = [
    re.compile(r"^\s{0,3}```.*?^\s{0,3}```", re.S | re.M),  # code blocks
    re.compile(r"`[^`\n]*`"),  # code spans
    re.compile(r"\]\([^)\s]*\)"),  # link targets
    re.compile(r"(?:https?://|arXiv:|doi:)\S+", re.I),
    re.compile(r"“[^”]{0,400}”|\"[^\"\n]{0,400}\"|«[^»]{0,400}»"),  # the guide quoting the notebook
    re.compile(r"^\s{0,3}>.*$", re.M),  # block quotes
    re.compile(r"^\s{0,3}#{1,6}\s.*$", re.M),  # headings (section numbers, the unit's number)
    re.compile(r"^\s*(?:[-*]\s+)?(?:\*\*)?\d+(?:\.\d+)*\.(?:\*\*)?\s", re.M),  # list numbers
    re.compile(r"§+\s*\d+(?:\.\d+)*(?:\s*(?:[–—-]|,|and|or)\s*§*\d+(?:\.\d+)*)*"),
    re.compile(r"\b(?:[Ss]ections?|[Uu]nits?|[Ee]xercises?|[Cc]ells?|[Pp]arts?|[Ss]teps?|[Ff]igures?)"
               r"\s+\d+(?:\.\d+)*(?:\s*(?:[–—/-]|,|and|or|&)\s*\d+(?:\.\d+)*)*"),
    re.compile(r"\b\d+(?:\.\d+)?\s*(?:[–—-]\s*\d+(?:\.\d+)?\s*)?(?:min\b|minutes?\b)"),  # timings
    re.compile(r"(?<![\w.])(?<![eE][-+−])0\d(?![\w.])"),  # unit numbers 00–09 (not an exponent's)
    re.compile(r"(?<![\w.])(?:19[5-9]\d|20[0-3]\d)(?![\w.])"),  # years
    re.compile(r"\\[a-zA-Z]+"),  # LaTeX commands, so that \cdot32 reads as 32
]
_GUIDE_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE][-+−]?\d+)?(?![\w])(\s*%)?")
_OUTPUT_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+(?:[eE][-+−]?\d+)?|\d+(?:[eE][-+−]?\d+)?")


def _strip(text: str) -> str:
    text = re.split(r"^##\s+(?:References|Further reading)\b", text, flags=re.M)[0]
    text = re.split(r"^##\s+Time plan\b.*?(?=^##\s|\Z)", text, flags=re.M | re.S)  # compared on its own
    text = " ".join(text)
    for pattern in _NOT_QUOTED:
        text = pattern.sub(" ", text)
    return text


def guide_numbers(text: str) -> list[tuple[str, bool, str]]:
    """The numbers a guide quotes: ``(as written, is a percentage, the words around it)``."""
    text = _strip(text)
    found = []
    for m in _GUIDE_NUMBER.finditer(text):
        exponent = re.search(r"[eE][-+−]?\d+$", m.group(0).rstrip("% "))
        written = (m.group(1) + (m.group(2) or "")).replace(",", "")
        written += exponent.group(0).replace("−", "-").lower() if exponent else ""
        around = " ".join(text[max(0, m.start() - 40):m.end() + 40].split())
        found.append((written, bool(m.group(3)), around))
    return found


_SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)


def _outputs_text(nb) -> str:
    """The unit's Markdown, its outputs, and the model answers of its exercises (the code between
    nbgrader's solution markers, which the hidden tests check)."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        elif cell.cell_type == "code":
            parts += _SOLUTION.findall(cell.source)
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for mime in ("text/plain", "text/markdown", "text/html", "text/latex"):
                parts.append(re.sub(r"<[^>]+>", " ", "".join(out.get("data", {}).get(mime, ""))))
    return "\n".join(parts)


def unit_values(nb) -> list[float]:
    """Every number of the executed unit's Markdown and outputs (``4,000`` also read as 4 and 000)."""
    text = _outputs_text(nb).replace("−", "-")
    values = []
    for m in _OUTPUT_NUMBER.finditer(text):
        token = m.group(0)
        values.append(float(token.replace(",", "")))
        if "," in token:
            values += [float(p) for p in token.split(",") if p]
    return values


def appears(written: str, percent: bool, values: list[float], cache: dict) -> bool:
    """True when some value rounds to ``written`` at its decimals (a percentage: also 100 × a value;
    ``5.9e-01``: at its significant digits)."""
    if "e" in written:
        mantissa = written.split("e")[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        key = ("e", digits)
        if key not in cache:
            cache[key] = {format(abs(v), f".{digits}e") for v in values}
        return format(abs(float(written)), f".{digits}e") in cache[key]
    decimals = len(written.split(".")[1]) if "." in written else 0
    target = format(abs(float(written)), f".{decimals}f")
    if decimals not in cache:
        cache[decimals] = {format(abs(v), f".{decimals}f") for v in values}
        cache[decimals, "%"] = {format(abs(100 * v), f".{decimals}f") for v in values}
    return target in cache[decimals] or (percent and target in cache[decimals, "%"])


def _unit_of(guide):
    found = [p for p in paths.units() if p.stem == guide.stem] or [
        p for p in paths.units() if p.name[:2] == guide.name[:2]]
    return found[0] if found else None


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_every_number_a_guide_quotes_is_in_the_executed_unit(guide):
    unit = _unit_of(guide)
    assert unit is not None, f"{guide.name}: no unit notebook notebooks/{guide.name[:2]}_*.ipynb"
    executed = EXECUTED / unit.name
    if not executed.is_file():
        pytest.skip(f"no executed copy {executed.relative_to(paths.ROOT)}: run `python -m coursekit execute`")
    if not is_current(executed, read(unit)):
        pytest.skip(f"{executed.relative_to(paths.ROOT)} is older than {unit.name} (or another mode): run "
                    "`python -m coursekit execute`")
    values, cache = unit_values(read(executed)), {}
    missing = [f"{written}{'%' if percent else ''} in “…{around}…”"
               for written, percent, around in guide_numbers(guide.read_text(encoding="utf-8"))
               if not appears(written, percent, values, cache)]
    assert not missing, (f"{guide.name} quotes numbers that {executed.name} neither prints nor writes "
                         f"(at the guide's precision):\n" + "\n".join(missing))


def _plan(rows) -> dict[str, float]:
    """Time plan rows by the section they name ("1", "exercises", "summary", "setup", or the label)."""
    found = {}
    for label, minutes in rows:
        m = re.match(r"\s*(\d+)", label)
        key = m.group(1) if m else re.sub(r"\W+", " ", label.lower()).split(" ")[0]
        found[key] = found.get(key, 0.0) + minutes
    return found


def _guide_plan(text: str) -> list[list[str]]:
    m = re.search(r"^##\s+Time plan\b.*?$(.*?)(?=^##\s|\Z)", text, re.M | re.S)
    if m is None:
        return []
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in m.group(1).splitlines()
            if line.strip().startswith("|") and not re.fullmatch(r"[\s|:-]+", line)]


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_a_guide_plans_the_time_as_its_unit(guide):
    unit = _unit_of(guide)
    assert unit is not None, f"{guide.name}: no unit notebook notebooks/{guide.name[:2]}_*.ipynb"
    table = _guide_plan(guide.read_text(encoding="utf-8"))
    if not table:
        pytest.skip(f"{guide.name} has no Time plan table")
    rows, _, problems = check.time_plan_rows(table)
    assert not problems, f"{guide.name}: " + "; ".join(problems)
    nb = read(unit)
    ours, theirs = _plan(rows), _plan(check._time_plan(nb)[0])
    differ = [f"{key}: guide {ours.get(key, '—')}, unit {theirs.get(key, '—')}"
              for key in dict.fromkeys([*theirs, *ours]) if ours.get(key) != theirs.get(key)]
    assert not differ, (f"{guide.name}'s Time plan differs from {unit.name}'s (minutes per row):\n"
                        + "\n".join(differ))
