"""The shape of the two packages: ``vaeutils`` imports downward only, in the layers below (so no cycle), measuring
never depends on training, ``vaeutils`` never imports the tooling (``coursekit``), and modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vaeutils"

# Lowest first. A module may import modules of lower layers only (peers in one layer don't import each other):
# the order a reader can follow, from the arguments' checks up to the widgets.
LAYERS = [
    ["checks", "i18n"],
    ["config", "cpu"],
    ["files"],
    ["idx", "shapes"],
    ["mnist_sample"],
    ["data"],
    ["schedules"],
    ["losses"],
    ["objectives"],
    ["models", "exact"],
    ["priors"],
    ["metrics"],
    ["surgery"],
    ["disentangle"],
    ["cache", "precision"],
    ["train", "train.workers"],
    ["train.cli"],
    ["train.__main__"],
    ["sweep"],
    ["judge", "gans", "collapse"],
    ["plots", "diagrams"],
    ["lesson"],
    ["widgets.live_pictures", "widgets.sliders"],
    ["widgets.kl", "widgets.recon", "widgets.beta", "widgets.free_bits", "widgets.live"],
    ["widgets"],
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MAX_LINES = 400


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if module_name(p, package))


def imported(path: Path, package: Path = PACKAGE, top: str = "vaeutils") -> set[str]:
    """The modules of ``top`` that ``path`` imports, at the top or inside functions (lazy imports count too)."""
    this = module_name(path, package)
    pkg = this.split(".") if path.name == "__init__.py" else this.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == top:
                target = node.module.removeprefix(top).lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import losses` names a module; `from .x import f` names x
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if (package / Path(*child.split("."))).with_suffix(".py").exists()
                          or (package / Path(*child.split(".")) / "__init__.py").exists() else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top and alias.name != top:
                    found.add(alias.name.removeprefix(f"{top}."))
    found.discard("")
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    return {module_name(p, package): imported(p, package) for p in modules(package)}


def upward_imports(path: Path, package: Path = PACKAGE) -> list[str]:
    this = module_name(path, package)
    rank = RANK[this]
    bad = []
    for target in sorted(imported(path, package)):
        if target not in RANK:
            bad.append(f"{this} imports {target}, which has no layer: add it to LAYERS")
        elif this == "widgets" and target.startswith("widgets."):
            continue  # the package exports its own widgets
        elif RANK[target] >= rank:
            bad.append(f"{this} (layer {rank}) imports {target} (layer {RANK[target]})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the list of modules around it (depth-first search)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_every_module_has_a_layer(path):
    assert module_name(path) in RANK, f"{module_name(path)} is not in LAYERS of tests/test_layers.py"


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_imports_go_downward_only(path):
    assert upward_imports(path) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_measuring_does_not_depend_on_training():
    graph = import_graph()
    for measure in ("metrics", "surgery", "disentangle"):
        assert not {"train", "cache"} & (reachable(graph, measure) | {measure}), measure


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_the_library_never_imports_the_tooling(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
    assert not [n for n in names if n.split(".")[0] == "coursekit"], f"{module_name(path)} imports coursekit"


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_modules_stay_small(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{module_name(path)} has {n} lines (at most {MAX_LINES}): split it by job"


def test_the_library_is_linted_at_100_characters():
    """What makes the 400-line cap honest: vaeutils' own ruff configuration narrows the line length."""
    import tomllib

    local = tomllib.loads((PACKAGE / "ruff.toml").read_text(encoding="utf-8"))
    assert local["line-length"] == 100 and local["extend"] == "../pyproject.toml"


def test_the_package_docstring_names_every_module():
    import vaeutils

    for name in RANK:
        assert f"``{name.split('.')[0]}``" in vaeutils.__doc__, f"vaeutils' docstring does not name {name}"


def test_no_package_file_edits_sys_path():
    for package in (PACKAGE, ROOT / "coursekit"):
        for path in package.rglob("*.py"):
            assert "sys.path" not in path.read_text(encoding="utf-8"), f"{path} edits sys.path"


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    """The checker itself: a lower module importing a higher one is reported, lazy imports included."""
    fake = tmp_path / "vaeutils"
    fake.mkdir()
    (fake / "losses.py").write_text("def f():\n    from .train import fit\n    return fit\n")
    (fake / "train.py").write_text("from . import losses\n")
    (fake / "metrics.py").write_text("from . import losses\n")
    expected = f"losses (layer {RANK['losses']}) imports train (layer {RANK['train']})"
    assert upward_imports(fake / "losses.py", fake) == [expected]
    assert upward_imports(fake / "metrics.py", fake) == []
    assert cycles(import_graph(fake)) == [["losses", "train", "losses"]]
