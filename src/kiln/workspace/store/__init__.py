"""Workspace stores: the ``Store`` interface, its implementations, and ``open_store``."""

from __future__ import annotations

from pathlib import Path

from kiln.errors import WorkspaceError
from kiln.workspace.store.interface import (
    EnvironmentRecord,
    LockRecord,
    ModelRecord,
    RunRecord,
    ServiceRecord,
    Store,
)
from kiln.workspace.store.sqlite import SqliteStore

__all__ = [
    "EnvironmentRecord",
    "LockRecord",
    "ModelRecord",
    "RunRecord",
    "ServiceRecord",
    "SqliteStore",
    "Store",
    "open_store",
]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def open_store(url_or_path: str | Path) -> Store:
    """The store at ``url_or_path``: a file path or ``sqlite:///path`` (SQLite), or a PostgreSQL URL.

    As in SQLAlchemy's URLs, ``sqlite:///data/kiln.db`` is relative and ``sqlite:////abs/kiln.db``
    absolute. Nothing is opened until the store is first used.
    """
    if isinstance(url_or_path, Path):
        return SqliteStore(url_or_path)
    scheme, sep, rest = url_or_path.partition("://")
    if not sep:
        return SqliteStore(Path(url_or_path))
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise WorkspaceError(f"{url_or_path}: a SQLite store URL is sqlite:///<path to the database file>")
        return SqliteStore(Path(rest[1:]))
    if scheme in _POSTGRES_SCHEMES:
        raise WorkspaceError(
            "PostgreSQL stores are not available yet: use a SQLite store (a file path or sqlite:///path)"
        )
    raise WorkspaceError(f"{url_or_path}: unknown store URL scheme {scheme!r} (expected sqlite:// or postgresql://)")
