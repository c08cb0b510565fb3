"""Submitting a run: register the environment, snapshot the source, record the run, start its supervisor.

``submit`` returns at once: building the environment (when it isn't cached) and running the script
happen in the supervisor process (``kiln.runs.supervisor``), which outlives the caller.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from kiln._process import spawn_detached, start_time
from kiln.runs.layout import RunLayout
from kiln.runs.targets.registry import CONTAINER_TARGET, DEFAULT_TARGET, target_name
from kiln.settings import ENV_CACHE_DIR, ENV_CONDA_VIA, ENV_DEBUG, ENV_DOCKER_HOST, ENV_HOME

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.runs.config import RunConfiguration, ScriptRunConfig
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["container_shm_size", "submit_run"]

def new_run_id(experiment: str) -> str:
    return f"{experiment}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


def _check_engine(settings: Settings) -> None:
    """A run in a container needs an engine: said at submit, with how to start one, not later in the run's log."""
    from kiln.builds.engine import Engine
    from kiln.errors import KilnError

    problem = Engine.from_settings(settings).cannot_connect()
    if problem is not None:
        raise KilnError(f"compute target {CONTAINER_TARGET!r} (the run asks for Docker): {problem}")


def container_shm_size(run_config: RunConfiguration, environment: Environment | None) -> int:
    """The /dev/shm of the run's container, in bytes: the run's ``DockerConfiguration(shm_size=...)`` when set, else
    the environment's ``docker.shm_size``, else Azure ML's default ``"2g"``."""
    from kiln.environment.shm import DEFAULT_SHM_SIZE, shm_bytes

    if run_config.docker.shm_size is not None:
        return shm_bytes(run_config.docker.shm_size, field="run_config.docker.shm_size")
    docker = getattr(environment, "docker", None)
    value = getattr(docker, "shm_size", None)
    if value is None:
        return shm_bytes(DEFAULT_SHM_SIZE, field="docker.shm_size")
    return shm_bytes(value, field=f"environment {getattr(environment, 'name', '?')!r}: docker.shm_size")


def submit_run(workspace: Workspace, experiment: str, config: ScriptRunConfig, *, settings: Settings,
               tags: dict[str, str] | None = None) -> str:
    """Start a run of ``config`` in ``experiment``; return its id."""
    from kiln.builds import registered
    from kiln.builds.builder import cached_build
    from kiln.environment.curated import default_environment
    from kiln.runs.ignored import ignored_settings, wants_docker, warn_ignored
    from kiln.workspace.snapshot import take_snapshot
    from kiln.workspace.store import RunRecord

    source = config.validate(workspace)
    target = target_name(config.run_config.target, workspace=workspace)
    if target == DEFAULT_TARGET and wants_docker(config.run_config, config.environment):
        target = CONTAINER_TARGET  # as Azure ML: asking for Docker on the local machine runs in a container
    shm_size = None
    if target == CONTAINER_TARGET:
        shm_size = container_shm_size(config.run_config, config.environment)  # a bad value: said before anything
        _check_engine(settings)
    ignored = ignored_settings(config.run_config, config.environment, target=target)
    warn_ignored(ignored)
    env = registered(config.environment, workspace) if config.environment is not None \
        else default_environment(workspace)
    history = config.run_config.history
    snapshot = take_snapshot(source, workspace.blobs) if history.snapshot_project else None
    python: str | None = None
    lock_hash = build_key = virtual_env = None
    ready = cached_build(env, workspace, settings=settings)  # None when user-managed: the supervisor checks it
    if ready is not None:
        python, lock_hash, build_key = str(ready.python), ready.lock_hash, ready.key
        virtual_env = None if ready.virtual_env is None else str(ready.virtual_env)
    run_id = new_run_id(experiment)
    definition: dict[str, Any] = {
        "type": "azureml.scriptrun", "script": config.script, "arguments": list(config.arguments),
        "command": config.command, "source": str(source), "warnings": ignored,
        "snapshot": None if snapshot is None else snapshot.id,
        "snapshot_files": None if snapshot is None else snapshot.files,
        "snapshot_bytes": None if snapshot is None else snapshot.size,
        "output_collection": history.output_collection, "target": target,
        "max_run_duration_seconds": config.run_config.max_run_duration_seconds,
        "environment_variables": dict(config.run_config.environment_variables), "python": python,
        # what the supervisor needs of the environment when its build is ready: it then loads nothing else
        "environment_definition_variables": dict(env.environment_variables),
        "virtual_env": virtual_env,
        # the container's /dev/shm in bytes (targets that run containers apply it)
        "shm_size": shm_size,
    }
    layout = RunLayout(workspace.path, run_id)
    layout.logs.mkdir(parents=True)
    assert env.version is not None
    workspace.store.create_run(RunRecord(
        id=run_id, experiment=experiment, status="Queued", created_at=time.time(),
        definition=json.dumps(definition), tags=json.dumps(dict(tags or {}), sort_keys=True),
        environment=env.name, environment_version=int(env.version), lock_hash=lock_hash, build_key=build_key))
    # the supervisor builds its Settings from these: the caller's, whatever the variables said
    child_env = {**os.environ, ENV_HOME: str(settings.home), ENV_CACHE_DIR: str(settings.cache_dir),
                 ENV_CONDA_VIA: settings.conda_via, ENV_DEBUG: "1" if settings.debug else "0"}
    if settings.docker_host:
        child_env[ENV_DOCKER_HOST] = settings.docker_host
    pid = spawn_detached([sys.executable, "-m", "kiln.runs.supervisor", str(workspace.path), run_id], env=child_env,
                         log=layout.supervisor_log)
    workspace.store.update_run(run_id, pid=pid, pid_start=start_time(pid), only_if_status=frozenset({"Queued"}))
    return run_id
