"""Notebook files as the kit meets them: read with a one-line error for a malformed file, stripped before a
commit, executed by one runner (nbclient) everywhere.

    python -m coursekit strip notebooks/*.ipynb    # clear outputs, execution counts, widget state
    python -m coursekit dirty notebooks/*.ipynb    # exit 1 listing the notebooks that still carry any

Committed notebooks carry no outputs (they diff cleanly); ``make course`` builds the executed copies.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor

# Cell metadata that records a particular run rather than the lesson (nbclient timings, JupyterLab extensions).
RUN_METADATA = ("execution", "ExecuteTime")


class NotebookError(ValueError):
    """A notebook file the kit cannot use; the message is one line naming the file and what is wrong."""


def _problem(data) -> str | None:
    """What keeps parsed JSON ``data`` from being a notebook the kit can read (None: nothing)."""
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(data), "null")
        return f"not a notebook (the file holds a JSON {kind}, not an object)"
    if not isinstance(data.get("nbformat"), int):
        return "not a notebook (no integer 'nbformat' field)"
    if data["nbformat"] != 4:
        return f"nbformat {data['nbformat']} is not supported (save it as nbformat 4)"
    if not isinstance(data.get("nbformat_minor"), int):
        return "not a notebook (no integer 'nbformat_minor' field)"
    if not isinstance(data.get("metadata"), dict):
        return "missing notebook metadata (a 'metadata' object)"
    cells = data.get("cells")
    if cells is None:
        return "not a notebook (no 'cells' list)"
    if not isinstance(cells, list):
        return f"'cells' must be a list, got {type(cells).__name__}"
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            return f"cell {i} is not an object"
        if cell.get("cell_type") not in ("markdown", "code", "raw"):
            return f"cell {i} has no valid cell_type (markdown, code or raw)"
        if not isinstance(cell.get("source"), (str, list)):
            return f"cell {i} has no source"
        if not isinstance(cell.get("metadata"), dict):
            return f"cell {i} has no metadata object"
    return None


def read(path) -> nbformat.NotebookNode:
    """The notebook at ``path``, or a :class:`NotebookError` whose one line names the file and the problem
    (missing, empty, not UTF-8, invalid JSON, not a notebook, missing metadata, a cell without source, anything
    else nbformat's schema rejects)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise NotebookError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not raw.strip():
        raise NotebookError(f"{path}: the file is empty, not a notebook")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise NotebookError(f"{path}: not UTF-8 text (byte {err.start}); save the notebook as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno} ({err.msg})") from None
    if problem := _problem(data):
        raise NotebookError(f"{path}: {problem}")
    invalid: dict = {}
    try:
        nb = nbformat.reads(text, as_version=4, capture_validation_error=invalid)
    except Exception as err:  # nbformat's own checks, one line
        raise NotebookError(f"{path}: not a valid notebook ({_first_line(err)})") from None
    if err := invalid.get("ValidationError"):  # the schema: nbformat only logs it, the kit stops here
        where = "/".join(map(str, getattr(err, "absolute_path", ()))).replace("cells/", "cell ", 1)
        message = getattr(err, "message", None) or _first_line(err)
        raise NotebookError(f"{path}: not a valid notebook ({where + ': ' if where else ''}{message})")
    return nb


def _first_line(err: BaseException) -> str:
    return next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)


def missing_paths(paths, folder: bool = False) -> str | None:
    """One line saying which of ``paths`` do not exist (``folder``: or are not folders); None when all do.
    The commands report it as a usage error (exit status 2, as argparse does)."""
    paths = [Path(p) for p in paths]
    if gone := [str(p) for p in paths if not p.exists()]:
        return f"no such file or folder: {', '.join(gone)}"
    if folder and (files := [str(p) for p in paths if not p.is_dir()]):
        return f"not a folder of notebooks: {', '.join(files)}"
    return None


def usage_error(prog: str, message: str) -> int:
    """Print ``prog: error: message`` on one line to stderr; the exit status of a usage error, 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def dirt(nb) -> list[str]:
    """What in a notebook records a run: outputs, execution counts, saved widget state (empty list: clean)."""
    found = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    if n := sum(bool(c.get("outputs")) for c in code):
        found.append(f"{n} cell(s) with outputs")
    if n := sum(c.get("execution_count") is not None for c in code):
        found.append(f"{n} execution count(s)")
    if "widgets" in nb.metadata:
        found.append("saved widget state")
    if n := sum(any(k in c.metadata for k in RUN_METADATA) for c in nb.cells):
        found.append(f"{n} cell(s) with run timings")
    return found


def strip(nb):
    """Clear, in place, everything :func:`dirt` reports (nbconvert's ClearOutputPreprocessor for the
    outputs and counts); returns the notebook."""
    ClearOutputPreprocessor(remove_metadata_fields=set(RUN_METADATA)).preprocess(nb, {})
    nb.metadata.pop("widgets", None)
    return nb


def write_atomic(path, text: str) -> Path:
    """Write ``text`` through a temporary file in the same folder and rename it: a reader sees the old file or
    the new one, never half of one. The file is world-readable (copies are handed out)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def strip_files(paths) -> list[Path]:
    """Strip each notebook file; rewrites only those that change. Returns the rewritten paths."""
    changed = []
    for path in map(Path, paths):
        nb = read(path)
        before = nbformat.writes(nb)
        after = nbformat.writes(strip(nb))
        if after != before:
            write_atomic(path, after)
            changed.append(path)
    return changed


def execute(nb, folder, timeout: int = 1800, extra_arguments=(), env=None):
    """Run every cell of ``nb`` in place with nbclient, with ``folder`` as the working directory; returns
    ``nb``. ``env``: extra environment variables for the kernel. A failing cell raises nbclient's
    ``CellExecutionError``."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", extra_arguments=list(extra_arguments),
                            resources={"metadata": {"path": str(Path(folder).resolve())}})
    client.execute(**({"env": {**os.environ, **env}} if env else {}))
    return nb


def main(argv=None, prog: str = "python -m coursekit") -> int:
    """``strip FILES`` (clear outputs in place) or ``dirty FILES`` (exit 1 listing notebooks that carry any)."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description="keep committed notebooks clean")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("strip", "clear outputs, execution counts and widget state in place"),
                       ("dirty", "exit 1 listing notebooks that carry outputs or run state")):
        sub.add_parser(name, help=text).add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if problem := missing_paths(args.files):
        return usage_error(f"{prog} {args.command}", problem)
    try:
        if args.command == "strip":
            for path in strip_files(args.files):
                print(f"stripped {path}")
            return 0
        dirty = [(p, d) for p in args.files if (d := dirt(read(p)))]
    except NotebookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path, found in dirty:
        print(f"{path}: {', '.join(found)}")
    if dirty:
        print("run `make strip` (python -m coursekit strip FILES) before committing")
    return 1 if dirty else 0
