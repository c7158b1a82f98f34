"""What the class-server tests and the load test share: local Unix accounts, a JupyterHub on 127.0.0.1 run with
``classroom/jupyterhub_config.py``, its REST API, and a kernel client that talks to a student's kernel the way
JupyterLab does: over the websocket the hub's proxy forwards, with ipywidgets' comm messages.

Nothing here listens anywhere but 127.0.0.1, and every process it starts is stopped by :meth:`Hub.stop`.
"""

from __future__ import annotations

import asyncio
import grp
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .paths import ROOT

CONFIG = ROOT / "classroom" / "jupyterhub_config.py"
CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- what is missing here

def hub_unavailable() -> str | None:
    """Why a hub cannot be started here (None when it can): the pieces CI installs with classroom/ci-setup.sh."""
    if os.geteuid() != 0:
        return "the hub must run as root to start servers as other Unix users (run the tests as root, as CI does)"
    for tool in ("useradd", "userdel", "chpasswd", "setpriv", "git"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash classroom/ci-setup.sh installs what the hub tests need)"
    try:
        import jupyterhub  # noqa: F401
        import jupyterhub_idle_culler  # noqa: F401
        import nbgitpuller  # noqa: F401
        import pamela  # noqa: F401
    except ImportError as err:
        return f"{err.name} is not installed (pinned in requirements.txt: run `make venv`)"
    if not CHP.exists():
        return f"{CHP} is missing (configurable-http-proxy, pinned in package-lock.json: run `npm ci`)"
    if shutil.which("node") is None:
        return "node is not installed (bash classroom/ci-setup.sh installs it)"
    return None


def unprivileged_unavailable(user: str) -> str | None:
    """Why ``user`` cannot run this Python with vaeutils (None when it can): e.g. the venv or the checkout under
    /root, which other users cannot enter."""
    probe = run_as(user, [sys.executable, "-c", "import torch, vaeutils.cache"], cwd="/", timeout=300)
    if probe.returncode != 0:
        tail = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return (f"user {user} cannot run {sys.executable} with vaeutils from {ROOT} ({tail[0]}); put the venv and "
                "the checkout where other users can read them (e.g. VAELAB_CI_VENV=/var/cache/vae-loss-lab/venv)")
    return None


# --------------------------------------------------------------------------- accounts

def ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)


def create_user(name: str, group: str | None = None, password: str | None = None) -> pwd.struct_passwd:
    """A local account with a private home (0700), in ``group``, with ``password`` (None: none, no login)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--create-home", "--shell", "/bin/bash", "-K", "HOME_MODE=0700", "-K", "UMASK=0022"]
        subprocess.run([*argv, *(["--groups", group] if group else []), name], check=True)
    else:
        if group:
            subprocess.run(["usermod", "--append", "--groups", group, name], check=True)
    entry = pwd.getpwnam(name)
    os.chmod(entry.pw_dir, 0o700)
    if password is not None:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    return entry


def delete_user(name: str) -> None:
    subprocess.run(["pkill", "--signal", "KILL", "--uid", name], capture_output=True)
    subprocess.run(["userdel", "--remove", "--force", name], capture_output=True)


def run_as(user: str, argv, env=None, cwd=None, timeout=120, input=None) -> subprocess.CompletedProcess:
    """Run ``argv`` as ``user`` (real and effective uid and gid, the user's groups) with ``env`` (default: a
    minimal environment with the user's HOME); output captured as text."""
    entry = pwd.getpwnam(user)
    base = {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "PATH": f"{BIN}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if os.geteuid() == entry.pw_uid:
        wrapper = []
    else:
        wrapper = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]
    return subprocess.run([*wrapper, *argv], env={**base, **(env or {})}, cwd=cwd or entry.pw_dir, timeout=timeout,
                          capture_output=True, text=True, input=input)


# --------------------------------------------------------------------------- the hub

TEST_CONFIG = """
import os
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821 - the classroom config, unchanged
# A test-only service whose token the test generated at run time (it is not written anywhere else).
c.JupyterHub.services.append({{"name": "vaelab-tester", "api_token": os.environ["VAELAB_TEST_HUB_TOKEN"]}})
c.JupyterHub.load_roles.append({{"name": "vaelab-tester", "services": ["vaelab-tester"],
                                 "scopes": ["admin:users", "admin:servers", "tokens", "list:services",
                                            "read:services", "access:servers", "read:hub"]}})
c.JupyterHub.concurrent_spawn_limit = 40
c.JupyterHub.log_level = "INFO"
"""


class Hub:
    """``classroom/jupyterhub_config.py`` on free loopback ports, state in ``state``; a test-only admin token.

    ``with Hub(state, shared_cache=..., group=...) as hub:`` starts it and stops it (and every server and
    kernel it started) on exit."""

    def __init__(self, state: Path, *, shared_cache: str, group: str, course_repo: str = "", extra_env=None,
                 idle_timeout: int = 3600, extra_config: str = ""):
        self.extra_config = extra_config
        self.state = Path(state)
        self.port, self.api_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.token = secrets.token_hex(32)  # generated here, at run time; never stored in the repository
        self.env = {**os.environ, "VAELAB_HUB_STATE": str(self.state / "hub"), "VAELAB_HUB_PORT": str(self.port),
                    "VAELAB_HUB_API_PORT": str(self.api_port), "VAELAB_PROXY_API_PORT": str(self.proxy_api_port),
                    "VAELAB_SHARED_CACHE": shared_cache, "VAELAB_STUDENTS_GROUP": group, "VAELAB_SPAWNER": "local",
                    "VAELAB_IDLE_TIMEOUT": str(idle_timeout), "VAELAB_TEST_HUB_TOKEN": self.token,
                    **({"VAELAB_COURSE_REPO": course_repo} if course_repo else {}),
                    **(extra_env or {})}
        for k in ("CI", "SMOKE", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "CONFIGPROXY_AUTH_TOKEN"):
            self.env.pop(k, None)
        self.process: subprocess.Popen | None = None
        self.log_path = self.state / "hub.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 120) -> Hub:
        self.state.mkdir(parents=True, exist_ok=True)
        config = self.state / "test_config.py"
        config.write_text(TEST_CONFIG.format(config=str(CONFIG)) + self.extra_config)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=self.state,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.api("GET", "/")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"the hub did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def processes(self):
        """The hub and everything it started (proxy, culler, servers, kernels), as psutil processes."""
        import psutil

        try:
            hub = psutil.Process(self.process.pid)
            return [hub, *hub.children(recursive=True)]
        except (psutil.NoSuchProcess, AttributeError):
            return []

    def stop(self) -> None:
        if self.process is None:
            return
        import psutil

        family = self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the hub stops the servers and the proxy it started
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(10)

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------- HTTP

    def request(self, method: str, path: str, body=None, token: str | None = None, headers=None, timeout=60):
        """``(status, headers, bytes)`` of one request to the public address (the proxy)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if token:
                h["Authorization"] = f"token {token}"
            data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def api(self, method: str, path: str, body=None, token: str | None = None):
        """``(status, json or None)`` of the hub's REST API (``/hub/api`` + ``path``), as the test service."""
        status, _, data = self.request(method, "/hub/api" + path, body, token or self.token)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None

    def start_server(self, user: str, timeout: float = 240) -> None:
        """Start ``user``'s server through the API and wait until the hub reports it ready (the account is added
        to the hub first, as its first login would)."""
        status, body = self.api("POST", f"/users/{user}")
        if status not in (201, 409):
            raise RuntimeError(f"adding {user} to the hub: {status} {body}")
        status, body = self.api("POST", f"/users/{user}/server")
        if status not in (201, 202, 400):  # 400: already running
            raise RuntimeError(f"starting {user}'s server: {status} {body}\n{self.log_tail()}")
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            status, info = self.api("GET", f"/users/{user}")
            server = (info or {}).get("servers", {}).get("")
            if server and server.get("ready"):
                return
            if info and not server and not info.get("pending") and time.monotonic() - t0 > 5:
                raise RuntimeError(f"{user}'s server failed to start:\n{self.log_tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"{user}'s server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def user_token(self, user: str) -> str:
        """A token of ``user`` (as the hub would hand JupyterLab): it reaches that user's own server only."""
        status, body = self.api("POST", f"/users/{user}/tokens", {"note": "vaelab test", "expires_in": 3600})
        if status != 201:
            raise RuntimeError(f"token for {user}: {status} {body}")
        return body["token"]


def login(hub: Hub, user: str, password: str):
    """Log in through the hub's login form like a browser. Returns ``(ok, session)``; session is a
    ``requests.Session`` holding the cookies (only useful when ok)."""
    import re

    import requests

    s = requests.Session()
    page = s.get(hub.url + "/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    form = {"username": user, "password": password, **({"_xsrf": xsrf.group(1)} if xsrf else {})}
    r = s.post(hub.url + "/hub/login?next=", data=form, allow_redirects=False, timeout=60)
    ok = r.status_code == 302 and any(c.name.startswith("jupyterhub-session") for c in s.cookies)
    return ok, s


# --------------------------------------------------------------------------- a kernel over the hub's websocket

def _decode(frame) -> dict:
    """A message from jupyter-server's websocket (JSON text, or the binary form with buffers)."""
    if isinstance(frame, str):
        return json.loads(frame)
    n = struct.unpack("!i", frame[:4])[0]
    offsets = [*struct.unpack("!" + "I" * n, frame[4:4 * (n + 1)]), len(frame)]
    msg = json.loads(frame[offsets[0]:offsets[1]].decode())
    msg["buffers"] = [frame[a:b] for a, b in zip(offsets[1:-1], offsets[2:])]
    return msg


class Kernel:
    """A kernel in ``user``'s server, driven through ``hub``'s proxy: execute code, read widget state, send a
    widget update as a browser does and wait for the widget the kernel changes in reply."""

    def __init__(self, hub: Hub, user: str, token: str):
        self.hub, self.user, self.token = hub, user, token
        self.session = uuid.uuid4().hex
        self.widgets: dict[str, dict] = {}  # comm id -> state, from comm_open
        self.errors: list[str] = []
        self._replies: dict[str, asyncio.Future] = {}
        self._watch: dict[str, asyncio.Future] = {}  # comm id -> future resolved by its next update
        self.ws = None
        self.kernel_id = None

    async def open(self, path: str = "") -> Kernel:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        status, _, body = await asyncio.to_thread(
            self.hub.request, "POST", f"/user/{self.user}/api/kernels", {"name": "python3", "path": path}, self.token)
        if status != 201:
            raise RuntimeError(f"{self.user}: starting a kernel answered {status}: {body[:300]!r}")
        self.kernel_id = json.loads(body)["id"]
        url = (f"ws://127.0.0.1:{self.hub.port}/user/{self.user}/api/kernels/{self.kernel_id}/channels"
               f"?session_id={self.session}")
        self.ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.token}"}),
                                          max_message_size=64 * 1024 * 1024)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                return
            msg = _decode(frame)
            kind, content = msg["header"]["msg_type"], msg.get("content", {})
            parent = msg.get("parent_header", {}).get("msg_id")
            if kind == "execute_reply" and parent in self._replies:
                self._replies.pop(parent).set_result(content)
            elif kind == "comm_open" and content.get("target_name") == "jupyter.widget":
                self.widgets[content["comm_id"]] = content["data"]["state"]
            elif kind == "comm_msg":
                data = content.get("data", {})
                if data.get("method") in ("update", "echo_update"):
                    self.widgets.setdefault(content["comm_id"], {}).update(data.get("state", {}))
                    waiter = self._watch.pop(content["comm_id"], None)
                    if waiter and not waiter.done() and data.get("method") == "update":
                        waiter.set_result(time.perf_counter())
            elif kind == "error":
                self.errors.append(f"{content.get('ename')}: {content.get('evalue')}")

    def _message(self, msg_type: str, content: dict, channel: str = "shell") -> tuple[str, str]:
        msg_id = uuid.uuid4().hex
        msg = {"header": {"msg_id": msg_id, "msg_type": msg_type, "username": self.user, "session": self.session,
                          "date": "", "version": "5.3"},
               "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}
        return msg_id, json.dumps(msg)

    async def execute(self, code: str, timeout: float = 600, expressions=None) -> dict:
        """Run ``code``; returns the execute_reply content (raises with the traceback if the cell failed)."""
        msg_id, text = self._message("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": expressions or {},
            "allow_stdin": False, "stop_on_error": True})
        future = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = future
        await self.ws.write_message(text)
        reply = await asyncio.wait_for(future, timeout)
        if reply.get("status") != "ok":
            raise RuntimeError(f"{self.user}: cell failed: {reply.get('ename')}: {reply.get('evalue')}\n"
                               + "\n".join(reply.get("traceback", []))[-3000:])
        return reply

    async def value(self, expression: str, timeout: float = 120):
        """The JSON value of ``json.dumps(expression)`` evaluated in the kernel."""
        reply = await self.execute("import json as _json", timeout,
                                   {"v": f"_json.dumps({expression})"})
        import ast

        result = reply["user_expressions"]["v"]
        if result.get("status") != "ok":
            raise RuntimeError(f"{self.user}: {expression}: {result.get('ename')}: {result.get('evalue')}")
        return json.loads(ast.literal_eval(result["data"]["text/plain"]))

    def find_widget(self, css_class: str, model: str | None = None) -> str:
        """The comm id of the widget carrying ``css_class`` (and of ``model``, e.g. 'SelectionSliderModel')."""
        for comm_id, state in self.widgets.items():
            if css_class in state.get("_dom_classes", ()) and (model is None or state.get("_model_name") == model):
                return comm_id
        raise LookupError(f"{self.user}: no widget with class {css_class!r} among {len(self.widgets)}")

    def child(self, comm_id: str, model: str) -> str:
        for ref in self.widgets[comm_id].get("children", ()):
            cid = ref.removeprefix("IPY_MODEL_")
            if self.widgets.get(cid, {}).get("_model_name") == model:
                return cid
        raise LookupError(f"{self.user}: {comm_id} has no {model} child")

    async def set_and_wait(self, comm_id: str, state: dict, changed_id: str, timeout: float = 10.0) -> float:
        """Send a widget update (as a browser's slider does) and return the seconds until the kernel's update of
        ``changed_id`` arrives on this side of the websocket."""
        future = asyncio.get_running_loop().create_future()
        self._watch[changed_id] = future
        _, text = self._message("comm_msg", {"comm_id": comm_id,
                                             "data": {"method": "update", "state": state, "buffer_paths": []}})
        t0 = time.perf_counter()
        await self.ws.write_message(text)
        try:
            return await asyncio.wait_for(future, timeout) - t0
        finally:
            self._watch.pop(changed_id, None)

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self._reader.cancel()
        if self.kernel_id:
            await asyncio.to_thread(self.hub.request, "DELETE", f"/user/{self.user}/api/kernels/{self.kernel_id}",
                                    None, self.token)


def notebook_cells(path: Path) -> list[str]:
    """The code cells of a notebook, in order."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def bare_course_repo(folder: Path) -> Path:
    """A bare clone of this checkout's HEAD (what the instructor serves to nbgitpuller), readable by all."""
    target = Path(folder) / "vae-loss-lab.git"
    if not target.exists():
        subprocess.run(["git", "clone", "--quiet", "--bare", "--no-hardlinks", str(ROOT), str(target)], check=True)
    # branch main = this checkout's HEAD (a CI clone may be on a detached HEAD or another branch)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run(["git", "--git-dir", str(target), "fetch", "--quiet", str(ROOT), head], check=True)
    subprocess.run(["git", "--git-dir", str(target), "update-ref", "refs/heads/main", head], check=True)
    subprocess.run(["git", "--git-dir", str(target), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    return target
