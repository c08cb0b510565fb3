"""The process that carries one run: ``python -m kiln.runs.supervisor WORKSPACE RUN_ID``.

Started detached by ``submit`` (its own session), so the run outlives the process that submitted
it. It builds the environment if needed (Preparing), lays out the working copy, starts the script
with the environment's interpreter (Running), watches for cancel and timeout, collects ``outputs/``
and writes the final status with a compare-and-set, so a status, once final, never changes.
Everything the script prints goes to ``files/logs/output.log``, read live by ``kiln run logs -f``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from kiln._process import start_time
from kiln.runs.layout import RunLayout
from kiln.settings import ENV_EXPERIMENT, ENV_RUN_DIR, ENV_RUN_ID
from kiln.workspace.store.interface import FINAL_STATUSES

__all__ = ["main"]

ACTIVE = frozenset({"Queued", "Preparing", "Running"})
GRACE_SECONDS = 5.0
TAIL_LINES = 20


class _Canceled(Exception):
    pass


class _Supervisor:
    def __init__(self, workspace_path: str, run_id: str) -> None:
        from kiln.workspace.workspace import Workspace

        self.ws = Workspace(workspace_path)
        self.run_id = run_id
        record = self.ws.store.get_run(run_id)
        if record is None:
            raise SystemExit(f"no run {run_id} in {workspace_path}")
        self.record = record
        self.definition: dict[str, Any] = json.loads(record.definition)
        self.layout = RunLayout(self.ws.path, run_id)
        self.cancel_requested = False
        self.building = False
        self.proc: subprocess.Popen[bytes] | None = None

    def say(self, out: BinaryIO, message: str) -> None:
        out.write(f"[kiln] {message}\n".encode())
        out.flush()

    def on_signal(self, signum: int, frame: Any) -> None:
        self.cancel_requested = True
        if self.building:
            raise _Canceled()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        store = self.ws.store
        store.update_run(self.run_id, pid=os.getpid(), pid_start=start_time(os.getpid()))
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        with open(self.layout.output_log, "ab") as out:
            try:
                return self._run(out)
            except _Canceled:
                self._final("Canceled", error="canceled while preparing")
                return 1
            except Exception as e:
                from kiln.errors import KilnError

                message = str(e) if isinstance(e, KilnError) else f"{type(e).__name__}: {e}"
                self.say(out, f"failed: {message}")
                self._final("Failed", error=message)
                return 1

    def _run(self, out: BinaryIO) -> int:
        store = self.ws.store
        d = self.definition
        if self.layout.cancel_marker.exists():
            raise _Canceled()
        python = d.get("python")
        environ: dict[str, str]
        if python and Path(python).exists():
            environ = _environ(Path(python), d.get("environment_definition_variables") or {},
                               user_managed=d.get("user_managed", False))
        else:
            env = self.ws.get_environment(str(self.record.environment), str(self.record.environment_version))
            store.update_run(self.run_id, status="Preparing", only_if_status=ACTIVE)
            self.say(out, f"preparing environment {env.name}:{env.version}")
            from kiln.builds.builder import build_environment
            from kiln.settings import Settings

            self.building = True
            if self.cancel_requested or self.layout.cancel_marker.exists():
                raise _Canceled()
            result = build_environment(env, self.ws, settings=Settings.from_env(),
                                       progress=lambda phase, message: self.say(out, message))
            self.building = False
            python = str(result.python)
            environ = result.environ()
            store.update_run(self.run_id, lock_hash=result.lock_hash, build_key=result.key)
        if self.cancel_requested or self.layout.cancel_marker.exists():
            raise _Canceled()
        work = self._workdir()
        environ.update(d.get("environment_variables") or {})
        environ.update({
            ENV_RUN_ID: self.run_id, ENV_RUN_DIR: str(self.layout.root),
            ENV_EXPERIMENT: self.record.experiment, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(self._shim()), environ.get("PYTHONPATH", "")) if p),
        })
        cmd = [python, d["script"], *d.get("arguments", [])]
        self.say(out, f"running {' '.join(cmd[1:])} with {python}")
        self.proc = subprocess.Popen(cmd, cwd=work, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        # who to stop if this process dies: Run marks the run Failed and ends the script's process group
        self.layout.script_pid.write_text(f"{self.proc.pid} {start_time(self.proc.pid) or ''}\n")
        store.update_run(self.run_id, status="Running", started_at=time.time(), only_if_status=ACTIVE)
        code, reason = self._wait(d.get("max_run_duration_seconds"))
        if d.get("output_collection", True):
            self._collect(work)
        if self.cancel_requested:
            self._final("Canceled", exit_code=code, error="canceled")
            return 1
        if reason is not None:
            self._final("Failed", exit_code=code, error=reason + self._tail())
            return 1
        if code != 0:
            what = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self._final("Failed", exit_code=code, error=f"the script {what}" + self._tail())
            return code if code > 0 else 1
        self._final("Completed", exit_code=0)
        return 0

    def _wait(self, limit: float | None) -> tuple[int, str | None]:
        assert self.proc is not None
        deadline = None if not limit else time.monotonic() + float(limit)
        while True:
            try:
                return self.proc.wait(timeout=0.1), None
            except subprocess.TimeoutExpired:
                pass
            if self.cancel_requested or self.layout.cancel_marker.exists():
                self.cancel_requested = True
                return self._stop(), None
            if deadline is not None and time.monotonic() > deadline:
                return self._stop(), f"the script ran longer than max_run_duration_seconds ({limit} s) and was stopped"

    def _stop(self) -> int:
        """SIGTERM to the script's whole process group, then SIGKILL after a grace period."""
        assert self.proc is not None
        for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 30.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                return self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.wait()

    def _workdir(self) -> Path:
        snapshot = self.definition.get("snapshot")
        if not snapshot:
            return Path(self.definition["source"])
        work = self.layout.work
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        self.ws.blobs.materialize(snapshot, work)
        return work

    def _shim(self) -> Path:
        """A folder holding ``kiln/run.py`` (stdlib only) for the script's ``from kiln.run import Run``."""
        import kiln.run as inscript

        folder = self.layout.root / "kiln-path" / "kiln"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(inscript.__file__, folder / "run.py")
        (folder / "__init__.py").write_text(
            "# Kiln's in-run module; an installed Kiln package stays reachable\n"
            "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
        return folder.parent

    def _collect(self, work: Path) -> None:
        outputs = work / "outputs"
        if outputs.is_dir():
            shutil.copytree(outputs, self.layout.outputs, dirs_exist_ok=True, symlinks=False)

    def _tail(self) -> str:
        try:
            lines = self.layout.output_log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        lines = [line for line in lines if not line.startswith("[kiln] ")][-TAIL_LINES:]
        return ("\n" + "\n".join(lines)) if lines else ""

    def _final(self, status: str, *, exit_code: int | None = None, error: str | None = None) -> None:
        assert status in FINAL_STATUSES
        self.ws.store.update_run(self.run_id, status=status, ended_at=time.time(), exit_code=exit_code, error=error,
                                 only_if_status=ACTIVE)


def _environ(python: Path, variables: dict[str, str], *, user_managed: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not user_managed:
        env["VIRTUAL_ENV"] = str(python.parent.parent)
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONHOME", None)
    env.update(variables)
    return env


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m kiln.runs.supervisor WORKSPACE RUN_ID\n")
        return 2
    return _Supervisor(args[0], args[1]).run()


if __name__ == "__main__":
    sys.exit(main())
