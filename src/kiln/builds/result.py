"""What a build gives back: ``BuildResult`` (a ready environment) and the ``Progress`` callback type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.builds.lock import Lock, LockChange

__all__ = ["BuildResult", "Progress"]

#: progress callback: (phase, message); phases: interpreter, lock, resolve, wait, build, done
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class BuildResult:
    """A ready environment. ``python`` is its interpreter; ``environ()`` gives the variables to run with."""

    environment: str
    identity: str
    python: Path
    python_version: str
    backend: str
    cache_hit: bool
    environment_variables: dict[str, str]
    lock: Lock | None = None
    key: str | None = None
    path: Path | None = None
    log_path: Path | None = None
    link_mode: str | None = None
    seconds: float = 0.0
    lock_changes: list[LockChange] = field(default_factory=list)
    resolved: bool = False
    #: the folder to activate to run ``python`` (the backend's answer); None: run it as it is
    virtual_env: Path | None = None

    @property
    def lock_hash(self) -> str | None:
        return None if self.lock is None else self.lock.lock_hash

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the environment activated and its variables set."""
        import os

        env = dict(os.environ if base is None else base)
        if self.virtual_env is not None:
            env["VIRTUAL_ENV"] = str(self.virtual_env)
            env["PATH"] = f"{self.virtual_env / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            env.pop("PYTHONHOME", None)
        env.update(self.environment_variables)
        return env

    def get_log(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "identity": self.identity, "python": str(self.python),
                "python_version": self.python_version, "backend": self.backend, "cache_hit": self.cache_hit,
                "lock_hash": self.lock_hash, "key": self.key, "path": None if self.path is None else str(self.path),
                "link_mode": self.link_mode, "seconds": round(self.seconds, 3), "resolved": self.resolved,
                "lock_changes": [str(c) for c in self.lock_changes],
                "packages": [] if self.lock is None else [f"{p.name}=={p.version}" for p in self.lock.packages]}
