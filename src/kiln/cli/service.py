"""``kiln service``: deploy, list, show, logs, call, keys, reload, delete."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.cli.failures import UsageError

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands
    from kiln.serving.webservice import Webservice

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    p = commands.add("deploy", deploy, help="Deploy models with an entry script as a local web service (or update "
                                            "the service of that name).",
                     example="kiln service deploy --entry-script score.py -m forest:2 -e serve --auth")
    p.add_argument("--entry-script", metavar="PATH", required=True,
                   help="The scoring script (init() and run()), relative to --source-dir.")
    p.add_argument("-m", "--model", metavar="NAME[:VERSION]", action="append", help="A model (repeatable).")
    p.add_argument("-e", "--env", metavar="NAME[:VERSION]", help="Environment (default: Kiln's default "
                                                                  "environment).")
    p.add_argument("-n", "--name", metavar="NAME", help="Service name (default: the first model's name).")
    p.add_argument("-s", "--source-dir", metavar="PATH", type=Path, default=Path("."),
                   help="Folder with the entry script (default: the current folder).")
    p.add_argument("-p", "--port", metavar="PORT", type=int, help="Port on 127.0.0.1 (default: a free one).")
    p.add_argument("--workers", metavar="N", type=int, default=1, help="Worker processes (default: 1).")
    p.add_argument("--auth", dest="auth", action="store_true", default=False,
                   help="Require Authorization: Bearer KEY.")
    p.add_argument("--no-auth", dest="auth", action="store_false", help="No key required (the default).")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=60.0,
                   help="Seconds a request may take (then 504; default: 60).")
    p.add_argument("--batching", action="store_true", help="Let run_batch(list) take several requests.")
    p.add_argument("--container", action="store_true",
                   help="Run the service in a container of the environment's image (as Azure ML's local web "
                        "service), through the Docker-API engine of KILN_DOCKER_HOST / DOCKER_HOST.")

    commands.add("list", list_, help="Services in the workspace, with their state and address.",
                 example="kiln service list -o json")
    p = commands.add("show", show, help="A service's state, address, models, environment and settings.",
                     example="kiln service show forest")
    p.add_argument("name", metavar="NAME", help="Service name.")
    p = commands.add("logs", logs, help="The service's log: the server's lines and what the entry script printed.",
                     example="kiln service logs forest -n 50")
    p.add_argument("name", metavar="NAME", help="Service name.")
    p.add_argument("-n", "--lines", metavar="N", type=int, default=200, help="How many of the last lines "
                                                                              "(default: 200).")
    p = commands.add("call", call, help="Score one request: POST the data to the service and print its answer.",
                     example="kiln service call forest -d '{\"data\": [[1, 2]]}'\n"
                             "kiln service call forest -d @request.json")
    p.add_argument("name", metavar="NAME", help="Service name.")
    p.add_argument("-d", "--data", metavar="JSON", required=True, help="The request body (JSON); @FILE reads a "
                                                                       "file.")
    p = commands.add("keys", keys, help="The service's keys: a service has them when deployed with --auth "
                                        "(kiln service deploy ... --auth turns auth on for an existing one).",
                     example="kiln service keys forest --regen secondary")
    p.add_argument("name", metavar="NAME", help="Service name.")
    p.add_argument("--regen", metavar="WHICH", help="Make a new key: primary or secondary.")
    p = commands.add("reload", reload, help="Copy the source folder (or entry script) again and restart the "
                     "workers on it (init() runs again), without dropping requests; the environment stays.",
                     example="kiln service reload forest")
    p.add_argument("name", metavar="NAME", help="Service name.")
    p = commands.add("delete", delete, help="Stop a service (requests in flight finish) and remove it.",
                     example="kiln service delete forest")
    p.add_argument("name", metavar="NAME", help="Service name.")


def _get(st: CliState, name: str) -> Webservice:
    from kiln.serving.webservice import LocalWebservice

    return LocalWebservice(st.workspace(), name)


def deploy(st: CliState, args: Namespace) -> None:
    from kiln.cli.render import parse_ref
    from kiln.serving.config import DeploymentConfiguration, InferenceConfig
    from kiln.serving.model import Model

    ws = st.workspace()
    env, name = args.env, args.name
    models = []
    for ref in args.model or []:
        model_name, version = parse_ref(ref)
        models.append(Model(ws, model_name, version=version))
    environment = None
    if env is not None:
        env_name, env_version = parse_ref(env)
        environment = ws.get_environment(env_name, env_version)
    service_name = name or (models[0].name if models else None)
    if not service_name:
        raise UsageError("give --name (or at least one --model)", hint="--name")
    config = DeploymentConfiguration(port=args.port, workers=args.workers, auth_enabled=args.auth,
                                     timeout_seconds=args.timeout, batching=args.batching, container=args.container)
    inference = InferenceConfig(entry_script=args.entry_script, source_directory=args.source_dir,
                                environment=environment)
    progress = None if st.json_mode else (lambda phase, message: sys.stderr.write(f"{message}\n"))
    from kiln.serving.deploy import deploy as run_deploy
    from kiln.serving.webservice import LocalWebservice

    run_deploy(ws, service_name, models, inference, config, settings=st.settings, progress=progress)
    service = LocalWebservice(ws, service_name)
    service.wait_for_deployment(show_output=False)
    st.out.emit("service.deploy", service.serialize(), f"{service.name}: {service.state} at {service.scoring_uri}")


def list_(st: CliState, args: Namespace) -> None:
    from kiln.serving.webservice import LocalWebservice

    services = [s.serialize() for s in LocalWebservice.list(st.workspace())]
    rows = [[s["name"], s["state"], s["scoringUri"], ", ".join(s["models"]) or "-", s["environment"]]
            for s in services]
    st.out.table("service.list", services, ["name", "state", "scoring uri", "models", "environment"], rows)


def show(st: CliState, args: Namespace) -> None:
    data = _get(st, args.name).serialize()
    lines = [f"{data['name']}  {data['state']}", f"  scoring uri  {data['scoringUri']}",
             f"  models       {', '.join(data['models']) or '-'}", f"  environment  {data['environment']}",
             f"  entry script {data['entryScript']}", f"  workers      {data['workers']}",
             f"  auth         {'on' if data['authEnabled'] else 'off'}", f"  generation   {data['generation']}"]
    if data.get("container"):
        lines.append(f"  container    {data['container']['name']} ({data['container']['image']})")
    if data["error"]:
        lines.append(f"  error        {data['error']}")
    st.out.emit("service.show", data, "\n".join(lines))


def logs(st: CliState, args: Namespace) -> None:
    text = _get(st, args.name).get_logs(num_lines=args.lines)
    sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))


def call(st: CliState, args: Namespace) -> None:
    import json

    data = args.data
    body = Path(data[1:]).read_text() if data.startswith("@") else data
    answer = _get(st, args.name).run(body)
    st.out.emit("service.call", answer, json.dumps(answer) if not isinstance(answer, str) else answer)


def keys(st: CliState, args: Namespace) -> None:
    from kiln.errors import KilnError

    service = _get(st, args.name)
    if not service.serialize()["authEnabled"]:  # the SDK's message names auth_enabled=True: here it is --auth
        raise KilnError(f"service {service.name!r} has no keys: auth is off (to turn it on, deploy it again with "
                        f"--auth: kiln service deploy --name {service.name} ... --auth)")
    if args.regen is not None:
        service.regen_key(args.regen)
    primary, secondary = service.get_keys()
    st.out.emit("service.keys", {"primary": primary, "secondary": secondary},
                f"primary    {primary}\nsecondary  {secondary}")


def reload(st: CliState, args: Namespace) -> None:
    service = _get(st, args.name)
    service.reload()
    service.wait_for_deployment()
    st.out.emit("service.reload", service.serialize(), f"{service.name}: {service.state}")


def delete(st: CliState, args: Namespace) -> None:
    name = args.name
    _get(st, name).delete()
    st.out.emit("service.delete", {"name": name, "deleted": True}, f"{name}: deleted")
