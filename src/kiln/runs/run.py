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
from kiln.runs.history import RunHistory
from kiln.runs.layout import RunLayout
from kiln.workspace.store.interface import FINAL_STATUSES

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.runs.config import ScriptRunConfig
    from kiln.runs.experiments import ExperimentInfo
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
    """A named group of runs. Naming one makes it (as in Azure ML): ``Experiment.list`` shows it from then on."""

    def __init__(self, workspace: Workspace, name: str, _create_in_cloud: bool = True, **kwargs: Any) -> None:
        from kiln.runs.experiments import read_info

        self.workspace = workspace
        self.name = check_name(name, "experiment name")
        info = read_info(workspace.path, self.name, create=_create_in_cloud)
        self.id = info.id if info is not None else None

    def _info(self) -> ExperimentInfo:
        from kiln.runs.experiments import read_info

        info = read_info(self.workspace.path, self.name)
        assert info is not None  # made when missing
        return info

    def submit(self, config: ScriptRunConfig, tags: dict[str, str] | None = None, *,
               settings: Settings | None = None) -> Run:
        """Start ``config`` as a new run and return it at once (``run.wait_for_completion()`` to wait)."""
        from kiln.runs.submit import submit_run

        run_id = submit_run(self.workspace, self.name, config, settings=settings or self.workspace.settings, tags=tags)
        return Run(self, run_id)

    def start_logging(self, *args: Any, snapshot_directory: str | os.PathLike[str] | None = None,
                      outputs: str | os.PathLike[str] | bool | None = None, display_name: str | None = None,
                      **kwargs: Any) -> Run:
        """A run of this process (a notebook's), Running until ``complete()`` or ``fail()``; as a ``with`` block,
        completed at its end, or failed on an exception. ``./outputs`` (or ``outputs``; False: none) is
        collected when it ends; ``snapshot_directory`` is stored as its snapshot."""
        from kiln.runs.interactive import start_run

        run = Run(self, start_run(self.workspace, self.name, snapshot_directory=snapshot_directory, outputs=outputs))
        if display_name is not None:
            run.display_name = display_name
        return run

    def get_runs(self, type: str | None = None, tags: str | dict[str, Any] | None = None,
                 properties: str | dict[str, Any] | None = None, include_children: bool = False) -> Iterator[Run]:
        """The experiment's runs, newest first: of ``type`` (``"azureml.scriptrun"``, ``"interactive"``), with
        the ``tags`` / ``properties`` given (a name: has it; a dict: has those values); child runs too with
        ``include_children``."""
        for run in Run.list(self):
            if not include_children and run.parent_id is not None:
                continue
            if type is not None and run.type != type:
                continue
            if not _matches(run.get_tags(), tags) or not _matches(run.get_properties(), properties):
                continue
            yield run

    @property
    def tags(self) -> dict[str, Any]:
        return dict(self._info().tags)

    def tag(self, key: str, value: str | None = None) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        from kiln.runs.experiments import write_info

        info = self._info()
        info.tags.update({str(k): None if v is None else str(v) for k, v in tags.items()})
        write_info(self.workspace.path, self.name, info)

    def remove_tags(self, tags: builtins.list[str]) -> None:
        from kiln.runs.experiments import write_info

        info = self._info()
        for key in tags:
            info.tags.pop(key, None)
        write_info(self.workspace.path, self.name, info)

    @property
    def archived_time(self) -> str | None:
        return _iso(self._info().archived_at)

    def archive(self) -> None:
        """Hide the experiment from ``Experiment.list`` (``view_type="All"`` or ``"ArchivedOnly"`` show it);
        its runs stay. ``reactivate()`` undoes it."""
        from kiln.runs.experiments import write_info

        info = self._info()
        info.archived_at = info.archived_at or time.time()
        write_info(self.workspace.path, self.name, info)

    def reactivate(self) -> None:
        from kiln.runs.experiments import write_info

        info = self._info()
        info.archived_at = None
        write_info(self.workspace.path, self.name, info)

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None, view_type: str = "ActiveOnly",
             tags: str | dict[str, Any] | None = None) -> builtins.list[Experiment]:
        """The workspace's experiments by name: active ones (``view_type`` ``"ArchivedOnly"``, ``"All"``)."""
        from kiln.runs.experiments import experiment_names, read_info

        if view_type not in ("ActiveOnly", "ArchivedOnly", "All"):
            raise KilnError(f"Experiment.list: view_type {view_type!r} is not ActiveOnly, ArchivedOnly or All")
        names = experiment_names(workspace.path) | {r.experiment for r in workspace.store.list_runs()}
        out = []
        for name in sorted(names):
            if experiment_name is not None and name != experiment_name:
                continue
            info = read_info(workspace.path, name)
            assert info is not None
            archived = info.archived_at is not None
            if (view_type == "ActiveOnly" and archived) or (view_type == "ArchivedOnly" and not archived):
                continue
            if _matches(info.tags, tags):
                out.append(Experiment(workspace, name))
        return out

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"


def _matches(values: dict[str, Any], wanted: str | dict[str, Any] | None) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return wanted in values
    return all(k in values and (v is None or str(values[k]) == str(v)) for k, v in wanted.items())


class Run(RunHistory):
    """A run of an experiment. Get one from ``Experiment.submit``, ``Experiment.start_logging``,
    ``Run(experiment, id)``, ``Run.get(ws, id)`` or ``Run.list``."""

    def __init__(self, experiment: Experiment, run_id: str, **kwargs: Any) -> None:
        self.experiment = experiment
        self.id = run_id
        record = experiment.workspace.store.get_run(run_id)
        if record is None:
            raise NotFoundError(f"no run {run_id!r} in workspace {experiment.workspace.name!r}")
        self._definition: dict[str, Any] = json.loads(record.definition)
        self._layout = RunLayout(experiment.workspace.path, run_id, self._definition.get("folder"))

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

    @property
    def type(self) -> str:
        """``"azureml.scriptrun"`` (submitted) or ``"interactive"`` (``start_logging``, child runs)."""
        from kiln.runs.interactive import SCRIPT_RUN

        return str(self._definition.get("type", SCRIPT_RUN))

    @property
    def _interactive(self) -> bool:
        return self._definition.get("type") == "interactive"

    @property
    def parent_id(self) -> str | None:
        return self._definition.get("parent")

    @property
    def parent(self) -> Run | None:
        return None if self.parent_id is None else Run(self.experiment, self.parent_id)

    @property
    def name(self) -> str | None:
        return self._definition.get("name")

    def _default_display_name(self) -> str:
        return self.name or self.id

    @property
    def number(self) -> int:
        """The run's place in its experiment, counting from 1 in the order runs were made."""
        records = self.workspace.store.list_runs(experiment=self.experiment.name)
        ids = [r.id for r in reversed(records)]  # oldest first
        return ids.index(self.id) + 1

    @property
    def tags(self) -> dict[str, Any]:
        return self.get_tags()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: builtins.type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.complete()
        else:
            self.fail(error_details=f"{exc_type.__name__}: {exc}")

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
            if self._interactive:
                message = (f"the process that started this run (pid {record.pid}) ended without complete() or "
                           "fail()")
            else:
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
            target = get_target(json.loads(record.definition).get("target", DEFAULT_TARGET), workspace=self.workspace)
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
            "runDefinition": {"script": d.get("script"), "command": d.get("command"),
                              "arguments": d.get("arguments", []), "source": d.get("source"),
                              "snapshotId": d.get("snapshot"),
                              "environment": None if r.environment is None else
                              {"name": r.environment, "version": str(r.environment_version)},
                              "lockHash": r.lock_hash, "buildKey": r.build_key,
                              "maxRunDurationSeconds": d.get("max_run_duration_seconds")},
            "tags": self.get_tags(), "properties": self.get_properties(), "exitCode": r.exit_code,
            "runType": self.type, "displayName": self.display_name, "parentRunId": d.get("parent"),
            "logFiles": {name: str(path) for name, path in self._log_files().items()},
        }
        if r.error:
            details["error"] = {"message": r.error, "exitCode": r.exit_code}
        return details

    def get_details_with_logs(self) -> dict[str, Any]:
        """``get_details()`` with the text of each log file in ``logFiles`` (instead of its path)."""
        details = self.get_details()
        details["logFiles"] = {name: path.read_text(encoding="utf-8", errors="replace")
                               for name, path in self._log_files().items()}
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
        record = self._checked()
        if record.status in FINAL_STATUSES:
            return
        if self._interactive:
            self._end("Canceled", error="canceled")
            return
        self._stop(record)

    def complete(self, _set_status: bool = True) -> None:
        """Mark the run Completed (a run of ``start_logging``: its outputs are collected first). A submitted run
        still running is stopped: it ends Completed. Once a run has ended its status never changes."""
        if _set_status:
            self._end("Completed")

    def fail(self, error_details: Any = None, error_code: str | None = None, _set_status: bool = True) -> None:
        """Mark the run Failed, with ``error_details`` as its error; a submitted run still running is stopped."""
        if _set_status:
            self._end("Failed", error="failed by run.fail()" if error_details is None else str(error_details)[:2000])

    def _end(self, status: str, *, error: str | None = None) -> bool:
        record = self._checked()
        if record.status in FINAL_STATUSES:
            return False
        outputs = self._definition.get("outputs_dir")
        if self._interactive and outputs and Path(outputs).is_dir() and not Path(outputs).is_symlink():
            from kiln._tree import copy_tree

            copy_tree(Path(outputs), self._layout.outputs)
        changed = self.workspace.store.update_run(self.id, status=status, ended_at=time.time(), error=error,
                                                  only_if_status=ACTIVE)
        if changed and self._interactive:  # its metrics are all there: a big file's index is written for readers
            from kiln.runs.metrics import index_metrics

            index_metrics(self._layout.metrics)
        if changed and not self._interactive:
            self._stop(record)  # its final status is written: the supervisor's own can't replace it
        return changed

    def _stop(self, record: RunRecord) -> None:
        import signal

        self._layout.root.mkdir(parents=True, exist_ok=True)
        self._layout.cancel_marker.touch()
        # a Queued run's supervisor may not have its signal handler yet: it reads the marker instead
        if record.status != "Queued" and record.pid is not None and alive(record.pid, record.pid_start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)

    # ---- child runs ------------------------------------------------------------------------------

    def child_run(self, name: str | None = None, run_id: str | None = None, outputs: str | None = None) -> Run:
        """A new run under this one, Running until ``complete()`` / ``fail()`` (or the end of a ``with`` block)."""
        from kiln.runs.interactive import start_run

        if run_id is not None:
            check_name(run_id, "run_id")
        return Run(self.experiment, start_run(self.workspace, self.experiment.name, parent=self.id, name=name,
                                              run_id=run_id, outputs=outputs or False))

    def create_children(self, count: int | None = None, tag_key: str | None = None,
                        tag_values: builtins.list[str] | None = None) -> builtins.list[Run]:
        """``count`` child runs, or one per value of ``tag_values``, tagged ``tag_key=value``."""
        if tag_values is None:
            return [self.child_run() for _ in range(int(count or 0))]
        children = []
        for value in tag_values:
            child = self.child_run()
            if tag_key is not None:
                child.tag(tag_key, value)
            children.append(child)
        return children

    def get_children(self, recursive: bool = False, tags: str | dict[str, Any] | None = None,
                     properties: str | dict[str, Any] | None = None, type: str | None = None,
                     status: str | None = None) -> Iterator[Run]:
        """The runs made under this one (oldest first); their children too with ``recursive``."""
        records = [r for r in reversed(self.workspace.store.list_runs(experiment=self.experiment.name))]
        children: dict[str, builtins.list[str]] = {}
        for r in records:
            parent = json.loads(r.definition).get("parent")
            if parent:
                children.setdefault(parent, []).append(r.id)
        pending = builtins.list(children.get(self.id, []))
        while pending:
            run = Run(self.experiment, pending.pop(0))
            if recursive:
                pending.extend(children.get(run.id, []))
            if (type is None or run.type == type) and (status is None or run.status == status) \
                    and _matches(run.get_tags(), tags) and _matches(run.get_properties(), properties):
                yield run

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

    def restore_snapshot(self, snapshot_id: str | None = None, path: str | os.PathLike[str] | None = None) -> str:
        """The run's snapshot (its source folder as it was submitted) as a ZIP file in ``path`` (default: the
        current folder); returns the ZIP's path."""
        import shutil
        import tempfile

        snapshot = snapshot_id or self._definition.get("snapshot")
        if not snapshot:
            raise NotFoundError(f"run {self.id} has no snapshot (it ran with snapshot_project=False, or "
                                "start_logging() without snapshot_directory)")
        folder = Path(path) if path is not None else Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="kiln-snapshot-") as tmp:
            self.workspace.blobs.materialize(snapshot, Path(tmp) / "snapshot")
            archive = shutil.make_archive(str(folder / f"{self.id}_snapshot"), "zip", Path(tmp) / "snapshot")
        return archive

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
