"""``kiln run``: submit, list, show, logs, cancel, download."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.cli.submit_flow import DEFAULT_EXPERIMENT, exit_code

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands
    from kiln.runs.run import Run

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    p = commands.add("submit", submit, passthrough=True,
                     help="Run a script in an environment; stream its output; exit with its exit code.",
                     description="Run a script in an environment; stream its output; exit with its exit code.\n"
                                 "The script's own options go after --: kiln run submit train.py -- --lr 0.1",
                     example="kiln run submit train.py --env train:2 -x tuning -- --lr 0.1")
    p.add_argument("script", metavar="SCRIPT", help="The script, relative to the source folder.")
    p.add_argument("args", metavar="ARGS", nargs="*", help="Arguments for the script (its options after --).")
    p.add_argument("-e", "--env", metavar="NAME[:VERSION]", help="Environment (default: Kiln's default "
                                                                  "environment).")
    p.add_argument("-s", "--source-dir", metavar="PATH", type=Path, default=Path("."),
                   help="Folder to snapshot and run in (default: the current folder).")
    p.add_argument("-x", "--experiment", metavar="NAME", default=DEFAULT_EXPERIMENT,
                   help=f"Experiment name (default: {DEFAULT_EXPERIMENT}).")
    p.add_argument("-d", "--detach", action="store_true", help="Print the run id and return at once.")
    p.add_argument("--no-snapshot", action="store_true", help="Run in the source folder itself; store no snapshot "
                                                              "and collect no outputs.")
    p.add_argument("--timeout", metavar="SECONDS", type=float, help="Stop the script after this many seconds.")
    p.add_argument("--docker", action="store_true",
                   help="Run in a container of the environment's image (run_config.docker.use_docker), through the "
                        "Docker-API engine of KILN_DOCKER_HOST / DOCKER_HOST.")
    p.add_argument("--compute-target", metavar="NAME", default="local",
                   help="Where the script runs: local (the default), container, or a compute target attached to the "
                        "workspace (kiln compute attach ray NAME --address URL).")

    p = commands.add("list", list_, help="Runs, newest first.", example="kiln run list -x tuning")
    p.add_argument("-x", "--experiment", metavar="NAME", help="Only this experiment.")

    p = commands.add("show", show, help="A run's status, environment, metrics and files.",
                     example="kiln run show RUN_ID")
    p.add_argument("run_id", metavar="ID", help="The run's id.")

    p = commands.add("logs", logs, help="A run's output (everything the script printed).",
                     example="kiln run logs RUN_ID --follow")
    p.add_argument("run_id", metavar="ID", help="The run's id.")
    p.add_argument("-f", "--follow", action="store_true", help="Keep printing until the run ends (then exit with "
                                                               "the script's exit code).")

    p = commands.add("cancel", cancel, help="Stop a run (its script gets SIGTERM, then SIGKILL); a run that has "
                                            "ended is an error.",
                     example="kiln run cancel RUN_ID")
    p.add_argument("run_id", metavar="ID", help="The run's id.")

    p = commands.add("download", download, help="Copy a run's files (outputs and logs) to a folder.",
                     example="kiln run download RUN_ID outputs/model.pkl -d ./model")
    p.add_argument("run_id", metavar="ID", help="The run's id.")
    p.add_argument("file", metavar="FILE", nargs="?", help="One file (default: all of them).")
    p.add_argument("-d", "--directory", metavar="PATH", type=Path, default=Path("."),
                   help="Where to write (default: the current folder).")


def _get(st: CliState, run_id: str) -> Run:
    from kiln.runs.run import Run

    return Run.get(st.workspace(), run_id)


def _when(value: str | None) -> str:
    import datetime as dt

    if not value:
        return "-"
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def submit(st: CliState, args: Namespace) -> int:
    from kiln.cli.submit_flow import run_submit

    return run_submit(st.settings, json_mode=st.json_mode, script=args.script, args=list(args.args), env=args.env,
                      source_dir=args.source_dir, experiment=args.experiment, detach=args.detach,
                      no_snapshot=args.no_snapshot, timeout=args.timeout, docker=args.docker,
                      compute_target=args.compute_target)


def _env_label(details: dict[str, Any]) -> str:
    env = details["runDefinition"]["environment"]
    return "-" if env is None else f"{env['name']}:{env['version']}"


def _program(details: dict[str, Any]) -> str:
    """The script, the command, or what an interactive run (``start_logging``, a child run) is."""
    definition = details["runDefinition"]
    if definition.get("command"):
        return " ".join(definition["command"])
    return definition["script"] or f"({details.get('runType', 'interactive')})"


def list_(st: CliState, args: Namespace) -> None:
    from kiln.runs.experiment import Experiment
    from kiln.runs.run import Run

    experiment = args.experiment
    ws = st.workspace()
    experiments = [Experiment(ws, experiment, _create_in_cloud=False)] if experiment \
        else Experiment.list(ws, view_type="All")
    runs = sorted((r for e in experiments for r in Run.list(e)), key=lambda r: r.id, reverse=True)
    details = sorted((r.get_details() for r in runs), key=lambda d: d["createdTimeUtc"], reverse=True)
    rows = [[d["runId"], d["experiment"], d["status"], _env_label(d), _program(d),
             _when(d["createdTimeUtc"])] for d in details]
    st.out.table("run.list", details, ["id", "experiment", "status", "environment", "script", "created"], rows)


def show(st: CliState, args: Namespace) -> None:
    run = _get(st, args.run_id)
    d = run.get_details()
    metrics = run.get_metrics()
    files = run.get_file_names()
    lines = [f"{d['runId']}  {d['status']}",
             f"  experiment   {d['experiment']}",
             f"  script       {_program(d)} {' '.join(d['runDefinition']['arguments'])}".rstrip(),
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


def logs(st: CliState, args: Namespace) -> int:
    run = _get(st, args.run_id)
    if args.follow:
        details = run.wait_for_completion(show_output=True, raise_on_error=False)
        return exit_code(details)
    sys.stdout.write(run.get_output())
    return 0


def cancel(st: CliState, args: Namespace) -> None:
    import time

    from kiln.errors import KilnError
    from kiln.workspace.store.interface import FINAL_STATUSES

    run = _get(st, args.run_id)
    before = run.status
    if before in FINAL_STATUSES:  # nothing to stop: say so, rather than "Completed -> Completed" and exit 0
        raise KilnError(f"run {run.id} is already {before}")
    run.cancel()
    deadline = time.monotonic() + 15
    while run.status not in ("Completed", "Failed", "Canceled") and time.monotonic() < deadline:
        time.sleep(0.1)
    st.out.emit("run.cancel", {"id": run.id, "before": before, "status": run.status},
                f"{run.id}: {before} -> {run.status}")


def download(st: CliState, args: Namespace) -> None:
    run = _get(st, args.run_id)
    file, directory = args.file, args.directory
    written = [run.download_file(file, directory / file)] if file else run.download_files(
        output_directory=directory)
    st.out.emit("run.download", {"id": run.id, "files": written}, "\n".join(written) or "no files")
