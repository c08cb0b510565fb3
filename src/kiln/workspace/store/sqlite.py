"""``SqliteStore``: the default store, one SQLite file in the workspace folder.

The queries are ``SqlStore``'s (``sql.py``), shared with every SQL store; this module only connects,
runs transactions and names SQLite's errors.

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
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kiln.errors import WorkspaceError
from kiln.workspace.store.connections import ThreadConnections
from kiln.workspace.store.migrations import SQLITE
from kiln.workspace.store.sql import Connection, SqlStore

__all__ = ["SqliteStore"]

_T = TypeVar("_T")

_MAX_BACKOFF = 0.1
# SQLite's primary result codes (the sqlite3 module only names them from Python 3.11)
_BUSY, _LOCKED, _CORRUPT, _CANTOPEN, _NOTADB = 5, 6, 11, 14, 26


class SqliteStore(SqlStore):
    """A workspace store in the SQLite file at ``path`` (created, with its schema, on first use).

    ``timeout`` is how long, in seconds, a call waits for another writer before failing.
    """

    name = "sqlite"
    schemes = ("sqlite",)
    dialect = SQLITE
    database = "SQLite"

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            # each thread has its own connection, hence its own in-memory database
            raise WorkspaceError(f"{path}: a SQLite store needs a file path")
        super().__init__()
        self._path = Path(path)
        self._timeout = timeout
        self._connections: ThreadConnections[sqlite3.Connection] = ThreadConnections(str(self._path),
                                                                                   open=self._open)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    @property
    def where(self) -> str:
        return str(self._path)

    # -- opening by URL: sqlite:///relative.db, sqlite:////absolute.db, or a plain path --------------------

    @classmethod
    def cannot_open(cls, url: str) -> str | None:
        path = _path_of(url)
        if path is None:
            return "a SQLite store URL is sqlite:///<path to the database file>"
        if str(path) == ":memory:" or str(path).startswith("file:"):
            return "a SQLite store needs a file path"
        if path.is_dir():
            return "a folder, not a SQLite database file"
        folder = path.parent
        if not folder.is_dir():
            return f"its folder {folder} does not exist"
        # SQLite creates its journal files (-wal, -shm) beside the database, even to read it
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"its folder {folder} is not writable (SQLite keeps its journal files beside the database)"
        return None

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        path = _path_of(url)
        if path is None:
            raise WorkspaceError(f"{url}: {cls.cannot_open(url)}")
        return cls(path)

    def close(self) -> None:
        self._connections.close()

    # -- connections ----------------------------------------------------------------------------

    def _read(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        return self._run(operation)

    def _transaction(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        def transaction(conn: sqlite3.Connection) -> _T:
            # IMMEDIATE takes SQLite's single write lock before reading anything (see the module docstring)
            conn.execute("BEGIN IMMEDIATE")
            result = operation(conn)
            conn.execute("COMMIT")
            return result

        return self._run(transaction)

    def _tables(self, conn: Connection) -> list[str]:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]

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
        return self._connections.get()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        # journal_mode is stored in the file: only the first connection to a new database changes it
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        self._check_schema(conn)

    def _error(self, exc: sqlite3.Error) -> WorkspaceError:
        code = _primary_code(exc)
        if code == _NOTADB or "not a database" in str(exc):
            return WorkspaceError(f"{self._path}: not an SQLite database (is the file corrupt?)")
        if code == _CORRUPT:
            return WorkspaceError(f"{self._path}: the database is corrupt ({exc})")
        if code == _CANTOPEN:
            return WorkspaceError(f"{self._path}: can't open the database ({exc})")
        return WorkspaceError(f"{self._path}: {exc}")


def _path_of(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (or a plain path); None when the URL is malformed.

    As in SQLAlchemy's URLs, ``sqlite:///data/kiln.db`` is relative and ``sqlite:////abs/kiln.db``
    absolute.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return Path(url) if url else None
    if scheme != "sqlite" or not rest.startswith("/") or rest == "/":
        return None
    return Path(rest[1:])


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    return None if code is None else code & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    code = _primary_code(exc)
    if code is not None:
        return code in (_BUSY, _LOCKED)
    message = str(exc)
    return "database is locked" in message or "database table is locked" in message or "busy" in message
