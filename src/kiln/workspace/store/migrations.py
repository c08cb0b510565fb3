"""Versioned schema migrations shared by every SQL store.

``MIGRATIONS`` is an ordered list; migration N takes a database from schema N-1 to N, and the
``kiln_schema`` table (one row, ``id = 1``) holds the number of the last one applied. A migration
is only ever appended, never edited once released.

The SQL is portable between SQLite and PostgreSQL: ``TEXT``, ``INTEGER``, ``BIGINT`` and
``DOUBLE PRECISION`` mean the same thing to both (SQLite maps them to its TEXT, INTEGER and REAL
affinities). What differs between the two databases lives in one ``Dialect`` each: how to open a
write transaction that excludes other migrators, how to ask whether a table exists, and the
placeholder of the driver's parameter style.

``migrate`` expects a DB-API connection in autocommit mode (``sqlite3`` with
``isolation_level=None``, psycopg with ``autocommit=True``): it issues ``BEGIN``/``COMMIT``
itself so that the same code controls the transaction on both drivers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kiln.errors import WorkspaceError

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "POSTGRESQL",
    "SQLITE",
    "Dialect",
    "Migration",
    "check_version",
    "migrate",
    "read_version",
]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``version`` is the schema number it leads to."""

    version: int
    description: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL databases a store may use."""

    name: str
    #: opens a transaction that holds the write lock from its first statement
    begin_write: str
    #: run right after ``begin_write``: serializes concurrent migrators ("" when ``begin_write`` does)
    lock_schema: str
    #: one parameter, ``{param}``: the table name; returns a row when the table exists
    table_exists: str
    #: the driver's placeholder for a query parameter
    param: str


SQLITE = Dialect(
    name="sqlite",
    begin_write="BEGIN IMMEDIATE",
    lock_schema="",
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    param="?",
)

POSTGRESQL = Dialect(
    name="postgresql",
    begin_write="BEGIN",
    # a transaction-scoped advisory lock, released by COMMIT/ROLLBACK; the key is arbitrary but fixed
    lock_schema="SELECT pg_advisory_xact_lock(4795106)",
    table_exists=("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = %s"),
    param="%s",
)


MIGRATIONS: list[Migration] = [
    Migration(
        version=1,
        description="environments and the schema version",
        statements=(
            """
            CREATE TABLE kiln_schema (
                id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            )
            """,
            "INSERT INTO kiln_schema (id, version) VALUES (1, 0)",
            """
            CREATE TABLE environments (
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                hash TEXT NOT NULL,
                definition TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (name, version)
            )
            """,
            "CREATE INDEX environments_hash ON environments (hash)",
        ),
    ),
    Migration(
        version=2,
        description="locks, and which lock each environment version was built from",
        statements=(
            """
            CREATE TABLE locks (
                lock_hash TEXT NOT NULL PRIMARY KEY,
                content TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE environment_locks (
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                identity TEXT NOT NULL,
                python TEXT NOT NULL,
                platform TEXT NOT NULL,
                lock_hash TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (name, version, seq)
            )
            """,
            "CREATE INDEX environment_locks_identity ON environment_locks (identity, python, platform)",
            "CREATE INDEX environment_locks_name ON environment_locks (name, python, platform)",
        ),
    ),
    Migration(
        version=3,
        description="runs and registered models",
        statements=(
            """
            CREATE TABLE runs (
                id TEXT NOT NULL PRIMARY KEY,
                experiment TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                ended_at DOUBLE PRECISION,
                definition TEXT NOT NULL,
                environment TEXT,
                environment_version INTEGER,
                lock_hash TEXT,
                build_key TEXT,
                pid INTEGER,
                pid_start TEXT,
                exit_code INTEGER,
                error TEXT,
                tags TEXT NOT NULL
            )
            """,
            "CREATE INDEX runs_experiment ON runs (experiment, created_at)",
            """
            CREATE TABLE models (
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                manifest TEXT NOT NULL,
                path TEXT NOT NULL,
                run_id TEXT,
                tags TEXT NOT NULL,
                description TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (name, version)
            )
            """,
        ),
    ),
    Migration(
        version=4,
        description="each environment lock keeps its own document (the same lock hash may come from "
                    "definitions with different requirements)",
        statements=("ALTER TABLE environment_locks ADD COLUMN content TEXT",),
    ),
    Migration(
        version=5,
        description="web services",
        statements=(
            """
            CREATE TABLE services (
                name TEXT NOT NULL PRIMARY KEY,
                state TEXT NOT NULL,
                port INTEGER NOT NULL,
                generation INTEGER NOT NULL,
                config TEXT NOT NULL,
                pid INTEGER,
                pid_start TEXT,
                error TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=6,
        description="models keep their properties and framework (Azure ML's model_framework and its version)",
        statements=(
            "ALTER TABLE models ADD COLUMN properties TEXT",
            "ALTER TABLE models ADD COLUMN framework TEXT",
            "ALTER TABLE models ADD COLUMN framework_version TEXT",
        ),
    ),
    Migration(
        version=7,
        description="compute targets attached to the workspace (ComputeTarget.attach)",
        statements=(
            """
            CREATE TABLE compute_targets (
                name TEXT NOT NULL PRIMARY KEY,
                type TEXT NOT NULL,
                config TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
        ),
    ),
]

LATEST_VERSION: int = MIGRATIONS[-1].version


class _Connection(Protocol):
    """The part of a DB-API connection ``migrate`` uses."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


def _check_list(migrations: Sequence[Migration]) -> None:
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise AssertionError(f"migrations must be numbered {expected}, not {[m.version for m in migrations]}")


_check_list(MIGRATIONS)


def check_version(found: int, *, where: str, known: int = LATEST_VERSION) -> None:
    """Refuse a schema this code does not know (written by a newer Kiln)."""
    if found > known:
        raise WorkspaceError(
            f"{where}: workspace schema version {found} is newer than this Kiln (knows up to {known}): upgrade Kiln"
        )


def read_version(conn: _Connection, dialect: Dialect) -> int:
    """The schema version of the database behind ``conn``; 0 for an empty database."""
    if conn.execute(dialect.table_exists, ("kiln_schema",)).fetchone() is None:
        return 0
    row = conn.execute("SELECT version FROM kiln_schema WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def migrate(
    conn: _Connection,
    dialect: Dialect,
    *,
    where: str,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Apply the pending ``migrations`` in one transaction and return the resulting version.

    The version is read again under the write lock, so that several processes opening a new
    database at once apply each migration exactly once. ``where`` names the database in errors.
    Driver errors are re-raised unchanged after a rollback (the store wraps them).
    """
    known = migrations[-1].version if migrations else 0
    conn.execute(dialect.begin_write)
    try:
        if dialect.lock_schema:
            conn.execute(dialect.lock_schema)
        current = read_version(conn, dialect)
        check_version(current, where=where, known=known)
        for migration in migrations:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"UPDATE kiln_schema SET version = {dialect.param} WHERE id = 1", (migration.version,))
            current = migration.version
        conn.execute("COMMIT")
    except BaseException:
        # a failed ROLLBACK (connection gone) must not hide the error that caused it
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")
        raise
    return current
