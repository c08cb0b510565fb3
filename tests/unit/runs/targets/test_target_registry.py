"""The compute targets by name: which names ``compute_target`` accepts, and what each gives."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from kiln.errors import DefinitionError
from kiln.runs.targets import ComputeTarget, get_target, target_names
from kiln.runs.targets.local import LocalTarget
from kiln.runs.targets.registry import DEFAULT_TARGET, target_name


def test_local_is_known_and_the_default() -> None:
    assert "local" in target_names()
    assert DEFAULT_TARGET == "local"


@pytest.mark.parametrize("name", target_names())
def test_each_name_gives_a_target_of_that_name(name: str) -> None:
    target = get_target(name)
    assert isinstance(target, ComputeTarget)
    assert target.name == name
    assert repr(target) == f"<compute target {name!r}>"


def test_each_call_gives_a_fresh_target() -> None:
    assert get_target("local") is not get_target("local")
    assert type(get_target("local")) is LocalTarget


def test_an_object_is_known_by_its_name() -> None:
    assert target_name(SimpleNamespace(name="local")) == "local"
    assert isinstance(get_target(SimpleNamespace(name="local")), LocalTarget)


def test_docker_is_another_name_of_the_container_target() -> None:
    """Azure ML's runs in Docker: ``compute_target="docker"`` is the container target."""
    assert target_name("docker") == "container"
    assert target_name(SimpleNamespace(name="docker")) == "container"
    assert get_target("docker").name == "container"


@pytest.mark.parametrize("name", ["Docker", "Local", "", None, 3])
def test_an_unknown_target_is_refused_naming_the_known_ones(name: object) -> None:
    with pytest.raises(DefinitionError) as e:
        get_target(name)
    assert str(e.value) == f"compute_target {name!r}: Kiln runs on {', '.join(target_names())} for now"
    assert "local" in str(e.value)


def test_checking_a_name_imports_no_target() -> None:
    """The submit path checks the name: the targets themselves load only in the supervisor."""
    code = ("import sys; from kiln.runs.targets.registry import target_name; target_name('local'); "
            "print(sorted(m for m in sys.modules if m.startswith('kiln.runs.targets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "['kiln.runs.targets', 'kiln.runs.targets.registry']\n"
