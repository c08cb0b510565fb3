"""The ``Store`` interface: where a workspace keeps its records.

Implementations: ``SqliteStore`` (the default, a file in the workspace folder) and, later, a
PostgreSQL store for teams. Every implementation passes the shared contract tests in
``tests/unit/workspace/test_store_contract.py``. Concurrency is the database's job: two processes
registering at once get distinct, consecutive versions and neither is lost.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

__all__ = ["EnvironmentRecord", "Store"]


@dataclass(frozen=True)
class EnvironmentRecord:
    """One registered version of an environment, as stored.

    ``definition`` is Kiln's canonical JSON text of the whole definition (name and version
    excluded); ``hash`` its build identity (see ``kiln.environment.identity``).
    """

    name: str
    version: int
    hash: str
    definition: str
    created_at: float


class Store(abc.ABC):
    """A workspace's records. Methods are keyword-only and raise ``WorkspaceError`` on failure."""

    #: a short name for messages ("sqlite", "postgresql")
    name: str = ""

    @abc.abstractmethod
    def register_environment(self, *, name: str, definition: str, hash: str) -> tuple[EnvironmentRecord, bool]:
        """Store ``definition`` as the next version of ``name``, atomically.

        When the latest version of ``name`` has exactly this ``definition`` text, nothing is written
        and ``(latest, False)`` is returned; otherwise ``(new_record, True)`` with version latest + 1
        (1 for a new name).
        """

    @abc.abstractmethod
    def get_environment(self, *, name: str, version: int | None = None) -> EnvironmentRecord | None:
        """The given version of ``name`` (the latest when ``version`` is None), or None."""

    @abc.abstractmethod
    def list_environments(self) -> list[EnvironmentRecord]:
        """The latest version of every name, sorted by name."""

    @abc.abstractmethod
    def list_environment_versions(self, *, name: str) -> list[EnvironmentRecord]:
        """Every version of ``name``, oldest first (empty when the name is unknown)."""

    @property
    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema migration the store is at."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
