"""Which definitions leave their Python to Kiln (and so may be built on another interpreter)."""

from __future__ import annotations

import pytest

from kiln.builds.locking import python_is_defaulted
from kiln.environment.conda import DEFAULT_PYTHON_VERSION, CondaDependencies
from kiln.environment.environment import Environment


def _env(python: str | None) -> Environment:
    env = Environment("e")
    if python is not None:
        env.python.conda_dependencies = CondaDependencies.create(python_version=python)
    return env


def test_kilns_template_is_kilns_choice() -> None:
    assert python_is_defaulted(_env(None))  # CondaDependencies(): python=<default>, written by Kiln
    assert python_is_defaulted(_env(DEFAULT_PYTHON_VERSION))
    no_python = Environment("bare")
    assert no_python.python.conda_dependencies is not None
    no_python.python.conda_dependencies.remove_conda_package("python")
    assert python_is_defaulted(no_python)


@pytest.mark.parametrize("pin", ["3.8", f"{DEFAULT_PYTHON_VERSION}.*", f"{DEFAULT_PYTHON_VERSION}.1", "3.11.*"])
def test_any_other_spec_is_the_users_pin(pin: str) -> None:
    assert not python_is_defaulted(_env(pin))
