"""The shared, read-only cache as a student's kernel meets it, checked as an unprivileged user (root ignores
permission bits, so a check run as root would prove nothing), and `make models`, which fills it.

As root (CI) the test creates a local account and runs the check as that account with ``setpriv``; the shared
folder belongs to root, so to the student it is someone else's and read-only. As an ordinary user the check
runs as that user, with the shared folder made read-only by its mode bits.

The student check may create a real Unix account, so it is marked ``accounts`` and runs only when asked for:
``pytest -m accounts``, or ``VAELAB_TEST_ACCOUNTS=1`` (or ``CI`` set, as in ``.ci/run``) with a plain
``pytest tests`` / ``make test`` (tests/conftest.py skips it otherwise). The `make models` test always runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from torch import nn

from coursekit import hubtools
from coursekit.paths import ROOT
from vaeutils import cache, config, mnist_sample

STUDENT = "vaelab-cache-student"
CFG = {"model": "tiny", "epochs": 1}

STUDENT_CHECK = r"""
import json, os, sys
from pathlib import Path
import numpy as np, torch
from torch import nn
from vaeutils import cache, config, mnist_sample

cfg, readonly = json.loads(sys.argv[1]), Path(sys.argv[2])
shared = Path(os.environ["VAELAB_SHARED_CACHE"])
out, trained = {"uid": os.geteuid()}, []

def build():
    torch.manual_seed(0)
    return nn.Linear(3, 2)

def train(model):
    trained.append(1)
    return {"steps": [1.0]}

def write_probe(folder):
    try:
        (folder / "probe.txt").write_text("x")
        return "written"
    except PermissionError:
        return "refused"

out["write_shared"] = write_probe(shared)  # the permission bits really hold this user
out["write_readonly"] = write_probe(readonly)
_, _, out["shared_hit"] = cache.load_or_train("tiny", cfg, build, train)
out["trained_after_shared"] = len(trained)
other = {**cfg, "epochs": 7}
out["user_miss_then_hit"] = [cache.load_or_train("tiny", other, build, train)[2] for _ in range(2)]
out["user_file"] = cache.path_for("tiny", other).is_file()
out["trained_after_user"] = len(trained)

real_loadtxt = mnist_sample.np.loadtxt
def no_csv(*a, **k):
    raise AssertionError("the MNIST CSV was parsed: the shared mnist_5k.pt was not used")
mnist_sample.np.loadtxt = no_csv
(tx, _), (vx, _) = mnist_sample.split(config.DATA_DIR)
out["mnist_from_shared"] = [len(tx), len(vx)]
out["own_mnist_written"] = (config.DATA_DIR / "mnist_5k.pt").exists()
mnist_sample.np.loadtxt = real_loadtxt

config.CACHE_DIR = readonly / "cache"  # a user cache that cannot even be created
out["readonly_hit"] = cache.load_or_train("tiny", {**cfg, "epochs": 9}, build, train)[2]
out["readonly_clear"] = cache.clear()
config.CACHE_DIR = shared  # the shared folder as the user's own cache: read, never written
out["shared_as_user_hit"] = cache.load_or_train("tiny", cfg, build, train)[2]
out["shared_as_user_miss"] = cache.load_or_train("tiny", {**cfg, "epochs": 11}, build, train)[2]
out["shared_clear"] = cache.clear()
os.environ.pop("VAELAB_SHARED_CACHE")
(tx, _), _ = mnist_sample.split(readonly)  # no shared data, read-only data folder: parsed, not written
out["mnist_readonly"] = len(tx)
out["trained"] = len(trained)
print("RESULT " + json.dumps(out))
"""


def snapshot(folder: Path):
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
                  for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def student():
    """An account without privileges that can run this Python: created (and removed) when running as root."""
    if os.geteuid() != 0:
        import pwd

        yield pwd.getpwuid(os.geteuid()).pw_name
        return
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing, so no unprivileged account can be made for this check "
                        "(bash classroom/ci-setup.sh installs it)")
    try:
        hubtools.create_user(STUDENT)
    except subprocess.CalledProcessError as err:
        pytest.skip(f"cannot create the test account {STUDENT}: {err}")
    try:
        reason = hubtools.unprivileged_unavailable(STUDENT)
        if reason:
            pytest.skip(reason + " (bash classroom/ci-setup.sh grants the traverse permission)")
        yield STUDENT
    finally:
        hubtools.delete_user(STUDENT)


@pytest.fixture
def layout(student, monkeypatch):
    """An instructor's shared data folder (one tiny model, the MNIST sample), a student's own data folder,
    and a read-only folder; all under a folder every user can enter."""
    import pwd

    base = Path(tempfile.mkdtemp(prefix="vaelab-shared-test-", dir="/tmp"))
    try:
        base.chmod(0o755)
        teacher = base / "teacher"
        monkeypatch.setattr(config, "CACHE_DIR", teacher / "cache")
        monkeypatch.delenv(cache.SHARED_ENV, raising=False)
        cache.load_or_train("tiny", CFG, lambda: nn.Linear(3, 2), lambda m: {"steps": [1.0]})
        mnist_sample.split(teacher)
        own, readonly = base / "student-data", base / "readonly"
        own.mkdir()
        readonly.mkdir()
        entry = pwd.getpwnam(student)
        os.chown(own, entry.pw_uid, entry.pw_gid)
        for folder in (teacher, teacher / "cache", readonly):
            folder.chmod(0o555 if os.geteuid() != 0 else 0o755)
        for f in teacher.rglob("*.pt"):
            f.chmod(0o444 if os.geteuid() != 0 else 0o644)
        yield {"base": base, "teacher": teacher, "own": own, "readonly": readonly, "user": student}
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.accounts
def test_a_student_reads_the_shared_cache_trains_into_their_own_and_never_writes_the_shared_one(layout):
    teacher, readonly = layout["teacher"], layout["readonly"]
    before_teacher, before_readonly = snapshot(teacher), snapshot(readonly)
    env = {"VAELAB_SHARED_CACHE": str(teacher / "cache"), "VAELAB_DATA": str(layout["own"]),
           "VAELAB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    run = hubtools.run_as(layout["user"], [sys.executable, "-c", STUDENT_CHECK, json.dumps(CFG), str(readonly)],
                          env=env, cwd=str(layout["base"]), timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stdout + run.stderr
    out = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert out["uid"] != 0 and out["write_shared"] == "refused" and out["write_readonly"] == "refused", out
    assert out["shared_hit"] and out["trained_after_shared"] == 0  # loaded from the shared layer
    assert out["user_miss_then_hit"] == [False, True] and out["user_file"]  # trained into the user's layer
    assert out["trained_after_user"] == 1
    assert out["mnist_from_shared"] == [4000, 1000] and not out["own_mnist_written"]
    assert out["readonly_hit"] is False and out["readonly_clear"] == 0  # read-only folder: no error
    assert out["shared_as_user_hit"] and out["shared_as_user_miss"] is False and out["shared_clear"] == 0
    assert out["mnist_readonly"] == 4000 and out["trained"] == 3
    assert "cannot write" in run.stdout and "shared, read-only" in run.stdout and "cannot write" in run.stdout
    assert snapshot(teacher) == before_teacher, "the shared folder changed"
    assert snapshot(readonly) == before_readonly
    own_files = sorted(p.name for p in (layout["own"] / "cache").iterdir())
    assert own_files == [cache.path_for("tiny", {**CFG, "epochs": 7}).name]


# --------------------------------------------------------------------------- make models

TINY_UNIT = """
import torch
from vaeutils.data import ImageData
from vaeutils.train import train_vae
g = torch.Generator().manual_seed(0)
x = (torch.rand(64, 1, 8, 8, generator=g) > 0.5).float()
y = torch.zeros(64, dtype=torch.long)
tiny = ImageData(train_x=x[:48], train_y=y[:48], test_x=x[48:], test_y=y[48:], name="tiny", source="random bits")
result = train_vae(data=tiny, hidden=(8,), latent_dim=2, epochs={epochs}, batch_size=16, name="tiny-unit",
                   progress=False)
print("loaded" if result.loaded else "trained")
"""


def run_make_models(data_dir: Path, notebooks: Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VAELAB_SHARED_CACHE",)}
    r = subprocess.run([sys.executable, "-m", "coursekit", "models", "--data-dir", str(data_dir),
                        "--notebooks", str(notebooks), "--no-app", "--json"], capture_output=True, text=True,
                       env={**env, "CI": "true"}, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stdout + r.stderr


def test_make_models_runs_every_unit_notebook_once_and_a_second_run_trains_nothing(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name, epochs in (("00_tiny.ipynb", 1), ("01_tiny.ipynb", 2)):  # two units, one model each
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TINY_UNIT.format(epochs=epochs))])
        nbformat.write(nb, notebooks / name)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise SystemExit('not a unit')")]),
                   notebooks / "beta_explorer_app.ipynb")  # not a unit: only NN_*.ipynb run
    data_dir = tmp_path / "class-data"
    first, out1 = run_make_models(data_dir, notebooks)
    assert (first["notebooks"], first["trained"], first["already_cached"], first["models"]) == (2, 2, 0, 2), out1
    assert first["bytes"] > 0 and first["bytes_added"] == first["bytes"] and not first["failures"]
    assert "2 models trained" in out1 and "on disk" in out1 and "make models" in out1  # summary and bar
    stamps = {p.name: p.stat().st_mtime_ns for p in (data_dir / "cache").glob("*.pt")}
    second, out2 = run_make_models(data_dir, notebooks)
    assert (second["trained"], second["already_cached"], second["bytes_added"]) == (0, 2, 0), out2
    assert {p.name: p.stat().st_mtime_ns for p in (data_dir / "cache").glob("*.pt")} == stamps
