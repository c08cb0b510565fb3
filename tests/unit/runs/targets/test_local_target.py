"""The ``local`` target's own pieces: its capability probe, the state file, the grace period of a cancel,
reading the log, and stopping an orphan only when it is still the process that was started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln._process import alive, start_time
from kiln.runs.targets.interface import RunPlan
from kiln.runs.targets.local import GRACE_SECONDS, LocalHandle, LocalTarget

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def plan(tmp_path: Path) -> Callable[..., RunPlan]:
    def make(script: str, **fields: Any) -> RunPlan:
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        (work / "train.py").write_text(script)
        values: dict[str, Any] = {"run_id": "r1", "script": "train.py", "workdir": work, "python": sys.executable,
                                  "environ": {**os.environ, "PYTHONUNBUFFERED": "1"}, "run_dir": tmp_path,
                                  "log": tmp_path / "output.log", "outputs": tmp_path / "outputs",
                                  "state": tmp_path / "script.pid"}
        values.update(fields)
        return RunPlan(**values)

    return make


@pytest.fixture
def handles() -> Iterator[list[LocalHandle]]:
    started: list[LocalHandle] = []
    yield started
    for handle in started:
        handle.cancel()


def test_the_name_and_the_default_grace_period() -> None:
    assert LocalTarget.name == "local"
    assert LocalTarget().grace_seconds == GRACE_SECONDS == 5.0
    assert LocalTarget(grace_seconds=0.5).grace_seconds == 0.5


def test_cannot_run_names_the_missing_interpreter(plan: Callable[..., RunPlan], tmp_path: Path) -> None:
    missing = str(tmp_path / "env" / "bin" / "python")
    assert LocalTarget().cannot_run(plan("pass\n", python=missing)) == \
        f"the environment's interpreter {missing} is not there (or can't be run)"


def test_cannot_run_a_file_that_is_not_executable(plan: Callable[..., RunPlan], tmp_path: Path) -> None:
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    not_executable.chmod(0o644)
    assert "is not there (or can't be run)" in (LocalTarget().cannot_run(plan("pass\n", python=str(not_executable)))
                                                or "")


def test_cannot_run_names_the_missing_folder(plan: Callable[..., RunPlan], tmp_path: Path) -> None:
    assert LocalTarget().cannot_run(plan("pass\n", workdir=tmp_path / "gone")) == \
        f"the run's folder {tmp_path / 'gone'} is not there"


def test_the_state_file_holds_the_scripts_pid_and_start_time(plan: Callable[..., RunPlan],
                                                              handles: list[LocalHandle]) -> None:
    p = plan("import time\ntime.sleep(300)\n")
    handle = LocalTarget().start(plan=p)
    handles.append(handle)
    pid_text, started = p.state.read_text().split()
    assert int(pid_text) == handle.pid and started == start_time(handle.pid)
    assert os.getpgid(handle.pid) == handle.pid  # the leader of a process group of its own


def test_a_script_that_ignores_sigterm_is_killed_after_the_grace_period(plan: Callable[..., RunPlan],
                                                                        handles: list[LocalHandle]) -> None:
    script = ("import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: print('ignoring', flush=True))\n"
              "print('ready', flush=True)\ntime.sleep(300)\n")
    p = plan(script)
    handle = LocalTarget(grace_seconds=0.2).start(plan=p)
    handles.append(handle)
    wait_until(lambda: "ready" in p.log.read_text(), "the script to set its handler")
    handle.cancel()
    assert handle.wait() == -9
    assert "ignoring" in p.log.read_text()


def test_logs_without_a_log_file_are_empty(plan: Callable[..., RunPlan], tmp_path: Path) -> None:
    p = plan("pass\n")
    handle = LocalTarget().start(plan=p)
    assert handle.wait() == 0
    p.log.unlink()
    assert list(handle.logs()) == [] and list(handle.logs(follow=True)) == []


def test_logs_decode_bad_bytes_without_failing(plan: Callable[..., RunPlan]) -> None:
    p = plan("import sys\nsys.stdout.buffer.write(b'caf\\xe9\\n')\n")
    handle = LocalTarget().start(plan=p)
    assert handle.wait() == 0
    assert list(handle.logs()) == ["caf\ufffd\n"]


def test_outputs_are_collected_once(plan: Callable[..., RunPlan], tmp_path: Path) -> None:
    p = plan("import os\nos.makedirs('outputs')\nopen('outputs/a.txt', 'w').write('1')\n")
    handle = LocalTarget().start(plan=p)
    assert handle.wait() == 0
    (tmp_path / "outputs" / "a.txt").unlink()
    assert handle.wait() == 0  # asked again: nothing is copied again
    assert not (tmp_path / "outputs" / "a.txt").exists()


def test_stop_orphan_kills_the_whole_process_group(tmp_path: Path) -> None:
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
                               "print('ok', flush=True); time.sleep(300)"],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert leader.stdout is not None and leader.stdout.readline() == b"ok\n"
        members = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat")
                   if _pgid(p) == leader.pid]
        assert len(members) == 2
        state = tmp_path / "script.pid"
        state.write_text(f"{leader.pid} {start_time(leader.pid)}\n")
        LocalTarget().stop_orphan(state=state)
        assert leader.wait(timeout=30) == -9
        wait_until(lambda: not any(alive(pid, None) and _state(pid) != "Z" for pid in members), "the group to end")
    finally:
        leader.kill()
        leader.wait()
        assert leader.stdout is not None
        leader.stdout.close()


def test_stop_orphan_leaves_a_process_that_reused_the_pid_alone(tmp_path: Path) -> None:
    stand_in = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        state = tmp_path / "script.pid"
        state.write_text(f"{stand_in.pid} {int(start_time(stand_in.pid) or 0) + 1}\n")  # another start time
        LocalTarget().stop_orphan(state=state)
        assert stand_in.poll() is None
        assert alive(stand_in.pid, start_time(stand_in.pid))
    finally:
        stand_in.kill()
        stand_in.wait()


@pytest.mark.parametrize("text", ["", "\n", "abc 123\n", "-1 \n", "0 \n"])
def test_stop_orphan_with_an_unusable_state_does_nothing(tmp_path: Path, text: str) -> None:
    state = tmp_path / "script.pid"
    state.write_text(text)
    LocalTarget().stop_orphan(state=state)
    assert state.read_text() == text  # and this process (pid 0 would be its own group) is still here


def _pgid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
