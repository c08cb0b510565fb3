from __future__ import annotations

from kiln import CondaDependencies, Environment
from kiln.environment.diff import diff_environments


def _env(*pip: str) -> Environment:
    env = Environment("e")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(pip), python_version="3.11")
    return env


def test_package_changes_are_by_name() -> None:
    old, new = _env("numpy==2.4.6", "six"), _env("numpy==2.4.5", "requests==2.34.2")
    old.version, new.version = "1", "2"
    result = diff_environments(old, new)
    assert [str(c) for c in result.changes] == [
        "python.pip: ~ numpy: numpy==2.4.6 -> numpy==2.4.5",
        "python.pip: + requests==2.34.2",
        "python.pip: - six",
    ]
    assert (result.old, result.new) == ("e:1", "e:2")
    assert not result.same_build


def test_env_vars_change_but_build_is_the_same() -> None:
    old, new = _env("six"), _env("six")
    new.environment_variables["A"] = "1"
    result = diff_environments(old, new)
    assert [str(c) for c in result.changes] == ["environment_variables: + A = 1"]
    assert result.same_build
    assert result.to_dict()["same_build"] is True


def test_docker_and_dockerfile_changes() -> None:
    old, new = _env(), _env()
    old.docker.base_image = None
    new.docker.base_image = None
    old.docker.base_dockerfile = "FROM ubuntu\nRUN echo 1\n"
    new.docker.base_dockerfile = "FROM ubuntu\nRUN echo 2\n"
    new.docker.shm_size = "8g"
    changes = diff_environments(old, new).changes
    assert [(c.section, c.item) for c in changes] == [("docker", "shm_size"), ("docker", "base_dockerfile")]
    assert "-RUN echo 1" in changes[1].new and "+RUN echo 2" in changes[1].new


def test_identical_definitions_have_no_changes() -> None:
    assert diff_environments(_env("six"), _env("six")).changes == []
