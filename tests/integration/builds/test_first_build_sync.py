"""A first build installs while it resolves, then makes the environment exactly the lock: with ``uv pip sync``
only when the install is not already exactly the lock (offline: wheels made here, ``--find-links``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)
from build_support import make_wheel

from kiln import Environment, Workspace
from kiln.builds.backends.plan import plan_for
from kiln.builds.backends.venv import VenvBackend
from kiln.builds.cache import BuildCache
from kiln.builds.interpreters import Interpreter
from kiln.builds.resolver import resolve
from kiln.builds.staging import BuildLog

pytestmark = [
    pytest.mark.integration,
    # BUG (see test_build.py::test_run_uv_closes_its_pipe): run_uv leaks uv's output pipe on every run
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

SKIPPED = "nothing to sync"


def wheels(tmp_path: Path) -> tuple[str, ...]:
    folder = tmp_path / "wheels"
    make_wheel(folder, "kilnprobe", "1.0", "VALUE = 'probe 1.0'\n")
    make_wheel(folder, "kilnextra", "2.0", "VALUE = 'extra 2.0'\n")
    return ("--no-index", f"--find-links {folder}")


def test_a_first_build_whose_install_is_the_lock_skips_the_sync(tmp_path: Path, make_env: Callable[..., Environment],
                                                                 workspace: Workspace, look: Any) -> None:
    env = make_env("first-sync", "kilnprobe==1.0", "kilnextra", options=wheels(tmp_path)).register(workspace)
    result = env.build_local(workspace)
    assert result.resolved and not result.cache_hit
    assert SKIPPED in result.log_path.read_text()
    assert result.lock is not None
    assert look.installed(result.python) == {p.name: p.version for p in result.lock.packages} == {
        "kilnextra": "2.0", "kilnprobe": "1.0"}


def test_an_install_that_is_not_the_lock_is_synced_to_it(tmp_path: Path, make_env: Callable[..., Environment],
                                                         interpreter: Callable[[str], Interpreter], cache: BuildCache,
                                                         look: Any) -> None:
    options = wheels(tmp_path)
    env = make_env("first-sync-extra", "kilnprobe==1.0", options=options)
    python = interpreter("3.12")
    lock = resolve(env, python, cache_dir=cache.root, conda_via="pypi")
    plan = plan_for(env, python, lock)
    stage = tmp_path / "stage"
    log = BuildLog()
    backend = VenvBackend()
    # the install got one package more than the lock names (as if the index changed between the two)
    backend.prepare(plan, requirements=["kilnprobe==1.0", "kilnextra==2.0"], options=list(options), stage=stage,
                    log=log)
    assert look.installed(stage / "env" / "bin" / "python") == {"kilnextra": "2.0", "kilnprobe": "1.0"}
    outcome = backend.build(plan, stage=stage, log=log)
    assert SKIPPED not in "\n".join(log.lines)
    assert look.installed(stage / outcome.python) == {"kilnprobe": "1.0"}
