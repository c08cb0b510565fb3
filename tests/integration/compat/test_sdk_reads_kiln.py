"""The real Azure ML SDK v1 (azureml-core) reads the folders Kiln writes, with the same meaning.

One virtual environment with azureml-core is made per session with uv (from the package index);
`sdk_probe_load.py` runs in it once per folder and prints what the SDK understood, which is
compared field by field with Kiln's object.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiln.environment.conda import CondaDependencies
from kiln.environment.environment import Environment
from kiln.environment.sections import ContainerRegistry, DockerBuildContext, SparkPackage

pytestmark = pytest.mark.integration

SDK_VERSION = "1.61.0.post4"
PROBE = Path(__file__).resolve().parent / "sdk_probe_load.py"
WRITTEN = Path(__file__).resolve().parents[2] / "fixtures" / "azureml-v1" / "written-by-sdk"

Probe = Callable[[Path], dict[str, Any]]


# --- the SDK's virtual environment ------------------------------------------------------------------------------


def _is_python_311(exe: Path) -> bool:
    if not exe.is_file() or not os.access(exe, os.X_OK):
        return False
    proc = subprocess.run([str(exe), "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout.strip() == "True"


def _find_python_311() -> Path | None:
    """A CPython 3.11: the one under this interpreter's venv if it is 3.11, else pyenv's or PATH's."""
    base = Path(sys.base_prefix) / "bin"
    candidates = [base / "python3.11", base / "python3", base / "python"]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(pyenv_root.glob("versions/3.11.*/bin/python3.11"), reverse=True)
    candidates += [Path(p) for p in (shutil.which("python3.11"),) if p]
    return next((c for c in candidates if _is_python_311(c)), None)


def _index_unreachable() -> str | None:
    """Why the package index can't be reached, or None when it can."""
    index = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple/"
    url = index.rstrip("/") + "/azureml-core/"
    try:
        with urllib.request.urlopen(url, timeout=20):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError) as e:
        return f"{url}: {e}"


@pytest.fixture(scope="session")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh venv with azureml-core installed."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        found = shutil.which("uv")
        assert found, "uv is missing from Kiln's venv and from PATH (it is a dev dependency)"
        uv = Path(found)
    python = _find_python_311()
    assert python is not None, "no CPython 3.11 found (looked under sys.base_prefix, $PYENV_ROOT and PATH)"
    venv = tmp_path_factory.mktemp("azureml-sdk") / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([str(uv), "venv", "--quiet", "--python", str(python), str(venv)], env=env, check=True,
                   capture_output=True, timeout=300)
    exe = venv / "bin" / "python"
    # bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set, each probe would compile the SDK again
    proc = subprocess.run([str(uv), "pip", "install", "--quiet", "--compile-bytecode", "--python", str(exe),
                           f"azureml-core=={SDK_VERSION}"], env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    if proc.returncode != 0:
        reason = _index_unreachable()
        if reason is not None:
            pytest.skip(f"the package index is unreachable, can't install azureml-core: {reason}")
        pytest.fail(f"uv pip install azureml-core=={SDK_VERSION} failed:\n{proc.stdout}{proc.stderr}")
    return exe


@pytest.fixture(scope="session")
def probe(sdk_python: Path) -> Probe:
    """What the SDK reads from a folder (fails the test if the SDK refuses it)."""

    def run(folder: Path) -> dict[str, Any]:
        proc = subprocess.run([str(sdk_python), str(PROBE), str(folder)], capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, f"the SDK refused {folder}: {proc.stdout}{proc.stderr}"
        doc: dict[str, Any] = json.loads(proc.stdout)
        assert doc["sdk_version"] == SDK_VERSION
        return doc

    return run


# --- comparing the SDK's meaning with Kiln's object -------------------------------------------------------------


def assert_same_meaning(doc: dict[str, Any], env: Environment, *, password: str | None) -> None:
    """Field by field: the probe's document against ``env``; ``password`` is what the SDK must see."""
    assert doc["type"] == "Environment"
    assert doc["name"] == env.name
    assert doc["version"] == env.version
    assert doc["environment_variables"] == env.environment_variables

    py = doc["python"]
    assert py["user_managed_dependencies"] is env.python.user_managed_dependencies
    assert py["interpreter_path"] == env.python.interpreter_path
    cd = env.python.conda_dependencies
    if cd is None:
        assert py["conda"] is None
    else:
        conda = py["conda"]
        assert conda["python_version"] == cd.get_python_version()
        assert conda["channels"] == cd.conda_channels
        assert conda["conda_packages"] == cd.conda_packages
        assert conda["pip_packages"] == cd.pip_packages
        assert conda["pip_options"] == cd.pip_options
        assert conda["spec"] == cd.as_dict()

    docker, d = doc["docker"], env.docker
    assert docker["enabled"] is d.enabled
    assert docker["base_image"] == d.base_image
    assert docker["base_dockerfile"] == d.base_dockerfile
    bc = d.build_context
    assert docker["build_context"] == (None if bc is None else {
        "location_type": bc.location_type, "location": bc.location, "dockerfile_path": bc.dockerfile_path})
    assert docker["shared_volumes"] is d.shared_volumes
    assert docker["shm_size"] == d.shm_size
    assert docker["arguments"] == d.arguments
    reg = d.base_image_registry
    assert docker["base_image_registry"] == {"address": reg.address, "username": reg.username, "password": password,
                                             "registry_identity": None}
    assert docker["platform"] == d.platform

    spark = doc["spark"]
    assert spark["repositories"] == env.spark.repositories
    assert spark["packages"] == [{"group": p.group, "artifact": p.artifact, "version": p.version}
                                 for p in env.spark.packages]
    assert spark["precache_packages"] is env.spark.precache_packages

    assert doc["databricks"] == env.databricks
    if env.r is None:
        assert doc["r"] is None
    else:
        # Kiln keeps the R section as data; the SDK fills in the fields left out with None / False
        assert {k: doc["r"][k] for k in env.r} == env.r
        assert all(doc["r"][k] in (None, False) for k in set(doc["r"]) - set(env.r))
    assert doc["inferencing_stack_version"] == env.inferencing_stack_version
    assert doc["asset_id"] == env.asset_id
    assert doc["sdk_messages"] == []  # no warning either


# --- Kiln's environments ----------------------------------------------------------------------------------------


def env_conda_pip() -> Environment:
    env = Environment("conda-pip")
    env.version = "2"
    env.environment_variables = {"MODE": "prod", "GREETING": "héllo wörld ☕", "EMPTY": ""}
    cd = env.python.conda_dependencies
    assert cd is not None
    cd.set_python_version("3.10")
    cd.add_channel("pytorch")
    cd.add_conda_package("numpy=1.26")
    cd.add_conda_package("libgcc")
    cd.set_pip_option("--index-url https://pypi.org/simple")
    cd.set_pip_option("--extra-index-url https://download.pytorch.org/whl/cpu")
    cd.set_pip_option("--find-links https://example.org/wheels/")
    cd.add_pip_package("scikit-learn==1.4.2")
    cd.add_pip_package("pandas[performance]>=2.0")
    cd.add_pip_package("requests; python_version >= '3.8'")
    return env


def env_conda_file_text() -> Environment:
    env = Environment("conda-text")
    env.python.conda_dependencies = CondaDependencies.from_text(
        "# numpy pour l'été ☕\nname: projet-été\ndependencies:\n- python=3.11\n- pip:\n  - numpy\n"
        "variables:\n  GREETING: héllo\nchannels:\n- conda-forge\n")
    return env


def env_registry_reference() -> Environment:
    env = Environment("registry-ref")
    env.docker.base_image = "myregistry.azurecr.io/team/base:1.0"
    env.docker.base_image_registry = ContainerRegistry("myregistry.azurecr.io", "ci-bot", "${REG_PW}")
    return env


def env_registry_literal() -> Environment:
    env = Environment("registry-literal")
    env.docker.base_image = "myregistry.azurecr.io/team/base:1.0"
    env.docker.base_image_registry = ContainerRegistry("myregistry.azurecr.io", "ci-bot", "hunter2")
    return env


def env_dockerfile() -> Environment:
    env = Environment("dockerfile")
    env.docker.base_image = None
    env.docker.base_dockerfile = "FROM python:3.11-slim\n# café ☕\nRUN pip install numpy\n"
    env.docker.enabled = True
    env.docker.shared_volumes = False
    env.docker.shm_size = "1g"
    env.docker.arguments = ["--cpus", "2"]
    env.docker.platform = {"os": "Linux", "architecture": "arm64"}
    return env


def env_user_managed() -> Environment:
    env = Environment("user-managed")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "/opt/miniconda/envs/myenv/bin/python"
    env.python.conda_dependencies = None
    return env


def env_build_context_git() -> Environment:
    env = Environment("buildctx-git")
    env.docker.base_image = None
    env.docker.shm_size = None
    env.docker.build_context = DockerBuildContext("https://github.com/x/y.git#main:ctx", "git", "docker/Dockerfile")
    return env


def env_build_context_local() -> Environment:
    env = Environment("buildctx-local")
    env.docker.base_image = None
    env.docker.build_context = DockerBuildContext(location="/srv/contexts/gpu", location_type="storageAccount",
                                                  dockerfile_path="Dockerfile.gpu")
    return env


def env_spark() -> Environment:
    env = Environment("spark")
    env.spark.repositories = ["https://repo1.maven.org/maven2", "https://mmlspark.azureedge.net/maven"]
    env.spark.packages = [SparkPackage("com.microsoft.azure", "azure-storage", "2.0.0"),
                          SparkPackage("org.apache.hadoop", "hadoop-azure", "2.7.0")]
    env.spark.precache_packages = False
    return env


def env_inferencing_r_databricks() -> Environment:
    env = Environment("inferencing")
    env.inferencing_stack_version = "latest"
    env.r = {"rVersion": "4.0", "cranPackages": [{"name": "ggplot2", "version": "3.3", "repository": None}]}
    env.databricks = {"mavenLibraries": [{"coordinates": "g:a:1", "repo": "", "exclusions": []}],
                      "pypiLibraries": [{"package": "azureml-core", "repo": None}],
                      "rcranLibraries": [], "jarLibraries": [], "eggLibraries": []}
    return env


KILN_ENVS: dict[str, Callable[[], Environment]] = {
    "default": lambda: Environment("kiln-default"),
    "conda_pip": env_conda_pip,
    "conda_file_text": env_conda_file_text,
    "registry_reference": env_registry_reference,
    "registry_literal": env_registry_literal,
    "dockerfile": env_dockerfile,
    "user_managed": env_user_managed,
    "build_context_git": env_build_context_git,
    "build_context_local": env_build_context_local,
    "spark": env_spark,
    "inferencing_r_databricks": env_inferencing_r_databricks,
}


@pytest.mark.parametrize("kind", sorted(KILN_ENVS))
def test_sdk_reads_kiln_folder_with_the_same_meaning(kind: str, probe: Probe, tmp_path: Path) -> None:
    env = KILN_ENVS[kind]()
    env.save_to_directory(tmp_path / kind)
    password = env.docker.base_image_registry.password
    if kind == "registry_literal":
        password = None  # Kiln does not write a literal password
        assert not any(b"hunter2" in p.read_bytes() for p in (tmp_path / kind).iterdir())
    assert_same_meaning(probe(tmp_path / kind), env, password=password)


def test_sdk_reads_literal_password_written_on_request(probe: Probe, tmp_path: Path) -> None:
    env = env_registry_literal()
    env.save_to_directory(tmp_path / "out", include_secrets=True)
    assert_same_meaning(probe(tmp_path / "out"), env, password="hunter2")


# --- SDK folder -> Kiln -> SDK ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(p.name for p in WRITTEN.iterdir() if p.is_dir()))
def test_sdk_folder_through_kiln_keeps_the_sdks_meaning(case: str, probe: Probe, tmp_path: Path) -> None:
    original = probe(WRITTEN / case)
    env = Environment.load_from_directory(WRITTEN / case)
    assert isinstance(env, Environment)
    env.save_to_directory(tmp_path / "secrets", include_secrets=True)
    assert probe(tmp_path / "secrets") == original

    env.save_to_directory(tmp_path / "default")
    expected = json.loads(json.dumps(original))
    expected["docker"]["base_image_registry"]["password"] = None
    assert probe(tmp_path / "default") == expected
    # and Kiln read what the SDK reads
    assert_same_meaning(original, env, password=original["docker"]["base_image_registry"]["password"])
