"""Where the course's files are, for every command of the kit."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NODE_MODULES = ROOT / "node_modules"
UNIT_GLOB = "[0-9][0-9]_*.ipynb"
APP_NOTEBOOK = NOTEBOOKS / "beta_explorer_app.ipynb"


def units(folder=NOTEBOOKS) -> list[Path]:
    """The unit notebooks ``NN_*.ipynb`` of ``folder``, in course order."""
    return sorted(Path(folder).glob(UNIT_GLOB))
