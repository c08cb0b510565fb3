"""``SqliteStore``: the default store, one SQLite file in the workspace folder.

Built on the stdlib ``sqlite3`` module rather than SQLAlchemy: importing SQLAlchemy costs about
0.2 s, and the CLI opens the store on every command and must answer a cache hit in under 0.3 s.

Concurrency:

- The database runs in WAL mode: readers never block the writer and the writer never blocks
  readers, across threads and processes.
- Every write is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's single write lock
  before reading anything. Concurrent registrations therefore serialize: each reads the latest
  version under the lock and writes the next one, so versions are distinct, consecutive and none
  is lost. Waiting for the lock is SQLite's busy timeout (``timeout``, 30 s by default); the rare
  ``SQLITE_BUSY`` that SQLite returns without waiting (e.g. while another connection recovers the
  WAL) is retried here with exponential backoff until the same deadline.
- ``synchronous`` stays at SQLite's default (FULL): a version number handed to a user survives a
  power cut. Writes are rare, and a registration still takes well under a millisecond.

Connections: one per thread, opened lazily on the thread's first call (``threading.local``), so
that threads read in parallel without a Python lock and no connection is ever shared by two
threads at once. A process forked after use opens its own connections (SQLite connections must
not cross ``fork``). ``close`` closes the connections of every thread; those of threads that have
ended are closed when the next thread connects.

Opening is cheap: the constructor touches nothing; the first call connects and reads the schema
version (a fraction of a millisecond), and only runs migrations when the version is behind.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kiln.errors import WorkspaceError
from kiln.workspace.store.interface import (
    RUN_FIELDS,
    SERVICE_FIELDS,
    EnvironmentRecord,
    LockRecord,
    ModelRecord,
    RunRecord,
    ServiceRecord,
    Store,
)
from kiln.workspace.store.migrations import LATEST_VERSION, SQLITE, check_version, migrate, read_version

__all__ = ["SqliteStore"]

_T = TypeVar("_T")

_COLUMNS = "name, version, hash, definition, created_at"
_MODEL_COLUMNS = "name, version, manifest, path, run_id, tags, description, created_at"
# rows of schema 2-3 keep their document in ``locks`` (by lock hash); newer rows hold their own
_LOCK_SELECT = ("l.name, l.version, l.seq, l.identity, l.python, l.platform, l.lock_hash,"
                " COALESCE(l.content, k.content), l.created_at"
                " FROM environment_locks AS l LEFT JOIN locks AS k ON k.lock_hash = l.lock_hash")
_MAX_BACKOFF = 0.1
# SQLite's primary result codes (the sqlite3 module only names them from Python 3.11)
_BUSY, _LOCKED, _CORRUPT, _CANTOPEN, _NOTADB = 5, 6, 11, 14, 26


class _ThreadConnection(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0


class SqliteStore(Store):
    """A workspace store in the SQLite file at ``path`` (created, with its schema, on first use).

    ``timeout`` is how long, in seconds, a call waits for another writer before failing.
    """

    name = "sqlite"

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            # each thread has its own connection, hence its own in-memory database
            raise WorkspaceError(f"{path}: a SQLite store needs a file path")
        self._path = Path(path)
        self._timeout = timeout
        self._local = _ThreadConnection()
        self._lock = threading.Lock()  # guards the fields below and the schema check
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._schema: int | None = None
        self._closed = False
        self._pid = os.getpid()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    # -- the Store interface ------------------------------------------------------------------

    def register_environment(self, *, name: str, definition: str, hash: str) -> tuple[EnvironmentRecord, bool]:
        # most registrations of an unchanged definition need no write lock at all
        latest = self.get_environment(name=name)
        if latest is not None and latest.definition == definition:
            return latest, False

        def register(conn: sqlite3.Connection) -> tuple[EnvironmentRecord, bool]:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
            if row is not None and row[3] == definition:
                conn.execute("COMMIT")
                return EnvironmentRecord(*row), False
            record = EnvironmentRecord(
                name=name,
                version=1 if row is None else row[1] + 1,
                hash=hash,
                definition=definition,
                created_at=time.time(),
            )
            conn.execute(
                f"INSERT INTO environments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (record.name, record.version, record.hash, record.definition, record.created_at),
            )
            conn.execute("COMMIT")
            return record, True

        return self._run(register)

    def get_environment(self, *, name: str, version: int | None = None) -> EnvironmentRecord | None:
        if version is None:
            sql = f"SELECT {_COLUMNS} FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1"
            params: tuple[object, ...] = (name,)
        else:
            sql = f"SELECT {_COLUMNS} FROM environments WHERE name = ? AND version = ?"
            params = (name, version)
        row = self._run(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else EnvironmentRecord(*row)

    def list_environments(self) -> list[EnvironmentRecord]:
        sql = (
            f"SELECT {', '.join('e.' + c for c in _COLUMNS.split(', '))} FROM environments AS e"
            " JOIN (SELECT name, MAX(version) AS latest FROM environments GROUP BY name) AS m"
            " ON e.name = m.name AND e.version = m.latest ORDER BY e.name"
        )
        rows = self._run(lambda conn: conn.execute(sql).fetchall())
        return [EnvironmentRecord(*row) for row in rows]

    def list_environment_versions(self, *, name: str) -> list[EnvironmentRecord]:
        sql = f"SELECT {_COLUMNS} FROM environments WHERE name = ? ORDER BY version"
        rows = self._run(lambda conn: conn.execute(sql, (name,)).fetchall())
        return [EnvironmentRecord(*row) for row in rows]

    def add_environment_lock(self, *, name: str, version: int, identity: str, python: str, platform: str,
                             lock_hash: str, content: str) -> LockRecord:
        def add(conn: sqlite3.Connection) -> LockRecord:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                f"SELECT {_LOCK_SELECT} WHERE l.name = ? AND l.version = ? AND l.python = ? AND l.platform = ?"
                " ORDER BY l.seq DESC LIMIT 1", (name, version, python, platform)).fetchone()
            if row is not None and row[6] == lock_hash:
                conn.execute("COMMIT")
                return LockRecord(*row)
            now = time.time()
            seq_row = conn.execute("SELECT MAX(seq) FROM environment_locks WHERE name = ? AND version = ?",
                                   (name, version)).fetchone()
            seq = (seq_row[0] or 0) + 1
            conn.execute(
                "INSERT INTO environment_locks (name, version, seq, identity, python, platform, lock_hash, created_at,"
                " content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, version, seq, identity, python, platform, lock_hash, now, content))
            conn.execute("COMMIT")
            return LockRecord(name, version, seq, identity, python, platform, lock_hash, content, now)

        return self._run(add)

    def _one_lock(self, where: str, params: tuple[object, ...]) -> LockRecord | None:
        sql = f"SELECT {_LOCK_SELECT} WHERE {where} ORDER BY l.created_at DESC, l.seq DESC LIMIT 1"
        row = self._run(lambda conn: conn.execute(sql, params).fetchone())
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
        sql = f"SELECT {_LOCK_SELECT} WHERE l.name = ? AND l.version = ? ORDER BY l.seq"
        rows = self._run(lambda conn: conn.execute(sql, (name, version)).fetchall())
        return [LockRecord(*row) for row in rows]

    def referenced_lock_hashes(self) -> set[str]:
        rows = self._run(lambda conn: conn.execute("SELECT DISTINCT lock_hash FROM environment_locks").fetchall())
        return {row[0] for row in rows}

    # -- runs ------------------------------------------------------------------------------------

    def create_run(self, record: RunRecord) -> None:
        values = tuple(getattr(record, f) for f in RUN_FIELDS)
        sql = f"INSERT INTO runs ({', '.join(RUN_FIELDS)}) VALUES ({', '.join('?' for _ in RUN_FIELDS)})"

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, values)
            conn.execute("COMMIT")

        self._run(insert)

    def update_run(self, run_id: str, *, only_if_status: frozenset[str] | None = None, **fields: object) -> bool:
        unknown = set(fields) - set(RUN_FIELDS) - {"id"}
        if unknown or not fields:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        params: list[object] = [*fields.values(), run_id]
        where = "id = ?"
        if only_if_status is not None:
            where += f" AND status IN ({', '.join('?' for _ in only_if_status)})"
            params += sorted(only_if_status)

        def update(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(f"UPDATE runs SET {sets} WHERE {where}", params).rowcount
            conn.execute("COMMIT")
            return bool(changed)

        return self._run(update)

    def get_run(self, run_id: str) -> RunRecord | None:
        sql = f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE id = ?"
        row = self._run(lambda conn: conn.execute(sql, (run_id,)).fetchone())
        return None if row is None else RunRecord(*row)

    def list_runs(self, *, experiment: str | None = None) -> list[RunRecord]:
        sql = f"SELECT {', '.join(RUN_FIELDS)} FROM runs"
        params: tuple[object, ...] = ()
        if experiment is not None:
            sql += " WHERE experiment = ?"
            params = (experiment,)
        sql += " ORDER BY created_at DESC, id DESC"
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [RunRecord(*row) for row in rows]

    def referenced_build_keys(self) -> set[str]:
        rows = self._run(lambda conn: conn.execute(
            "SELECT DISTINCT build_key FROM runs WHERE build_key IS NOT NULL").fetchall())
        return {row[0] for row in rows}

    # -- models ----------------------------------------------------------------------------------

    def register_model(self, *, name: str, manifest: str, path: str, run_id: str | None, tags: str,
                       description: str | None) -> tuple[ModelRecord, bool]:
        def register(conn: sqlite3.Connection) -> tuple[ModelRecord, bool]:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? ORDER BY version DESC LIMIT 1",
                               (name,)).fetchone()
            if row is not None and (row[2], row[3], row[5], row[6]) == (manifest, path, tags, description):
                conn.execute("COMMIT")
                return ModelRecord(*row), False
            record = ModelRecord(name, 1 if row is None else row[1] + 1, manifest, path, run_id, tags, description,
                                 time.time())
            conn.execute(f"INSERT INTO models ({_MODEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         tuple(getattr(record, f) for f in _MODEL_COLUMNS.split(", ")))
            conn.execute("COMMIT")
            return record, True

        return self._run(register)

    def get_model(self, *, name: str, version: int | None = None) -> ModelRecord | None:
        if version is None:
            sql = f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? ORDER BY version DESC LIMIT 1"
            params: tuple[object, ...] = (name,)
        else:
            sql = f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = ? AND version = ?"
            params = (name, version)
        row = self._run(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else ModelRecord(*row)

    def list_models(self, *, name: str | None = None) -> list[ModelRecord]:
        sql = f"SELECT {_MODEL_COLUMNS} FROM models"
        params: tuple[object, ...] = ()
        if name is not None:
            sql += " WHERE name = ?"
            params = (name,)
        rows = self._run(lambda conn: conn.execute(sql + " ORDER BY name, version", params).fetchall())
        return [ModelRecord(*row) for row in rows]

    # -- services --------------------------------------------------------------------------------

    def put_service(self, record: ServiceRecord) -> None:
        values = tuple(getattr(record, f) for f in SERVICE_FIELDS)
        sql = (f"INSERT INTO services ({', '.join(SERVICE_FIELDS)}) VALUES ({', '.join('?' for _ in SERVICE_FIELDS)})"
               f" ON CONFLICT (name) DO UPDATE SET "
               + ", ".join(f"{f} = excluded.{f}" for f in SERVICE_FIELDS if f not in ("name", "created_at")))

        def put(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, values)
            conn.execute("COMMIT")

        self._run(put)

    def update_service(self, name: str, **fields: object) -> bool:
        unknown = set(fields) - set(SERVICE_FIELDS) - {"name"}
        if unknown or not fields:
            raise ValueError(f"unknown service fields: {sorted(unknown)}")
        fields = {**fields, "updated_at": time.time()}
        sets = ", ".join(f"{k} = ?" for k in fields)

        def update(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(f"UPDATE services SET {sets} WHERE name = ?", [*fields.values(), name]).rowcount
            conn.execute("COMMIT")
            return bool(changed)

        return self._run(update)

    def get_service(self, name: str) -> ServiceRecord | None:
        sql = f"SELECT {', '.join(SERVICE_FIELDS)} FROM services WHERE name = ?"
        row = self._run(lambda conn: conn.execute(sql, (name,)).fetchone())
        return None if row is None else ServiceRecord(*row)

    def list_services(self) -> list[ServiceRecord]:
        sql = f"SELECT {', '.join(SERVICE_FIELDS)} FROM services ORDER BY name"
        return [ServiceRecord(*row) for row in self._run(lambda conn: conn.execute(sql).fetchall())]

    def delete_service(self, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute("DELETE FROM services WHERE name = ?", (name,)).rowcount
            conn.execute("COMMIT")
            return bool(changed)

        return self._run(delete)

    @property
    def schema_version(self) -> int:
        self._run(lambda conn: None)
        assert self._schema is not None
        return self._schema

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for _, conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # -- connections ----------------------------------------------------------------------------

    def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``operation`` on this thread's connection, retrying while the database is busy."""
        deadline = time.monotonic() + self._timeout
        delay = 0.002
        while True:
            conn: sqlite3.Connection | None = None
            try:
                conn = self._connection()
                return operation(conn)
            except BaseException as exc:
                # never leave a transaction open (an interrupt included): the next BEGIN would fail
                if conn is not None and conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if not isinstance(exc, sqlite3.Error):
                    raise
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise self._error(exc) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, _MAX_BACKOFF)

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        if local.conn is not None and local.pid == pid:
            if self._closed:
                raise WorkspaceError(f"{self._path}: the store is closed")
            return local.conn
        with self._lock:
            if self._closed:
                raise WorkspaceError(f"{self._path}: the store is closed")
            if self._pid != pid:
                # forked: the parent's connections belong to the parent; never use or close them here
                self._connections, self._pid = [], pid
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
            self._prune()
            self._connections.append((threading.current_thread(), conn))
        local.conn, local.pid = conn, pid
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        # journal_mode is stored in the file: only the first connection to a new database changes it
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        if self._schema is None:
            self._schema = self._ensure_schema(conn)

    def _ensure_schema(self, conn: sqlite3.Connection) -> int:
        version = read_version(conn, SQLITE)
        if version == LATEST_VERSION:
            return version
        where = str(self._path)
        check_version(version, where=where)
        if version == 0:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            # a concurrent first open may have migrated meanwhile: then kiln_schema is among them
            if tables and "kiln_schema" not in tables:
                raise WorkspaceError(
                    f"{where}: an SQLite database but not a Kiln workspace store (it has table {tables[0]!r})"
                )
        return migrate(conn, SQLITE, where=where)

    def _prune(self) -> None:
        """Close the connections of threads that have ended (called with ``_lock`` held)."""
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._connections = alive

    def _error(self, exc: sqlite3.Error) -> WorkspaceError:
        code = _primary_code(exc)
        if code == _NOTADB or "not a database" in str(exc):
            return WorkspaceError(f"{self._path}: not an SQLite database (is the file corrupt?)")
        if code == _CORRUPT:
            return WorkspaceError(f"{self._path}: the database is corrupt ({exc})")
        if code == _CANTOPEN:
            return WorkspaceError(f"{self._path}: can't open the database ({exc})")
        return WorkspaceError(f"{self._path}: {exc}")


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    return None if code is None else code & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    code = _primary_code(exc)
    if code is not None:
        return code in (_BUSY, _LOCKED)
    message = str(exc)
    return "database is locked" in message or "database table is locked" in message or "busy" in message
