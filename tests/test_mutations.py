"""The units' asserts catch wrong claims (issue 26): each mutation of ``tests/mutations/NN_name.yaml`` (format in
CONVENTIONS: ``name``, ``patch``, ``caught_by``) is run in the unit, in smoke mode, right after its setup cell (the
first code cell), and the unit must stop at one of its own asserts: a CellExecutionError raised by an
AssertionError whose text contains ``caught_by``, in a cell after the patch. nbclient stops at the first error, so
a unit runs only up to the assert that catches the mutation.

That the unmutated units pass is not checked again here: nbmake runs every unit in full mode (``make test``).
What is checked instead is that a mutation fails at an assert, not at an unrelated error.
"""

from __future__ import annotations

import ast
import os
import time

import nbformat
import pytest
import yaml

from coursekit import paths
from coursekit.notebooks import read

UNITS = paths.units()
MUTATIONS = paths.ROOT / "tests" / "mutations"
CELL_TIMEOUT = 900


def mutation_file(unit) -> os.PathLike:
    return MUTATIONS / f"{unit.stem}.yaml"


def load_mutations(path) -> list[dict]:
    """The mutations of a file, each checked for ``name``, ``patch`` (Python that parses) and ``caught_by``; an
    AssertionError naming the file and the entry otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise AssertionError(f"{path.name}: not valid YAML ({err})") from None
    assert isinstance(data, list) and data, (f"{path.name}: expected a list of mutations "
                                             "(- name: … patch: … caught_by: …)")
    for k, entry in enumerate(data, 1):
        assert isinstance(entry, dict), f"{path.name}: mutation {k} is not a mapping"
        missing = [f for f in ("name", "patch", "caught_by")
                   if not isinstance(entry.get(f), str) or not entry[f].strip()]
        assert not missing, f"{path.name}: mutation {k} ({entry.get('name')!r}) has no {', '.join(missing)}"
        try:
            ast.parse(entry["patch"])
        except SyntaxError as err:
            raise AssertionError(f"{path.name}: the patch of {entry['name']!r} is not Python ({err})") from None
    return data


def course_env() -> dict:
    """Smoke mode, offline, the course's own data folder and model cache (``VAELAB_COURSE_DATA`` points
    elsewhere), not the tests' empty one."""
    data = os.environ.get("VAELAB_COURSE_DATA") or str(paths.ROOT / "data")
    return {"SMOKE": "1", "VAELAB_OFFLINE": "1", "VAELAB_DATA": data}


@pytest.mark.parametrize("unit", UNITS, ids=[p.stem for p in UNITS])
def test_every_unit_has_a_mutation(unit):
    path = mutation_file(unit)
    assert path.is_file(), f"{unit.name}: no mutations; write {path.relative_to(paths.ROOT)} (at least one)"
    assert load_mutations(path)


def _cases():
    cases = []
    for unit in UNITS:
        if mutation_file(unit).is_file():
            try:
                entries = load_mutations(mutation_file(unit))
            except AssertionError:
                continue  # reported by test_every_unit_has_a_mutation
            cases += [pytest.param(unit, entry, id=f"{unit.stem}: {entry['name']}") for entry in entries]
    return cases or [pytest.param(None, None, marks=pytest.mark.skip(reason="no tests/mutations/NN_name.yaml yet"))]


@pytest.mark.slow
@pytest.mark.parametrize("unit, mutation", _cases())
def test_the_unit_catches_the_mutation(unit, mutation):
    from nbclient.exceptions import CellExecutionError

    from coursekit.notebooks import execute

    nb = read(unit)
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(mutation["patch"]))
    start = time.perf_counter()
    with pytest.raises(CellExecutionError) as caught:
        execute(nb, unit.parent, timeout=CELL_TIMEOUT, env=course_env())
    seconds = time.perf_counter() - start
    failed = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                   and any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
    err = caught.value
    where = f"{unit.name}, mutation {mutation['name']!r}"
    assert failed != setup + 1, f"{where}: the patch itself fails: {err.ename}: {err.evalue}"
    assert err.ename == "AssertionError", (
        f"{where}: the unit stopped at cell {failed - 1 if failed else '?'} with {err.ename}, not at an assert: "
        f"{err.evalue}")
    assert mutation["caught_by"] in err.evalue or mutation["caught_by"] in err.traceback, (
        f"{where}: caught at cell {failed - 1} by an assert whose text does not contain {mutation['caught_by']!r}: "
        f"{err.evalue}")
    print(f"{where}: caught at cell {failed - 1} (of the unit) in {seconds:.0f} s: {err.evalue[:100]}")
