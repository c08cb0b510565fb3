from __future__ import annotations

from pathlib import Path

import pytest

from kiln import CondaDependencies, ContainerRegistry, DockerBuildContext, Environment
from kiln.environment.sections import DEFAULT_CPU_IMAGE
from kiln.errors import DefinitionError


def test_kiln_defaults() -> None:
    env = Environment("myenv")
    assert env.version is None
    assert env.environment_variables == {}
    assert env.docker.base_image == DEFAULT_CPU_IMAGE
    assert env.docker.shm_size == "2g"
    assert env.python.user_managed_dependencies is False
    assert env.python.interpreter_path == "python"
    cd = env.python.conda_dependencies
    assert cd is not None and cd.pip_packages == []  # no azureml-defaults


def test_base_image_dockerfile_and_build_context_exclude_each_other() -> None:
    env = Environment("e")
    with pytest.raises(DefinitionError, match=r"docker\.base_image"):
        env.docker.base_dockerfile = "FROM ubuntu\n"
    env.docker.base_image = None
    env.docker.base_dockerfile = "FROM ubuntu\n"
    with pytest.raises(DefinitionError, match=r"docker\.base_dockerfile"):
        env.docker.build_context = DockerBuildContext(location="https://x/y.git")
    with pytest.raises(DefinitionError, match="exclude"):
        env.docker.base_image = "ubuntu"


def test_base_dockerfile_from_a_file_path(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.11\nRUN echo hi\n")
    env = Environment("e")
    env.docker.base_image = None
    env.docker.base_dockerfile = str(tmp_path / "Dockerfile")
    assert env.docker.base_dockerfile == "FROM python:3.11\nRUN echo hi\n"


def test_registry_from_a_plain_address_as_in_the_seeds() -> None:
    env = Environment("e")
    env.docker.base_image_registry = "myregistry.example"  # type: ignore[assignment]
    assert env.docker.base_image_registry.address == "myregistry.example"
    env.docker.base_image_registry = ContainerRegistry(address="r", username="u", password="p")
    assert "p'" not in repr(env.docker.base_image_registry)


@pytest.mark.parametrize("value", ["false", 1, None])
def test_user_managed_must_be_a_bool(value: object) -> None:
    with pytest.raises(DefinitionError, match="user_managed_dependencies"):
        Environment("e").python.user_managed_dependencies = value  # type: ignore[assignment]


@pytest.mark.parametrize("size", ["2 g", "big", "-1g"])
def test_bad_shm_size(size: str) -> None:
    with pytest.raises(DefinitionError, match="shm_size"):
        Environment("e").docker.shm_size = size


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a\\b", "-x", "x" * 256, "sp ace"])
def test_bad_names(name: str) -> None:
    with pytest.raises(DefinitionError):
        Environment(name)


def test_clone_is_deep_and_unregistered() -> None:
    env = Environment("base")
    env.version = "3"
    env.environment_variables["A"] = "1"
    twin = env.clone("mine")
    assert (twin.name, twin.version) == ("mine", None)
    assert twin.python.conda_dependencies is not None
    twin.python.conda_dependencies.add_pip_package("six")
    twin.environment_variables["B"] = "2"
    assert env.python.conda_dependencies is not None
    assert env.python.conda_dependencies.pip_packages == []
    assert env.environment_variables == {"A": "1"}
    assert twin.hash != env.hash


def test_to_dict_round_trip_and_no_literal_password() -> None:
    env = Environment("e")
    env.docker.base_image_registry = ContainerRegistry(address="r.example", username="u", password="hunter2")
    env.spark.repositories.append("https://repo.example/maven")
    env.tags = {"team": "ml"}
    env.description = "d"
    data = env.to_dict()
    assert data["docker"]["baseImageRegistry"]["password"] is None
    assert "hunter2" in str(env.to_dict(include_secrets=True))
    back = Environment.from_dict(env.to_dict(include_secrets=True))
    assert back == env
    assert back.tags == {"team": "ml"} and back.description == "d"


def test_password_reference_is_kept() -> None:
    env = Environment("e")
    env.docker.base_image_registry.password = "${REG_PASSWORD}"
    assert env.to_dict()["docker"]["baseImageRegistry"]["password"] == "${REG_PASSWORD}"


def test_validate_needs_packages_or_user_managed() -> None:
    env = Environment("e")
    env.python.conda_dependencies = None
    with pytest.raises(DefinitionError, match="user_managed_dependencies"):
        env.validate()
    env.python.user_managed_dependencies = True
    env.validate()


def test_conda_dependencies_type_is_checked() -> None:
    with pytest.raises(DefinitionError, match="CondaDependencies"):
        Environment("e").python.conda_dependencies = {"dependencies": []}  # type: ignore[assignment]
    Environment("e").python.conda_dependencies = CondaDependencies()
