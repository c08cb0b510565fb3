"""Workspace stores: the ``Store`` interface, its implementations, and ``open_store``."""

from __future__ import annotations

from pathlib import Path

from kiln.errors import WorkspaceError
from kiln.workspace.store.interface import (
    ComputeRecord,
    EnvironmentRecord,
    LockRecord,
    ModelRecord,
    RunRecord,
    ServiceRecord,
    Store,
)
from kiln.workspace.store.postgres import PostgresStore
from kiln.workspace.store.sqlite import SqliteStore

__all__ = [
    "STORES",
    "ComputeRecord",
    "EnvironmentRecord",
    "LockRecord",
    "ModelRecord",
    "PostgresStore",
    "RunRecord",
    "ServiceRecord",
    "SqliteStore",
    "Store",
    "open_store",
    "shown",
    "store_for",
]

#: every store implementation, by the URL schemes it opens; a plain path is a SQLite file
STORES: tuple[type[Store], ...] = (SqliteStore, PostgresStore)


def shown(url: str) -> str:
    """``url`` as messages show it: without a password (``scheme://user:***@host/...``)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if not sep or not at or ":" not in user:
        return url
    return f"{scheme}://{user.partition(':')[0]}:***@{host}{slash}{path}"


def store_for(url: str) -> type[Store]:
    """The store class that opens ``url`` (a URL, or a plain path for SQLite), whether or not it can."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        return SqliteStore
    for cls in STORES:
        if scheme in cls.schemes:
            return cls
    known = [f"{cls.schemes[0]}://" for cls in STORES]
    raise WorkspaceError(f"{shown(url)}: unknown store URL scheme {scheme!r} (expected {' or '.join(known)})")


def open_store(url_or_path: str | Path) -> Store:
    """The store at ``url_or_path``: a file path or ``sqlite:///path`` (SQLite), or a PostgreSQL URL.

    As in SQLAlchemy's URLs, ``sqlite:///data/kiln.db`` is relative and ``sqlite:////abs/kiln.db``
    absolute. The store's ``cannot_open`` probe is asked first, and its reason is the error; nothing
    is opened until the store is first used.
    """
    url = str(url_or_path)
    cls = store_for(url)
    reason = cls.cannot_open(url)
    if reason is not None:
        raise WorkspaceError(f"{shown(url)}: {reason}")
    return cls.from_url(url)
