from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kiln import Environment
from kiln.environment.conda import DEFAULT_PYTHON_VERSION
from kiln.environment.formats.conda_file import read_conda_file, write_conda_file
from kiln.errors import FormatError


@pytest.fixture
def factories(fixtures: Path, tmp_path: Path) -> Path:
    target = tmp_path / "factories"
    shutil.copytree(fixtures / "azureml-v1" / "factories", target)
    return target


def test_from_conda_specification_sdk_example(factories: Path) -> None:
    env = Environment.from_conda_specification("myenv", factories / "env.yml")
    cd = env.python.conda_dependencies
    assert cd is not None
    assert cd.get_python_version() == "3.9.16"
    assert cd.conda_channels == ["pytorch", "conda-forge", "defaults"]
    assert cd.conda_packages == ["python=3.9.16", "numpy>=1.20", "pytorch::pytorch=2.0", "pip=23.0"]
    # variables become environment variables; -r requirements.txt is inlined (and its own -r too)
    assert env.environment_variables == {"MY_VAR": "hello"}
    assert "transformers==4.30.0" in cd.pip_packages
    assert "numpy==1.24.3" in cd.pip_packages and "torch==2.0.0" in cd.pip_packages
    assert not any(o.startswith("-r") for o in cd.pip_options)
    assert "--extra-index-url https://download.pytorch.org/whl/cu118" in cd.pip_options
    assert "variables" not in cd.serialize_to_string()


def test_no_python_gets_kilns_default(factories: Path) -> None:
    cd, _ = read_conda_file(factories / "env_nopython.yml")
    assert cd.get_python_version() == DEFAULT_PYTHON_VERSION
    assert cd.pip_packages == ["requests"]


def test_prefix_is_dropped(factories: Path) -> None:
    cd, _ = read_conda_file(factories / "env_prefix.yml")
    assert cd.prefix is None
    assert "/home/user" not in cd.serialize_to_string()


def test_unknown_key_names_file_and_key(factories: Path) -> None:
    with pytest.raises(FormatError) as e:
        read_conda_file(factories / "env_badkey.yml")
    assert "env_badkey.yml" in str(e.value) and "'build'" in str(e.value)


def test_missing_include_names_it(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n- python=3.11\n- pip:\n  - -r missing.txt\n")
    with pytest.raises(FormatError, match=r"missing\.txt"):
        read_conda_file(path)


def test_write_conda_file_round_trip(tmp_path: Path) -> None:
    env = Environment("e")
    env.environment_variables = {"A": "1"}
    assert env.python.conda_dependencies is not None
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    path = tmp_path / "environment.yml"
    path.write_text(write_conda_file(env))
    back = Environment.from_conda_specification("e", path)
    assert back.environment_variables == {"A": "1"}
    assert back.hash == env.hash
