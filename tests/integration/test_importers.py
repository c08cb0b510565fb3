"""Environments captured from real things on this machine: a venv made by uv, a (fake) conda on PATH."""

from __future__ import annotations

import glob
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kiln import Environment
from kiln.errors import CommandError, DefinitionError

pytestmark = pytest.mark.integration

UV = str(Path(sys.executable).parent / "uv")


def _interpreter(version: str) -> str | None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(glob.glob(str(root / f"{version}.*" / "bin" / "python")))
    return found[-1] if found else None


def test_from_existing_python_pins_what_a_venv_holds(tmp_path: Path) -> None:
    python = _interpreter("3.9")
    if python is None:
        pytest.skip("no Python 3.9 interpreter under pyenv's versions/")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([UV, "venv", "-q", "--python", python, str(venv)], check=True, env=env)
    subprocess.run([UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "six==1.16.0",
                    "idna==3.7"], check=True, env=env)
    captured = Environment.from_existing_python("captured", venv)
    cd = captured.python.conda_dependencies
    assert cd is not None
    assert cd.get_python_version() is not None and cd.get_python_version().startswith("3.9.")  # type: ignore[union-attr]
    assert sorted(cd.pip_packages) == ["idna==3.7", "six==1.16.0"]
    # the interpreter itself, given as a file, gives the same definition
    assert Environment.from_existing_python("captured", venv / "bin" / "python").hash == captured.hash


def test_from_existing_python_missing_interpreter(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no interpreter"):
        Environment.from_existing_python("x", str(tmp_path / "nope" / "python"))
    with pytest.raises(DefinitionError, match="holds no bin/python"):
        Environment.from_existing_python("x", tmp_path)


FAKE_CONDA = """#!/bin/sh
if [ "$1 $2" = "env list" ]; then
  echo '{"envs": ["/opt/conda", "/opt/conda/envs/science"]}'
elif [ "$1 $2" = "env export" ]; then
  [ "$4" = "science" ] || { echo "EnvironmentLocationNotFound: $4" >&2; exit 1; }
  cat <<'YAML'
name: science
channels:
  - conda-forge
dependencies:
  - python=3.10.14
  - numpy=1.26.4
  - pip:
    - requests==2.32.3
variables:
  LOG_LEVEL: debug
prefix: /opt/conda/envs/science
YAML
else
  exit 2
fi
"""


def test_from_existing_conda_environment_with_conda_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    conda = bindir / "conda"
    conda.write_text(FAKE_CONDA)
    conda.chmod(conda.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    env = Environment.from_existing_conda_environment("copy", "science")
    cd = env.python.conda_dependencies
    assert cd is not None
    assert cd.conda_packages == ["python=3.10.14", "numpy=1.26.4"]
    assert cd.pip_packages == ["requests==2.32.3"]
    assert env.environment_variables == {"LOG_LEVEL": "debug"}
    assert cd.prefix is None
    with pytest.raises(DefinitionError, match=r"no conda environment named 'nope' \(found: conda, science\)"):
        Environment.from_existing_conda_environment("copy", "nope")


def test_from_existing_conda_environment_without_conda(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DefinitionError, match="neither conda, micromamba nor mamba is on PATH"):
        Environment.from_existing_conda_environment("copy", "science")


def test_a_failing_conda_is_a_command_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conda = tmp_path / "conda"
    conda.write_text("#!/bin/sh\necho 'CondaError: broken' >&2\nexit 3\n")
    conda.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandError) as e:
        Environment.from_existing_conda_environment("copy", "science")
    assert e.value.returncode == 3 and "CondaError: broken" in str(e.value)


def test_from_dockerfile_and_image_without_packages_are_user_managed(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nRUN pip install numpy\n")
    env = Environment.from_dockerfile("fromdf", dockerfile)
    assert env.docker.base_dockerfile == dockerfile.read_text()
    assert env.docker.base_image is None
    assert env.python.user_managed_dependencies is True and env.python.conda_dependencies is None
    img = Environment.from_docker_image("fromimg", "python:3.11")
    assert img.docker.base_image == "python:3.11" and img.python.user_managed_dependencies is True
    req = tmp_path / "requirements.txt"
    req.write_text("six==1.16.0\n")
    with_packages = Environment.from_docker_image("img2", "python:3.11", pip_requirements=str(req))
    assert with_packages.python.user_managed_dependencies is False
    assert with_packages.python.conda_dependencies is not None
    assert with_packages.python.conda_dependencies.pip_packages == ["six==1.16.0"]
