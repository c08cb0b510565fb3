"""``SqlStore``: the ``Store`` interface written once, in SQL that SQLite and PostgreSQL both run.

Every query and statement of a store lives here. A store for one database (``SqliteStore``, later
a PostgreSQL store) adds only what differs: how to connect, how to run a read and a write
transaction, how to list tables, and how to turn driver errors into ``WorkspaceError``.

Rules that keep one SQL text valid on both databases:

- Placeholders are written ``?`` and rewritten to the dialect's (``%s`` for psycopg), so SQL text
  here holds no literal ``?`` or ``%``.
- No ``RETURNING`` (SQLite only has it from 3.35, and Python may bundle an older one): a version is
  computed under the write lock instead. ``ON CONFLICT ... DO UPDATE SET c = excluded.c`` is
  standard to both (SQLite 3.24+, PostgreSQL 9.5+).
- Text is ordered in Python, not by ``ORDER BY``: SQLite compares bytes, PostgreSQL uses the
  database's collation (where "alpha" sorts before "Mid"). Python's code-point order equals
  SQLite's byte order on UTF-8, so every store lists in the same order. ``ORDER BY`` is kept for
  numbers (versions, sequence numbers, times), where ``LIMIT 1`` needs it.
- ``IN ()`` is invalid in PostgreSQL: an empty set is answered without a query.
- Read-then-write (the next version number, the next lock sequence number) happens in one
  ``_transaction``, which the implementation makes exclusive among writers.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from kiln.errors import WorkspaceError
from kiln.workspace.store.interface import (
    COMPUTE_FIELDS,
    RUN_FIELDS,
    SERVICE_FIELDS,
    ComputeRecord,
    EnvironmentRecord,
    LockRecord,
    ModelRecord,
    RunRecord,
    ServiceRecord,
    Store,
)
from kiln.workspace.store.migrations import LATEST_VERSION, Dialect, check_version, migrate, read_version

__all__ = ["Connection", "Cursor", "SqlStore"]

_T = TypeVar("_T")

_ENV_FIELDS = tuple(EnvironmentRecord.__dataclass_fields__)
_ENV_COLUMNS = ", ".join(_ENV_FIELDS)
_MODEL_FIELDS = tuple(ModelRecord.__dataclass_fields__)
_MODEL_COLUMNS = ", ".join(_MODEL_FIELDS)
_RUN_COLUMNS = ", ".join(RUN_FIELDS)
_SERVICE_COLUMNS = ", ".join(SERVICE_FIELDS)
_COMPUTE_COLUMNS = ", ".join(COMPUTE_FIELDS)
# rows of schema 2-3 keep their document in ``locks`` (by lock hash); newer rows hold their own
_LOCK_SELECT = ("l.name, l.version, l.seq, l.identity, l.python, l.platform, l.lock_hash,"
                " COALESCE(l.content, k.content), l.created_at"
                " FROM environment_locks AS l LEFT JOIN locks AS k ON k.lock_hash = l.lock_hash")


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class Connection(Protocol):
    """The part of a DB-API connection the store uses: ``execute`` returning a cursor, as both
    ``sqlite3.Connection`` and ``psycopg.Connection`` have. The connection is in autocommit mode;
    transactions are the implementation's ``_transaction``."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


def _placeholders(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class SqlStore(Store):
    """The ``Store`` interface over a SQL database; subclasses connect and run transactions.

    What a subclass provides (each documented below): ``dialect``, ``database``, ``where``, ``_read``,
    ``_transaction``, ``_tables``, ``close``, and the class-level ``schemes``/``cannot_open``/
    ``from_url``. On each new connection, before running anything on it, the subclass calls
    ``_check_schema(conn)``, which migrates the database once per store object.
    """

    #: the database's SQL differences (its parameter placeholder above all)
    dialect: ClassVar[Dialect]
    #: the database's name in messages ("SQLite", "PostgreSQL")
    database: ClassVar[str] = ""

    _schema: int | None = None

    def __init__(self) -> None:
        self._schema = None
        self._sql_cache: dict[str, str] = {}

    # -- what an implementation provides ---------------------------------------------------------

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The database as named in error messages (a path; a URL without its password)."""

    @abc.abstractmethod
    def _read(self, operation: Callable[[Connection], _T]) -> _T:
        """Run ``operation`` on a connection outside any explicit transaction (each statement sees
        the latest committed state) and return its result.

        Retries while the database is momentarily busy; raises ``WorkspaceError`` (naming ``where``)
        for any driver error; once ``close`` was called, raises ``WorkspaceError`` saying it is closed.
        """

    @abc.abstractmethod
    def _transaction(self, operation: Callable[[Connection], _T]) -> _T:
        """Run ``operation`` in one write transaction and commit it; roll back when it raises.

        The transaction must exclude every other writer of the database from its first statement
        (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``BEGIN`` then a transaction-scoped advisory
        lock), because operations read the latest version and write the next one. On a transient
        conflict (busy, serialization failure, deadlock) the whole operation may run again: it
        only reads the database and its arguments. Errors as in ``_read``.
        """

    @abc.abstractmethod
    def _tables(self, conn: Connection) -> list[str]:
        """The names of the tables in the database (to refuse a database that is not Kiln's)."""

    # -- shared plumbing -------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        """``text`` with its ``?`` placeholders in the dialect's style."""
        param = self.dialect.param
        if param == "?":
            return text
        converted = self._sql_cache.get(text)
        if converted is None:
            converted = self._sql_cache[text] = text.replace("?", param)
        return converted

    def _one(self, sql: str, params: Sequence[object] = ()) -> Any:
        sql = self._sql(sql)
        return self._read(lambda conn: conn.execute(sql, params).fetchone())

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        sql = self._sql(sql)
        return list(self._read(lambda conn: conn.execute(sql, params).fetchall()))

    def _check_schema(self, conn: Connection) -> None:
        """Migrate the database on this store's first connection (the subclass serializes calls)."""
        if self._schema is None:
            self._schema = self._ensure_schema(conn)

    def _ensure_schema(self, conn: Connection) -> int:
        version = read_version(conn, self.dialect)
        if version == LATEST_VERSION:
            return version
        check_version(version, where=self.where)
        if version == 0:
            tables = self._tables(conn)
            # a concurrent first open may have migrated meanwhile: then kiln_schema is among them
            if tables and "kiln_schema" not in tables:
                raise WorkspaceError(
                    f"{self.where}: an {self.database} database but not a Kiln workspace store "
                    f"(it has table {tables[0]!r})"
                )
        return migrate(conn, self.dialect, where=self.where)

    @property
    def schema_version(self) -> int:
        self._read(lambda conn: None)
        assert self._schema is not None, "the store's connection did not call _check_schema"
        return self._schema

    # -- environments ----------------------------------------------------------------------------

    def register_environment(self, *, name: str, definition: str, hash: str) -> tuple[EnvironmentRecord, bool]:
        # most registrations of an unchanged definition need no write lock at all
        latest = self.get_environment(name=name)
        if latest is not None and latest.definition == definition:
            return latest, False
        select = self._sql(f"SELECT {_ENV_COLUMNS} FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1")
        insert = self._sql(f"INSERT INTO environments ({_ENV_COLUMNS}) VALUES ({_placeholders(len(_ENV_FIELDS))})")

        def register(conn: Connection) -> tuple[EnvironmentRecord, bool]:
            row = conn.execute(select, (name,)).fetchone()
            if row is not None and row[3] == definition:
                return EnvironmentRecord(*row), False
            record = EnvironmentRecord(name=name, version=1 if row is None else row[1] + 1, hash=hash,
                                       definition=definition, created_at=time.time())
            conn.execute(insert, tuple(getattr(record, f) for f in _ENV_FIELDS))
            return record, True

        return self._transaction(register)

    def get_environment(self, *, name: str, version: int | None = None) -> EnvironmentRecord | None:
        if version is None:
            row = self._one(f"SELECT {_ENV_COLUMNS} FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1",
                            (name,))
        else:
            row = self._one(f"SELECT {_ENV_COLUMNS} FROM environments WHERE name = ? AND version = ?",
                            (name, version))
        return None if row is None else EnvironmentRecord(*row)

    def list_environments(self) -> list[EnvironmentRecord]:
        rows = self._all(
            f"SELECT {', '.join('e.' + c for c in _ENV_FIELDS)} FROM environments AS e"
            " JOIN (SELECT name, MAX(version) AS latest FROM environments GROUP BY name) AS m"
            " ON e.name = m.name AND e.version = m.latest"
        )
        return sorted((EnvironmentRecord(*row) for row in rows), key=lambda r: r.name)

    def list_environment_versions(self, *, name: str) -> list[EnvironmentRecord]:
        rows = self._all(f"SELECT {_ENV_COLUMNS} FROM environments WHERE name = ? ORDER BY version", (name,))
        return [EnvironmentRecord(*row) for row in rows]

    # -- locks -----------------------------------------------------------------------------------

    def add_environment_lock(self, *, name: str, version: int, identity: str, python: str, platform: str,
                             lock_hash: str, content: str) -> LockRecord:
        newest = self._sql(f"SELECT {_LOCK_SELECT} WHERE l.name = ? AND l.version = ? AND l.python = ?"
                           " AND l.platform = ? ORDER BY l.seq DESC LIMIT 1")
        last_seq = self._sql("SELECT MAX(seq) FROM environment_locks WHERE name = ? AND version = ?")
        insert = self._sql("INSERT INTO environment_locks (name, version, seq, identity, python, platform, lock_hash,"
                           " created_at, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")

        def add(conn: Connection) -> LockRecord:
            row = conn.execute(newest, (name, version, python, platform)).fetchone()
            if row is not None and row[6] == lock_hash:
                return LockRecord(*row)
            now = time.time()
            seq = (conn.execute(last_seq, (name, version)).fetchone()[0] or 0) + 1
            conn.execute(insert, (name, version, seq, identity, python, platform, lock_hash, now, content))
            return LockRecord(name, version, seq, identity, python, platform, lock_hash, content, now)

        return self._transaction(add)

    def _one_lock(self, where: str, params: tuple[object, ...]) -> LockRecord | None:
        row = self._one(f"SELECT {_LOCK_SELECT} WHERE {where} ORDER BY l.created_at DESC, l.seq DESC LIMIT 1", params)
        return None if row is None else LockRecord(*row)

    def get_environment_lock(self, *, name: str, version: int, python: str, platform: str) -> LockRecord | None:
        return self._one_lock("l.name = ? AND l.version = ? AND l.python = ? AND l.platform = ?",
                              (name, version, python, platform))

    def find_lock(self, *, identity: str, python: str, platform: str, name: str | None = None
                  ) -> LockRecord | None:
        if name is None:
            return self._one_lock("l.identity = ? AND l.python = ? AND l.platform = ?", (identity, python, platform))
        return self._one_lock("l.identity = ? AND l.python = ? AND l.platform = ? AND l.name = ?",
                              (identity, python, platform, name))

    def latest_lock_of(self, *, name: str, python: str, platform: str) -> LockRecord | None:
        return self._one_lock("l.name = ? AND l.python = ? AND l.platform = ?", (name, python, platform))

    def list_environment_locks(self, *, name: str, version: int) -> list[LockRecord]:
        rows = self._all(f"SELECT {_LOCK_SELECT} WHERE l.name = ? AND l.version = ? ORDER BY l.seq", (name, version))
        return [LockRecord(*row) for row in rows]

    def referenced_lock_hashes(self) -> set[str]:
        return {row[0] for row in self._all("SELECT DISTINCT lock_hash FROM environment_locks")}

    # -- runs ------------------------------------------------------------------------------------

    def create_run(self, record: RunRecord) -> None:
        sql = self._sql(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_placeholders(len(RUN_FIELDS))})")
        values = tuple(getattr(record, f) for f in RUN_FIELDS)
        self._transaction(lambda conn: conn.execute(sql, values))

    def update_run(self, run_id: str, *, only_if_status: frozenset[str] | None = None, **fields: object) -> bool:
        unknown = set(fields) - set(RUN_FIELDS) - {"id"}
        if unknown or not fields:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if only_if_status is not None and not only_if_status:
            return False  # no status allows the change (and ``IN ()`` is not portable SQL)
        where = "id = ?"
        params: list[object] = [*fields.values(), run_id]
        if only_if_status is not None:
            # the status test and the write are one statement: the compare-and-set is atomic
            where += f" AND status IN ({_placeholders(len(only_if_status))})"
            params += sorted(only_if_status)
        sql = self._sql(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE {where}")
        return bool(self._transaction(lambda conn: conn.execute(sql, params).rowcount))

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._one(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return None if row is None else RunRecord(*row)

    def list_runs(self, *, experiment: str | None = None) -> list[RunRecord]:
        if experiment is None:
            rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs")
        else:
            rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE experiment = ?", (experiment,))
        return sorted((RunRecord(*row) for row in rows), key=lambda r: (r.created_at, r.id), reverse=True)

    def referenced_build_keys(self) -> set[str]:
        return {row[0] for row in self._all("SELECT DISTINCT build_key FROM runs WHERE build_key IS NOT NULL")}

    # -- models ----------------------------------------------------------------------------------

    def register_model(self, *, name: str, manifest: str, path: str, run_id: str | None, tags: str,
                       description: str | None, properties: str = "{}", framework: str | None = None,
                       framework_version: str | None = None) -> tuple[ModelRecord, bool]:
        select = self._sql(f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? ORDER BY version DESC LIMIT 1")
        insert = self._sql(f"INSERT INTO models ({_MODEL_COLUMNS}) VALUES ({_placeholders(len(_MODEL_FIELDS))})")

        def register(conn: Connection) -> tuple[ModelRecord, bool]:
            row = conn.execute(select, (name,)).fetchone()
            if row is not None:
                latest = ModelRecord(*row)
                if (latest.manifest, latest.path, latest.tags, latest.description, latest.properties or "{}",
                        latest.framework, latest.framework_version) == (manifest, path, tags, description,
                                                                        properties, framework, framework_version):
                    return latest, False
            record = ModelRecord(name, 1 if row is None else row[1] + 1, manifest, path, run_id, tags, description,
                                 time.time(), properties, framework, framework_version)
            conn.execute(insert, tuple(getattr(record, f) for f in _MODEL_FIELDS))
            return record, True

        return self._transaction(register)

    def update_model(self, *, name: str, version: int, tags: str | None = None, properties: str | None = None,
                     description: str | None = None) -> ModelRecord | None:
        fields = {k: v for k, v in (("tags", tags), ("properties", properties), ("description", description))
                  if v is not None}
        select = self._sql(f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? AND version = ?")
        update = self._sql(f"UPDATE models SET {', '.join(f'{k} = ?' for k in fields)} WHERE name = ? AND version = ?")

        def change(conn: Connection) -> ModelRecord | None:
            if fields:
                conn.execute(update, (*fields.values(), name, version))
            row = conn.execute(select, (name, version)).fetchone()
            return None if row is None else ModelRecord(*row)

        return self._transaction(change)

    def delete_model(self, *, name: str, version: int) -> bool:
        delete = self._sql("DELETE FROM models WHERE name = ? AND version = ?")
        return bool(self._transaction(lambda conn: conn.execute(delete, (name, version)).rowcount > 0))

    def get_model(self, *, name: str, version: int | None = None) -> ModelRecord | None:
        if version is None:
            row = self._one(f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? ORDER BY version DESC LIMIT 1",
                            (name,))
        else:
            row = self._one(f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? AND version = ?", (name, version))
        return None if row is None else ModelRecord(*row)

    def list_models(self, *, name: str | None = None) -> list[ModelRecord]:
        if name is None:
            rows = self._all(f"SELECT {_MODEL_COLUMNS} FROM models")
        else:
            rows = self._all(f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ?", (name,))
        return sorted((ModelRecord(*row) for row in rows), key=lambda r: (r.name, r.version))

    # -- services --------------------------------------------------------------------------------

    def put_service(self, record: ServiceRecord) -> None:
        # an existing service keeps its created_at
        updates = ", ".join(f"{f} = excluded.{f}" for f in SERVICE_FIELDS if f not in ("name", "created_at"))
        sql = self._sql(f"INSERT INTO services ({_SERVICE_COLUMNS}) VALUES ({_placeholders(len(SERVICE_FIELDS))})"
                        f" ON CONFLICT (name) DO UPDATE SET {updates}")
        values = tuple(getattr(record, f) for f in SERVICE_FIELDS)
        self._transaction(lambda conn: conn.execute(sql, values))

    def update_service(self, name: str, **fields: object) -> bool:
        unknown = set(fields) - set(SERVICE_FIELDS) - {"name"}
        if unknown or not fields:
            raise ValueError(f"unknown service fields: {sorted(unknown)}")
        fields = {**fields, "updated_at": time.time()}
        sql = self._sql(f"UPDATE services SET {', '.join(f'{k} = ?' for k in fields)} WHERE name = ?")
        params = [*fields.values(), name]
        return bool(self._transaction(lambda conn: conn.execute(sql, params).rowcount))

    def get_service(self, name: str) -> ServiceRecord | None:
        row = self._one(f"SELECT {_SERVICE_COLUMNS} FROM services WHERE name = ?", (name,))
        return None if row is None else ServiceRecord(*row)

    def list_services(self) -> list[ServiceRecord]:
        rows = self._all(f"SELECT {_SERVICE_COLUMNS} FROM services")
        return sorted((ServiceRecord(*row) for row in rows), key=lambda r: r.name)

    def delete_service(self, name: str) -> bool:
        sql = self._sql("DELETE FROM services WHERE name = ?")
        return bool(self._transaction(lambda conn: conn.execute(sql, (name,)).rowcount))

    # -- attached compute --------------------------------------------------------------------------

    def attach_compute(self, record: ComputeRecord) -> bool:
        values_sql = _placeholders(len(COMPUTE_FIELDS))
        sql = self._sql(f"INSERT INTO compute_targets ({_COMPUTE_COLUMNS}) VALUES ({values_sql})"
                        " ON CONFLICT (name) DO NOTHING")
        values = tuple(getattr(record, f) for f in COMPUTE_FIELDS)
        return bool(self._transaction(lambda conn: conn.execute(sql, values).rowcount))

    def get_compute(self, name: str) -> ComputeRecord | None:
        row = self._one(f"SELECT {_COMPUTE_COLUMNS} FROM compute_targets WHERE name = ?", (name,))
        return None if row is None else ComputeRecord(*row)

    def list_computes(self) -> list[ComputeRecord]:
        rows = self._all(f"SELECT {_COMPUTE_COLUMNS} FROM compute_targets")
        return sorted((ComputeRecord(*row) for row in rows), key=lambda r: r.name)

    def detach_compute(self, name: str) -> bool:
        sql = self._sql("DELETE FROM compute_targets WHERE name = ?")
        return bool(self._transaction(lambda conn: conn.execute(sql, (name,)).rowcount))
