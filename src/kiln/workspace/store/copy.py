"""``copy_records``: every record of one SQL store into another, empty one (SQLite to PostgreSQL).

Rows are copied as they are (versions, lock sequence numbers, times, run states), not registered
again: the new store's history is the old one's. The source is read inside its own write
transaction, so no writer changes it while it is copied (a run still logging waits, then writes to
the old store: move a workspace when nothing runs). The target is written in one transaction, so a
failed copy leaves it empty; the counts are checked after the commit.
"""

from __future__ import annotations

from typing import Any

from kiln.errors import WorkspaceError
from kiln.workspace.store.migrations import LATEST_VERSION
from kiln.workspace.store.sql import Connection, SqlStore

__all__ = ["TABLES", "copy_records"]

#: every table of the schema that holds records (``kiln_schema`` is each store's own)
TABLES = ("environments", "environment_locks", "locks", "runs", "models", "services", "compute_targets")


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def copy_records(source: SqlStore, target: SqlStore) -> dict[str, int]:
    """Copy every record of ``source`` into ``target``, which must hold none; return the rows per table."""
    if source.schema_version != LATEST_VERSION or target.schema_version != LATEST_VERSION:
        raise WorkspaceError(f"{target.where}: both stores must be at schema version {LATEST_VERSION}")

    def copy(read: Connection) -> dict[str, int]:
        rows: dict[str, tuple[list[str], list[Any]]] = {}
        for table in TABLES:
            cursor: Any = read.execute(f"SELECT * FROM {table}")
            rows[table] = ([d[0] for d in cursor.description], list(cursor.fetchall()))

        def write(conn: Connection) -> None:
            used = [table for table in TABLES if _count(conn, table)]
            if used:
                raise WorkspaceError(f"{target.where}: not an empty Kiln store (table {used[0]!r} has records): "
                                     "a workspace moves only into a new database")
            for table, (columns, values) in rows.items():
                insert = target._sql(f"INSERT INTO {table} ({', '.join(columns)})"
                                     f" VALUES ({', '.join('?' for _ in columns)})")
                for row in values:
                    conn.execute(insert, tuple(row))

        target._transaction(write)
        return {table: len(values) for table, (_, values) in rows.items()}

    copied = source._transaction(copy)
    found = target._read(lambda conn: {table: _count(conn, table) for table in TABLES})
    if found != copied:
        wrong = next(table for table in TABLES if found[table] != copied[table])
        raise WorkspaceError(f"{target.where}: the copy has {found[wrong]} rows in {wrong!r}, the source "
                             f"{copied[wrong]}: the workspace still uses its old store")
    return copied
