"""What to run: ``ScriptRunConfig`` and its ``RunConfiguration``, with Azure ML SDK v1's names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import DefinitionError
from kiln.runs.targets.registry import DEFAULT_TARGET, target_name

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["HistoryConfiguration", "RunConfiguration", "ScriptRunConfig"]

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
class RunConfiguration:
    environment: Environment | None = None
    target: str = DEFAULT_TARGET
    history: HistoryConfiguration = field(default_factory=HistoryConfiguration)
    max_run_duration_seconds: float | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)


class ScriptRunConfig:
    """A script, its arguments, its source folder, where to run it and in which environment.

    Without an environment, runs use Kiln's default environment (``default-env``: Kiln's default
    Python with no packages), registered in the workspace on first use.
    """

    def __init__(self, source_directory: str | os.PathLike[str] = ".", script: str | None = None,
                 arguments: Sequence[Any] | None = None, run_config: RunConfiguration | None = None,
                 compute_target: str | None = None, environment: Environment | None = None,
                 max_run_duration_seconds: float | None = None, command: Sequence[str] | None = None) -> None:
        if command is not None:
            raise DefinitionError("ScriptRunConfig(command=...) is not supported: give script= and arguments=")
        if not script:
            raise DefinitionError("ScriptRunConfig: script is required (a file inside source_directory)")
        self.source_directory = str(source_directory)
        self.script = str(script)
        self.arguments = [str(a) for a in (arguments or [])]
        self.run_config = run_config or RunConfiguration()
        if environment is not None:
            self.run_config.environment = environment
        if compute_target is not None:
            self.run_config.target = compute_target
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds

    @property
    def environment(self) -> Environment | None:
        return self.run_config.environment

    @environment.setter
    def environment(self, value: Environment | None) -> None:
        self.run_config.environment = value

    @property
    def compute_target(self) -> str:
        return self.run_config.target

    def validate(self) -> Path:
        """Check the config; return the absolute source folder."""
        target_name(self.run_config.target)
        source = Path(self.source_directory).expanduser().resolve()
        if not source.is_dir():
            raise DefinitionError(f"source_directory {self.source_directory!r} is not a folder")
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
        return source
