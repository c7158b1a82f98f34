"""The layers of vaeutils import downward only (the order of DESIGN's architecture), and modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vaeutils"

# Lowest first. A module may import modules of lower layers only; peers in one layer don't import each other.
LAYERS = [
    ["checks"],
    ["config"],
    ["files"],
    ["idx", "shapes"],
    ["data"],
    ["schedules", "objectives"],
    ["losses"],
    ["models", "exact"],
    ["priors"],
    ["cache", "precision", "fused", "optim"],
    ["train"],
    ["train.cli"],
    ["train.__main__"],
    ["metrics"],
    ["surgery"],
    ["sweep"],
    ["judge", "disentangle", "collapse"],
    ["plots", "diagrams"],
    ["lesson"],
    ["widgets.kl", "widgets.recon", "widgets.beta", "widgets.free_bits", "widgets.live"],
    ["widgets"],
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if module_name(p))


def imported(path: Path) -> set[str]:
    """The vaeutils modules that ``path`` imports, at the top or inside functions (lazy imports count too)."""
    this = module_name(path)
    package = this.split(".") if path.name == "__init__.py" else this.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == "vaeutils":
                target = node.module.removeprefix("vaeutils").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import losses` names a module; `from .x import f` names x
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if child in RANK else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vaeutils" and alias.name != "vaeutils":
                    found.add(alias.name.removeprefix("vaeutils."))
    found.discard("")
    return found


def upward_imports(path: Path) -> list[str]:
    this = module_name(path)
    rank = RANK[this]
    bad = []
    for target in sorted(imported(path)):
        if target not in RANK:
            bad.append(f"{this} imports {target}, which has no layer: add it to LAYERS")
        elif this == "widgets" and target.startswith("widgets."):
            continue  # the package re-exports its own widgets
        elif RANK[target] >= rank:
            bad.append(f"{this} (layer {rank}) imports {target} (layer {RANK[target]})")
    return bad


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_every_module_has_a_layer(path):
    assert module_name(path) in RANK, f"{module_name(path)} is not in LAYERS of tests/test_layers.py"


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_imports_go_downward_only(path):
    assert upward_imports(path) == []


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_modules_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{module_name(path)} has {n} lines (at most {MAX_LINES}): split it by job"


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a lower module importing a higher one is reported, lazy imports included."""
    fake = tmp_path / "vaeutils"
    fake.mkdir()
    (fake / "losses.py").write_text("def f():\n    from .train import fit\n    return fit\n")
    (fake / "metrics.py").write_text("from . import losses\nfrom .train import evaluate\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    expected = f"losses (layer {RANK['losses']}) imports train (layer {RANK['train']})"
    assert upward_imports(fake / "losses.py") == [expected]
    assert upward_imports(fake / "metrics.py") == []
