"""The ``Store`` interface: where a workspace keeps its records.

Implementations: ``SqliteStore`` (the default, a file in the workspace folder) and, later, a
PostgreSQL store for teams. Every implementation passes the shared contract tests in
``tests/unit/workspace/test_store_contract.py``. Concurrency is the database's job: two processes
registering at once get distinct, consecutive versions and neither is lost.

Writing a store for another SQL database: subclass ``kiln.workspace.store.sql.SqlStore``, which
holds every query; the new module only connects, runs transactions and maps driver errors (see
``SqlStore``). Then add the class to ``STORES`` in ``kiln.workspace.store`` (``open_store`` picks
it by URL scheme) and its harness to the contract tests. Its schema is the shared
``kiln.workspace.store.migrations``. A store's module is imported on every CLI command: import the
database driver inside the methods that need it, never at module level.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["EnvironmentRecord", "LockRecord", "ModelRecord", "RunRecord", "ServiceRecord", "Store"]

#: run statuses, as in Azure ML; the last three are final
RUN_STATUSES = ("Queued", "Preparing", "Running", "Completed", "Failed", "Canceled")
FINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})


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


@dataclass(frozen=True)
class RunRecord:
    """A run. ``definition`` is JSON (script, arguments, source, snapshot, target, settings); ``tags`` JSON;
    ``pid``/``pid_start`` identify the supervising process, to tell a live run from one whose process died."""

    id: str
    experiment: str
    status: str
    created_at: float
    definition: str
    tags: str = "{}"
    started_at: float | None = None
    ended_at: float | None = None
    environment: str | None = None
    environment_version: int | None = None
    lock_hash: str | None = None
    build_key: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    exit_code: int | None = None
    error: str | None = None


RUN_FIELDS = tuple(RunRecord.__dataclass_fields__)


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version: ``manifest`` is the digest of its files in the blob store; ``path`` the
    name of the file or folder that was registered."""

    name: str
    version: int
    manifest: str
    path: str
    run_id: str | None
    tags: str
    description: str | None
    created_at: float
    #: JSON object (None in models registered before schema 6: read as {})
    properties: str | None = None
    #: Azure ML's ``model_framework`` (``Model.Framework.SCIKITLEARN``...) and ``model_framework_version``
    framework: str | None = None
    framework_version: str | None = None


@dataclass(frozen=True)
class ServiceRecord:
    """A web service: ``config`` is JSON (its deployment: models, entry script, environment, settings);
    ``generation`` counts its deployments (an update makes the next one); ``pid`` is its server process."""

    name: str
    state: str
    port: int
    generation: int
    config: str
    pid: int | None
    pid_start: str | None
    error: str | None
    created_at: float
    updated_at: float


SERVICE_FIELDS = tuple(ServiceRecord.__dataclass_fields__)


@dataclass(frozen=True)
class ComputeRecord:
    """A compute target attached to the workspace (``ComputeTarget.attach``): ``type`` names its kind
    (``"ray"``), ``config`` is JSON (its address; never a credential, at most a ``${VAR}`` reference)."""

    name: str
    type: str
    config: str
    created_at: float


COMPUTE_FIELDS = tuple(ComputeRecord.__dataclass_fields__)


class Store(abc.ABC):
    """A workspace's records. Methods are keyword-only and raise ``WorkspaceError`` on failure.

    A store object is shared by the threads of a process and must be safe to call from any of
    them; a process forked after using it must still be able to use it (with connections of its
    own, never its parent's). The constructor connects to nothing: the first call does.
    """

    #: a short name for messages ("sqlite", "postgresql")
    name: str = ""
    #: the URL schemes this store opens (``open_store`` chooses the store by them)
    schemes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abc.abstractmethod
    def cannot_open(cls, url: str) -> str | None:
        """None when this store can open ``url`` (one of its ``schemes``); otherwise the reason,
        shown to the user after the URL: a malformed URL, a folder that is missing or not writable,
        a driver that is not installed ("pip install kiln[postgres]").

        A cheap probe: it looks at the URL, the file system and installed modules, and never
        connects (a database that is down is reported by the first call instead).
        """

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Store:
        """The store at ``url``, which ``cannot_open`` accepted. Connects to nothing yet."""

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
        """The latest version of every name, sorted by name.

        Names sort by code point (``"Mid"`` before ``"alpha"``), whatever the database's collation:
        every list of this interface sorts text that way.
        """

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

    # ---- runs --------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_run(self, record: RunRecord) -> None:
        """Insert a new run (its id is new); every field is stored and read back unchanged."""

    @abc.abstractmethod
    def update_run(self, run_id: str, *, only_if_status: frozenset[str] | None = None, **fields: object) -> bool:
        """Set ``fields`` of a run; with ``only_if_status``, only while its status is one of those
        (compare-and-set, so that a final status is never overwritten). Returns whether it changed.

        The test and the write are atomic: of concurrent guarded updates (threads, processes) that
        each move the run out of ``only_if_status``, exactly one returns True. An empty
        ``only_if_status`` changes nothing. Field names that are not ``RunRecord``'s, or no field at
        all, raise ``ValueError`` (a programming error, not a ``WorkspaceError``).
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """The run ``run_id``, or None."""

    @abc.abstractmethod
    def list_runs(self, *, experiment: str | None = None) -> list[RunRecord]:
        """Runs (of ``experiment``), newest first: by ``created_at``, then by id, both descending."""

    @abc.abstractmethod
    def referenced_build_keys(self) -> set[str]:
        """Build keys that runs used (cache GC keeps them while the runs exist)."""

    # ---- models ------------------------------------------------------------------------------

    @abc.abstractmethod
    def register_model(self, *, name: str, manifest: str, path: str, run_id: str | None, tags: str,
                       description: str | None, properties: str = "{}", framework: str | None = None,
                       framework_version: str | None = None) -> tuple[ModelRecord, bool]:
        """The next version of ``name`` for these files, as ``(record, True)``; the latest version when
        its files (``manifest`` and ``path``), tags, description, properties and framework are the same
        (``(latest, False)``, nothing written). Atomic as ``register_environment``: concurrent registrations
        get distinct, consecutive versions."""

    @abc.abstractmethod
    def update_model(self, *, name: str, version: int, tags: str | None = None, properties: str | None = None,
                     description: str | None = None) -> ModelRecord | None:
        """Set the given fields of a model version (None: unchanged); the record after, or None when there is
        no such version. Its files never change."""

    @abc.abstractmethod
    def delete_model(self, *, name: str, version: int) -> bool:
        """Remove a model version's record (its files stay in the blob store); False when there was none."""

    @abc.abstractmethod
    def get_model(self, *, name: str, version: int | None = None) -> ModelRecord | None:
        """The given version of ``name`` (the latest when ``version`` is None), or None."""

    @abc.abstractmethod
    def list_models(self, *, name: str | None = None) -> list[ModelRecord]:
        """All versions (of ``name``), by name then version."""

    # ---- services ----------------------------------------------------------------------------

    @abc.abstractmethod
    def put_service(self, record: ServiceRecord) -> None:
        """Insert or replace the service ``record.name``; a replaced service keeps its ``created_at``."""

    @abc.abstractmethod
    def update_service(self, name: str, **fields: object) -> bool:
        """Set ``fields`` of a service, and its ``updated_at`` to now; False when there is no such service.
        Unknown field names raise ``ValueError``."""

    @abc.abstractmethod
    def get_service(self, name: str) -> ServiceRecord | None:
        """The service ``name``, or None."""

    @abc.abstractmethod
    def list_services(self) -> list[ServiceRecord]:
        """Every service, sorted by name."""

    @abc.abstractmethod
    def delete_service(self, name: str) -> bool:
        """Remove the service ``name``; False when there was none."""

    # ---- attached compute ---------------------------------------------------------------------

    @abc.abstractmethod
    def attach_compute(self, record: ComputeRecord) -> bool:
        """Record an attached compute target; False (nothing written) when ``record.name`` is already
        attached. Atomic: of concurrent attaches of one name, exactly one returns True."""

    @abc.abstractmethod
    def get_compute(self, name: str) -> ComputeRecord | None:
        """The attached compute target ``name``, or None."""

    @abc.abstractmethod
    def list_computes(self) -> list[ComputeRecord]:
        """Every attached compute target, sorted by name."""

    @abc.abstractmethod
    def detach_compute(self, name: str) -> bool:
        """Forget the attached compute target ``name``; False when there was none."""

    @property
    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema migration the store is at (connecting, and migrating, first if need be).

        A store migrates an older database to ``migrations.LATEST_VERSION`` on its first use, once
        even when several processes open it at once, and refuses (``WorkspaceError`` naming the
        database) a database whose schema is newer than this Kiln or that is not Kiln's."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards: calls raise ``WorkspaceError``."""
