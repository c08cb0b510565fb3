"""Deploying models as a local web service: build the environment, lay out a generation, start or
update the service process.

A service folder is ``<workspace>/services/<name>/``: ``service.json`` (the current deployment, read by
the server), ``keys.json`` (auth keys, mode 0600, never in the registry), ``server.log``, and one
``gen-<n>/`` per deployment (``models/``: the models; ``var-azureml-app/``: the workers' working
folder). An update (or a reload) writes the next generation and tells the running server (SIGHUP), which
rolls it out without dropping requests.

``var-azureml-app/`` is laid out as Azure ML's local deployment lays out ``/var/azureml-app/`` in its
container, so that relative paths in ``init()`` mean the same: the source directory is copied into it
under its own name (``var-azureml-app/<folder name>/...``), or, without a source directory, the entry
script alone (``var-azureml-app/score.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kiln._files import write_text_atomic
from kiln._process import spawn_detached
from kiln.errors import DefinitionError, NotFoundError
from kiln.settings import ENV_CACHE_DIR, ENV_DOCKER_HOST, ENV_HOME, ENV_WORKER_SHIM

if TYPE_CHECKING:
    from kiln.serving.config import DeploymentConfiguration, InferenceConfig
    from kiln.settings import Settings
    from kiln.workspace.store import ModelRecord
    from kiln.workspace.workspace import Workspace

__all__ = ["APP_ROOT", "DeployableModel", "deploy", "free_port", "ignored_docker_settings", "remove_container",
           "service_dir", "start_server", "write_keys"]

#: the workers' working folder inside a generation: Azure ML's ``/var/azureml-app``
APP_ROOT = "var-azureml-app"


class DeployableModel(Protocol):
    """What a deployment needs of a model. ``kiln.serving.model.Model`` is one; this module does not import it
    (``Model.deploy`` imports this module: no loops)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def id(self) -> str: ...

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str: ...


@dataclass(frozen=True)
class _Deployed:
    """A model version the service runs now, by its record: an update that keeps the models (``models=None``)."""

    workspace: Workspace
    record: ModelRecord

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def id(self) -> str:
        return f"{self.record.name}:{self.record.version}"

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str:
        del exist_ok  # a generation's folder is new: nothing to replace
        target = Path(target_dir)
        target.mkdir(parents=True, exist_ok=True)
        self.workspace.blobs.materialize(self.record.manifest, target)
        return str(target / self.record.path)


def _deployed_models(workspace: Workspace, ids: Sequence[str]) -> list[DeployableModel]:
    out: list[DeployableModel] = []
    for model_id in ids:
        name, _, version = model_id.rpartition(":")
        record = workspace.store.get_model(name=name, version=int(version))
        if record is None:
            known = sorted({r.name for r in workspace.store.list_models()})
            raise NotFoundError(f"no model {name!r} version {version} in workspace {workspace.name!r} "
                                f"(models: {', '.join(known) or 'none'})")
        out.append(_Deployed(workspace, record))
    return out


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


def _layout_models(models: Sequence[DeployableModel], target: Path) -> Path:
    """Models go to ``models/<name>/<version>/``; the model folder is that folder for one model (as in
    Azure ML, where the script joins ``AZUREML_MODEL_DIR`` and its file name), the root for several."""
    root = target / "models"
    for model in models:
        model.download(root / model.name / str(model.version), exist_ok=True)
    if len(models) == 1:
        return root / models[0].name / str(models[0].version)
    root.mkdir(parents=True, exist_ok=True)
    return root


def ignored_docker_settings(env: Any) -> list[str]:
    """The ``docker`` settings of ``env`` a local service can't honour yet (it runs in a virtual environment
    built from the definition's packages, not in an image)."""
    from kiln.environment.sections import DEFAULT_CPU_IMAGE

    docker = env.docker
    out = []
    if docker.enabled:
        out.append("docker.enabled = True")
    if docker.base_dockerfile:
        out.append("docker.base_dockerfile")
    if docker.build_context is not None:
        out.append("docker.build_context")
    if docker.base_image and docker.base_image != DEFAULT_CPU_IMAGE:
        out.append(f"docker.base_image {docker.base_image!r}")
    return out


def _warn_docker(env: Any, service: str) -> None:
    import warnings

    from kiln.errors import IgnoredSettingWarning

    ignored = ignored_docker_settings(env)
    if ignored:
        # said, never silently dropped: the service runs, but not in the image the definition names
        warnings.warn(f"service {service!r}: environment {env.name}:{env.version} sets {', '.join(ignored)}, which "
                      "Kiln ignores for now: the service runs in a local virtual environment built from the "
                      "definition's Python packages, not in a container image", IgnoredSettingWarning, stacklevel=4)


def _layout_source(inference_config: InferenceConfig, source: Path | None, gen: Path,
                   workspace: Workspace) -> Path:
    """Copy the source directory (or the entry script alone) into the generation's app root; return the
    entry script's path there."""
    from kiln._tree import copy_file_no_follow
    from kiln.workspace.snapshot import take_snapshot

    app = gen / APP_ROOT
    app.mkdir(parents=True)
    if source is None:
        script = inference_config.entry_script_file()
        copy_file_no_follow(script, app / script.name)
        return app / script.name
    folder = app / (source.name or "source")
    folder.mkdir()
    snapshot = take_snapshot(source, workspace.blobs)
    workspace.blobs.materialize(snapshot.id, folder)
    return folder / inference_config.entry_script


def deploy(workspace: Workspace, name: str, models: Sequence[DeployableModel] | None,
           inference_config: InferenceConfig, deployment_config: DeploymentConfiguration | None = None, *,
           settings: Settings, overwrite: bool = True, progress: Any = None) -> int:
    """Deploy (or update) the service ``name``; return its generation. The service process starts (or
    rolls out the new generation) in the background: ``wait_for_deployment`` waits for it. ``models=None``
    keeps the models the service runs now."""
    from kiln.builds import registered
    from kiln.builds.builder import build_environment
    from kiln.environment.curated import default_environment
    from kiln.environment.names import check_name
    from kiln.serving.config import DeploymentConfiguration
    from kiln.workspace.store import ServiceRecord

    check_name(name, "service name")
    source = inference_config.validate()
    existing = workspace.store.get_service(name)
    if existing is not None and not overwrite:
        raise DefinitionError(f"service {name!r} exists already (update it, or deploy with overwrite=True)")
    previous = json.loads(existing.config) if existing is not None else {}
    if models is None:
        models = _deployed_models(workspace, previous.get("deployment", {}).get("models", []))
    if deployment_config is None:
        deployment_config = DeploymentConfiguration(**previous.get("deployment_config", {}))
    deployment_config.validate()
    # a bad value: said before anything is registered or built
    shm_size = _shm_size(inference_config.environment) if deployment_config.container else None
    env = registered(inference_config.environment, workspace) if inference_config.environment is not None \
        else default_environment(workspace)
    if not deployment_config.container:
        _warn_docker(env, name)
    result = build_environment(env, workspace, settings=settings, progress=progress)
    box = _container(workspace, name, env, settings=settings, progress=progress) if deployment_config.container \
        else None
    if box is not None:
        box["shm_size"] = shm_size
    generation = (existing.generation + 1) if existing is not None else 1
    folder = service_dir(workspace, name)
    gen = folder / f"gen-{generation}"
    if gen.exists():
        import shutil

        shutil.rmtree(gen)
    entry_script = _layout_source(inference_config, source, gen, workspace)
    model_dir = _layout_models(models, gen)
    port = int(deployment_config.port or (existing.port if existing is not None else 0) or free_port())
    if deployment_config.auth_enabled:
        write_keys(folder)
    settings_dict = deployment_config.settings()
    config: dict[str, Any] = {
        "name": name, "workspace": str(workspace.path), "port": port, "generation": generation, **settings_dict,
        "deployment_config": {**settings_dict, "port": deployment_config.port},
        "deployment": {
            "python": str(result.python),
            "virtual_env": None if result.virtual_env is None else str(result.virtual_env),
            "entry_script": str(entry_script), "cwd": str(gen / APP_ROOT),
            "model_dir": str(model_dir), "environment_variables": dict(env.environment_variables),
            "environment": f"{env.name}:{env.version}", "lock_hash": result.lock_hash, "build_key": result.key,
            "models": [m.id for m in models], "entry_script_name": inference_config.entry_script,
            "source_directory": None if source is None else str(source),
            "entry_script_file": str(inference_config.entry_script_file()),
        },
    }
    if box is not None:
        config["container"] = box
    write_text_atomic(folder / "service.json", json.dumps(config, indent=1))
    now = time.time()
    running = existing is not None and _server_alive(existing)
    # a process service and a container service are different processes: switching is a restart
    same_kind = existing is not None and bool(previous.get("container")) == (box is not None)
    workspace.store.put_service(ServiceRecord(
        name=name, state="Transitioning", port=port, generation=existing.generation if running and existing else 0,
        config=json.dumps(config), pid=existing.pid if running and existing else None,
        pid_start=existing.pid_start if running and existing else None, error=None,
        created_at=existing.created_at if existing is not None else now, updated_at=now))
    if running and existing is not None and existing.port == port and same_kind:
        assert existing.pid is not None
        os.kill(existing.pid, signal.SIGHUP)
    else:
        if running and existing is not None:
            stop_server(existing)
        start_server(workspace, name, settings=settings)
    return generation


def _shm_size(env: Any | None) -> int:
    """The /dev/shm of the service's container, in bytes: the environment's ``docker.shm_size`` (Azure ML's default
    ``"2g"`` when it has none, or for the default environment)."""
    from kiln.environment.shm import DEFAULT_SHM_SIZE, shm_bytes

    if env is None or env.docker.shm_size is None:
        return shm_bytes(DEFAULT_SHM_SIZE, field="docker.shm_size")
    label = env.name if env.version is None else f"{env.name}:{env.version}"
    return shm_bytes(env.docker.shm_size, field=f"environment {label}: docker.shm_size")


def _container(workspace: Workspace, name: str, env: Any, *, settings: Settings, progress: Any) -> dict[str, Any]:
    """The container section of a container deployment: its image (written and loaded if needed), its engine
    and name, and what the server in it runs with."""
    from kiln.builds.image import ENV_PREFIX
    from kiln.builds.oci.engine_image import container_image, image_python
    from kiln.serving.container import container_name

    image = container_image(env, workspace, settings=settings, progress=progress)
    python = image_python(image)
    return {"image": image.reference, "engine": settings.docker_host,
            "name": container_name(str(workspace.path), name),
            "deployment": {"python": python, "virtual_env": ENV_PREFIX if python.startswith(ENV_PREFIX) else None}}


def remove_container(config: dict[str, Any]) -> None:
    """Remove a container deployment's container, if it is still there (its host side was killed)."""
    box = config.get("container")
    if not box:
        return
    from kiln.builds.engine import Engine

    with Engine(box.get("engine")) as engine:
        if engine.cannot_connect() is None:
            from docker.errors import NotFound

            with contextlib.suppress(NotFound):
                engine.client.api.remove_container(box["name"], force=True)


def _server_alive(record: Any) -> bool:
    from kiln._process import alive

    return record.pid is not None and alive(record.pid, record.pid_start)


def start_server(workspace: Workspace, name: str, *, settings: Settings) -> int:
    from kiln._process import start_time

    folder = service_dir(workspace, name)
    env = {**os.environ, ENV_HOME: str(settings.home), ENV_CACHE_DIR: str(settings.cache_dir),
           ENV_WORKER_SHIM: str(Path(__file__).with_name("shim"))}
    if settings.docker_host:
        env[ENV_DOCKER_HOST] = settings.docker_host
    config = json.loads((folder / "service.json").read_text())
    module = "kiln.serving.container" if config.get("container") else "kiln.serving.server"
    pid = spawn_detached([sys.executable, "-m", module, str(folder)], env=env, log=folder / "server.log")
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
