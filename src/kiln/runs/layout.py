"""Where a run's files live: ``<workspace>/runs/<id>/``.

    work/                  the working copy of the snapshot (the script's current folder)
    files/logs/output.log  everything the script printed (and Kiln's own [kiln] lines)
    files/outputs/         ./outputs of the script, collected when it ends
    metrics.jsonl          metrics and tags, written by kiln.run inside the script
    kiln-path/kiln/run.py  the in-run module put on the script's path
    supervisor.log         the supervising process's own output (for Kiln's bugs)
    script.pid             the script's pid and start time (to stop it if the supervisor dies)
    cancel                 present once a cancel was asked for
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    workspace: Path
    run_id: str

    @property
    def root(self) -> Path:
        return self.workspace / "runs" / self.run_id

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
    def cancel_marker(self) -> Path:
        return self.root / "cancel"
