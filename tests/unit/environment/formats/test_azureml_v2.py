from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kiln.environment.formats import azureml_v2
from kiln.errors import DefinitionError, FormatError


@pytest.fixture
def v2(fixtures: Path, tmp_path: Path) -> Path:
    target = tmp_path / "v2"
    shutil.copytree(fixtures / "azureml-v2", target)
    return target


def test_image_plus_conda_file(v2: Path) -> None:
    env = azureml_v2.load(v2 / "env_image.yml")
    assert (env.name, env.version, env.description) == (
        "my-env", "1", "Environment created from a Docker image plus Conda environment.")
    assert env.tags == {"owner": "me"}
    assert env.docker.base_image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert env.python.user_managed_dependencies is False
    cd = env.python.conda_dependencies
    assert cd is not None and cd.conda_packages == ["python=3.10", "numpy", "pip"]
    assert cd.pip_packages == ["scikit-learn==1.3.0"]
    assert env.inference_config == {"liveness_route": {"port": 5001, "path": "/"},
                                    "readiness_route": {"port": 5001, "path": "/"},
                                    "scoring_route": {"port": 5001, "path": "/score"}}


def test_build_context_is_user_managed_and_resolved(v2: Path) -> None:
    env = azureml_v2.load(v2 / "env_build.yml")
    assert env.version == "2.0"
    bc = env.docker.build_context
    assert bc is not None and bc.location == str((v2 / "ctx").resolve()) and bc.dockerfile_path == "Dockerfile"
    assert env.python.user_managed_dependencies is True
    assert env.docker.base_image is None


@pytest.mark.parametrize(("file", "field"), [("env_unknown.yml", "foo"), ("env_bad.yml", "channels")])
def test_rejected_as_by_the_sdk(v2: Path, file: str, field: str) -> None:
    with pytest.raises(FormatError) as e:
        azureml_v2.load(v2 / file)
    assert file in str(e.value) and field in str(e.value)


def test_dump_matches_the_sdks_shape_and_loads_back(v2: Path, tmp_path: Path) -> None:
    env = azureml_v2.load(v2 / "env_image.yml")
    text = azureml_v2.dump(env)
    # as the SDK dumps it, but for os_type: Kiln writes it only when it isn't the default (linux)
    expected = (v2 / "dumped_image.yml").read_text().replace("os_type: linux\n", "")
    assert text == expected
    (tmp_path / "again.yml").write_text(text)
    assert azureml_v2.load(tmp_path / "again.yml").hash == env.hash


def test_dump_min_image(v2: Path, tmp_path: Path) -> None:
    (tmp_path / "min.yml").write_text("name: py\nimage: python:3.11\n")
    assert azureml_v2.dump(azureml_v2.load(tmp_path / "min.yml")) == (v2 / "dumped_min.yml").read_text()


def test_dockerfile_text_cant_be_dumped() -> None:
    from kiln import Environment

    env = Environment("e")
    env.docker.base_image = None
    env.docker.base_dockerfile = "FROM ubuntu\n"
    with pytest.raises(DefinitionError, match="build context"):
        azureml_v2.dump(env)
