"""Several ``kiln env build`` processes at once, and a build killed with SIGKILL, against one workspace and cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from kiln import Environment, Workspace
from kiln.builds.lock import Lock

pytestmark = [
    pytest.mark.integration,
    # BUG (see test_build.py::test_run_uv_closes_its_pipe): run_uv leaks uv's output pipe on every run
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

PACKAGES = ("six==1.16.0", "attrs==23.2.0", "idna==3.7", "packaging==24.1", "iniconfig==2.0.0")


def kiln(workspace: Workspace, *args: str) -> list[str]:
    """The real ``kiln`` command line, on ``workspace``."""
    return [str(Path(sys.executable).parent / "kiln"), "-w", str(workspace.path), *args]


def test_four_builders_at_once_build_once(make_env: Any, workspace: Workspace, look: Any) -> None:
    make_env("together", *PACKAGES).register(workspace)
    procs = [subprocess.Popen(kiln(workspace, "-o", "json", "env", "build", "together"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ)) for _ in range(4)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert (proc.returncode, err) == (0, ""), (out, err)
        outputs.append(json.loads(out)["data"])

    assert len({d["path"] for d in outputs}) == 1
    assert len({d["lock_hash"] for d in outputs}) == 1
    assert sorted(d["cache_hit"] for d in outputs) == [False, True, True, True]  # exactly one of them built
    (key,) = look.published()
    assert outputs[0]["key"] == key
    log = (look.cache.bucket / key / "build.log").read_text()
    assert log.count("# kiln build of together:1") == 1
    assert [r.lock_hash for r in workspace.store.list_environment_locks(name="together", version=1)] == [
        outputs[0]["lock_hash"]]
    assert not [name for name in look.staged() if name.startswith(key)]
    assert look.installed(outputs[0]["python"]) == {p.split("==")[0]: p.split("==")[1] for p in PACKAGES}


def wait_for_stage(cache_tmp: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> list[str]:
    """Poll until a build folder appears in ``tmp/`` (the build is under way); return its names."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cache_tmp.is_dir():
            found = [p.name for p in cache_tmp.iterdir() if "." in p.name]
            if found:
                return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the build ended (exit code {proc.returncode}) before its tmp/ folder was seen:\n{out}{err}")
        time.sleep(0.002)
    pytest.fail("no build folder appeared in tmp/")


def test_a_build_killed_with_sigkill_leaves_no_entry(make_env: Any, workspace: Workspace, look: Any,
                                                     tmp_path: Path) -> None:
    make_env("killed", *PACKAGES).register(workspace)
    # an empty uv cache of its own: the killed build has to download, so it is still running when killed
    slow = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "empty-uv-cache")}
    proc = subprocess.Popen(kiln(workspace, "env", "build", "killed"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=slow, start_new_session=True)
    try:
        staged = wait_for_stage(look.cache.root / "tmp", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kiln and the uv it runs, all at once
        proc.communicate(timeout=60)
    killed_at = time.time()
    assert proc.returncode == -signal.SIGKILL
    assert look.published() == []  # killed mid-build: nothing was published
    assert set(staged) <= set(look.staged())  # its half-made folder is still there
    assert workspace.store.list_environment_locks(name="killed", version=1) == []

    result = Environment.get(workspace, "killed").build_local(workspace)
    assert (result.cache_hit, result.environment) == (False, "killed:1")
    (key,) = look.published()
    assert result.key == key and result.path is not None
    entry = json.loads((result.path / "kiln-entry.json").read_text())
    assert entry["published_at"] > killed_at  # the entry is the new build's, not the killed one's
    log = result.get_log()
    assert log.count("# kiln build of killed:1") == 1 and "# built in" in log
    assert result.log_path is not None and result.log_path.stat().st_mtime > killed_at
    assert look.staged() == []  # the next builder of that key cleared the leftovers
    assert look.installed(result.python) == {p.split("==")[0]: p.split("==")[1] for p in PACKAGES}
    (stored,) = workspace.store.list_environment_locks(name="killed", version=1)
    assert Lock.from_json(stored.content).lock_hash == result.lock_hash
