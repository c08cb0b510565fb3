"""Each backend's capability probe and the choice among them; the user-managed backend's build (it
runs the interpreter only); the activation each backend asks for."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kiln.builds.backends import (
    BACKENDS,
    BuildPlan,
    CondaBackend,
    UserManagedBackend,
    VenvBackend,
    backend_for,
    backend_named,
)
from kiln.builds.interpreters import Interpreter, inspect_interpreter
from kiln.builds.lock import CondaPackage, Lock, LockedPackage
from kiln.errors import KilnError

PYTHON = Interpreter(path="/usr/bin/python3", version="3.12.1", machine="x86_64", system="Linux")
PIP = Lock(identity="id", python="3.12.1", platform="linux-x86_64", requirements=("six",), options=(),
           packages=(LockedPackage("six", "1.16.0"),), text="six==1.16.0\n", resolver="uv", created_at="now")
CONDA = replace(PIP, conda=(CondaPackage(name="numpy", version="1.26.4", build="py312_0", channel="c",
                                         subdir="linux-64", url="u", sha256="0" * 64),))


def plan(lock: Lock | None, *, user_managed: bool = False, interpreter: Interpreter = PYTHON) -> BuildPlan:
    return BuildPlan(label="env:1", interpreter=interpreter, lock=lock, user_managed=user_managed)


@pytest.mark.parametrize(("the_plan", "chosen"), [
    (plan(PIP), "venv"), (plan(CONDA), "conda"), (plan(None, user_managed=True), "user-managed")])
def test_each_plan_has_one_backend(the_plan: BuildPlan, chosen: str) -> None:
    able = [name for name, cls in BACKENDS.items() if cls().cannot_build(the_plan) is None]
    assert able == [chosen]
    assert backend_for(the_plan).name == chosen


def test_the_reasons_of_every_backend_when_none_can_build() -> None:
    pypy = replace(PYTHON, implementation="pypy")
    with pytest.raises(KilnError) as e:
        backend_for(plan(PIP, interpreter=pypy))
    assert str(e.value) == ("no build backend can build env:1: venv: uv venvs need CPython, not pypy; "
                            "conda: the lock has no conda packages; user-managed: Kiln manages this environment's "
                            "Python (python.user_managed_dependencies is False)")


@pytest.mark.parametrize("cls", [VenvBackend, CondaBackend])
def test_kiln_backends_refuse_user_managed_and_unlocked_plans(cls: type) -> None:
    assert "user-managed" in cls().cannot_build(plan(None, user_managed=True))
    assert cls().cannot_build(plan(None)) is not None


def test_the_user_managed_backend_refuses_a_plan_with_packages() -> None:
    assert "installs nothing" in UserManagedBackend().cannot_build(plan(PIP, user_managed=True))


def test_backends_by_name() -> None:
    assert [type(backend_named(n)) for n in ("venv", "conda", "user-managed")] == [
        VenvBackend, CondaBackend, UserManagedBackend]
    with pytest.raises(KilnError, match="no build backend is called 'image' \\(known: venv, conda, user-managed\\)"):
        backend_named("image")


def test_activation() -> None:
    python = Path("/cache/envs-v1/k/env/bin/python")
    assert VenvBackend().virtual_env(python) == CondaBackend().virtual_env(python) == Path("/cache/envs-v1/k/env")
    assert UserManagedBackend().virtual_env(python) is None


def test_the_user_managed_build_runs_the_interpreter_and_makes_nothing(tmp_path: Path) -> None:
    me = inspect_interpreter(sys.executable)
    lines: list[str] = []
    stage = tmp_path / "stage"
    stage.mkdir()
    outcome = UserManagedBackend().build(plan(None, user_managed=True, interpreter=me), stage=stage, log=lines.append)
    assert (outcome.python, outcome.packages, outcome.link_mode) == (Path(sys.executable), 0, "none")
    assert outcome.summary == f"user-managed: {sys.executable} (Python {me.version})"
    assert lines == [f"# {outcome.summary}: used as it is, nothing installed"]
    assert list(stage.iterdir()) == []


def test_the_user_managed_build_fails_with_the_interpreters_output(tmp_path: Path) -> None:
    broken = tmp_path / "python3"
    broken.write_text("#!/bin/sh\necho 'no such module: encodings' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(KilnError) as e:
        UserManagedBackend().build(plan(None, user_managed=True, interpreter=replace(PYTHON, path=str(broken))),
                                   stage=tmp_path, log=lambda line: None)
    assert str(e.value) == (f"env:1: the user-managed interpreter {broken} does not run as Python 3.12.1 "
                            "(exit code 1): no such module: encodings")
    missing = tmp_path / "gone"
    with pytest.raises(KilnError, match="does not run"):
        UserManagedBackend().build(plan(None, user_managed=True, interpreter=replace(PYTHON, path=str(missing))),
                                   stage=tmp_path, log=lambda line: None)
