"""Before uv runs, every ``${VAR}`` of a definition's pip options and packages must be set (an index's
credentials): uv would send the reference as written and report only that the index refused it."""

from __future__ import annotations

import pytest

from kiln import CondaDependencies, Environment
from kiln.builds.resolver import check_references
from kiln.errors import DefinitionError


def _env(options: list[str], packages: list[str]) -> Environment:
    env = Environment("private")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=packages, python_version="3.12")
    for option in options:
        env.python.conda_dependencies.set_pip_option(option)
    return env


def test_every_variable_set_passes_and_the_values_are_not_echoed() -> None:
    env = _env(["--index-url https://${IDX_USER}:${IDX_TOKEN}@pypi.example/simple"],
               ["pkg @ https://${IDX_TOKEN}@files.example/pkg-1.0-py3-none-any.whl", "six"])
    check_references(env, {"IDX_USER": "team", "IDX_TOKEN": "s3cret"})


@pytest.mark.parametrize(("options", "packages", "missing", "kind"), [
    (["--index-url https://${IDX_USER}:${IDX_TOKEN}@pypi.example/simple"], ["six"], "IDX_TOKEN", "pip option"),
    (["--extra-index-url https://${IDX_TOKEN}@pypi.example/simple"], ["six"], "IDX_TOKEN", "pip option"),
    (["--find-links https://team:${IDX_TOKEN}@pypi.example/wheels/"], ["six"], "IDX_TOKEN", "pip option"),
    ([], ["pkg @ https://team:${IDX_TOKEN}@files.example/pkg-1.0-py3-none-any.whl"], "IDX_TOKEN", "pip package"),
])
def test_a_missing_variable_is_named_with_its_entry(options: list[str], packages: list[str], missing: str,
                                                    kind: str) -> None:
    with pytest.raises(DefinitionError) as info:
        check_references(_env(options, packages), {"IDX_USER": "team"})
    message = str(info.value)
    assert f"the environment variable {missing} is not set" in message
    assert f"environment private: {kind} " in message and "${IDX_TOKEN}" in message
    assert "\n" not in message


def test_a_definition_without_references_needs_no_variables() -> None:
    check_references(_env(["--index-url https://pypi.org/simple"], ["six", "numpy==2.0"]), {})
    env = Environment("managed")
    env.python.user_managed_dependencies = True
    check_references(env, {})
