"""``python -m coursekit COMMAND ...``: one entry point for the kit's commands (``--help`` lists them)."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path

# command -> (module, what it does); each module has main(argv) -> exit status
COMMANDS = {
    "check": ("check", "check every unit against the unit shape"),
    "student": ("student", "student copies without the answers (build/student)"),
    "slides": ("slides", "one reveal.js deck per unit (build/slides)"),
    "execute": ("executed", "run every notebook once into build/executed (reused while current)"),
    "course": ("course", "the executed course as a site, a Jupyter Book (build/site)"),
    "strip": ("notebooks", "clear outputs, execution counts and widget state of notebooks"),
    "dirty": ("notebooks", "exit 1 listing notebooks that carry outputs"),
    "app": ("app", "the β explorer dashboard in Voila"),
    "models": ("models", "train every model of the course into a folder a class shares"),
    "hub": ("hub", "a trial class server (JupyterHub, as root)"),
    "size": ("sizing", "the machines a class of N students needs"),
    "zh": ("i18n", "the Chinese edition: update the catalogs, build notebooks/zh/, check it is current"),
}


def usage() -> str:
    lines = ["usage: python -m coursekit COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"python -m coursekit: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"coursekit.{COMMANDS[command][0]}")
    if COMMANDS[command][0] == "notebooks":
        return module.main([command, *rest])
    return module.main(rest)


def run(argv=None) -> int:
    """:func:`main` as the shell meets it: never a traceback. An error no command foresaw is one line (the
    exception, where it was raised) and exit status 1 (``COURSEKIT_TRACEBACK=1`` shows the whole traceback);
    Ctrl-C is one line and 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = " ".join(["python -m coursekit", *argv[:1]])
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("COURSEKIT_TRACEBACK"):
            raise
        frame = traceback.extract_tb(err.__traceback__)[-1]
        text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        print(f"{prog}: error: {type(err).__name__}{': ' + text if text else ''} (in {Path(frame.filename).name}"
              f" line {frame.lineno}; COURSEKIT_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
