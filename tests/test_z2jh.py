"""The Kubernetes deployment (classroom/z2jh/) and the course image (binder/), checked offline.

- classroom/z2jh/values.yaml, merged over the Zero to JupyterHub chart's defaults as Helm merges them, validates
  against the chart's own JSON schema (``../shared/z2jh/``, reference data kept outside the repository: the tests
  that need it skip without it), and the Kubernetes objects inside it (volumes, mounts, the postStart hook, the
  environment) validate against Kubernetes' schemas;
- the extra manifests (the model volume's claim, the make-models Job) validate against Kubernetes' schemas in
  strict mode (kubernetes-validate, which ships them: no cluster, no network);
- a wrong key or a wrong type in a copy of any of them is rejected, with a message naming the key;
- the files agree with each other (image, claim, mount path, precision) and with the sizing tool;
- binder/ installs every package the course pins, the Debian packages the course needs at run time, and its
  postBuild trains the models into the image.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate import utils as kv

from coursekit import sizing

ROOT = Path(__file__).resolve().parent.parent
Z2JH = ROOT / "classroom" / "z2jh"
BINDER = ROOT / "binder"


def _chart_folder() -> Path:
    """The chart's reference data: $VAELAB_Z2JH_CHART, else ``shared/z2jh`` beside the repository, or beside
    the repository a clone was made from (a CI clone in a temporary folder)."""
    if os.environ.get("VAELAB_Z2JH_CHART"):
        return Path(os.environ["VAELAB_Z2JH_CHART"])
    candidates = [ROOT.parent / "shared" / "z2jh"]
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and "://" not in origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared" / "z2jh")
    return next((c for c in candidates if (c / "values.schema.yaml").is_file()), candidates[0])


CHART = _chart_folder()
VALUES = Z2JH / "values.yaml"
MANIFESTS = {"PersistentVolumeClaim": Z2JH / "models-pvc.yaml", "Job": Z2JH / "make-models-job.yaml"}
# the oldest Kubernetes still common on campus clusters and the newest kubernetes-validate ships schemas for
KUBERNETES_VERSIONS = ("1.30", "1.37")
# the image's conda environment in every repo2docker build (NB_PYTHON_PREFIX)
NB_PYTHON_PREFIX = "/srv/conda/envs/notebook"


# --------------------------------------------------------------------------- validation helpers

def helm_merge(defaults, values):
    """``values`` over ``defaults`` as Helm merges a values file over a chart's: maps merge key by key, anything
    else (lists included) replaces, and a null removes the chart's key."""
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return copy.deepcopy(values)
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = helm_merge(merged.get(key), value)
    return merged


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def chart_errors(values: dict, chart: dict) -> list[str]:
    """'key.path: message' for each way the merged values break the chart's schema."""
    merged = helm_merge(chart["defaults"], values)
    validator = jsonschema.validators.validator_for(chart["schema"])(chart["schema"])
    return [f"{_where(e.absolute_path)}: {e.message}" for e in sorted(validator.iter_errors(merged), key=str)]


def _schema_folder(version: str):
    folder = max((v for v in kv.all_versions() if kv.major_minor(v) == version), default=None)
    assert folder, f"kubernetes-validate {kubernetes_validate.__version__} ships no schemas for Kubernetes {version}"
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{folder}-local-strict"


@lru_cache
def _definitions(version: str) -> dict:
    return json.loads((_schema_folder(version) / "_definitions.json").read_text())


@lru_cache
def _registry(version: str) -> referencing.Registry:
    defs = _definitions(version)
    return referencing.Registry().with_resource(defs["$id"], referencing.Resource.from_contents(defs))


def k8s_object_errors(obj, definition: str, version: str, where: str) -> list[str]:
    """Errors of one Kubernetes object (e.g. a Volume inside the Helm values) against Kubernetes' strict schema."""
    schema = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.api.core.v1.{definition}"}
    validator = jsonschema.Draft202012Validator(schema, registry=_registry(version))
    return [f"{where}.{_where(e.absolute_path)}: {e.message}".replace(". (top level)", "")
            for e in sorted(validator.iter_errors(obj), key=str)]


def embedded_errors(values: dict, version: str) -> list[str]:
    """The chart's schema lets Kubernetes objects in singleuser through unchecked: check them as Kubernetes would."""
    single = values.get("singleuser", {})
    storage = single.get("storage", {})
    errors = []
    for i, volume in enumerate(storage.get("extraVolumes") or []):
        errors += k8s_object_errors(volume, "Volume", version, f"singleuser.storage.extraVolumes.{i}")
    for i, mount in enumerate(storage.get("extraVolumeMounts") or []):
        errors += k8s_object_errors(mount, "VolumeMount", version, f"singleuser.storage.extraVolumeMounts.{i}")
    for hook, handler in (single.get("lifecycleHooks") or {}).items():
        errors += k8s_object_errors(handler, "LifecycleHandler", version, f"singleuser.lifecycleHooks.{hook}")
    env = single.get("extraEnv") or {}
    for name, value in (env.items() if isinstance(env, dict) else []):
        errors += k8s_object_errors({"name": name, "value": value}, "EnvVar", version, f"singleuser.extraEnv.{name}")
    for key in ("initContainers", "extraContainers"):
        for i, container in enumerate(single.get(key) or []):
            errors += k8s_object_errors(container, "Container", version, f"singleuser.{key}.{i}")
    return errors


def manifest_errors(path: Path, version: str) -> list[str]:
    """'Kind/name: key.path: message' for each way a manifest file's objects break Kubernetes' strict schema.

    kubernetes-validate gives the verdict (and reports the one error it finds most relevant); every error is then
    listed from the same schema file, so that a misspelt key is named even when a missing required one wins."""
    errors = []
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if not documents:
        return [f"{path.name}: no Kubernetes object in the file"]
    for doc in documents:
        name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        try:
            kv.validate(doc, version, strict=True)
            continue
        except kv.SchemaNotFoundError as e:
            errors.append(f"{name}: {e.message}")
            continue
        except kv.ValidationError as e:
            errors.append(f"{name}: {_where(e.absolute_path)}: {e.message}")
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])  # as kubernetes-validate names its files
        schema = json.loads((_schema_folder(version) / f"{doc['kind'].lower()}-{api}.json").read_text())
        registry = referencing.Resource.from_contents(schema) @ _registry(version)
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        errors += [f"{name}: {_where(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    return list(dict.fromkeys(errors))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def chart():
    schema_file, defaults_file = CHART / "values.schema.yaml", CHART / "values.default.yaml"
    if not (schema_file.is_file() and defaults_file.is_file()):
        pytest.skip(f"the Zero to JupyterHub chart's schema and defaults are not here ({CHART}): they are reference "
                    "data in shared/z2jh/ beside the repository, not part of it")
    return {"schema": load(schema_file), "defaults": load(defaults_file)}


@pytest.fixture(scope="module")
def values():
    return load(VALUES)


@pytest.fixture(scope="module")
def manifests():
    return {kind: load(path) for kind, path in MANIFESTS.items()}


# --------------------------------------------------------------------------- the Helm values

def test_the_reference_schema_is_a_valid_schema_that_the_chart_defaults_pass(chart):
    jsonschema.validators.validator_for(chart["schema"]).check_schema(chart["schema"])
    assert chart_errors({}, chart) == []  # the merge and the validator accept the chart as it ships


def test_values_pass_the_chart_schema(chart, values):
    assert chart_errors(values, chart) == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_kubernetes_objects_inside_the_values_pass_kubernetes_schemas(values, version):
    assert embedded_errors(values, version) == []


def _broken_values():
    """(what is wrong, how to break a copy, the key the error must name)"""
    def set_(path, value):
        def edit(v):
            *parents, last = path
            node = v
            for p in parents:
                node = node[p]
            node[last] = value
        return edit

    def rename(path, old, new):
        def edit(v):
            node = v
            for p in path:
                node = node[p]
            node[new] = node.pop(old)
        return edit

    return [
        ("misspelt key under singleuser", rename(["singleuser"], "memory", "memroy"), "memroy"),
        ("misspelt key under cull", rename(["cull"], "timeout", "timout"), "timout"),
        ("a CPU limit in words", set_(["singleuser", "cpu", "limit"], "one core"), "singleuser.cpu.limit"),
        ("a timeout in words", set_(["cull", "timeout"], "an hour"), "cull.timeout"),
        ("prePuller.hook.enabled as a string", set_(["prePuller", "hook", "enabled"], "yes please"),
         "prePuller.hook.enabled"),
        ("the image tag as a number", set_(["singleuser", "image", "tag"], 3.0), "singleuser.image.tag"),
    ]


def _broken_embedded():
    def volume_key(v):
        claim = v["singleuser"]["storage"]["extraVolumes"][0]["persistentVolumeClaim"]
        claim["claimNam"] = claim.pop("claimName")

    def mount_read_only_word(v):
        v["singleuser"]["storage"]["extraVolumeMounts"][0]["readOnly"] = "yes"

    def env_number(v):
        v["singleuser"]["extraEnv"]["OMP_NUM_THREADS"] = 1

    def hook_key(v):
        v["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["comand"] = ["true"]

    return [
        ("misspelt key in the model volume", volume_key, "claimNam"),
        ("readOnly as a word", mount_read_only_word, "singleuser.storage.extraVolumeMounts.0.readOnly"),
        ("an environment value that is not a string", env_number, "singleuser.extraEnv.OMP_NUM_THREADS"),
        ("misspelt key in the nbgitpuller hook", hook_key, "comand"),
    ]


@pytest.mark.parametrize("what, edit, key", _broken_values(), ids=[b[0] for b in _broken_values()])
def test_a_broken_copy_of_the_values_fails_the_chart_schema_naming_the_key(chart, values, tmp_path, what, edit, key):
    broken = copy.deepcopy(values)
    edit(broken)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    errors = chart_errors(load(path), chart)
    assert errors, f"{what}: the chart's schema accepted it"
    assert any(key in e for e in errors), f"{what}: no error names {key!r}: {errors}"


@pytest.mark.parametrize("what, edit, key", _broken_embedded(), ids=[b[0] for b in _broken_embedded()])
def test_a_broken_kubernetes_object_in_the_values_is_rejected_naming_the_key(values, tmp_path, what, edit, key):
    broken = copy.deepcopy(values)
    edit(broken)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    for version in KUBERNETES_VERSIONS:
        errors = embedded_errors(load(path), version)
        assert any(key in e for e in errors), f"{what} (Kubernetes {version}): no error names {key!r}: {errors}"


def test_values_give_students_what_the_course_needs(values):
    single = values["singleuser"]
    image = single["image"]
    assert image["name"] and "k8s-singleuser-sample" not in image["name"] and image["tag"]
    # per-student resources are the sizing tool's (docs/classroom.md §2)
    assert single["memory"] == {"guarantee": f"{sizing.MEMORY_GUARANTEE_GB}G", "limit": f"{sizing.MEMORY_LIMIT_GB}G"}
    assert single["cpu"] == {"guarantee": pytest.approx(sizing.CPU_GUARANTEE), "limit": sizing.CPU_LIMIT}

    env = single["extraEnv"]
    mount = single["storage"]["extraVolumeMounts"][0]
    volume = single["storage"]["extraVolumes"][0]
    layers = env["VAELAB_SHARED_CACHE"].split(":")
    assert layers == [f"{mount['mountPath']}/cache", f"{NB_PYTHON_PREFIX}/share/vae-loss-lab/data/cache"]
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    home = values["singleuser"]["storage"].get("homeMountPath", "/home/jovyan")
    assert Path(env["VAELAB_DATA"]).is_relative_to(home), "each student's own cache must be in their home"
    assert env["VAELAB_OFFLINE"] == "1" and env["VAELAB_PRECISION"] in ("fp32", "bf16")
    assert env["OMP_NUM_THREADS"] == str(sizing.CPU_LIMIT)

    # nbgitpuller at every start, from the repository and branch set in the environment, never blocking a start
    command = single["lifecycleHooks"]["postStart"]["exec"]["command"]
    script = command[-1]
    assert command[:2] == ["sh", "-c"] and script.startswith("gitpuller ") and script.endswith("|| true")
    assert "$VAELAB_COURSE_REPO" in script and "$VAELAB_COURSE_BRANCH" in script
    assert env["VAELAB_COURSE_REPO"].endswith(".git") and env["VAELAB_COURSE_BRANCH"]

    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] == 3600  # as the one-server hub
    assert values["prePuller"]["hook"]["enabled"] and values["prePuller"]["continuous"]["enabled"]
    assert values["scheduling"]["userScheduler"]["enabled"] is True


def test_the_authenticator_is_a_real_one_and_no_secret_is_in_the_file(values):
    config = values["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] not in ("dummy", "null", "nullauthenticator")
    assert config["Authenticator"]["allow_all"] is False
    text = VALUES.read_text()
    assert not re.search(r"^\s*(client_secret|cookieSecret|secretToken)\s*:", text, re.M), "secrets go in secrets.yaml"


# --------------------------------------------------------------------------- the extra manifests

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_manifests_pass_kubernetes_schemas(kind, version):
    assert load(MANIFESTS[kind])["kind"] == kind
    assert manifest_errors(MANIFESTS[kind], version) == []


def _broken_manifests():
    def container(doc):
        return doc["spec"]["template"]["spec"]["containers"][0]

    def pull_key(doc):
        container(doc)["imagePulPolicy"] = container(doc).pop("imagePullPolicy")

    def backoff_word(doc):
        doc["spec"]["backoffLimit"] = "once"

    def mount_key(doc):
        container(doc)["volumeMounts"][0]["mountpath"] = container(doc)["volumeMounts"][0].pop("mountPath")

    def access_modes_string(doc):
        doc["spec"]["accessModes"] = "ReadWriteMany"

    def spec_key(doc):
        doc["spec"]["resource"] = doc["spec"].pop("resources")

    def kind_typo(doc):
        doc["kind"] = "PersistentVolumeClam"

    return [
        ("Job", "misspelt container key", pull_key, "imagePulPolicy"),
        ("Job", "backoffLimit in words", backoff_word, "spec.backoffLimit"),
        ("Job", "misspelt mount key", mount_key, "mountpath"),
        ("PersistentVolumeClaim", "accessModes not a list", access_modes_string, "spec.accessModes"),
        ("PersistentVolumeClaim", "misspelt spec key", spec_key, "resource"),
        ("PersistentVolumeClaim", "misspelt kind", kind_typo, "PersistentVolumeClam"),
    ]


@pytest.mark.parametrize("kind, what, edit, key", _broken_manifests(), ids=[b[1] for b in _broken_manifests()])
def test_a_broken_copy_of_a_manifest_is_rejected_naming_the_key(manifests, tmp_path, kind, what, edit, key):
    broken = copy.deepcopy(manifests[kind])
    edit(broken)
    path = tmp_path / MANIFESTS[kind].name
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    for version in KUBERNETES_VERSIONS:
        errors = manifest_errors(path, version)
        assert any(key in e for e in errors), f"{what} (Kubernetes {version}): no error names {key!r}: {errors}"


def test_manifests_agree_with_the_values(values, manifests):
    single = values["singleuser"]
    pvc, job = manifests["PersistentVolumeClaim"], manifests["Job"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    claim = single["storage"]["extraVolumes"][0]["persistentVolumeClaim"]["claimName"]
    mount_path = single["storage"]["extraVolumeMounts"][0]["mountPath"]

    assert pvc["metadata"]["name"] == claim
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "the Job and every student's node mount it at once"
    assert container["image"] == f"{single['image']['name']}:{single['image']['tag']}"
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim
    assert not volume["persistentVolumeClaim"].get("readOnly"), "the Job is the one writer"
    (mount,) = container["volumeMounts"]
    assert mount["name"] == volume["name"] and mount["mountPath"] == mount_path and not mount.get("readOnly")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["VAELAB_PRECISION"] == single["extraEnv"]["VAELAB_PRECISION"], "a model is found only in its precision"
    assert env["VAELAB_OFFLINE"] == "1"
    # `make models` from the course copy in the image, into the volume, with the image's environment
    assert container["command"][:2] == ["make", "models"]
    assert f"MODELS_DIR={mount_path}" in container["command"] and f"VENV={NB_PYTHON_PREFIX}" in container["command"]
    assert container["workingDir"] == f"{NB_PYTHON_PREFIX}/share/vae-loss-lab"
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["restartPolicy"] == "Never"


# --------------------------------------------------------------------------- the image definition (repo2docker)

def _requirements(path: Path, seen=None) -> dict[str, str]:
    """name -> version of every `name==version` line, following `-r` includes as pip does (relative to the file)."""
    seen = set() if seen is None else seen
    if path.resolve() in seen:
        return {}
    seen.add(path.resolve())
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            pins.update(_requirements(path.parent / line.split(None, 1)[1], seen))
        elif "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def test_the_image_installs_every_package_the_course_pins():
    course = _requirements(ROOT / "requirements.txt")
    image = _requirements(BINDER / "requirements.txt")
    assert len(course) > 20 and "torch" in course, "could not read requirements.txt's pins"
    missing = {n: v for n, v in course.items() if image.get(n) != v}
    assert not missing, f"binder/requirements.txt does not install these pins of requirements.txt: {missing}"
    lines = [ln.split("#", 1)[0].strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()]
    assert not any(ln.startswith(("--index-url", "-i ")) for ln in lines), "PyPI must stay the main index"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines  # torch's CPU build, documented there


def test_the_image_uses_the_python_the_course_requires():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()


def _apt_txt() -> list[str]:
    packages = []
    for raw in (BINDER / "apt.txt").read_text().splitlines():
        name = raw.partition("#")[0].strip()
        if name:
            assert re.fullmatch(r"[a-z0-9.+-]+", name), f"apt.txt: {name!r} is not a package name repo2docker takes"
            packages.append(name)
    return packages


def _ci_apt_packages() -> set[str]:
    """Every Debian package the CI scripts install: `apt-get install` lines and ci-setup.sh's `need+=(...)`."""
    found = set()
    for script in (ROOT / ".ci" / "run", ROOT / "classroom" / "ci-setup.sh"):
        text = script.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if "apt-get install" in line:
                words = line.split("apt-get install", 1)[1].split(">")[0].split("||")[0].split("&&")[0].split()
                found |= {w for w in words if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w)}
            found |= set(re.findall(r"need\+=\(([a-z0-9.+-]+)\)", line))
    return found


# What CI installs that the image does not need, and why; the rest must be in binder/apt.txt.
NOT_IN_THE_IMAGE = {
    "chromium": "the browser tests only",
    "python3-venv": "the image's environment is repo2docker's conda environment, not a venv",
    "nodejs": "the one-server hub's proxy and the slides' reveal.js; Zero to JupyterHub runs its own proxy",
    "npm": "as nodejs",
    "util-linux": "the hub tests' setpriv; already in the base image",
    "passwd": "the hub tests' accounts; Kubernetes gives each student a pod, not an account",
    "procps": "the hub tests' pkill",
    "libpam0g": "PAM logins on the one-server hub; the Kubernetes hub logs students in through its authenticator",
    "login": "as libpam0g",
}


def test_the_image_has_the_debian_packages_the_course_needs_at_run_time():
    apt = _apt_txt()
    ci = _ci_apt_packages()
    assert {"dataset-fashion-mnist", "make", "chromium"} <= ci, f"could not read the CI scripts' packages: {ci}"
    unclassified = ci - set(apt) - set(NOT_IN_THE_IMAGE)
    assert not unclassified, f"CI installs {sorted(unclassified)}: add to binder/apt.txt or to NOT_IN_THE_IMAGE"
    # the course itself: the offline Fashion-MNIST, make for `make models`, git for nbgitpuller
    assert {"dataset-fashion-mnist", "make", "git"} <= set(apt)
    assert len(apt) == len(set(apt))


def test_postbuild_and_start_are_executable_bash_scripts():
    for name in ("postBuild", "start"):
        script = BINDER / name
        assert script.stat().st_mode & stat.S_IXUSR, f"binder/{name} must be executable (git keeps the bit)"
        assert script.read_text().startswith("#!/bin/bash\n")
        subprocess.run(["bash", "-n", str(script)], check=True)
    assert 'exec "$@"' in (BINDER / "start").read_text()  # repo2docker's entrypoint runs the server through it


def _fake_tool(folder: Path, name: str, body: str) -> None:
    tool = folder / name
    tool.write_text("#!/bin/bash\n" + body)
    tool.chmod(0o755)


def test_postbuild_copies_the_course_out_of_home_and_trains_the_models_into_the_image(tmp_path):
    """binder/postBuild in a miniature repository, with `make` replaced by a recorder that makes a model file."""
    repo, prefix, tools = tmp_path / "home", tmp_path / "env", tmp_path / "tools"
    for folder in (repo / "binder", repo / "vaeutils", repo / "notebooks", repo / ".git", repo / ".venv",
                   repo / "node_modules", repo / "data", prefix / "bin", tools):
        folder.mkdir(parents=True)
    (repo / "binder" / "postBuild").write_text((BINDER / "postBuild").read_text())
    for name in ("Makefile", "vaeutils/__init__.py", "notebooks/00_x.ipynb", ".git/HEAD", ".venv/big", "data/old"):
        (repo / name).write_text(name)
    _fake_tool(tools, "make", 'printf "%s\\n" "VAELAB_OFFLINE=$VAELAB_OFFLINE" "$@" > "$RECORD"\n'
               'for a; do case $a in MODELS_DIR=*) mkdir -p "${a#MODELS_DIR=}/cache" && '
               'echo model > "${a#MODELS_DIR=}/cache/m.pt";; esac; done\n')
    _fake_tool(tools, "python", 'echo "python $*"\n')
    record = tmp_path / "make-args"
    env = {**os.environ, "NB_PYTHON_PREFIX": str(prefix), "HOME": str(repo), "RECORD": str(record),
           "PATH": f"{tools}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr

    course = prefix / "share" / "vae-loss-lab"
    assert (course / "Makefile").is_file() and (course / "vaeutils" / "__init__.py").is_file()
    assert (course / "notebooks" / "00_x.ipynb").is_file()
    assert not any((course / n).exists() for n in (".git", ".venv", "node_modules", "data/old"))
    args = record.read_text().split()
    assert args == ["VAELAB_OFFLINE=1", "-C", str(course), "models", f"VENV={prefix}", f"MODELS_DIR={course}/data"]
    model = course / "data" / "cache" / "m.pt"
    assert model.read_text() == "model\n"
    assert not model.stat().st_mode & 0o222 and model.stat().st_mode & stat.S_IROTH, "baked models: read-only"
    for folder in (course / "data", course / "data" / "cache"):
        folder.chmod(0o755)  # so that pytest can clean up


def test_start_sets_the_course_defaults_and_keeps_what_the_hub_set(tmp_path):
    env = {"PATH": os.environ["PATH"], "NB_PYTHON_PREFIX": NB_PYTHON_PREFIX, "HOME": "/home/jovyan"}
    run = subprocess.run([str(BINDER / "start"), "env"], env=env, capture_output=True, text=True, check=True)
    got = dict(line.split("=", 1) for line in run.stdout.splitlines() if line.startswith("VAELAB_"))
    assert got == {"VAELAB_SHARED_CACHE": f"{NB_PYTHON_PREFIX}/share/vae-loss-lab/data/cache",
                   "VAELAB_DATA": "/home/jovyan/.vae-loss-lab", "VAELAB_OFFLINE": "1"}
    hub = {**env, "VAELAB_SHARED_CACHE": "/srv/vaelab/data/cache", "VAELAB_OFFLINE": "0"}
    run = subprocess.run([str(BINDER / "start"), "env"], env=hub, capture_output=True, text=True, check=True)
    assert "VAELAB_SHARED_CACHE=/srv/vaelab/data/cache\n" in run.stdout and "VAELAB_OFFLINE=0\n" in run.stdout


def test_make_models_with_the_image_environment_creates_no_second_environment(tmp_path):
    """What postBuild and the Job run, as `make -n`: the image's Python runs `models`, and no venv is made."""
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python").symlink_to(Path(sys.executable))
    run = subprocess.run(["make", "-n", "models", f"VENV={prefix}", f"MODELS_DIR={tmp_path}/data"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "-m venv" not in run.stdout
    models = [ln for ln in run.stdout.splitlines() if f"{tmp_path}/data" in ln]
    assert models and models[-1].startswith(f"{prefix}/bin/python"), run.stdout
