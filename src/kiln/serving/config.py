"""What to deploy and how: ``InferenceConfig`` and the local deployment configuration (Azure ML's names)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import DefinitionError

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["DeploymentConfiguration", "InferenceConfig"]

DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024


class InferenceConfig:
    """An entry script (``init()``/``run()``), the folder it lives in, and the environment it runs in.

    As Azure ML's: with a ``source_directory`` the whole folder is deployed and ``entry_script`` is a path
    inside it; without one (the default) only the entry script is deployed, and ``entry_script`` is a path
    from the current folder."""

    def __init__(self, entry_script: str, source_directory: str | os.PathLike[str] | None = None,
                 environment: Environment | None = None, **kwargs: Any) -> None:
        del kwargs  # Azure ML's runtime=, conda_file=, extra_docker_file_steps=...: not used locally
        if not entry_script:
            raise DefinitionError("InferenceConfig: entry_script is required")
        self.entry_script = str(entry_script)
        self.source_directory = None if source_directory is None else str(source_directory)
        self.environment = environment

    def validate(self) -> Path | None:
        """The resolved source folder (None without one); raises when the entry script can't be found."""
        if self.source_directory is None:
            self.entry_script_file()
            return None
        source = Path(self.source_directory).expanduser().resolve()
        if not source.is_dir():
            raise DefinitionError(f"InferenceConfig: source_directory {self.source_directory!r} is not a folder")
        script = Path(self.entry_script)
        if script.is_absolute() or ".." in script.parts:
            raise DefinitionError(f"InferenceConfig: entry_script {self.entry_script!r} must be a path inside "
                                  "source_directory")
        if not (source / script).is_file():
            raise DefinitionError(f"InferenceConfig: entry_script {self.entry_script!r} not found in {source}")
        return source

    def entry_script_file(self) -> Path:
        """The entry script's absolute path (inside ``source_directory``, or from the current folder)."""
        if self.source_directory is not None:
            return Path(self.source_directory).expanduser().resolve() / self.entry_script
        script = Path(self.entry_script).expanduser().absolute()
        if not script.is_file():
            raise DefinitionError(f"InferenceConfig: entry_script {self.entry_script!r} not found (without a "
                                  f"source_directory it is a path from the current folder, {Path.cwd()})")
        return script


@dataclass
class DeploymentConfiguration:
    """How the local service runs. ``container=True`` runs it in a container of the environment's image, as
    Azure ML's local web service runs (``kiln.serving.container``). ``cpu_cores`` and ``memory_gb`` are
    accepted (as Azure ML's) and not enforced; ``workers`` sets the worker processes; requests past
    ``timeout_seconds`` get 504, bodies past ``max_payload_bytes`` 413; ``batching`` lets an entry script's
    ``run_batch(list)`` take several requests at once (at most ``max_batch_size``: what queued while the worker
    was busy). By default a batch goes as soon as a worker is free, never waiting (waiting lost to batching off
    in a closed loop: issue 15); ``max_batch_wait_ms`` > 0 makes a worker under load wait that long for company
    first."""

    port: int | None = None
    host: str = "127.0.0.1"
    workers: int = 1
    auth_enabled: bool = False
    timeout_seconds: float = 60.0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD
    batching: bool = False
    max_batch_size: int = 32
    max_batch_wait_ms: float = 0.0
    debug: bool = False
    cpu_cores: float | None = None
    memory_gb: float | None = None
    container: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        def number(field: str, kind: type) -> float:
            value = getattr(self, field)
            try:
                if isinstance(value, bool):
                    raise ValueError
                return float(kind(value))
            except (TypeError, ValueError):
                raise DefinitionError(f"deployment configuration: {field} {value!r} is not a number") from None

        if self.port is not None and not 0 < number("port", int) < 65536:
            raise DefinitionError(f"deployment configuration: port {self.port!r} is not a TCP port")
        if number("workers", int) < 1:
            raise DefinitionError(f"deployment configuration: workers must be at least 1, got {self.workers!r}")
        if not number("timeout_seconds", float) > 0:
            raise DefinitionError(f"deployment configuration: timeout_seconds must be positive, got "
                                  f"{self.timeout_seconds!r}")
        if number("max_payload_bytes", int) < 1:
            raise DefinitionError(f"deployment configuration: max_payload_bytes must be positive, got "
                                  f"{self.max_payload_bytes!r}")
        if number("max_batch_size", int) < 1:
            raise DefinitionError(f"deployment configuration: max_batch_size must be at least 1, got "
                                  f"{self.max_batch_size!r}")
        if number("max_batch_wait_ms", float) < 0:
            raise DefinitionError(f"deployment configuration: max_batch_wait_ms must not be negative, got "
                                  f"{self.max_batch_wait_ms!r}")

    def settings(self) -> dict[str, Any]:
        return {"host": self.host, "workers": int(self.workers), "auth_enabled": bool(self.auth_enabled),
                "timeout_seconds": float(self.timeout_seconds), "max_payload_bytes": int(self.max_payload_bytes),
                "batching": bool(self.batching), "max_batch_size": int(self.max_batch_size),
                "max_batch_wait_ms": float(self.max_batch_wait_ms), "debug": bool(self.debug),
                "container": bool(self.container)}
