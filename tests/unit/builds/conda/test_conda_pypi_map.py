"""conda → PyPI names (conda-pypi's map, fetched once) and the requirements a conda definition gives uv."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kiln import CondaDependencies, Environment
from kiln.builds.conda import pypi_map
from kiln.builds.conda.pypi_map import CONDA_PYPI, NoPyPIEquivalent, conda_to_pypi, load_map
from kiln.builds.resolver import conda_specs, requirements_of
from kiln.errors import KilnError

# the shape of conda-pypi's grayskull_pypi_mapping.json: PyPI names as keys
SHIPPED = {
    "torch": {"pypi_name": "torch", "conda_name": "pytorch", "import_name": "torch", "mapping_source": "static"},
    "msgpack": {"pypi_name": "msgpack", "conda_name": "msgpack-python", "import_name": "msgpack",
                "mapping_source": "regro-bot"},
    "six": {"pypi_name": "six", "conda_name": "six", "import_name": "six", "mapping_source": "regro-bot"},
    "pyyaml": {"pypi_name": "PyYAML", "conda_name": "PyYAML", "import_name": "yaml", "mapping_source": "static"},
    "broken": {"pypi_name": "broken", "conda_name": None, "import_name": "broken", "mapping_source": "regro-bot"},
}


@pytest.fixture
def fake_uv(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """uv replaced by a function that 'installs' a conda-pypi with the map above into ``--target``."""
    calls: list[list[str]] = []

    def run_uv(args: Sequence[str], *, what: str, **kwargs: Any) -> str:
        calls.append(list(args))
        target = Path(args[args.index("--target") + 1])
        (target / "conda_pypi").mkdir(parents=True)
        (target / "conda_pypi" / "grayskull_pypi_mapping.json").write_text(json.dumps(SHIPPED))
        return ""

    monkeypatch.setattr(pypi_map, "run_uv", run_uv)
    return calls


def test_the_map_is_fetched_once_and_inverted(tmp_path: Path, fake_uv: list[list[str]]) -> None:
    mapping = load_map(tmp_path)
    assert mapping == {"pytorch": "torch", "msgpack-python": "msgpack", "six": "six", "pyyaml": "PyYAML"}
    (call,) = fake_uv
    assert call[:2] == ["pip", "install"]
    assert "--no-deps" in call and "--no-config" in call
    assert call[-1] == CONDA_PYPI
    assert json.loads((tmp_path / "conda-pypi-map-v1.json").read_text()) == mapping
    assert load_map(tmp_path) == mapping
    assert len(fake_uv) == 1  # from the cache the second time


def test_a_conda_pypi_without_its_map_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pypi_map, "run_uv", lambda args, **kwargs: "")
    with pytest.raises(KilnError, match=r"conda-pypi==[\d.]+ has no conda_pypi/grayskull_pypi_mapping.json"):
        load_map(tmp_path)
    assert not (tmp_path / "conda-pypi-map-v1.json").exists()


def test_conda_to_pypi() -> None:
    mapping = {"pytorch": "torch", "six": "six"}
    assert conda_to_pypi("pytorch", mapping) == "torch"
    assert conda_to_pypi("PyTorch", mapping) == "torch"
    assert conda_to_pypi("six", mapping) == "six"


def test_a_package_without_a_pypi_name_is_named_in_the_error() -> None:
    with pytest.raises(NoPyPIEquivalent) as caught:
        conda_to_pypi("cudatoolkit", {"pytorch": "torch"})
    assert str(caught.value) == ("conda package 'cudatoolkit' has no PyPI equivalent (it is not a Python project): "
                                 "build it from conda channels (not --conda-via=pypi), or list a pip requirement "
                                 "instead")
    assert conda_to_pypi("toolz", {}) == "toolz"  # not in the map: the same name, as conda-pypi does
    assert isinstance(caught.value, KilnError)


# ---- requirements_of: a conda definition for uv ----------------------------------------------------


def definition(conda: list[str], pip: Sequence[str] = ()) -> Environment:
    env = Environment("conda-env")
    env.python.conda_dependencies = CondaDependencies.create(conda_packages=conda, pip_packages=list(pip),
                                                             python_version="3.12")
    return env


@pytest.fixture
def cached_map(tmp_path: Path) -> Path:
    (tmp_path / "conda-pypi-map-v1.json").write_text(json.dumps({"pytorch": "torch", "six": "six", "pyyaml": "PyYAML",
                                                                 "msgpack-python": "msgpack"}))
    return tmp_path


def test_conda_packages_become_pypi_requirements(cached_map: Path) -> None:
    env = definition(["six=1.16", "pytorch>=2.1,<3", "msgpack-python=1.0.8", "pyyaml"], ["idna==3.7"])
    assert conda_specs(env) == ["six=1.16", "pytorch>=2.1,<3", "msgpack-python=1.0.8", "pyyaml"]
    requirements, options = requirements_of(env, cache_dir=cached_map)
    assert requirements == ["idna==3.7", "six==1.16.*", "torch>=2.1,<3", "msgpack==1.0.8", "PyYAML"]
    assert options == []


def test_a_pip_entry_wins_over_the_conda_package_of_the_same_project(cached_map: Path) -> None:
    env = definition(["six=1.15", "pytorch=2.3"], ["six==1.16.0", "Torch==2.4.0"])
    requirements, _ = requirements_of(env, cache_dir=cached_map)
    assert requirements == ["six==1.16.0", "torch==2.4.0"]


def test_python_and_pip_are_not_conda_packages_to_map(cached_map: Path) -> None:
    env = definition(["pip=24.0"], ["six"])
    assert conda_specs(env) == []
    assert requirements_of(env, cache_dir=cached_map) == (["six"], [])


def test_without_conda(cached_map: Path) -> None:
    assert requirements_of(definition(["cudatoolkit"], ["six"]), cache_dir=cached_map, with_conda=False) == (
        ["six"], [])


def test_an_unmapped_conda_package_is_named(cached_map: Path) -> None:
    with pytest.raises(NoPyPIEquivalent, match="conda package 'cudatoolkit' has no PyPI equivalent"):
        requirements_of(definition(["six", "cudatoolkit=11.8"]), cache_dir=cached_map)


def test_an_exact_conda_version_stays_exact(cached_map: Path) -> None:
    requirements, _ = requirements_of(definition(["six==1.16"]), cache_dir=cached_map)
    assert requirements == ["six==1.16"]
