"""What to run: ``ScriptRunConfig`` and its ``RunConfiguration``, with Azure ML SDK v1's names."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import DefinitionError
from kiln.runs.targets.registry import DEFAULT_TARGET, target_name

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.workspace.workspace import Workspace

__all__ = ["DockerConfiguration", "HistoryConfiguration", "RunConfiguration", "ScriptRunConfig"]

#: where ``RunConfiguration.save(path=folder, name=...)`` writes; ``load`` also reads Azure ML's folders
CONFIG_FOLDER = ".kiln"
AZURE_FOLDERS = (".azureml", "aml_config")
SUFFIX = ".runconfig"


@dataclass
class HistoryConfiguration:
    """``snapshot_project=False``: run in the source folder itself, store no snapshot.
    ``output_collection=False``: don't collect ``./outputs`` into the run's files."""

    output_collection: bool = True
    snapshot_project: bool = True

    @property
    def enabled(self) -> bool:
        return self.output_collection or self.snapshot_project

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.output_collection = self.snapshot_project = bool(value)


@dataclass
class DockerConfiguration:
    """Azure ML's ``DockerConfiguration`` (``run_config.docker``). Kiln runs on the local target without
    containers today: ``use_docker=True`` is kept and warned about at submit (``IgnoredSettingWarning``)."""

    use_docker: bool = False
    arguments: list[str] = field(default_factory=list)
    shared_volumes: bool = True
    shm_size: str | None = None

    @property
    def enabled(self) -> bool:
        """The older name of ``use_docker``."""
        return self.use_docker

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.use_docker = bool(value)


@dataclass
class RunConfiguration:
    """How to run: the script and its arguments (when no ``ScriptRunConfig`` gives them), the target, the
    environment, history, time limit and variables. ``save`` / ``load`` keep it in a ``.runconfig`` file."""

    script: str | None = None
    arguments: list[Any] = field(default_factory=list)
    environment: Environment | None = None
    target: str = DEFAULT_TARGET
    history: HistoryConfiguration = field(default_factory=HistoryConfiguration)
    max_run_duration_seconds: float | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    #: processes (machines) to run on: the local target runs one
    node_count: int = 1
    docker: DockerConfiguration = field(default_factory=DockerConfiguration)
    framework: str = "Python"
    communicator: str = "None"
    command: list[str] | str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Azure ML's ``.runconfig`` keys (the environment as its definition, secrets left out)."""
        return {
            "script": self.script, "arguments": [str(a) for a in self.arguments], "target": self.target,
            "framework": self.framework, "communicator": self.communicator, "nodeCount": self.node_count,
            "maxRunDurationSeconds": self.max_run_duration_seconds, "command": self.command,
            "environmentVariables": dict(self.environment_variables),
            "environment": None if self.environment is None else self.environment.to_dict(),
            "history": {"outputCollection": self.history.output_collection,
                        "snapshotProject": self.history.snapshot_project},
            "docker": {"useDocker": self.docker.use_docker, "arguments": list(self.docker.arguments),
                       "sharedVolumes": self.docker.shared_volumes, "shmSize": self.docker.shm_size},
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "run configuration") -> RunConfiguration:
        if not isinstance(data, dict):
            raise DefinitionError(f"{source}: expected a mapping of run configuration keys, got {type(data).__name__}")
        config = cls()
        config.script = data.get("script")
        config.arguments = list(data.get("arguments") or [])
        config.target = str(data.get("target") or DEFAULT_TARGET)
        config.framework = str(data.get("framework") or "Python")
        config.communicator = str(data.get("communicator") or "None")
        config.node_count = int(data.get("nodeCount") or 1)
        config.max_run_duration_seconds = data.get("maxRunDurationSeconds")
        config.command = data.get("command") or None
        config.environment_variables = {str(k): str(v) for k, v in (data.get("environmentVariables") or {}).items()}
        env = data.get("environment")
        if isinstance(env, dict) and env.get("name"):
            from kiln.environment.environment import Environment

            config.environment = Environment.from_dict(env, f"{source}: environment")
        history = data.get("history") or {}
        config.history = HistoryConfiguration(output_collection=bool(history.get("outputCollection", True)),
                                              snapshot_project=bool(history.get("snapshotProject", True)))
        docker = data.get("docker") or {}
        config.docker = DockerConfiguration(use_docker=bool(docker.get("useDocker", False)),
                                            arguments=list(docker.get("arguments") or []),
                                            shared_volumes=bool(docker.get("sharedVolumes", True)),
                                            shm_size=docker.get("shmSize"))
        return config

    def save(self, path: str | os.PathLike[str] | None = None, name: str | None = None,
             separate_environment_yaml: bool = False) -> str:
        """Write the configuration: to the file ``path``, or to ``<path>/.kiln/<name>.runconfig`` when ``path``
        is a folder (default: the current folder). JSON, which YAML readers (Azure ML's) read too."""
        del separate_environment_yaml
        from kiln._files import write_text_atomic

        target = _config_path(path, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(self.to_dict(), indent=2) + "\n")
        return str(target)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, name: str | None = None) -> RunConfiguration:
        """Read a configuration ``save`` wrote, or Azure ML's ``.azureml/<name>.runconfig`` (YAML)."""
        candidates = [_config_path(path, name)]
        base = Path(path) if path is not None else Path.cwd()
        if name is not None and (path is None or base.is_dir()):
            candidates += [base / folder / f"{name}{SUFFIX}" for folder in AZURE_FOLDERS]
        for candidate in candidates:
            if candidate.is_file():
                from ruamel.yaml import YAML, YAMLError

                try:
                    data = YAML(typ="safe", pure=True).load(candidate.read_text(encoding="utf-8"))
                except YAMLError as e:
                    raise DefinitionError(f"{candidate}: not a run configuration ({str(e)[:300]})") from None
                return cls.from_dict(data, str(candidate))
        raise DefinitionError(f"no run configuration at {', '.join(str(c) for c in candidates)}")


def _config_path(path: str | os.PathLike[str] | None, name: str | None) -> Path:
    base = Path(path) if path is not None else Path.cwd()
    if path is not None and not base.is_dir() and (base.suffix or name is None):
        return base  # a file's path
    if not name:
        raise DefinitionError("RunConfiguration: give name= (the file is <folder>/.kiln/<name>.runconfig) or "
                              "the path of a file")
    return base / CONFIG_FOLDER / f"{name}{SUFFIX}"


class ScriptRunConfig:
    """A script (or a ``command``), its arguments, its source folder, where to run it and in which environment.

    Without an environment, runs use Kiln's default environment (``default-env``: Kiln's default
    Python with no packages), registered in the workspace on first use.
    """

    def __init__(self, source_directory: str | os.PathLike[str] = ".", script: str | None = None,
                 arguments: Sequence[Any] | None = None, run_config: RunConfiguration | None = None,
                 compute_target: str | None = None, environment: Environment | None = None,
                 max_run_duration_seconds: float | None = None, command: Sequence[str] | str | None = None,
                 docker_runtime_config: DockerConfiguration | None = None) -> None:
        self.run_config = run_config or RunConfiguration()
        script = script or (self.run_config.script if run_config is not None and command is None else None)
        if command is not None and script is not None:
            raise DefinitionError("ScriptRunConfig: give script= or command=, not both")
        self.command = _command(command) if command is not None else None
        if self.command is None and not script:
            raise DefinitionError("ScriptRunConfig: script is required (a file inside source_directory), or command=")
        self.source_directory = str(source_directory)
        self.script = None if script is None else str(script)
        if arguments is None and run_config is not None and command is None:
            arguments = run_config.arguments
        self.arguments = [str(a) for a in (arguments or [])]
        if environment is not None:
            self.run_config.environment = environment
        if compute_target is not None:
            self.run_config.target = compute_target
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
        if docker_runtime_config is not None:
            self.run_config.docker = docker_runtime_config

    @property
    def environment(self) -> Environment | None:
        return self.run_config.environment

    @environment.setter
    def environment(self, value: Environment | None) -> None:
        self.run_config.environment = value

    @property
    def compute_target(self) -> str:
        return self.run_config.target

    def program(self) -> tuple[list[str], bool]:
        """What the target starts: ``([script, *arguments], False)``, or ``(command, True)`` for a command."""
        if self.command is not None:
            return [*self.command, *self.arguments], True
        assert self.script is not None
        return [self.script, *self.arguments], False

    def validate(self, workspace: Workspace | None = None) -> Path:
        """Check the config; return the absolute source folder. The compute target is a built-in one, or one
        attached to ``workspace``."""
        target_name(self.run_config.target, workspace=workspace)
        source = Path(self.source_directory).expanduser().resolve()
        if not source.is_dir():
            raise DefinitionError(f"source_directory {self.source_directory!r} is not a folder")
        if self.script is not None:
            script = Path(self.script)
            if script.is_absolute() or ".." in script.parts:
                raise DefinitionError(f"script {self.script!r} must be a path inside source_directory")
            if not (source / script).is_file():
                raise DefinitionError(f"script {self.script!r} not found in {source}")
        limit = self.run_config.max_run_duration_seconds
        if limit is not None:
            import math

            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or math.isnan(limit) or limit <= 0:
                raise DefinitionError(f"max_run_duration_seconds must be a positive number of seconds, got {limit!r}")
        nodes = self.run_config.node_count
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise DefinitionError(f"node_count must be a whole number from 1, got {nodes!r}")
        if nodes > 1:
            raise DefinitionError(f"node_count={nodes}: compute target {self.run_config.target!r} runs on one node "
                                  "(a run has one node, on Ray too, for now)")
        return source


def _command(command: Sequence[str] | str) -> list[str]:
    """A command as its words: a string is split as a shell would (no shell runs it)."""
    words = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if not words:
        raise DefinitionError("ScriptRunConfig: command= is empty")
    return words
