"""The ``local`` target: the script is a process of this machine, in a process group of its own.

Its own session (``start_new_session``) makes the script the leader of a new process group, so that
a cancel reaches its children too (``killpg``) and a Ctrl-C in the submitter's terminal reaches none
of them. Its pid and start time go to ``plan.state``: a pid alone may be reused once it has ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from kiln._process import alive, start_time
from kiln._tree import copy_tree
from kiln.runs.targets.interface import ComputeTarget, RunHandle, RunPlan
from kiln.runs.targets.logfile import read_log

__all__ = ["GRACE_SECONDS", "LocalHandle", "LocalTarget"]

#: how long a canceled script has between SIGTERM and SIGKILL
GRACE_SECONDS = 5.0
_KILL_WAIT = 30.0
_FOLLOW_POLL = 0.05


class LocalTarget(ComputeTarget):
    name = "local"

    def __init__(self, *, grace_seconds: float = GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds

    def cannot_run(self, plan: RunPlan) -> str | None:
        if not hasattr(os, "killpg"):
            return "the local target needs process groups (Linux or macOS)"
        try:
            python = Path(plan.python)
            if not python.is_file() or not os.access(python, os.X_OK):
                return f"the environment's interpreter {plan.python} is not there (or can't be run)"
            if not Path(plan.workdir).is_dir():
                return f"the run's folder {plan.workdir} is not there"
        except (OSError, TypeError, ValueError) as e:
            return f"the run can't start here: {e}"
        return None

    def start(self, *, plan: RunPlan) -> LocalHandle:
        if plan.command:
            first, *rest = plan.command
            cmd = [plan.python if first in ("python", "python3") else first, *rest]
        else:
            cmd = [plan.python, plan.script, *plan.arguments]
        with open(plan.log, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(cmd, cwd=plan.workdir, env=dict(plan.environ), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        # who to stop if the supervisor dies: stop_orphan, called from whoever sees it dead
        plan.state.write_text(f"{proc.pid} {start_time(proc.pid) or ''}\n")
        return LocalHandle(proc, plan, grace_seconds=self.grace_seconds)

    def stop_orphan(self, *, state: Path) -> None:
        try:
            pid_text, _, started = state.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            return
        if pid > 0 and alive(pid, started or None):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


class LocalHandle(RunHandle):
    def __init__(self, proc: subprocess.Popen[bytes], plan: RunPlan, *, grace_seconds: float) -> None:
        self.proc = proc
        self.plan = plan
        self.grace_seconds = grace_seconds
        self._code: int | None = None
        self._canceled = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def canceled(self) -> bool:
        return self._canceled

    def wait(self, timeout: float | None = None) -> int | None:
        if self._code is not None:
            return self._code
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self._ended(code)

    def cancel(self) -> None:
        """SIGTERM to the script's whole process group, then SIGKILL after the grace period."""
        if self._code is not None or self.proc.poll() is not None:
            self.wait()
            return
        self._canceled = True
        for sig, wait in ((signal.SIGTERM, self.grace_seconds), (signal.SIGKILL, _KILL_WAIT)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self._ended(self.proc.wait(timeout=wait))
                return
            except subprocess.TimeoutExpired:
                continue
        self._ended(self.proc.wait())

    def alive(self) -> bool:
        return self._code is None and self.proc.poll() is None

    def logs(self, *, follow: bool = False) -> Iterator[str]:
        return read_log(self.plan.log, alive=self.alive, follow=follow, poll=_FOLLOW_POLL)

    def _ended(self, code: int) -> int:
        if self._code is None:
            self._collect()
            self._code = code
        return self._code

    def _collect(self) -> None:
        if self.plan.outputs is None:
            return
        outputs = Path(self.plan.workdir) / "outputs"
        if outputs.is_dir() and not outputs.is_symlink():
            # kiln._tree's rule: links inside ./outputs stay links, links outside are never read
            tree = copy_tree(outputs, self.plan.outputs)
            if tree.skipped:
                with open(self.plan.log, "a", encoding="utf-8") as log:
                    log.write(f"[kiln] outputs: left out {tree.describe_skipped()}\n")
        elif outputs.is_symlink():
            with open(self.plan.log, "a", encoding="utf-8") as log:
                log.write("[kiln] outputs: left out ./outputs itself (a link; outputs are collected from a folder)\n")
