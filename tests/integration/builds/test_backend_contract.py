"""The contract every build backend passes (see ``kiln.builds.backends.interface``), offline.

Each backend is given a real plan: the venv backend a lock of a wheel made here (``--no-index``, found
through ``--find-links``), the conda backend a lock solved against a local channel (see
``tests/integration/conda/conda_support.py``), the user-managed backend a real interpreter of this
machine. Builds go through the real cache's staging and publishing (``kiln.builds.staging``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)
from build_support import make_wheel

from kiln import CondaDependencies, Environment
from kiln.builds.backends import BACKENDS, Backend, BuildPlan, backend_for
from kiln.builds.backends.plan import plan_for
from kiln.builds.cache import BuildCache
from kiln.builds.interpreters import Interpreter
from kiln.builds.keys import build_key
from kiln.builds.resolver import resolve
from kiln.builds.staging import BuildLog, build_and_publish
from kiln.errors import KilnError

pytestmark = [
    pytest.mark.integration,
    # BUG (see test_build.py::test_run_uv_closes_its_pipe): run_uv leaks uv's output pipe on every run
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

PY = "3.12"
CONDA_TESTS = Path(__file__).resolve().parent.parent / "conda"


@dataclass(frozen=True)
class Case:
    """A backend with a plan it builds, code whose output shows the plan's packages, and a plan that fails."""

    backend: Backend
    plan: BuildPlan
    probe: str  # run by the built interpreter
    expected: str  # its output
    broken: BuildPlan
    broken_output: str  # what the backend's output says of the failure (the error carries it)


def definition(name: str, *, pip: tuple[str, ...] = (), conda: tuple[str, ...] = (), channel: Path | None = None,
               options: tuple[str, ...] = ()) -> Environment:
    env = Environment(name)
    cd = CondaDependencies.create(pip_packages=list(pip), conda_packages=list(conda), python_version=PY)
    if channel is not None:  # the local channel only (no network here)
        for other in list(cd.conda_channels):
            cd.remove_channel(other)
        cd.add_channel(str(channel))
    for option in options:
        cd.set_pip_option(option)
    env.python.conda_dependencies = cd
    return env


def venv_case(python: Interpreter, tmp: Path, cache: BuildCache) -> Case:
    wheels = tmp / "wheels"
    make_wheel(wheels, "kilnprobe", "1.0", "VALUE = 'probe 1.0'\n")
    env = definition("contract-venv", pip=("kilnprobe==1.0",), options=("--no-index", f"--find-links {wheels}"))
    lock = resolve(env, python, cache_dir=cache.root, conda_via="pypi")
    assert [(p.name, p.version) for p in lock.packages] == [("kilnprobe", "1.0")]
    good_hash = lock.packages[0].hashes[0]
    broken = replace(lock, text=lock.text.replace(good_hash, "sha256:" + "0" * 64))
    plan = plan_for(env, python, lock, cache_dir=cache.root / "conda-pkgs")
    return Case(backend=BACKENDS["venv"](), plan=plan, probe="import kilnprobe; print(kilnprobe.VALUE)",
                expected="probe 1.0", broken=replace(plan, lock=broken), broken_output="Hash mismatch")


def conda_case(python: Interpreter, tmp: Path, cache: BuildCache) -> Case:
    pytest.importorskip("rattler")
    sys.path.insert(0, str(CONDA_TESTS))
    try:
        from conda_support import PACKAGES, publish
    finally:
        sys.path.remove(str(CONDA_TESTS))
    channel = tmp / "channel"
    publish(channel, [p for p in PACKAGES if p["name"] in ("six", "datapkg")])
    env = definition("contract-conda", conda=("six", "datapkg<2"), channel=channel)
    lock = resolve(env, python, cache_dir=cache.root, conda_via="conda")
    assert sorted(c.name for c in lock.conda) == ["datapkg", "python", "six"]
    plan = plan_for(env, python, lock, cache_dir=cache.root / "conda-pkgs")
    # the package the lock names is gone from its channel (and from the package cache: a fresh one)
    broken = replace(plan, lock=replace(lock, conda_lock=lock.conda_lock.replace("datapkg-1.0-0.conda",
                                                                                 "datapkg-1.0-9.conda")),
                     cache_dir=tmp / "other-cache" / "conda-pkgs")
    code = ("import six, pathlib, sys; "
            "print(six.KILN_CONDA_BUILD, pathlib.Path(sys.prefix, 'share/datapkg/data.txt').read_text().strip())")
    return Case(backend=BACKENDS["conda"](), plan=plan, probe=code, expected="True datapkg 1.0", broken=broken,
                broken_output="datapkg-1.0-9")


def user_managed_case(python: Interpreter, tmp: Path, cache: BuildCache) -> Case:
    env = definition("contract-user")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = python.path
    plan = plan_for(env, python, None)
    fake = tmp / "bin" / "python3"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'this python is broken' >&2\nexit 3\n")
    fake.chmod(0o755)
    probe = "import sys, json; print(json.dumps(sys.version_info[:3] == tuple(map(int, '%s'.split('.')))))"
    return Case(backend=BACKENDS["user-managed"](), plan=plan, probe=probe % python.version, expected="true",
                broken=replace(plan, interpreter=replace(python, path=str(fake))),
                broken_output="this python is broken")


CASES: dict[str, Callable[[Interpreter, Path, BuildCache], Case]] = {
    "venv": venv_case, "conda": conda_case, "user-managed": user_managed_case}


def test_every_backend_is_in_the_suite() -> None:
    assert sorted(CASES) == sorted(BACKENDS)


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, interpreter: Callable[[str], Interpreter], tmp_path: Path,
         cache: BuildCache) -> Case:
    return CASES[request.param](interpreter(PY), tmp_path, cache)


def run(python: Path, code: str) -> str:
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"),
               "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, env=environ,
                          timeout=60).stdout.strip()


def distributions(python: Path) -> list[list[str]]:
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps(sorted([d.metadata['Name'], d.version] for d in m.distributions())))")
    return list(json.loads(run(python, code)))


def build(case: Case, plan: BuildPlan, cache: BuildCache, tag: str) -> Path:
    """``plan`` built as the builder does (a user-managed plan in a throwaway folder); its interpreter."""
    if not plan.user_managed:
        key = build_key(plan.locked(), plan.interpreter, case.backend.name) + tag
        with cache.locked(key):
            entry = build_and_publish(cache, cache.stage(key), key, replace(plan, final_path=cache.bucket / key),
                                      case.backend, BuildLog(), lambda phase, message: None)
        return entry.python
    stage = cache.root.parent / f"as-it-is{tag}"
    stage.mkdir(parents=True)
    outcome = case.backend.build(plan, stage=stage, log=BuildLog())
    assert list(stage.iterdir()) == []  # nothing made: the interpreter is used where it is
    return stage / outcome.python


def test_the_backend_has_a_name(case: Case) -> None:
    assert case.backend.name and BACKENDS[case.backend.name] is type(case.backend)


def test_cannot_build_accepts_its_plan_and_gives_reasons_for_the_others(case: Case) -> None:
    assert case.backend.cannot_build(case.plan) is None
    assert backend_for(case.plan).name == case.backend.name
    for other_name in sorted(CASES):
        if other_name == case.backend.name:
            continue
        reason = BACKENDS[other_name]().cannot_build(case.plan)  # never raises, says why
        assert isinstance(reason, str) and reason
    unlocked = replace(case.plan, lock=None, user_managed=False)
    assert all(cls().cannot_build(unlocked) is not None for cls in BACKENDS.values())  # no raise, a reason


def test_a_build_runs_and_imports_what_the_plan_installs(case: Case, cache: BuildCache) -> None:
    python = build(case, case.plan, cache, "")
    assert run(python, case.probe) == case.expected
    virtual_env = case.backend.virtual_env(python)
    assert virtual_env is None if case.plan.user_managed else virtual_env == python.parent.parent


def test_two_builds_of_one_lock_hold_the_same_packages(case: Case, cache: BuildCache) -> None:
    first = build(case, case.plan, cache, "-1")
    second = build(case, case.plan, cache, "-2")
    assert case.plan.user_managed or first != second
    assert distributions(first) == distributions(second)


def test_a_failed_build_says_why_and_publishes_nothing(case: Case, cache: BuildCache, look: Any) -> None:
    with pytest.raises(KilnError) as e:
        build(case, case.broken, cache, "")
    assert case.broken_output in str(e.value)
    assert look.published() == []
    assert look.staged() == []
