"""``kiln service``: deploy, list, show, logs, call, keys, reload, delete."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kiln.cli.context import state

if TYPE_CHECKING:
    from kiln.serving.webservice import Webservice

__all__ = ["app"]

app = typer.Typer(help="Deploy models as local web services and call them.", no_args_is_help=True)


def _get(ctx: typer.Context, name: str) -> Webservice:
    from kiln.serving.webservice import LocalWebservice

    return LocalWebservice(state(ctx).workspace(), name)


@app.command()
def deploy(
    ctx: typer.Context,
    entry_script: Annotated[str, typer.Option("--entry-script", help="The scoring script (init() and run()), "
                                                                     "relative to --source-dir.")],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="NAME[:VERSION] (repeatable).")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Environment NAME[:VERSION] (default: Kiln's "
                                                                "default environment).")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Service name (default: the first model's "
                                                                  "name).")] = None,
    source_dir: Annotated[Path, typer.Option("--source-dir", "-s", help="Folder with the entry script.")]
    = Path("."),
    port: Annotated[int | None, typer.Option("--port", "-p", help="Port on 127.0.0.1 (default: a free one).")]
    = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    auth: Annotated[bool, typer.Option("--auth/--no-auth", help="Require Authorization: Bearer <key>.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a request may take (then 504).")] = 60.0,
    batching: Annotated[bool, typer.Option("--batching", help="Let run_batch(list) take several requests.")]
    = False,
) -> None:
    """Deploy models with an entry script as a local web service (or update the service of that name)."""
    from kiln.cli.render import parse_ref
    from kiln.serving.config import DeploymentConfiguration, InferenceConfig
    from kiln.serving.model import Model

    st = state(ctx)
    ws = st.workspace()
    models = []
    for ref in model or []:
        model_name, version = parse_ref(ref)
        models.append(Model(ws, model_name, version))
    environment = None
    if env is not None:
        env_name, env_version = parse_ref(env)
        environment = ws.get_environment(env_name, env_version)
    service_name = name or (models[0].name if models else None)
    if not service_name:
        raise typer.BadParameter("give --name (or at least one --model)", param_hint="--name")
    config = DeploymentConfiguration(port=port, workers=workers, auth_enabled=auth, timeout_seconds=timeout,
                                     batching=batching)
    inference = InferenceConfig(entry_script=entry_script, source_directory=source_dir, environment=environment)
    progress = None if st.json_mode else (lambda phase, message: sys.stderr.write(f"{message}\n"))
    from kiln.serving.deploy import deploy as run_deploy
    from kiln.serving.webservice import LocalWebservice

    run_deploy(ws, service_name, models, inference, config, settings=st.settings, progress=progress)
    service = LocalWebservice(ws, service_name)
    service.wait_for_deployment(show_output=False)
    st.out.emit("service.deploy", service.serialize(), f"{service.name}: {service.state} at {service.scoring_uri}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Services in the workspace, with their state and address."""
    from kiln.serving.webservice import LocalWebservice

    st = state(ctx)
    services = [s.serialize() for s in LocalWebservice.list(st.workspace())]
    rows = [[s["name"], s["state"], s["scoringUri"], ", ".join(s["models"]) or "-", s["environment"]]
            for s in services]
    st.out.table("service.list", services, ["name", "state", "scoring uri", "models", "environment"], rows)


@app.command()
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Service name.")]) -> None:
    """A service's state, address, models, environment and settings."""
    st = state(ctx)
    data = _get(ctx, name).serialize()
    lines = [f"{data['name']}  {data['state']}", f"  scoring uri  {data['scoringUri']}",
             f"  models       {', '.join(data['models']) or '-'}", f"  environment  {data['environment']}",
             f"  entry script {data['entryScript']}", f"  workers      {data['workers']}",
             f"  auth         {'on' if data['authEnabled'] else 'off'}", f"  generation   {data['generation']}"]
    if data["error"]:
        lines.append(f"  error        {data['error']}")
    st.out.emit("service.show", data, "\n".join(lines))


@app.command()
def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Service name.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines.")] = 200,
) -> None:
    """The service's log: the server's lines and what the entry script printed."""
    text = _get(ctx, name).get_logs(num_lines=lines)
    sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))


@app.command()
def call(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Service name.")],
    data: Annotated[str, typer.Option("--data", "-d", help="The request body (JSON); @FILE reads a file.")],
) -> None:
    """Score one request: POST the data to the service and print its answer."""
    st = state(ctx)
    body = Path(data[1:]).read_text() if data.startswith("@") else data
    answer = _get(ctx, name).run(body)
    st.out.emit("service.call", answer, json.dumps(answer) if not isinstance(answer, str) else answer)


@app.command()
def keys(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Service name.")],
    regen: Annotated[str | None, typer.Option("--regen", help="Make a new key: primary or secondary.")] = None,
) -> None:
    """The service's keys (auth-enabled services)."""
    st = state(ctx)
    service = _get(ctx, name)
    if regen is not None:
        service.regen_key(regen)
    primary, secondary = service.get_keys()
    st.out.emit("service.keys", {"primary": primary, "secondary": secondary},
                f"primary    {primary}\nsecondary  {secondary}")


@app.command()
def reload(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Service name.")]) -> None:
    """Restart the workers (init() runs again) without dropping requests."""
    st = state(ctx)
    service = _get(ctx, name)
    service.reload()
    service.wait_for_deployment()
    st.out.emit("service.reload", service.serialize(), f"{service.name}: {service.state}")


@app.command()
def delete(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Service name.")]) -> None:
    """Stop a service (requests in flight finish) and remove it."""
    st = state(ctx)
    _get(ctx, name).delete()
    st.out.emit("service.delete", {"name": name, "deleted": True}, f"{name}: deleted")
