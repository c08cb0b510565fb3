"""The ``Store`` interface: where a workspace keeps its records.

Implementations: ``SqliteStore`` (the default, a file in the workspace folder) and, later, a
PostgreSQL store for teams. Every implementation passes the shared contract tests in
``tests/unit/workspace/test_store_contract.py``. Concurrency is the database's job: two processes
registering at once get distinct, consecutive versions and neither is lost.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

__all__ = ["EnvironmentRecord", "LockRecord", "Store"]


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


@dataclass(frozen=True)
class LockRecord:
    """A lock attached to an environment version. ``seq`` counts the locks of that version (an explicit
    upgrade adds one; old ones are never changed); ``identity`` is the definition's build hash it was
    resolved from, for ``python`` (``X.Y``) on ``platform``; ``content`` is the lock document (JSON)."""

    name: str
    version: int
    seq: int
    identity: str
    python: str
    platform: str
    lock_hash: str
    content: str
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

    @abc.abstractmethod
    def add_environment_lock(self, *, name: str, version: int, identity: str, python: str, platform: str,
                             lock_hash: str, content: str) -> LockRecord:
        """Attach a lock to an environment version (as its newest lock for ``python``/``platform``).

        The lock document is stored once per ``lock_hash``; attaching the lock a version already has
        as its newest returns that record and writes nothing.
        """

    @abc.abstractmethod
    def get_environment_lock(self, *, name: str, version: int, python: str, platform: str) -> LockRecord | None:
        """The newest lock of that version for ``python``/``platform``, or None."""

    @abc.abstractmethod
    def find_lock(self, *, identity: str, python: str, platform: str, name: str | None = None
                  ) -> LockRecord | None:
        """The newest lock resolved from ``identity`` (any environment, or only ``name``'s), or None."""

    @abc.abstractmethod
    def latest_lock_of(self, *, name: str, python: str, platform: str) -> LockRecord | None:
        """The newest lock of any version of ``name``: the preferences when a new version is resolved."""

    @abc.abstractmethod
    def list_environment_locks(self, *, name: str, version: int) -> list[LockRecord]:
        """Every lock of that version, oldest first."""

    @abc.abstractmethod
    def referenced_lock_hashes(self) -> set[str]:
        """Every lock hash some environment version uses (what cache GC must keep)."""

    @property
    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema migration the store is at."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
