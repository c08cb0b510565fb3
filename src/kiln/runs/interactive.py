"""Runs without a script of Kiln's: ``Experiment.start_logging()`` (a notebook's run) and child runs.

Such a run is recorded Running at once; the process that made it is its supervising process (its pid in
the record), so a run left open by a notebook that ended is seen as Failed, never Running forever.
``complete()`` / ``fail()`` end it, collecting its ``outputs`` folder (``./outputs`` by default) first.

Child runs made inside a script (``kiln.run``'s ``child_run``) are folders under the run's ``children/``:
``record_children`` puts them in the workspace, from the run's supervisor.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._process import start_time
from kiln.runs.layout import RunLayout
from kiln.runs.metrics import read_status

if TYPE_CHECKING:
    from kiln.workspace.workspace import Workspace

__all__ = ["INTERACTIVE", "SCRIPT_RUN", "record_children", "start_run"]

#: run types, as ``get_runs(type=...)`` filters them
SCRIPT_RUN = "azureml.scriptrun"
INTERACTIVE = "interactive"
ACTIVE = frozenset({"Queued", "Preparing", "Running"})


def start_run(workspace: Workspace, experiment: str, *, parent: str | None = None, name: str | None = None,
              run_id: str | None = None, snapshot_directory: str | os.PathLike[str] | None = None,
              outputs: str | os.PathLike[str] | bool | None = None) -> str:
    """Record a new Running run of this process; return its id."""
    from kiln.runs.submit import new_run_id
    from kiln.workspace.store import RunRecord

    snapshot = None
    if snapshot_directory is not None:
        from kiln.workspace.snapshot import take_snapshot

        snapshot = take_snapshot(Path(snapshot_directory).expanduser().resolve(), workspace.blobs)
    if outputs is False:
        outputs_dir = None
    else:
        outputs_dir = str(Path("outputs" if outputs in (None, True) else str(outputs)).expanduser().resolve())
    if run_id is None:
        run_id = f"{parent}_{uuid.uuid4().hex[:8]}" if parent else new_run_id(experiment)
    definition: dict[str, Any] = {
        "type": INTERACTIVE, "script": None, "arguments": [], "source": str(Path.cwd()),
        "snapshot": None if snapshot is None else snapshot.id, "parent": parent, "name": name,
        "outputs_dir": outputs_dir, "output_collection": outputs_dir is not None,
    }
    now = time.time()
    RunLayout(workspace.path, run_id).logs.mkdir(parents=True)
    pid = os.getpid()
    workspace.store.create_run(RunRecord(
        id=run_id, experiment=experiment, status="Running", created_at=now, started_at=now,
        definition=json.dumps(definition), pid=pid, pid_start=start_time(pid)))
    return run_id


def record_children(workspace: Workspace, parent: str, experiment: str, folder: Path, *,
                    final: tuple[str, str | None] | None = None) -> None:
    """Record the child runs a script made under ``folder`` (``<run>/children``), and their children.

    A child is recorded Running, then with the status its script gave it (``complete()``, ``fail()``).
    With ``final`` (the parent's end), a child its script left Running ends with the parent's status.
    """
    if not folder.is_dir():
        return
    store = workspace.store
    for child_dir in sorted(folder.iterdir()):
        try:
            info = json.loads((child_dir / "child.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being made right now, or not a child run's folder
        child_id = child_dir.name
        record = store.get_run(child_id)
        if record is None:
            from kiln.workspace.store import RunRecord

            definition = {"type": INTERACTIVE, "script": None, "arguments": [], "parent": parent,
                          "name": info.get("name"), "source": None, "snapshot": None,
                          "folder": child_dir.relative_to(workspace.path).as_posix()}
            created = float(info.get("created") or time.time())
            parent_record = store.get_run(parent)
            store.create_run(RunRecord(
                id=child_id, experiment=experiment, status="Running", created_at=created, started_at=created,
                definition=json.dumps(definition), pid=None if parent_record is None else parent_record.pid,
                pid_start=None if parent_record is None else parent_record.pid_start))
        asked = read_status(child_dir / "metrics.jsonl")
        if asked is not None and asked[0] in ("Completed", "Failed"):
            store.update_run(child_id, status=asked[0], ended_at=time.time(), error=asked[1], only_if_status=ACTIVE)
        elif final is not None:
            error = None if final[0] == "Completed" else f"its parent run {parent} ended {final[0]}"
            store.update_run(child_id, status=final[0], ended_at=time.time(), error=error, only_if_status=ACTIVE)
        record_children(workspace, child_id, experiment, child_dir / "children", final=final)
