"""`make hub`: the class server's JupyterHub on http://127.0.0.1:8000/ for a trial, with the real configuration.

Run as root (the hub starts each student's server as that student). Students are local accounts in the group
``vaelab-students`` and log in with their own password (PAM); add one for the trial with

    useradd --create-home -K HOME_MODE=0700 --groups vaelab-students student1 && passwd student1

The trial keeps the hub's state in build/hub/ (cookie secret generated there, 0600), serves the models of
``make models`` (``--models``, default data/) as the shared read-only cache, and makes a bare copy of this
checkout for nbgitpuller links. It listens on 127.0.0.1 only; Ctrl-C stops it and every student's server.
"""

from __future__ import annotations

import argparse
import grp
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

from .paths import ROOT


def pull_link(base_url: str, course_repo: str, branch: str = "main",
              notebook: str = "notebooks/00_setup_and_data.ipynb") -> str:
    """The nbgitpuller link that clones (first time) or updates (later) the course into ~/vae-loss-lab."""
    query = urllib.parse.urlencode({"repo": f"file://{course_repo}", "branch": branch, "targetpath": "vae-loss-lab",
                                    "urlpath": f"lab/tree/vae-loss-lab/{notebook}"})
    return f"{base_url.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m coursekit hub", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models", default=str(ROOT / "data"), help="the data folder `make models` filled")
    p.add_argument("--state", default=str(ROOT / "build" / "hub"), help="where the trial keeps its state")
    p.add_argument("--group", default="vaelab-students")
    args = p.parse_args(argv)

    from . import hubtools

    reason = hubtools.hub_unavailable()
    if reason:
        print(f"make hub: {reason}", file=sys.stderr)
        return 1
    state = Path(args.state).absolute()
    state.mkdir(parents=True, exist_ok=True)
    models = Path(args.models).absolute()
    if not (models / "cache").is_dir():
        print(f"make hub: {models / 'cache'} has no models yet; students will train their own. Run `make models` "
              "first to share them.")
    try:
        grp.getgrnam(args.group)
    except KeyError:
        subprocess.run(["groupadd", "--system", args.group], check=True)
        print(f"make hub: created the group {args.group}; add students to it (see below)")
    course = hubtools.bare_course_repo(state)
    env = {**os.environ, "VAELAB_HUB_STATE": str(state / "state"), "VAELAB_HUB_PORT": str(args.port),
           "VAELAB_HUB_IP": "127.0.0.1", "VAELAB_SHARED_CACHE": str(models / "cache"),
           "VAELAB_COURSE_REPO": str(course), "VAELAB_STUDENTS_GROUP": args.group}
    url = f"http://127.0.0.1:{args.port}"
    print(f"\nThe class server: {url}/  (Ctrl-C stops it)\n"
          f"  students: local accounts in group {args.group}, e.g.\n"
          f"    useradd --create-home -K HOME_MODE=0700 --groups {args.group} student1 && passwd student1\n"
          f"  shared models (read-only): {models / 'cache'}\n"
          f"  hand out the course with this nbgitpuller link:\n    {pull_link(url, str(course))}\n", flush=True)
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "classroom" / "jupyterhub_config.py")]
    os.chdir(state)
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    sys.exit(main())
