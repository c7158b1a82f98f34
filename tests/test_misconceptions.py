"""Every misconception the course lists is the target of at least one exercise (issue: the misconception map).

The map is the table under "## Misconceptions and the exercises that target them" in
``docs/instructor/exercises/README.md`` (``misconception | exercise(s) | how the exercise exposes it``). Each of
the course's ten misconceptions must have a row there that names at least one auto-graded exercise with an entry
in the wrong-answers files ``docs/instructor/exercises/NN_name.yaml`` (an id such as ``05-ex2``), and every id
the table names must be an exercise of the course: such an entry, or a written exercise (``NN-exK-why`` in the
unit's notebook).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from coursekit import paths

EXERCISES = paths.ROOT / "docs" / "instructor" / "exercises"
MAP = EXERCISES / "README.md"
SECTION = "Misconceptions and the exercises that target them"

# the misconceptions of the issue, and how a row's first cell names each
MISCONCEPTIONS = {
    "the sign of the KL and of the ELBO": r"\bsign\b.*\bKL\b.*\bELBO\b",
    "sum vs mean and the hidden β": r"\bsum\b.*\bmean\b.*hidden β",
    "a KL weight derived from the dataset size (M_N-style kld_weight)": r"data ?set size|M_N",
    "log-variance vs variance vs standard deviation": r"log-variance.*variance.*standard deviation",
    "MSE vs a Gaussian NLL and what σ does": r"\bMSE\b.*Gaussian NLL",
    "the ½ in the Gaussian KL": r"½.*Gaussian KL",
    "Bernoulli likelihood on grey pixels": r"Bernoulli.*gr[ea]y",
    "a discriminator step without detach": r"discriminator.*detach",
    "free bits per dimension vs in total": r"free bits.*per dimension.*total",
    "bits/dim conversion": r"bits ?/ ?dim",
}
_ID = re.compile(r"\b(\d{2}-ex\d+)\b")


def _yaml_ids() -> set[str]:
    ids = set()
    for path in sorted(EXERCISES.glob("[0-9][0-9]_*.yaml")):
        ids |= set(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return ids


def _written_ids() -> set[str]:
    """Exercises answered in words: the notebooks' graded cells ``NN-exK-why``."""
    ids = set()
    for unit in paths.units():
        for cell in json.loads(unit.read_text(encoding="utf-8"))["cells"]:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
            if grade_id.endswith("-why"):
                ids.add(grade_id.removesuffix("-why"))
    return ids


def map_rows(text: str) -> list[list[str]]:
    """The rows of the map's table (cells stripped), without the header and the separator."""
    m = re.search(rf"^##\s+{re.escape(SECTION)}\s*$(.*?)(?=^##\s|\Z)", text, re.M | re.S)
    assert m is not None, f"{MAP.relative_to(paths.ROOT)} has no section '## {SECTION}'"
    lines = [line.strip() for line in m.group(1).splitlines() if line.strip().startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    rows = [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    assert rows and "misconception" in rows[0][0].lower(), "the map's table has no header 'misconception | …'"
    return rows[1:]


@pytest.fixture(scope="module")
def rows():
    return map_rows(MAP.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(MISCONCEPTIONS))
def test_every_misconception_is_the_target_of_an_auto_graded_exercise(rows, name):
    pattern = re.compile(MISCONCEPTIONS[name], re.I)
    found = [r for r in rows if pattern.search(r[0])]
    assert found, f"the misconception map has no row for '{name}'"
    named = {i for r in found if len(r) > 1 for i in _ID.findall(r[1])}
    assert named & _yaml_ids(), (f"the row for '{name}' names no exercise with wrong answers in "
                                 f"docs/instructor/exercises/NN_name.yaml (it names {sorted(named) or 'none'})")


def test_every_exercise_the_map_names_exists(rows):
    known = _yaml_ids() | _written_ids()
    named = {i for r in rows if len(r) > 1 for i in _ID.findall(r[1])}
    assert named, "the misconception map names no exercise"
    unknown = sorted(named - known)
    assert not unknown, f"the misconception map names exercises the course does not have: {unknown}"


def test_every_row_says_how_the_exercise_exposes_it(rows):
    empty = [r[0] for r in rows if len(r) < 3 or not r[2]]
    assert not empty, f"rows of the misconception map without 'how the exercise exposes it': {empty}"
