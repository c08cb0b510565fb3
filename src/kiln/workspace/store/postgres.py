"""``PostgresStore``: a workspace store in a PostgreSQL database, shared by a team's machines.

The queries are ``SqlStore``'s (``sql.py``), shared with SQLite; this module only connects (through
psycopg 3, the ``postgres`` extra), runs transactions and names PostgreSQL's errors.

The URL is ``postgresql://USER@HOST:PORT/DATABASE`` (or ``postgres://``; libpq's query parameters
such as ``?sslmode=require`` pass through). Credentials never enter workspace.json, the database or
a message: the password comes from ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both), or from a
``${VAR}`` reference in the URL (``postgresql://kiln:${KILN_PG_PASSWORD}@db:5432/kiln``), resolved
when connecting. A literal password in the URL is refused, because the URL is stored in
workspace.json.

Concurrency: every write is ``BEGIN`` then one transaction-scoped advisory lock (the key of the
schema migrations, so migrating and writing also exclude each other), so writers serialize as with
SQLite's ``BEGIN IMMEDIATE``: each reads the latest version under the lock and writes the next one.
Readers take no lock. Connections: one per thread (psycopg connections must not be used by two
threads at once), in autocommit mode, opened on the thread's first call; a forked process opens its
own.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from kiln.errors import WorkspaceError
from kiln.workspace.store.connections import ThreadConnections
from kiln.workspace.store.migrations import POSTGRESQL
from kiln.workspace.store.sql import Connection, SqlStore

__all__ = ["PostgresStore", "split_url"]

_T = TypeVar("_T")

_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_MAX_BACKOFF = 0.2
# SQLSTATEs worth running the whole transaction again for: serialization failure, deadlock
_TRANSIENT = frozenset({"40001", "40P01"})
_INSTALL = "the PostgreSQL driver is not installed: pip install 'kiln[postgres]' (psycopg 3)"


def split_url(url: str) -> tuple[str, str | None, str]:
    """``url`` without its password part, the password's environment variable (None: libpq finds the
    password itself), and the address ``host:port`` that messages name.

    Raises ``WorkspaceError`` for a literal password or a malformed URL; messages never hold a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in PostgresStore.schemes:
        raise WorkspaceError(f"{url}: a PostgreSQL store URL is postgresql://USER@HOST:PORT/DATABASE")
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    variable = None
    if at and ":" in userinfo:
        user, _, password = userinfo.partition(":")
        match = _REFERENCE.match(unquote(password))
        if match is None:
            raise WorkspaceError(
                f"{scheme}://{user}:***@{hostport}/{tail}: a password written in the store URL would be stored in "
                "workspace.json: remove it and set PGPASSWORD, use ~/.pgpass, or write a reference such as "
                f"{scheme}://{user}:${{KILN_PG_PASSWORD}}@{hostport}/{tail}"
            )
        variable = match.group(1)
        userinfo = user
    clean = f"{scheme}://{userinfo}{at}{hostport}{slash}{tail}"
    try:
        parts = urlsplit(clean)
        host, port = parts.hostname or "localhost", parts.port or 5432
    except ValueError as e:
        raise WorkspaceError(f"{clean}: not a valid PostgreSQL URL ({e})") from None
    if not tail.partition("?")[0]:
        raise WorkspaceError(f"{clean}: the URL names no database (postgresql://USER@HOST:PORT/DATABASE)")
    return clean, variable, f"{host}:{port}"


class PostgresStore(SqlStore):
    """A workspace store in the PostgreSQL database at ``url`` (its schema created on first use).

    ``timeout`` is how long, in seconds, a call retries a transient conflict before failing, and how
    long connecting may take.
    """

    name = "postgresql"
    schemes = ("postgresql", "postgres")
    dialect = POSTGRESQL
    database = "PostgreSQL"

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        super().__init__()
        self._url, self._variable, self._address = split_url(url)
        self._timeout = timeout
        self._connections: ThreadConnections[Any] = ThreadConnections(self._url, open=self._open,
                                                                      usable=lambda conn: not conn.closed)

    def __repr__(self) -> str:
        return f"PostgresStore({self._url!r})"

    @property
    def where(self) -> str:
        return self._url

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return self._address

    # -- opening by URL --------------------------------------------------------------------------

    @classmethod
    def cannot_open(cls, url: str) -> str | None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return _INSTALL
        try:
            _, variable, _ = split_url(url)
        except WorkspaceError as e:
            return str(e).partition(": ")[2]
        if variable is not None and not os.environ.get(variable):
            return f"the URL's password reference ${{{variable}}} is not set in the environment"
        return None

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(url)

    def close(self) -> None:
        self._connections.close()

    # -- connections -----------------------------------------------------------------------------

    def _read(self, operation: Callable[[Connection], _T]) -> _T:
        return self._run(operation, write=False)

    def _transaction(self, operation: Callable[[Connection], _T]) -> _T:
        return self._run(operation, write=True)

    def _tables(self, conn: Connection) -> list[str]:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                            " ORDER BY table_name").fetchall()
        return [row[0] for row in rows]

    def _run(self, operation: Callable[[Any], _T], *, write: bool) -> _T:
        import psycopg

        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while True:
            conn: Any = None
            try:
                conn = self._connection()
                if not write:
                    return operation(conn)
                conn.execute(self.dialect.begin_write)
                conn.execute(self.dialect.lock_schema)
                result = operation(conn)
                conn.execute("COMMIT")
                return result
            except BaseException as exc:
                # never leave a transaction open (an interrupt included): the next BEGIN would warn and nest
                if conn is not None and not conn.closed and conn.info.transaction_status != 0:  # 0: IDLE
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                if not isinstance(exc, psycopg.Error):
                    raise
                if conn is not None and conn.closed:
                    self._forget(conn)  # the server went away: the next attempt or call connects again
                transient = getattr(exc, "sqlstate", None) in _TRANSIENT
                if not transient or time.monotonic() + delay > deadline:
                    raise self._error(exc) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, _MAX_BACKOFF)

    def _connection(self) -> Any:
        return self._connections.get()

    def _open(self) -> Any:
        conn = self._connect()
        try:
            self._check_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> Any:
        import psycopg

        extra: dict[str, Any] = {}
        if self._variable is not None:
            password = os.environ.get(self._variable)
            if not password:
                raise WorkspaceError(f"{self._url}: the URL's password reference ${{{self._variable}}} is not set "
                                     "in the environment")
            extra["password"] = password
        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, int(self._timeout)),
                                   application_name="kiln", **extra)
        except psycopg.Error as exc:
            raise WorkspaceError(f"{self._url}: can't connect to PostgreSQL at {self._address}: "
                                 f"{self._login_advice(exc) or self._describe(exc, extra.get('password'))}") from None

    def _login_advice(self, exc: BaseException) -> str | None:
        """For a login the server refused for want of a password or for a wrong one: what happened and where the
        password came from or may come from (the driver's text says neither); None for any other failure."""
        text = str(exc)
        role = urlsplit(self._url).username or os.environ.get("PGUSER") or "(the OS user's name)"
        if "no password supplied" in text:
            return (f"the server wants a password for role {role!r} and none was given: set PGPASSWORD, add a "
                    "line HOST:PORT:DATABASE:ROLE:PASSWORD to ~/.pgpass (mode 0600; or the file PGPASSFILE names), "
                    "or write a ${VAR} reference as the URL's password (see the README's Teams section)")
        if "password authentication failed" in text:
            if self._variable is not None:
                source = f"${{{self._variable}}} in the URL"
            elif os.environ.get("PGPASSWORD"):
                source = "PGPASSWORD"
            else:
                source = f"the password file {os.environ.get('PGPASSFILE') or '~/.pgpass'}"
            return f"the server refused the password of role {role!r} (it came from {source})"
        return None

    def _forget(self, conn: Any) -> None:
        self._connections.forget(conn)

    def _describe(self, exc: BaseException, password: str | None = None) -> str:
        """The driver's message on one line, never holding the password, cut to a few hundred characters."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        for secret in (password, os.environ.get("PGPASSWORD")):
            if secret:
                text = text.replace(secret, "***")
        return text[:300]

    def _error(self, exc: BaseException) -> WorkspaceError:
        import psycopg

        if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
            return WorkspaceError(f"{self._url}: lost the connection to PostgreSQL at {self._address}: "
                                  f"{self._describe(exc)}")
        if getattr(exc, "sqlstate", None) == "42501":  # insufficient_privilege
            return WorkspaceError(f"{self._url}: the database role lacks a privilege Kiln needs (see the README's "
                                  f"Teams section): {self._describe(exc)}")
        return WorkspaceError(f"{self._url}: {self._describe(exc)}")
