"""Is a process still the one Kiln started? A pid plus its start time, read from ``/proc``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln._process import alive, start_time

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_start_time_of_this_process_is_a_number_that_does_not_change() -> None:
    first = start_time(os.getpid())
    assert first is not None and first.isdigit()
    assert start_time(os.getpid()) == first


def test_start_time_of_no_process_is_none() -> None:
    assert start_time(2**22 + 12345) is None


def test_no_pid_is_not_alive() -> None:
    assert alive(None, None) is False
    assert alive(None, "123") is False


def test_this_process_is_alive_with_its_start_time_or_without_one() -> None:
    pid = os.getpid()
    assert alive(pid, start_time(pid)) is True
    assert alive(pid, None) is True


def test_a_reused_pid_with_another_start_time_is_not_alive() -> None:
    pid = os.getpid()
    assert alive(pid, str(int(start_time(pid) or 0) + 1)) is False


def test_an_ended_and_reaped_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(proc.pid)
    proc.wait()
    assert alive(proc.pid, started) is False
    assert alive(proc.pid, None) is False


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(proc.pid)
    try:
        wait_until(lambda: state(proc.pid) == "Z")  # exited, not yet reaped: the pid still answers kill(0)
        os.kill(proc.pid, 0)
        assert alive(proc.pid, started) is False
    finally:
        proc.wait()


def test_a_running_child_is_alive_until_it_is_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = start_time(proc.pid)
        assert alive(proc.pid, started) is True
        proc.kill()
        wait_until(lambda: not alive(proc.pid, started))
    finally:
        proc.kill()
        proc.wait()


def test_a_command_name_with_spaces_and_parentheses_does_not_confuse_the_start_time(tmp_path: Path) -> None:
    # the kernel takes the command name (field 2 of /proc/PID/stat) from the executable's file name
    odd = tmp_path / "a) b (c"
    odd.symlink_to(sys.executable)
    proc = subprocess.Popen([str(odd), "-c", "import time; time.sleep(60)"])
    try:
        wait_until(lambda: ") b (" in Path(f"/proc/{proc.pid}/stat").read_text())
        started = start_time(proc.pid)
        assert started is not None and started.isdigit()
        # the start time comes after this test's own start: it is field 22, not a field shifted by the name
        assert int(started) >= int(start_time(os.getpid()) or 0)
        assert alive(proc.pid, started) is True
    finally:
        proc.kill()
        proc.wait()
