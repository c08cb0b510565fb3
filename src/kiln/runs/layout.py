"""Where a run's files live: ``<workspace>/runs/<id>/``.

    work/                  the working copy of the snapshot (the script's current folder)
    files/logs/output.log  everything the script printed (and Kiln's own [kiln] lines)
    files/outputs/         ./outputs of the script, collected when it ends
    metrics.jsonl          metrics and tags, written by kiln.run inside the script
    kiln-path/kiln/run.py  the in-run module put on the script's path
    supervisor.log         the supervising process's own output (for Kiln's bugs)
    script.pid             the script's pid and start time (to stop it if the supervisor dies)
    cancel                 present once a cancel was asked for
    children/<id>/         a child run started inside the script (``kiln.run``'s ``child_run``): its own
                           metrics.jsonl and files/, recorded in the workspace by the supervisor

A child run's folder is recorded in its definition (``folder``, relative to the workspace): its layout is
``RunLayout(workspace, id, folder)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    workspace: Path
    run_id: str
    #: the run's folder relative to the workspace, when it is not ``runs/<id>`` (a child run made in a script)
    folder: str | None = None

    @property
    def root(self) -> Path:
        return self.workspace / self.folder if self.folder else self.workspace / "runs" / self.run_id

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def logs(self) -> Path:
        return self.files / "logs"

    @property
    def output_log(self) -> Path:
        return self.logs / "output.log"

    @property
    def outputs(self) -> Path:
        return self.files / "outputs"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def script_pid(self) -> Path:
        return self.root / "script.pid"

    @property
    def children(self) -> Path:
        return self.root / "children"

    @property
    def cancel_marker(self) -> Path:
        return self.root / "cancel"
