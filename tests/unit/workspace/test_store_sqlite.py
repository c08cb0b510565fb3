"""What only the SQLite store does: WAL, its file, its migrations on disk, its error messages.

What every store does is in ``test_store_contract.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiln.errors import WorkspaceError
from kiln.workspace.store import EnvironmentRecord, SqliteStore, Store, migrations


def _register(store: Store, name: str, definition: str) -> tuple[EnvironmentRecord, bool]:
    return store.register_environment(name=name, definition=definition, hash=f"sha256:{len(definition)}")


def test_sqlite_uses_wal_and_records_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "kiln.db"
    store = SqliteStore(path)
    _register(store, "train", "A")
    store.close()

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT id, version FROM kiln_schema").fetchall() == [(1, migrations.LATEST_VERSION)]
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(environments)")}
    finally:
        conn.close()
    assert "environments_hash" in indexes


def test_sqlite_does_not_migrate_a_current_store_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kiln.db"
    first = SqliteStore(path)
    _register(first, "train", "A")
    first.close()

    def fail(*args: object, **kwargs: object) -> int:
        raise AssertionError("migrate called on a current store")

    monkeypatch.setattr("kiln.workspace.store.sql.migrate", fail)
    second = SqliteStore(path)
    try:
        assert second.get_environment(name="train") is not None
    finally:
        second.close()


def test_sqlite_applies_only_pending_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kiln.db"
    first = SqliteStore(path)
    _register(first, "train", "A")
    first.close()
    nxt = migrations.LATEST_VERSION + 1
    step = migrations.Migration(
        version=nxt, description="test", statements=("CREATE TABLE extra (id INTEGER NOT NULL PRIMARY KEY)",)
    )
    # earlier migrations must not run again: their CREATE TABLE would fail on the existing tables
    monkeypatch.setattr("kiln.workspace.store.sql.LATEST_VERSION", nxt)
    monkeypatch.setattr(
        "kiln.workspace.store.sql.migrate",
        lambda conn, dialect, *, where: migrations.migrate(
            conn, dialect, where=where, migrations=[*migrations.MIGRATIONS, step]
        ),
    )
    monkeypatch.setattr("kiln.workspace.store.sql.check_version", lambda found, *, where: None)

    second = SqliteStore(path)
    try:
        assert second.schema_version == nxt
        assert second.get_environment(name="train") is not None
    finally:
        second.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version FROM kiln_schema").fetchone() == (nxt,)
        assert conn.execute("SELECT count(*) FROM extra").fetchone() == (0,)
    finally:
        conn.close()


def test_a_failed_migration_leaves_the_database_untouched(tmp_path: Path) -> None:
    path = tmp_path / "kiln.db"
    broken = [
        *migrations.MIGRATIONS,
        migrations.Migration(version=migrations.LATEST_VERSION + 1, description="broken",
                             statements=("CREATE TABLE nonsense (",)),
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrations.migrate(conn, migrations.SQLITE, where=str(path), migrations=broken)
        assert migrations.read_version(conn, migrations.SQLITE) == 0
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        conn.close()


def test_sqlite_refuses_a_foreign_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        with pytest.raises(WorkspaceError, match="not a Kiln workspace store") as info:
            store.list_environments()
    finally:
        store.close()
    assert str(path) in str(info.value)


def test_sqlite_reports_a_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "kiln.db"
    store = SqliteStore(path)
    try:
        with pytest.raises(WorkspaceError, match="can't open the database") as info:
            store.list_environments()
    finally:
        store.close()
    assert str(path) in str(info.value)
