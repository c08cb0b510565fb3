"""``kiln run submit``'s work: a hot path (aim: at most 0.25 s over the bare interpreter), so nothing heavy
is imported here (no rich)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.cli.output import Out

if TYPE_CHECKING:
    from kiln.settings import Settings

__all__ = ["exit_code", "run_submit"]

DEFAULT_EXPERIMENT = "default"


def exit_code(details: dict[str, Any]) -> int:
    """0 when completed; the script's own code when it failed with one; 130 when canceled; else 1."""
    if details["status"] == "Completed":
        return 0
    code = details.get("exitCode")
    if details["status"] == "Canceled":
        return 130
    return code if isinstance(code, int) and 0 < code < 256 else 1


def run_submit(settings: Settings, *, json_mode: bool, script: str, args: list[str], env: str | None,
               source_dir: Path, experiment: str, detach: bool, no_snapshot: bool, timeout: float | None,
               docker: bool = False, compute_target: str = "local") -> int:
    from kiln.cli.render import parse_ref
    from kiln.runs.config import DockerConfiguration, HistoryConfiguration, RunConfiguration, ScriptRunConfig
    from kiln.runs.experiment import Experiment
    from kiln.sdk.workspace import Workspace

    out = Out(json_mode=json_mode)
    ws = Workspace.from_config(settings=settings)
    environment = None
    if env is not None:
        name, version = parse_ref(env)
        environment = ws.get_environment(name, version)
    history = HistoryConfiguration(output_collection=not no_snapshot, snapshot_project=not no_snapshot)
    run_config = RunConfiguration(history=history, docker=DockerConfiguration(use_docker=docker))
    config = ScriptRunConfig(source_directory=source_dir, script=script, arguments=args, run_config=run_config,
                             environment=environment, max_run_duration_seconds=timeout, compute_target=compute_target)
    run = Experiment(ws, experiment).submit(config, settings=settings)
    if detach:
        out.emit("run.submit", {"id": run.id, "status": run.status}, run.id)
        return 0
    if not json_mode:
        sys.stderr.write(f"run {run.id}\n")
    try:
        details = run.wait_for_completion(show_output=not json_mode, raise_on_error=False)
    except KeyboardInterrupt:
        run.cancel()
        details = run.wait_for_completion(raise_on_error=False)
    if json_mode:
        out.emit("run.submit", details)
    elif details["status"] != "Completed":
        error = (details.get("error") or {}).get("message", "").splitlines()
        sys.stderr.write(f"kiln: run {run.id} {details['status'].lower()}" + (f": {error[0]}" if error else "") + "\n")
    return exit_code(details)
