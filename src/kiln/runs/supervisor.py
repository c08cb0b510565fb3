"""The process that carries one run: ``python -m kiln.runs.supervisor WORKSPACE RUN_ID``.

Started detached by ``submit`` (its own session), so the run outlives the process that submitted
it. It builds the environment if needed (Preparing), lays out the working copy, has the run's compute
target (``kiln.runs.targets``) start the script with the environment's interpreter (Running), watches
for cancel and timeout, and writes the final status with a compare-and-set, so a status, once final,
never changes. Everything the script prints goes to ``files/logs/output.log``, read live by
``kiln run logs -f``. Kiln's settings are read once, in ``main``, from the variables ``submit`` set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from kiln._process import start_time
from kiln.errors import KilnError
from kiln.runs.layout import RunLayout
from kiln.runs.metrics import read_status
from kiln.runs.targets.interface import RunHandle, RunPlan
from kiln.runs.targets.registry import DEFAULT_TARGET, get_target
from kiln.settings import ENV_EXPERIMENT, ENV_RUN_DIR, ENV_RUN_ID, Settings
from kiln.workspace.store.interface import FINAL_STATUSES

__all__ = ["main"]

ACTIVE = frozenset({"Queued", "Preparing", "Running"})
TAIL_LINES = 20
#: how often child runs made by the script (``run.child_run()``) are recorded while it runs
CHILDREN_EVERY = 1.0


class _Canceled(Exception):
    pass


class _Supervisor:
    def __init__(self, workspace_path: str, run_id: str, *, settings: Settings) -> None:
        from kiln.workspace.workspace import Workspace

        self.settings = settings
        self.ws = Workspace(workspace_path, settings=settings)
        self.run_id = run_id
        record = self.ws.store.get_run(run_id)
        if record is None:
            raise SystemExit(f"no run {run_id} in {workspace_path}")
        self.record = record
        self.definition: dict[str, Any] = json.loads(record.definition)
        self.layout = RunLayout(self.ws.path, run_id)
        self.cancel_requested = False
        self.building = False

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
            for warning in self.definition.get("warnings") or []:
                self.say(out, f"warning: {warning}")
            try:
                return self._run(out)
            except _Canceled:
                self._final("Canceled", error="canceled while preparing")
                return 1
            except Exception as e:
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
        lock_hash = self.record.lock_hash
        environ: dict[str, str]
        target = get_target(d.get("target", DEFAULT_TARGET), workspace=self.ws)
        spec: str | None = None
        if target.builds_elsewhere:
            python, environ, lock_hash, spec = self._ship(out)
        elif python and Path(python).exists():
            # runs queued before "virtual_env" was recorded had a python only for Kiln-built environments
            virtual_env = d["virtual_env"] if "virtual_env" in d else str(Path(python).parent.parent)
            environ = _environ(d.get("environment_definition_variables") or {}, virtual_env=virtual_env)
        else:
            env = self.ws.get_environment(str(self.record.environment), str(self.record.environment_version))
            store.update_run(self.run_id, status="Preparing", only_if_status=ACTIVE)
            self.say(out, f"preparing environment {env.name}:{env.version}")
            from kiln.builds.builder import build_environment

            self.building = True
            if self.cancel_requested or self.layout.cancel_marker.exists():
                raise _Canceled()
            result = build_environment(env, self.ws, settings=self.settings,
                                       progress=lambda phase, message: self.say(out, message))
            self.building = False
            python = str(result.python)
            environ = result.environ()
            lock_hash = result.lock_hash
            store.update_run(self.run_id, lock_hash=result.lock_hash, build_key=result.key)
        if self.cancel_requested or self.layout.cancel_marker.exists():
            raise _Canceled()
        plan = self._plan(python, environ, lock_hash=lock_hash, environment_spec=spec)
        if target.name != DEFAULT_TARGET:
            # what the target makes first (a container target: the environment's image) is part of preparing
            store.update_run(self.run_id, status="Preparing", only_if_status=ACTIVE)
            self.building = True
            plan = target.prepare(plan=plan, workspace=self.ws, settings=self.settings,
                                  environment=(str(self.record.environment), str(self.record.environment_version)),
                                  say=lambda line: self.say(out, line))
            self.building = False
            if self.cancel_requested or self.layout.cancel_marker.exists():
                raise _Canceled()
        problem = target.cannot_run(plan)
        if problem is not None:
            raise KilnError(f"compute target {target.name!r}: {problem}")
        program = list(plan.command) if plan.command else [plan.script, *plan.arguments]
        if spec is not None:
            self.say(out, f"running {' '.join(program)} on {target.name}: its node builds lock {str(lock_hash)[:12]}")
        else:
            where = f" in image {plan.image}" if plan.image else ""
            self.say(out, f"running {' '.join(program)} with {plan.python}{where}" +
                     (f" on {target.name}" if target.name != DEFAULT_TARGET else ""))
        handle = target.start(plan=plan)
        store.update_run(self.run_id, status="Running", started_at=time.time(), only_if_status=ACTIVE)
        code, reason = self._wait(handle, d.get("max_run_duration_seconds"))
        asked = read_status(self.layout.metrics)  # the script's own run.fail()
        if self.cancel_requested:
            self._final("Canceled", exit_code=code, error="canceled")
            return 1
        if reason is not None:
            self._final("Failed", exit_code=code, error=reason + self._tail())
            return 1
        if asked is not None and asked[0] == "Failed":
            self._final("Failed", exit_code=code, error=asked[1] or "failed by run.fail()")
            return 1
        if code != 0:
            what = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self._final("Failed", exit_code=code, error=f"the script {what}" + self._tail())
            return code if code > 0 else 1
        self._final("Completed", exit_code=0)
        return 0

    def _ship(self, out: BinaryIO) -> tuple[str, dict[str, str], str | None, str | None]:
        """For a target whose nodes build the environment: its lock (resolved here when it has none yet,
        and then recorded with the version), as ``plan.environment_spec``; nothing is built here."""
        from kiln.builds.builder import lock_environment

        env = self.ws.get_environment(str(self.record.environment), str(self.record.environment_version))
        variables = dict(self.definition.get("environment_definition_variables") or {})
        if env.python.user_managed_dependencies:  # used as it is, on the node as here
            python = env.python.interpreter_path or "python"
            return python, _environ(variables, virtual_env=None), None, None
        self.ws.store.update_run(self.run_id, status="Preparing", only_if_status=ACTIVE)
        self.say(out, f"locking environment {env.name}:{env.version} (the compute target's node builds it)")
        self.building = True
        if self.cancel_requested or self.layout.cancel_marker.exists():
            raise _Canceled()
        interpreter, lock, _previous, resolved = lock_environment(
            env, self.ws, settings=self.settings, progress=lambda phase, message: self.say(out, message))
        self.building = False
        assert env.version is not None
        if resolved:  # a lock, once made, is the version's: the next run (and build) takes the same
            self.ws.store.add_environment_lock(name=env.name, version=int(env.version), identity=env.hash,
                                               python=interpreter.minor, platform=interpreter.platform,
                                               lock_hash=lock.lock_hash, content=lock.to_json())
        self.ws.store.update_run(self.run_id, lock_hash=lock.lock_hash)
        spec = json.dumps({"name": env.name, "definition": env.definition_text(), "lock": lock.to_json(),
                           "lock_hash": lock.lock_hash, "python": interpreter.minor,
                           "platform": interpreter.platform})
        return str(interpreter.path), _environ(variables, virtual_env=None), lock.lock_hash, spec

    def _plan(self, python: str, environ: dict[str, str], *, lock_hash: str | None,
              environment_spec: str | None = None) -> RunPlan:
        """The run as its target gets it: ``environ`` (the built environment's, for this machine) with the
        run's own variables over it."""
        d = self.definition
        work = self._workdir()
        shim = self._shim()
        variables: dict[str, str] = {**(d.get("environment_definition_variables") or {}),
                                     **(d.get("environment_variables") or {})}
        environ.update(d.get("environment_variables") or {})
        ours = {ENV_RUN_ID: self.run_id, ENV_RUN_DIR: str(self.layout.root), ENV_EXPERIMENT: self.record.experiment,
                "PYTHONUNBUFFERED": "1"}
        environ.update(ours, PYTHONPATH=_path_with(shim, environ.get("PYTHONPATH", "")))
        variables.update(ours, PYTHONPATH=_path_with(shim, variables.get("PYTHONPATH", "")))
        return RunPlan(
            run_id=self.run_id, script=d.get("script") or "", arguments=tuple(d.get("arguments", [])),
            command=tuple(d["command"]) if d.get("command") else None, workdir=work,
            python=python, lock_hash=lock_hash, environment_spec=environment_spec, environ=environ,
            variables=variables, kiln_path=shim,
            run_dir=self.layout.root, log=self.layout.output_log,
            outputs=self.layout.outputs if d.get("output_collection", True) else None,
            state=self.layout.script_pid, max_run_duration_seconds=d.get("max_run_duration_seconds"),
            shm_size=d.get("shm_size"))

    def _wait(self, handle: RunHandle, limit: float | None) -> tuple[int, str | None]:
        """The script's exit code (once its outputs are collected), and why Kiln stopped it, if it did."""
        deadline = None if not limit else time.monotonic() + float(limit)
        children_at = time.monotonic() + CHILDREN_EVERY
        while True:
            code = handle.wait(timeout=0.1)
            if code is not None:
                return code, None
            if time.monotonic() > children_at:
                self._children(final=None)
                children_at = time.monotonic() + CHILDREN_EVERY
            if self.cancel_requested or self.layout.cancel_marker.exists():
                self.cancel_requested = True
                return _stopped(handle), None
            if deadline is not None and time.monotonic() > deadline:
                return _stopped(handle), (f"the script ran longer than max_run_duration_seconds ({limit} s) and was "
                                          "stopped")

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
            "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
            "# Azure ML scripts' `from azureml.core import Run`, ported by the import: `from kiln import Run`\n"
            "from kiln.run import Run\n")
        return folder.parent

    def _tail(self) -> str:
        try:
            lines = self.layout.output_log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        lines = [line for line in lines if not line.startswith("[kiln] ")][-TAIL_LINES:]
        return ("\n" + "\n".join(lines)) if lines else ""

    def _children(self, *, final: tuple[str, str | None] | None) -> None:
        from kiln.runs.interactive import record_children

        try:
            record_children(self.ws, self.run_id, self.record.experiment, self.layout.children, final=final)
        except (OSError, KilnError) as e:  # the run itself goes on: its children are a report of it
            with open(self.layout.output_log, "ab") as out:
                self.say(out, f"recording child runs failed: {e}")

    def _final(self, status: str, *, exit_code: int | None = None, error: str | None = None) -> None:
        assert status in FINAL_STATUSES
        record = self.ws.store.get_run(self.run_id)
        final = record.status if record is not None and record.status in FINAL_STATUSES else status
        self._children(final=(final, error))
        self.ws.store.update_run(self.run_id, status=status, ended_at=time.time(), exit_code=exit_code, error=error,
                                 only_if_status=ACTIVE)


def _stopped(handle: RunHandle) -> int:
    handle.cancel()
    code = handle.wait()
    assert code is not None  # a canceled script has ended
    return code


def _path_with(folder: Path, path: str) -> str:
    return os.pathsep.join(p for p in (str(folder), path) if p)


def _environ(variables: dict[str, str], *, virtual_env: str | None) -> dict[str, str]:
    """As ``BuildResult.environ``, from what the run's definition recorded of its build."""
    env = dict(os.environ)
    if virtual_env is not None:
        env["VIRTUAL_ENV"] = virtual_env
        env["PATH"] = f"{Path(virtual_env) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONHOME", None)
    env.update(variables)
    return env


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m kiln.runs.supervisor WORKSPACE RUN_ID\n")
        return 2
    try:
        settings = Settings.from_env()  # the variables submit set: the submitter's settings
    except KilnError as e:
        sys.stderr.write(f"kiln.runs.supervisor: {e}\n")
        return 2
    return _Supervisor(args[0], args[1], settings=settings).run()


if __name__ == "__main__":
    sys.exit(main())
