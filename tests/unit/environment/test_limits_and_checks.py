"""Size limits (``limits``) and whole-definition checks (``checks``), through files and in code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.environment.checks import check_definition
from kiln.environment.conda import CondaDependencies
from kiln.environment.environment import Environment
from kiln.environment.formats.azureml_v1 import load_json
from kiln.environment.limits import MAX_FIELD, check_depth, check_shape, cut, shown
from kiln.environment.variables import variable_problem
from kiln.errors import DefinitionError, FormatError


def test_cut_and_shown_bound_any_value() -> None:
    assert cut("abc") == "abc"
    assert cut("x" * 1000, 10) == "xxxxxxxxxx... (1000 characters)"
    assert len(shown("y" * 10_000_000)) < 300
    assert shown([1, 2]) == "[1, 2]"


def test_depth_is_checked_outside_strings_only() -> None:
    check_depth('{"a": "' + "[" * 100 + '\\"["}', "f.json")  # brackets inside a string don't nest
    with pytest.raises(FormatError, match="nested more than 32 levels deep"):
        check_depth("[" * 33 + "]" * 33, "f.json")


def test_json_duplicate_keys_are_refused_naming_the_key() -> None:
    with pytest.raises(FormatError) as info:
        load_json('{"name": "x", "python": {}, "python": {"interpreterPath": "/bin/sh"}}', "env.json")
    assert str(info.value) == ("env.json: python: appears twice in the same object (JSON keeps only the last one: "
                               "remove one)")


def test_shape_names_the_field_and_never_echoes_the_value() -> None:
    with pytest.raises(FormatError) as info:
        check_shape({"docker": {"baseImage": "SECRET" * 10_000}}, "f.json")
    assert str(info.value).startswith("f.json: docker.baseImage: a value of 60000 characters")
    assert "SECRET" not in str(info.value)
    check_shape({"docker": {"baseImage": "a" * MAX_FIELD}}, "f.json")  # at the limit: fine


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("1BAD", "v", "not a variable name"), ("X Y", "v", "not a variable name"), ("A\x00", "v", "not a variable name"),
    ("", "v", "not a variable name"), ("A", "a\x00b", "NUL"), ("A", 1, "expected a string"),
])
def test_variable_problems(name: object, value: object, problem: str) -> None:
    found = variable_problem(name, value)
    assert found is not None and problem in found
    assert variable_problem("_OK_1", "any value") is None


def _env(*conda: str, pip: tuple[str, ...] = ()) -> Environment:
    env = Environment("checked")
    deps: list[object] = [*conda, *([{"pip": list(pip)}] if pip else [])]
    env.python.conda_dependencies = CondaDependencies.from_dict({"channels": ["conda-forge"], "dependencies": deps})
    return env


@pytest.mark.parametrize(("env", "message"), [
    (_env("python=3.10", "python=3.11"), "Python is pinned twice"),
    (_env("python=3.x.y"), "'3.x.y' is not a Python version"),
    (_env("python=3.11", pip=("pkg @ file:///tmp/pkg-1.0.tar.gz",)), "editable or local-path"),
    (_env("python=3.11", pip=("pkg @ git+file:///srv/repo",)), "editable or local-path"),
])
def test_definitions_refused_at_registration(env: Environment, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        env.validate()
    assert message in str(info.value) and str(info.value).startswith("environment 'checked': ")


def test_editable_option_constraints_and_platform_in_code(tmp_path: Path) -> None:
    env = _env("python=3.11")
    env.python.conda_dependencies.set_pip_option("-e ./pkg")  # type: ignore[union-attr]
    with pytest.raises(DefinitionError, match="editable or local-path"):
        env.validate()
    env = _env("python=3.11")
    env.python.conda_dependencies.set_pip_option(f"-c {tmp_path / 'missing.txt'}")  # type: ignore[union-attr]
    with pytest.raises(DefinitionError, match="constraints file not found"):
        env.validate()
    env = _env("python=3.11")
    env.docker.platform = {"os": "Plan9", "architecture": "amd64"}
    with pytest.raises(DefinitionError, match=r"docker\.platform\.os: 'Plan9'"):
        env.validate()
    env = _env("python=3.11")
    env.environment_variables["1BAD"] = "x"
    with pytest.raises(DefinitionError, match="not a variable name"):
        env.validate()


def test_check_definition_names_the_file_when_given() -> None:
    env = _env("python=3.10", "python=3.11")
    with pytest.raises(FormatError) as info:
        check_definition(env, "environment.yml")
    assert str(info.value).startswith("environment.yml: dependencies: ")


def test_a_sound_definition_passes() -> None:
    env = _env("python=3.11", "numpy>=1.26", pip=("six==1.16.0",))
    env.environment_variables["OMP_NUM_THREADS"] = "1"
    env.validate()
    json.dumps(env.to_dict())
