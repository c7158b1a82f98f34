"""The class server (classroom/jupyterhub_config.py) as students meet it: real local accounts through PAM, each
student's server started by the hub as that student, the instructor's shared cache read-only.

Proves: a wrong password (and an account outside the students' group) is refused; a student cannot reach
another student's server (API, contents, kernels; through the proxy or on its port) nor read their files,
and cannot write to the shared cache, while the cached model loads and a missing one trains into their
own folder; hub, proxy and servers listen on 127.0.0.1 only; the secrets are generated on the server, not in
the repository; the idle culler runs; an nbgitpuller link hands the course to a student's home.

Needs root (the hub starts servers as other users), Node.js and the pinned configurable-http-proxy
(`bash classroom/ci-setup.sh`); skips with the reason otherwise. About a minute.

It creates real Unix accounts (a group and three users, removed afterwards), so it is marked ``accounts`` and
runs only when asked for: ``pytest -m accounts``, or ``VAELAB_TEST_ACCOUNTS=1`` (or ``CI`` set, as in
``.ci/run``) with a plain ``pytest tests`` / ``make test`` (tests/conftest.py skips it otherwise).
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest
from torch import nn

from coursekit import hubtools
from coursekit.paths import ROOT
from vaeutils import cache, config, mnist_sample

GROUP = "vaelab-test-students"
ALICE, BOB, OUTSIDER = "vlt-alice", "vlt-bob", "vlt-outsider"
CFG = {"model": "tiny", "epochs": 1}

pytestmark = [
    pytest.mark.accounts,
    pytest.mark.skipif(hubtools.hub_unavailable() is not None, reason=str(hubtools.hub_unavailable())),
]


@pytest.fixture(scope="module")
def hub():
    base = Path(tempfile.mkdtemp(prefix="vaelab-hub-test-", dir="/tmp"))
    base.chmod(0o755)
    passwords = {u: secrets.token_urlsafe(12) for u in (ALICE, BOB, OUTSIDER)}
    try:
        hubtools.ensure_group(GROUP)
        for user in (ALICE, BOB):
            hubtools.create_user(user, GROUP, passwords[user])
        hubtools.create_user(OUTSIDER, None, passwords[OUTSIDER])
        reason = hubtools.unprivileged_unavailable(ALICE)
        if reason:
            pytest.skip(reason + " (bash classroom/ci-setup.sh grants the traverse permission)")
        bob = pwd.getpwnam(BOB)
        secret = Path(bob.pw_dir) / "homework.txt"
        secret.write_text("bob's answers\n")
        os.chown(secret, bob.pw_uid, bob.pw_gid)
        # the instructor's shared data folder: one model and the MNIST sample, owned by root, readable by all
        teacher = base / "data"
        saved = config.CACHE_DIR
        config.CACHE_DIR = teacher / "cache"
        try:
            cache.load_or_train("tiny", CFG, lambda: nn.Linear(3, 2), lambda m: {"steps": [1.0]})
        finally:
            config.CACHE_DIR = saved
        mnist_sample.split(teacher)
        subprocess.run(["chmod", "-R", "a+rX,go-w", str(teacher)], check=True)
        course = hubtools.bare_course_repo(base)
        with hubtools.Hub(base / "state", shared_cache=str(teacher / "cache"), group=GROUP,
                          course_repo=str(course)) as h:
            errors = []

            def start(user):
                try:
                    h.start_server(user)
                except Exception as err:  # reported below, in the test's thread
                    errors.append(err)

            threads = [threading.Thread(target=start, args=(u,)) for u in (ALICE, BOB)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            h.passwords, h.teacher, h.course, h.tokens = passwords, teacher, course, {}
            h.tokens = {u: h.user_token(u) for u in (ALICE, BOB)}
            yield h
    finally:
        for user in (ALICE, BOB, OUTSIDER):
            hubtools.delete_user(user)
        subprocess.run(["groupdel", GROUP], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_a_wrong_password_or_an_account_outside_the_class_is_refused(hub):
    assert hubtools.login(hub, ALICE, hub.passwords[ALICE])[0]
    assert not hubtools.login(hub, ALICE, hub.passwords[ALICE] + "x")[0]
    assert not hubtools.login(hub, ALICE, hub.passwords[BOB])[0]
    assert not hubtools.login(hub, OUTSIDER, hub.passwords[OUTSIDER])[0]  # right password, not a student
    assert not hubtools.login(hub, "nobody-here", "anything")[0]


def test_a_student_cannot_reach_another_students_server(hub):
    alice = hub.tokens[ALICE]
    assert hub.request("GET", f"/user/{ALICE}/api/status", token=alice)[0] == 200
    for method, path in (("GET", "/api/status"), ("GET", "/api/contents"), ("GET", "/api/kernels"),
                         ("POST", "/api/kernels"), ("GET", "/api/contents/homework.txt")):
        status = hub.request(method, f"/user/{BOB}{path}", body={} if method == "POST" else None, token=alice)[0]
        assert status in (403, 404), (method, path, status)
    # with Alice's browser session (cookies): Bob's server is not hers either
    ok, session = hubtools.login(hub, ALICE, hub.passwords[ALICE])
    assert ok
    r = session.get(f"{hub.url}/user/{BOB}/api/contents/homework.txt", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 403, 404) and "answers" not in r.text
    # and straight to the port Bob's server listens on, past the proxy
    _, info = hub.api("GET", f"/users/{BOB}")
    server_url = info["servers"][""]["url"]
    bob_port = next(c.laddr.port for p in hub.processes() if p.username() == BOB
                    for c in p.net_connections() if c.status == "LISTEN")
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", bob_port, timeout=30)
    conn.request("GET", f"{server_url}api/contents/homework.txt", headers={"Authorization": f"token {alice}"})
    response = conn.getresponse()
    assert response.status == 403 and b"answers" not in response.read()
    conn.close()


STUDENT_CELL = r"""
import json, os
from pathlib import Path
import torch
from torch import nn
from vaeutils import cache, config
out, trained = {"uid": os.geteuid(), "cache_dir": str(config.CACHE_DIR)}, []
def attempt(f):
    try:
        f()
        return "allowed"
    except PermissionError:
        return "refused"
out["read_bob"] = attempt(lambda: Path("/home/%(bob)s/homework.txt").read_text())
out["list_bob"] = attempt(lambda: os.listdir("/home/%(bob)s"))
shared = Path(os.environ["VAELAB_SHARED_CACHE"])
out["write_shared"] = attempt(lambda: (shared / "mine.pt").write_bytes(b"x"))
out["replace_shared"] = attempt(lambda: os.replace(next(shared.glob("*.pt")), shared / "gone.pt"))
def build():
    torch.manual_seed(0)
    return nn.Linear(3, 2)
def train(m):
    trained.append(1)
    return {"steps": [1.0]}
out["shared_hit"] = cache.load_or_train("tiny", %(cfg)s, build, train)[2]
out["own"] = [cache.load_or_train("tiny", {**%(cfg)s, "epochs": 5}, build, train)[2] for _ in range(2)]
out["trained"] = len(trained)
out["own_files"] = sorted(p.name for p in config.CACHE_DIR.glob("*.pt"))
"""


def test_a_student_cannot_read_another_students_files_or_write_the_shared_cache(hub):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in hub.teacher.rglob("*"))

    async def go():
        kernel = await hubtools.Kernel(hub, ALICE, hub.tokens[ALICE]).open()
        try:
            await kernel.execute(STUDENT_CELL % {"bob": BOB, "cfg": repr(CFG)}, timeout=300)
            return await kernel.value("out")
        finally:
            await kernel.close()

    out = asyncio.run(go())
    assert out["uid"] == pwd.getpwnam(ALICE).pw_uid
    assert (out["read_bob"], out["list_bob"], out["write_shared"], out["replace_shared"]) == ("refused",) * 4, out
    assert out["shared_hit"] and out["own"] == [False, True] and out["trained"] == 1
    assert out["cache_dir"] == f"{pwd.getpwnam(ALICE).pw_dir}/.vae-loss-lab/cache"
    assert out["own_files"] == [cache.path_for("tiny", {**CFG, "epochs": 5}).name]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in hub.teacher.rglob("*")) == before


def test_hub_proxy_and_servers_listen_on_loopback_only(hub):
    listening = [(p.name(), c.laddr.ip, c.laddr.port) for p in hub.processes() for c in p.net_connections()
                 if c.status == "LISTEN"]
    assert len(listening) >= 5, listening  # proxy (public + API), hub API, two servers
    assert all(ip == "127.0.0.1" for _, ip, _ in listening), listening
    ports = {port for _, _, port in listening}
    assert {hub.port, hub.api_port, hub.proxy_api_port} <= ports


def test_secrets_are_generated_on_the_server_and_the_idle_culler_runs(hub):
    secret = hub.state / "hub" / "jupyterhub_cookie_secret"
    assert secret.is_file() and secret.stat().st_mode & 0o777 == 0o600
    assert (hub.state / "hub").stat().st_mode & 0o777 == 0o700
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if "cookie_secret" in f or f.endswith(".sqlite")]
    assert subprocess.run(["git", "grep", "-q", secret.read_text().strip()[:32]], cwd=ROOT).returncode == 1
    status, services = hub.api("GET", "/services")
    assert status == 200 and "idle-culler" in services, services
    assert any("jupyterhub_idle_culler" in " ".join(p.cmdline()) for p in hub.processes())


def test_an_nbgitpuller_link_hands_the_course_to_a_students_home(hub):
    query = urllib.parse.urlencode({"repo": f"file://{hub.course}", "branch": "main", "targetpath": "vae-loss-lab",
                                    "urlpath": "lab/tree/vae-loss-lab/notebooks/00_setup_and_data.ipynb"})
    ok, session = hubtools.login(hub, ALICE, hub.passwords[ALICE])
    assert ok
    link = session.get(f"{hub.url}/hub/user-redirect/git-pull?{query}", timeout=60)  # the link a teacher hands out
    assert link.status_code == 200 and urllib.parse.urlsplit(link.url).path == f"/user/{ALICE}/git-pull", link.url
    status, _, body = hub.request("GET", f"/user/{ALICE}/git-pull/api?{query}", token=hub.tokens[ALICE],
                                  timeout=300)
    events = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")]
    assert status == 200 and events and events[-1]["phase"] == "finished", events[-3:]
    home = Path(pwd.getpwnam(ALICE).pw_dir)
    app = home / "vae-loss-lab" / "notebooks" / "beta_explorer_app.ipynb"
    assert app.is_file() and app.stat().st_uid == pwd.getpwnam(ALICE).pw_uid
    assert not (Path(pwd.getpwnam(BOB).pw_dir) / "vae-loss-lab").exists()
