"""``Run``: a submitted run, watched from any process, and ``Experiment``, a named group of runs in a
workspace (Azure ML SDK v1's names). They live together because each makes the other (``Run.get`` gives
a run its experiment; ``Experiment.submit`` gives runs): apart, their modules would import each other.

Everything is read from the workspace (the run record and the run's folder), so a run started in
one shell is watched from another. Reading the status of an unfinished run also checks that its
supervising process is alive: a run whose process died is marked Failed, never "Running" forever.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._process import alive
from kiln._tree import copy_file_no_follow
from kiln.environment.names import check_name
from kiln.errors import KilnError, NotFoundError
from kiln.runs.layout import RunLayout
from kiln.workspace.store.interface import FINAL_STATUSES

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.runs.config import ScriptRunConfig
    from kiln.settings import Settings
    from kiln.workspace.store import RunRecord
    from kiln.workspace.workspace import Workspace

__all__ = ["Experiment", "Run", "RunFailedError"]

ACTIVE = frozenset({"Queued", "Preparing", "Running"})
#: a Queued run whose supervisor never recorded itself after this long is taken as dead
_START_GRACE = 30.0


class RunFailedError(KilnError):
    """``wait_for_completion`` on a run that failed: the message carries its error and last lines."""

    def __init__(self, run: Run, details: dict[str, Any]) -> None:
        self.run = run
        self.details = details
        error = details.get("error") or {}
        super().__init__(f"run {run.id} {details['status'].lower()}: {error.get('message', 'no details')}")


class Experiment:
    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = check_name(name, "experiment name")

    def submit(self, config: ScriptRunConfig, tags: dict[str, str] | None = None, *,
               settings: Settings | None = None) -> Run:
        """Start ``config`` as a new run and return it at once (``run.wait_for_completion()`` to wait)."""
        from kiln.runs.submit import submit_run

        run_id = submit_run(self.workspace, self.name, config, settings=settings or self.workspace.settings, tags=tags)
        return Run(self, run_id)

    def get_runs(self) -> Iterator[Run]:
        """The experiment's runs, newest first."""
        yield from Run.list(self)

    @staticmethod
    def list(workspace: Workspace) -> builtins.list[Experiment]:
        names = sorted({r.experiment for r in workspace.store.list_runs()})
        return [Experiment(workspace, n) for n in names]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"


class Run:
    """A run of an experiment. Get one from ``Experiment.submit``, ``Run.get(ws, id)`` or ``Run.list``."""

    def __init__(self, experiment: Experiment, run_id: str) -> None:
        self.experiment = experiment
        self.id = run_id
        self._layout = RunLayout(experiment.workspace.path, run_id)
        if self._record() is None:
            raise NotFoundError(f"no run {run_id!r} in workspace {experiment.workspace.name!r}")

    @staticmethod
    def get(workspace: Workspace, run_id: str) -> Run:
        record = workspace.store.get_run(run_id)
        if record is None:
            raise NotFoundError(f"no run {run_id!r} in workspace {workspace.name!r}")
        return Run(Experiment(workspace, record.experiment), run_id)

    @staticmethod
    def list(experiment: Experiment, status: str | None = None) -> builtins.list[Run]:
        records = experiment.workspace.store.list_runs(experiment=experiment.name)
        return [Run(experiment, r.id) for r in records if status is None or r.status == status]

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> Any:
        """Inside a script: the current run (``kiln.run.Run``), as in Azure ML."""
        from kiln.run import Run as InScriptRun

        return InScriptRun.get_context(allow_offline=allow_offline)

    @property
    def workspace(self) -> Workspace:
        return self.experiment.workspace

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, experiment={self.experiment.name!r}, status={self.status!r})"

    # ---- status --------------------------------------------------------------------------------

    def _record(self) -> RunRecord | None:
        return self.workspace.store.get_run(self.id)

    def _checked(self) -> RunRecord:
        record = self._record()
        if record is None:
            raise NotFoundError(f"run {self.id!r} is gone from workspace {self.workspace.name!r}")
        if record.status in ACTIVE and not self._alive(record):
            message = (f"Kiln's process for this run (pid {record.pid}) is gone: it was killed or the machine "
                       "restarted")
            if self.workspace.store.update_run(self.id, status="Failed", ended_at=time.time(), error=message,
                                               only_if_status=ACTIVE):
                self._stop_orphan(record)
            record = self._record()
            assert record is not None
        return record

    def _stop_orphan(self, record: RunRecord) -> None:
        """The script of a run whose supervisor died may still run: its target ends it."""
        from kiln.runs.targets.registry import DEFAULT_TARGET, get_target

        try:
            target = get_target(json.loads(record.definition).get("target", DEFAULT_TARGET))
        except (KilnError, ValueError, AttributeError):
            return  # a record Kiln can't read started nothing it could stop
        target.stop_orphan(state=self._layout.script_pid)

    @staticmethod
    def _alive(record: RunRecord) -> bool:
        if record.pid is None:
            return time.time() - record.created_at < _START_GRACE
        return alive(record.pid, record.pid_start)

    @property
    def status(self) -> str:
        return self._checked().status

    def get_status(self) -> str:
        return self.status

    def get_details(self) -> dict[str, Any]:
        r = self._checked()
        d = json.loads(r.definition)
        details: dict[str, Any] = {
            "runId": r.id, "experiment": r.experiment, "status": r.status, "target": d.get("target", "local"),
            "createdTimeUtc": _iso(r.created_at), "startTimeUtc": _iso(r.started_at), "endTimeUtc": _iso(r.ended_at),
            "runDefinition": {"script": d["script"], "arguments": d.get("arguments", []), "source": d["source"],
                              "snapshotId": d.get("snapshot"),
                              "environment": {"name": r.environment, "version": str(r.environment_version)},
                              "lockHash": r.lock_hash, "buildKey": r.build_key,
                              "maxRunDurationSeconds": d.get("max_run_duration_seconds")},
            "tags": self.get_tags(), "exitCode": r.exit_code,
            "logFiles": {"logs/output.log": str(self._layout.output_log)},
        }
        if r.error:
            details["error"] = {"message": r.error, "exitCode": r.exit_code}
        return details

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True, *, timeout: float | None = None,
                            poll: float = 0.2) -> dict[str, Any]:
        """Wait for the run to end (streaming its output with ``show_output``); raise if it failed."""
        del wait_post_processing
        deadline = None if timeout is None else time.monotonic() + timeout
        offset = 0
        delay = 0.01
        started = time.monotonic()
        while True:
            status = self.status
            if show_output:
                offset = self._stream(offset, sys.stdout)
            if status in FINAL_STATUSES:
                if show_output:
                    self._stream(offset, sys.stdout, final=True)
                break
            if deadline is not None and time.monotonic() > deadline:
                raise KilnError(f"run {self.id} is still {status} after {timeout} s")
            time.sleep(delay)
            # every 20 ms for the first seconds (a status read costs ~0.1 ms): short runs end in a fraction
            # of a second, and a coarser poll would be most of `kiln run submit`'s overhead; then back off
            delay = 0.02 if time.monotonic() - started < 3 else min(poll, delay * 1.5)
        details = self.get_details()
        if raise_on_error and details["status"] == "Failed":
            raise RunFailedError(self, details)
        return details

    def _stream(self, offset: int, out: Any, final: bool = False) -> int:
        try:
            with open(self._layout.output_log, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return offset
        end = len(data) if final else data.rfind(b"\n") + 1  # whole lines while it runs; the rest at the end
        if end:
            out.write(data[:end].decode("utf-8", errors="replace"))
            out.flush()
        return offset + end

    def get_output(self) -> str:
        try:
            return self._layout.output_log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def cancel(self) -> None:
        """Stop the run: its script gets SIGTERM (then SIGKILL), and the run ends Canceled."""
        import signal

        record = self._checked()
        if record.status in FINAL_STATUSES:
            return
        self._layout.root.mkdir(parents=True, exist_ok=True)
        self._layout.cancel_marker.touch()
        # a Queued run's supervisor may not have its signal handler yet: it reads the marker instead
        if record.status != "Queued" and record.pid is not None and alive(record.pid, record.pid_start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)

    # ---- metrics, tags, files --------------------------------------------------------------------

    def get_metrics(self, name: str | None = None) -> dict[str, Any]:
        from kiln.runs.metrics import read_metrics

        metrics = read_metrics(self._layout.metrics)
        return metrics if name is None else {k: v for k, v in metrics.items() if k == name}

    def get_tags(self) -> dict[str, Any]:
        from kiln.runs.metrics import read_tags

        record = self._record()
        tags = json.loads(record.tags) if record is not None else {}
        tags.update(read_tags(self._layout.metrics))
        return tags

    def tag(self, key: str, value: str | None = None) -> None:
        record = self._checked()
        tags = json.loads(record.tags)
        tags[key] = value
        self.workspace.store.update_run(self.id, tags=json.dumps(tags, sort_keys=True))

    def get_file_names(self) -> builtins.list[str]:
        root = self._layout.files
        if not root.is_dir():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def download_file(self, name: str, output_file_path: str | os.PathLike[str] | None = None) -> str:
        source = self._file(name)
        target = Path(output_file_path) if output_file_path is not None else Path(Path(name).name)
        if target.is_dir():
            target = target / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_file_no_follow(source, target)  # a link already at the target is replaced, never written through
        return str(target)

    def download_files(self, prefix: str | None = None, output_directory: str | os.PathLike[str] | None = None
                       ) -> builtins.list[str]:
        out = []
        for name in self.get_file_names():
            if prefix is None or name.startswith(prefix):
                out.append(self.download_file(name, Path(output_directory or ".") / name))
        return out

    def _file(self, name: str) -> Path:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise NotFoundError(f"{name!r} is not a file name of run {self.id}")
        path = self._layout.files / rel
        if not path.is_file():
            names = self.get_file_names()
            raise NotFoundError(f"run {self.id} has no file {name!r} (files: {', '.join(names) or 'none'})")
        return path

    # ---- environment and models ------------------------------------------------------------------

    def get_environment(self) -> Environment:
        """The exact environment version this run used (its lock: ``get_details()['runDefinition']['lockHash']``)."""
        record = self._checked()
        return self.workspace.get_environment(str(record.environment), str(record.environment_version))

    def register_model(self, model_name: str, model_path: str, tags: dict[str, str] | None = None,
                       description: str | None = None, **kwargs: Any) -> Any:
        """Register a file or folder of this run (``outputs/model.pkl``) as a model version."""
        register = getattr(self.workspace, "register_model_file", None)
        if register is None:
            raise KilnError(f"{self.workspace!r} can't register models: open it as a kiln.Workspace "
                            "(from kiln import Workspace)")
        return register(self._path_of(model_path), model_name, tags=tags, description=description,
                        run_id=self.id, **kwargs)

    def _path_of(self, name: str) -> Path:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise NotFoundError(f"{name!r} is not a path inside run {self.id}'s files")
        path = self._layout.files / rel
        if not path.exists():
            names = self.get_file_names()
            raise NotFoundError(f"run {self.id} has no file or folder {name!r} (files: {', '.join(names) or 'none'})")
        return path


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
