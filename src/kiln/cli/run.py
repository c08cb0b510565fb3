"""``kiln run``: submit, list, show, logs, cancel, download."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kiln.cli.context import state
from kiln.cli.submit_flow import DEFAULT_EXPERIMENT, exit_code

if TYPE_CHECKING:
    from kiln.runs.run import Run

__all__ = ["app"]

app = typer.Typer(help="Submit training runs and watch them.", no_args_is_help=True)



def _get(ctx: typer.Context, run_id: str) -> Run:
    from kiln.runs.run import Run

    return Run.get(state(ctx).workspace(), run_id)


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def submit(
    ctx: typer.Context,
    script: Annotated[str, typer.Argument(help="The script, relative to the source folder.")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments for the script (after --).")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Environment NAME[:VERSION] (default: "
                                                                "Kiln's default environment).")] = None,
    source_dir: Annotated[Path, typer.Option("--source-dir", "-s", help="Folder to snapshot and run in.")]
    = Path("."),
    experiment: Annotated[str, typer.Option("--experiment", "-x", help="Experiment name.")] = DEFAULT_EXPERIMENT,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the run id and return at once.")] = False,
    no_snapshot: Annotated[bool, typer.Option("--no-snapshot", help="Run in the source folder itself; store no "
                                                                    "snapshot and collect no outputs.")] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop the script after this many "
                                                                    "seconds.")] = None,
) -> None:
    """Run a script in an environment; stream its output; exit with its exit code."""
    from kiln.cli.submit_flow import run_submit

    st = state(ctx)
    raise typer.Exit(run_submit(st.settings, json_mode=st.json_mode, script=script, args=list(args or []), env=env,
                                source_dir=source_dir, experiment=experiment, detach=detach,
                                no_snapshot=no_snapshot, timeout=timeout))


def _env_label(details: dict[str, Any]) -> str:
    env = details["runDefinition"]["environment"]
    return f"{env['name']}:{env['version']}"


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option("--experiment", "-x", help="Only this experiment.")] = None,
) -> None:
    """Runs, newest first."""
    from kiln.runs.experiment import Experiment
    from kiln.runs.run import Run

    st = state(ctx)
    ws = st.workspace()
    experiments = [Experiment(ws, experiment)] if experiment else Experiment.list(ws)
    runs = sorted((r for e in experiments for r in Run.list(e)), key=lambda r: r.id, reverse=True)
    details = sorted((r.get_details() for r in runs), key=lambda d: d["createdTimeUtc"], reverse=True)
    rows = [[d["runId"], d["experiment"], d["status"], _env_label(d), d["runDefinition"]["script"],
             _when(d["createdTimeUtc"])] for d in details]
    st.out.table("run.list", details, ["id", "experiment", "status", "environment", "script", "created"], rows)


@app.command()
def show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """A run's status, environment, metrics and files."""
    st = state(ctx)
    run = _get(ctx, run_id)
    d = run.get_details()
    metrics = run.get_metrics()
    files = run.get_file_names()
    lines = [f"{d['runId']}  {d['status']}",
             f"  experiment   {d['experiment']}",
             f"  script       {d['runDefinition']['script']} {' '.join(d['runDefinition']['arguments'])}".rstrip(),
             f"  environment  {_env_label(d)}"
             + (f"  (lock {d['runDefinition']['lockHash'][:12]})" if d["runDefinition"]["lockHash"] else ""),
             f"  created      {_when(d['createdTimeUtc'])}", f"  started      {_when(d['startTimeUtc'])}",
             f"  ended        {_when(d['endTimeUtc'])}"]
    if d.get("exitCode") is not None:
        lines.append(f"  exit code    {d['exitCode']}")
    if d.get("error"):
        lines += ["  error:"] + [f"    {line}" for line in d["error"]["message"].splitlines()]
    for name, value in metrics.items():
        lines.append(f"  metric       {name} = {value}")
    for key, value in d["tags"].items():
        lines.append(f"  tag          {key}" + ("" if value is None else f" = {value}"))
    for name in files:
        lines.append(f"  file         {name}")
    st.out.emit("run.show", {**d, "metrics": metrics, "files": files}, "\n".join(lines))


@app.command()
def logs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="ID")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
) -> None:
    """A run's output (everything the script printed)."""
    run = _get(ctx, run_id)
    if follow:
        details = run.wait_for_completion(show_output=True, raise_on_error=False)
        raise typer.Exit(exit_code(details))
    sys.stdout.write(run.get_output())


@app.command()
def cancel(ctx: typer.Context, run_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Stop a run (its script gets SIGTERM, then SIGKILL)."""
    st = state(ctx)
    run = _get(ctx, run_id)
    before = run.status
    run.cancel()
    deadline = time.monotonic() + 15
    while run.status not in ("Completed", "Failed", "Canceled") and time.monotonic() < deadline:
        time.sleep(0.1)
    st.out.emit("run.cancel", {"id": run.id, "before": before, "status": run.status},
                f"{run.id}: {before} -> {run.status}")


@app.command()
def download(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="ID")],
    file: Annotated[str | None, typer.Argument(metavar="[FILE]", help="One file (default: all of them).")] = None,
    directory: Annotated[Path, typer.Option("--directory", "-d", help="Where to write.")] = Path("."),
) -> None:
    """Copy a run's files (outputs and logs) to a folder."""
    st = state(ctx)
    run = _get(ctx, run_id)
    written = [run.download_file(file, directory / file)] if file else run.download_files(
        output_directory=directory)
    st.out.emit("run.download", {"id": run.id, "files": written}, "\n".join(written) or "no files")
