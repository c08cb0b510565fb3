"""Environment's Azure ML v1 surface: default images, labels, repr, docker.gpu_support, conda_dependencies_file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.environment.environment import Environment
from kiln.environment.sections import DEFAULT_CPU_IMAGE
from kiln.errors import DefinitionError


class _Registry:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    def get_environment(self, name: str, version: str | None = None) -> Environment:
        self.asked.append((name, version))
        env = Environment(name)
        env.version = version or "3"
        return env

    def register_environment(self, environment: Environment) -> Environment:
        return environment

    def list_environments(self) -> dict[str, Environment]:
        return {}


def test_default_cpu_image_is_the_one_new_environments_get() -> None:
    assert Environment.get_default_cpu_image() == DEFAULT_CPU_IMAGE == Environment("x").docker.base_image
    assert "cuda" in Environment.get_default_gpu_image()


def test_label_latest_is_the_latest_version() -> None:
    reg = _Registry()
    env = Environment.get(reg, "train", label="latest")
    assert (env.label, env.version, reg.asked) == ("latest", "3", [("train", None)])
    assert Environment.get(reg, "train", version=2).label is None
    with pytest.raises(DefinitionError, match="one label, 'latest'"):
        Environment.get(reg, "train", label="production")
    with pytest.raises(DefinitionError, match="not both"):
        Environment.get(reg, "train", version="1", label="latest")


def test_repr_is_the_definition_as_json_without_a_literal_password() -> None:
    env = Environment("shown")
    env.python.conda_dependencies.add_pip_package("scikit-learn==1.5.2")  # type: ignore[union-attr]
    env.docker.base_image_registry.password = "hunter2"
    data = json.loads(repr(env))
    assert data["name"] == "shown" and data == env.to_dict()
    assert "scikit-learn==1.5.2" in repr(env) and "hunter2" not in repr(env)


def test_gpu_support_is_kept_and_changes_no_build() -> None:
    env = Environment("gpu")
    before_hash, before_text = env.hash, env.definition_text()
    assert env.docker.gpu_support is False and "gpuSupport" not in before_text  # others keep their text
    env.docker.gpu_support = True
    assert env.hash == before_hash  # not part of the build identity
    twin = Environment.from_dict(env.to_dict())
    assert twin.docker.gpu_support is True and env.clone("other").docker.gpu_support is True


def test_conda_dependencies_file_is_read_when_set_and_its_name_kept(tmp_path: Path) -> None:
    conda = tmp_path / "myenv.yml"
    conda.write_text("name: myenv\ndependencies:\n  - python=3.10\n  - pip:\n    - six==1.16.0\n", encoding="utf-8")
    env = Environment("filed")
    env.python.conda_dependencies_file = str(conda)
    cd = env.python.conda_dependencies
    assert cd is not None and cd.get_python_version() == "3.10" and cd.pip_packages == ["six==1.16.0"]
    assert env.python.conda_dependencies_file == str(conda)
    assert env.to_dict()["python"]["condaDependenciesFile"] == str(conda)
    conda.write_text("dependencies:\n  - python=3.12\n", encoding="utf-8")  # a later edit doesn't drift in
    assert Environment.from_dict(env.to_dict()).python.conda_dependencies.pip_packages == ["six==1.16.0"]  # type: ignore[union-attr]
    with pytest.raises(DefinitionError, match=r"python\.conda_dependencies_file: '.*missing\.yml' does not exist"):
        env.python.conda_dependencies_file = str(tmp_path / "missing.yml")
