"""JupyterHub for a class taking VAE Loss Lab: local Unix accounts (PAM), the course environment as each
student's server, the instructor's pre-trained models as a shared read-only cache, an idle culler.

Run as root (the hub starts each student's server as that student):

    jupyterhub -f classroom/jupyterhub_config.py          # what `make hub` runs, after its checks

Everything is set by environment variables with classroom defaults (docs/classroom.md explains each):

    VAELAB_HUB_STATE      /srv/vaelab-hub          hub database, cookie secret, logs: created 0700, root's
    VAELAB_HUB_IP         127.0.0.1                where the public proxy listens (a reverse proxy with TLS in front)
    VAELAB_HUB_PORT       8000                     its port; the hub's own API and the proxy's API stay on 127.0.0.1
    VAELAB_HUB_API_PORT   8081  /  VAELAB_PROXY_API_PORT 8001
    VAELAB_SHARED_CACHE   /srv/vaelab/data/cache   the models `make models` trained (read-only for students)
    VAELAB_COURSE_REPO    /srv/vaelab/vae-loss-lab.git   the bare repository nbgitpuller links pull from
    VAELAB_STUDENTS_GROUP vaelab-students          the Unix group whose members may log in
    VAELAB_INSTRUCTORS    (none)                   comma-separated admin accounts (they may log in too)
    VAELAB_SPAWNER        auto                     systemd (enforces limits) | local (cannot) | auto: systemd if usable
    VAELAB_MEM_LIMIT      2G    /  VAELAB_CPU_LIMIT 1      per student, enforced only by the systemd spawner
    VAELAB_IDLE_TIMEOUT   3600                     seconds without activity before a server is stopped

Secrets are never in this file or the repository: the cookie secret is generated into the state folder on
first start (mode 0600), the proxy's token on every start, and the idle culler's API token by the hub.
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the course environment (.venv/bin), which also runs the hub
env = os.environ.get

state = Path(env("VAELAB_HUB_STATE", "/srv/vaelab-hub"))
state.mkdir(mode=0o700, parents=True, exist_ok=True)
state.chmod(0o700)
shared_cache = env("VAELAB_SHARED_CACHE", "/srv/vaelab/data/cache")
course_repo = env("VAELAB_COURSE_REPO", "/srv/vaelab/vae-loss-lab.git")

# Students' git must read the course repository although the instructor owns it (git refuses "dubious
# ownership" otherwise): a system-level git config that trusts that one folder, readable by all.
public = state.with_name(state.name + "-public")
public.mkdir(mode=0o755, exist_ok=True)
git_config = public / "student.gitconfig"
git_config.write_text("# written by classroom/jupyterhub_config.py at each start\n[include]\n\tpath = /etc/gitconfig\n"
                      f"[safe]\n\tdirectory = {course_repo}\n")
git_config.chmod(0o644)

# --------------------------------------------------------------------------- where it listens, where it keeps state
c.JupyterHub.bind_url = f"http://{env('VAELAB_HUB_IP', '127.0.0.1')}:{int(env('VAELAB_HUB_PORT', '8000'))}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{int(env('VAELAB_HUB_API_PORT', '8081'))}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(env('VAELAB_PROXY_API_PORT', '8001'))}"
_chp = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"  # pinned in package-lock.json (`npm ci`)
if not _chp.exists() and shutil.which("configurable-http-proxy") is None:
    sys.exit(f"configurable-http-proxy is missing: run `npm ci` in {ROOT} (it is pinned in package-lock.json)")
c.ConfigurableHTTPProxy.command = [str(_chp) if _chp.exists() else shutil.which("configurable-http-proxy")]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")  # generated there, 0600
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# --------------------------------------------------------------------------- who gets in: local accounts through PAM
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.allowed_groups = {env("VAELAB_STUDENTS_GROUP", "vaelab-students")}
c.PAMAuthenticator.admin_users = {u.strip() for u in env("VAELAB_INSTRUCTORS", "").split(",") if u.strip()}
c.PAMAuthenticator.create_system_users = False  # accounts are made by the instructor (docs/classroom.md)
c.JupyterHub.admin_access = False  # instructors administer the hub, they do not open students' servers

# --------------------------------------------------------------------------- each student's server: the course env
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180  # a room logging in at once on a small machine
c.Spawner.http_timeout = 120
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "TZ"]


def _user_data(spawner):
    """The student's own data folder and writable cache layer, in their home (VAELAB_DATA)."""
    import pwd

    return str(Path(pwd.getpwnam(spawner.user.name).pw_dir) / ".vae-loss-lab")


c.Spawner.environment = {
    "VAELAB_SHARED_CACHE": shared_cache,  # read first; nothing is ever written there
    "VAELAB_DATA": _user_data,  # models not in the shared cache are trained into ~/.vae-loss-lab/cache
    "VAELAB_OFFLINE": "1",  # the class server needs no network: MNIST is the shipped sample
    "VAELAB_PRECISION": env("VAELAB_PRECISION", "fp32"),  # as for `make models`, or the shared models don't match
    "GIT_CONFIG_SYSTEM": str(git_config),  # nbgitpuller's git may read the instructor's course repository
    "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
}

# Per-student limits. The systemd spawner enforces them (a cgroup per server: MemoryMax, CPUQuota); the local
# process spawner cannot (it only passes MEM_LIMIT / CPU_LIMIT to the server as information).
c.Spawner.mem_limit = env("VAELAB_MEM_LIMIT", "2G")
c.Spawner.cpu_limit = float(env("VAELAB_CPU_LIMIT", "1"))


def _systemd_usable() -> bool:
    import importlib.util

    return Path("/run/systemd/system").is_dir() and importlib.util.find_spec("systemdspawner") is not None


spawner = env("VAELAB_SPAWNER", "auto")
if spawner == "systemd" or (spawner == "auto" and _systemd_usable()):
    c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
    c.SystemdSpawner.isolate_tmp = True
    c.SystemdSpawner.isolate_devices = True
    c.SystemdSpawner.disable_user_sudo = True
    c.SystemdSpawner.readonly_paths = [str(Path(shared_cache).parent)]
else:
    c.JupyterHub.spawner_class = "localprocess"

# --------------------------------------------------------------------------- stop idle servers
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={int(env('VAELAB_IDLE_TIMEOUT', '3600'))}",
                "--cull-every=300", "--concurrency=5"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
