"""Deploying models as a local web service: build the environment, lay out a generation, start or
update the service process.

A service folder is ``<workspace>/services/<name>/``: ``service.json`` (the current deployment, read by
the server), ``keys.json`` (auth keys, mode 0600, never in the registry), ``server.log``, and one
``gen-<n>/`` per deployment (``source/``: the entry script's folder, ``models/``: the models). An update
writes the next generation and tells the running server (SIGHUP), which rolls it out without
dropping requests.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._files import write_text_atomic
from kiln._process import spawn_detached
from kiln.errors import DefinitionError
from kiln.settings import ENV_CACHE_DIR, ENV_HOME, ENV_WORKER_SHIM

if TYPE_CHECKING:
    from kiln.serving.config import DeploymentConfiguration, InferenceConfig
    from kiln.serving.model import Model
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["deploy", "free_port", "service_dir", "start_server", "write_keys"]


def service_dir(workspace: Workspace, name: str) -> Path:
    return workspace.path / "services" / name


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_keys(folder: Path, *, regenerate: str | None = None) -> dict[str, str]:
    path = folder / "keys.json"
    keys = json.loads(path.read_text()) if path.exists() else {}
    for which in ("primary", "secondary"):
        if which not in keys or regenerate in (which, "both"):
            keys[which] = secrets.token_urlsafe(32)
    tmp = folder / ".keys.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)
    os.replace(tmp, path)
    return keys


def _layout_models(models: Sequence[Model], target: Path) -> Path:
    """Models go to ``models/<name>/<version>/``; the model folder is that folder for one model (as in
    Azure ML, where the script joins ``AZUREML_MODEL_DIR`` and its file name), the root for several."""
    root = target / "models"
    for model in models:
        model.download(root / model.name / str(model.version), exist_ok=True)
    if len(models) == 1:
        return root / models[0].name / str(models[0].version)
    root.mkdir(parents=True, exist_ok=True)
    return root


def deploy(workspace: Workspace, name: str, models: Sequence[Model], inference_config: InferenceConfig,
           deployment_config: DeploymentConfiguration | None = None, *, settings: Settings,
           overwrite: bool = True, progress: Any = None) -> int:
    """Deploy (or update) the service ``name``; return its generation. The service process starts (or
    rolls out the new generation) in the background: ``wait_for_deployment`` waits for it."""
    from kiln.builds import registered
    from kiln.builds.builder import build_environment
    from kiln.environment.curated import default_environment
    from kiln.environment.names import check_name
    from kiln.serving.config import DeploymentConfiguration
    from kiln.workspace.snapshot import take_snapshot
    from kiln.workspace.store import ServiceRecord

    check_name(name, "service name")
    source = inference_config.validate()
    existing = workspace.store.get_service(name)
    if existing is not None and not overwrite:
        raise DefinitionError(f"service {name!r} exists already (update it, or deploy with overwrite=True)")
    previous = json.loads(existing.config) if existing is not None else {}
    if deployment_config is None:
        deployment_config = DeploymentConfiguration(**previous.get("deployment_config", {}))
    deployment_config.validate()
    env = registered(inference_config.environment, workspace) if inference_config.environment is not None \
        else default_environment(workspace)
    result = build_environment(env, workspace, settings=settings, progress=progress)
    generation = (existing.generation + 1) if existing is not None else 1
    folder = service_dir(workspace, name)
    gen = folder / f"gen-{generation}"
    if gen.exists():
        import shutil

        shutil.rmtree(gen)
    (gen / "source").mkdir(parents=True)
    snapshot = take_snapshot(source, workspace.blobs)
    workspace.blobs.materialize(snapshot.id, gen / "source")
    model_dir = _layout_models(models, gen)
    port = int(deployment_config.port or (existing.port if existing is not None else 0) or free_port())
    if deployment_config.auth_enabled:
        write_keys(folder)
    settings_dict = deployment_config.settings()
    config: dict[str, Any] = {
        "name": name, "workspace": str(workspace.path), "port": port, "generation": generation, **settings_dict,
        "deployment_config": {**settings_dict, "port": deployment_config.port},
        "deployment": {
            "python": str(result.python), "virtual_env": None if result.backend == "user-managed"
            else str(result.python.parent.parent),
            "entry_script": str(gen / "source" / inference_config.entry_script), "cwd": str(gen / "source"),
            "model_dir": str(model_dir), "environment_variables": dict(env.environment_variables),
            "environment": f"{env.name}:{env.version}", "lock_hash": result.lock_hash, "build_key": result.key,
            "models": [m.id for m in models], "entry_script_name": inference_config.entry_script,
            "source_directory": str(source),
        },
    }
    write_text_atomic(folder / "service.json", json.dumps(config, indent=1))
    now = time.time()
    running = existing is not None and _server_alive(existing)
    workspace.store.put_service(ServiceRecord(
        name=name, state="Transitioning", port=port, generation=existing.generation if running and existing else 0,
        config=json.dumps(config), pid=existing.pid if running and existing else None,
        pid_start=existing.pid_start if running and existing else None, error=None,
        created_at=existing.created_at if existing is not None else now, updated_at=now))
    if running and existing is not None and existing.port == port:
        assert existing.pid is not None
        os.kill(existing.pid, signal.SIGHUP)
    else:
        if running and existing is not None:
            stop_server(existing)
        start_server(workspace, name, settings=settings)
    return generation


def _server_alive(record: Any) -> bool:
    from kiln._process import alive

    return record.pid is not None and alive(record.pid, record.pid_start)


def start_server(workspace: Workspace, name: str, *, settings: Settings) -> int:
    from kiln._process import start_time

    folder = service_dir(workspace, name)
    env = {**os.environ, ENV_HOME: str(settings.home), ENV_CACHE_DIR: str(settings.cache_dir),
           ENV_WORKER_SHIM: str(Path(__file__).with_name("shim"))}
    pid = spawn_detached([sys.executable, "-m", "kiln.serving.server", str(folder)], env=env,
                         log=folder / "server.log")
    workspace.store.update_service(name, pid=pid, pid_start=start_time(pid))
    return pid


def stop_server(record: Any, timeout: float = 30.0) -> None:
    """SIGTERM the service process (it drains in-flight requests), SIGKILL it if it doesn't stop."""
    if not _server_alive(record):
        return
    os.kill(record.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _server_alive(record):
            return
        time.sleep(0.05)
    os.killpg(record.pid, signal.SIGKILL)
