"""The contract every ``Store`` implementation passes.

Each implementation is one ``Harness`` (how to open a store, and how to tamper with its database
behind its back); adding PostgreSQL is one more entry in ``HARNESSES``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiln.errors import WorkspaceError
from kiln.workspace.store import EnvironmentRecord, SqliteStore, Store, migrations, open_store


@dataclass
class Harness:
    """One store implementation, with a database of its own for each test."""

    open: Callable[[], Store]
    #: overwrite the schema version recorded in the database
    set_schema_version: Callable[[int], None]
    #: make the database unreadable; None when that makes no sense for the implementation
    corrupt: Callable[[], None] | None
    #: the text an error about this database names
    where: str


def _sqlite_harness(tmp_path: Path) -> Harness:
    path = tmp_path / "workspace" / "kiln.db"
    path.parent.mkdir()

    def set_schema_version(version: int) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE kiln_schema SET version = ? WHERE id = 1", (version,))
        conn.close()

    def corrupt() -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(b"this is not a database, it is a text file\n" * 200)

    return Harness(
        open=lambda: SqliteStore(path), set_schema_version=set_schema_version, corrupt=corrupt, where=str(path)
    )


HARNESSES: dict[str, Callable[[Path], Harness]] = {"sqlite": _sqlite_harness}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return HARNESSES[request.param](tmp_path)


@pytest.fixture
def store(harness: Harness) -> Iterator[Store]:
    opened = harness.open()
    yield opened
    opened.close()


def _register(store: Store, name: str, definition: str) -> tuple[EnvironmentRecord, bool]:
    return store.register_environment(name=name, definition=definition, hash=f"sha256:{len(definition)}")


# -- register -------------------------------------------------------------------------------------


def test_a_new_name_gets_version_1(store: Store) -> None:
    record, created = _register(store, "train", '{"python": "3.11"}')

    assert created is True
    assert (record.name, record.version, record.definition) == ("train", 1, '{"python": "3.11"}')
    assert record.hash == "sha256:18"
    assert record.created_at > 0
    assert store.get_environment(name="train") == record


def test_a_changed_definition_gets_the_next_version(store: Store) -> None:
    first, _ = _register(store, "train", '{"python": "3.11"}')
    second, created = _register(store, "train", '{"python": "3.12"}')

    assert created is True
    assert second.version == 2
    assert second.created_at >= first.created_at
    assert store.get_environment(name="train", version=1) == first


def test_an_identical_definition_writes_nothing(store: Store) -> None:
    first, _ = _register(store, "train", '{"python": "3.11"}')
    again, created = _register(store, "train", '{"python": "3.11"}')

    assert created is False
    assert again == first
    assert store.list_environment_versions(name="train") == [first]


def test_identical_to_an_older_version_is_still_a_new_version(store: Store) -> None:
    _register(store, "train", "A")
    _register(store, "train", "B")
    record, created = _register(store, "train", "A")

    assert (record.version, created) == (3, True)


def test_versions_are_per_name(store: Store) -> None:
    _register(store, "train", "A")
    _register(store, "train", "B")
    record, _ = _register(store, "score", "A")

    assert record.version == 1


def test_definitions_round_trip_exactly(store: Store) -> None:
    definition = '{"name":"ünïcode ✓","pip":["numpy>=1.26"],"note":"quote \' and \\" and \\n"}' + " " * 5000
    _register(store, "train", definition)

    record = store.get_environment(name="train")
    assert record is not None
    assert record.definition == definition


# -- get --------------------------------------------------------------------------------------------


def test_get_latest_and_by_version(store: Store) -> None:
    records = [_register(store, "train", f"definition {i}")[0] for i in range(1, 5)]

    assert store.get_environment(name="train") == records[-1]
    assert store.get_environment(name="train", version=None) == records[-1]
    assert [store.get_environment(name="train", version=v) for v in (1, 2, 3, 4)] == records


def test_get_missing(store: Store) -> None:
    _register(store, "train", "A")

    assert store.get_environment(name="nope") is None
    assert store.get_environment(name="nope", version=1) is None
    assert store.get_environment(name="train", version=2) is None
    assert store.get_environment(name="train", version=0) is None


# -- list -------------------------------------------------------------------------------------------


def test_list_environments_is_the_latest_of_each_name_sorted(store: Store) -> None:
    assert store.list_environments() == []
    _register(store, "zeta", "Z1")
    _register(store, "alpha", "A1")
    _register(store, "zeta", "Z2")
    _register(store, "Mid", "M1")
    _register(store, "alpha", "A2")
    _register(store, "alpha", "A3")

    listed = store.list_environments()

    assert [(r.name, r.version, r.definition) for r in listed] == [
        ("Mid", 1, "M1"),
        ("alpha", 3, "A3"),
        ("zeta", 2, "Z2"),
    ]


def test_list_environment_versions_oldest_first(store: Store) -> None:
    for definition in ("A", "B", "C"):
        _register(store, "train", definition)
    _register(store, "other", "X")

    versions = store.list_environment_versions(name="train")

    assert [(r.version, r.definition) for r in versions] == [(1, "A"), (2, "B"), (3, "C")]
    assert store.list_environment_versions(name="unknown") == []


# -- persistence and threads ------------------------------------------------------------------------


def test_records_survive_reopening(harness: Harness) -> None:
    first = harness.open()
    record, _ = _register(first, "train", "A")
    first.close()

    second = harness.open()
    try:
        assert second.get_environment(name="train") == record
        assert _register(second, "train", "A") == (record, False)
    finally:
        second.close()


def test_threads_registering_at_once_get_consecutive_versions(store: Store) -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                record, created = _register(store, "train", f"thread {n} definition {i}")
                assert created
                results.append(record.version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(results) == list(range(1, 81))
    assert [r.version for r in store.list_environment_versions(name="train")] == list(range(1, 81))


def test_a_closed_store_refuses_calls(harness: Harness) -> None:
    opened = harness.open()
    _register(opened, "train", "A")
    opened.close()

    with pytest.raises(WorkspaceError, match="closed"):
        opened.get_environment(name="train")


# -- schema -----------------------------------------------------------------------------------------


def test_a_new_store_is_at_the_latest_migration(store: Store) -> None:
    assert store.schema_version == migrations.LATEST_VERSION == len(migrations.MIGRATIONS)


def test_a_newer_schema_is_refused(harness: Harness) -> None:
    opened = harness.open()
    assert opened.schema_version == migrations.LATEST_VERSION
    opened.close()
    harness.set_schema_version(7)

    reopened = harness.open()
    try:
        with pytest.raises(WorkspaceError) as info:
            reopened.get_environment(name="train")
    finally:
        reopened.close()
    message = str(info.value)
    assert harness.where in message
    assert (
        f"workspace schema version 7 is newer than this Kiln (knows up to {migrations.LATEST_VERSION}): upgrade Kiln"
        in message
    )


def test_a_corrupt_database_is_reported_with_its_path(harness: Harness) -> None:
    if harness.corrupt is None:
        pytest.skip("no file to corrupt")
    opened = harness.open()
    _register(opened, "train", "A")
    opened.close()
    harness.corrupt()

    reopened = harness.open()
    try:
        with pytest.raises(WorkspaceError, match="not an SQLite database") as info:
            reopened.list_environments()
    finally:
        reopened.close()
    assert harness.where in str(info.value)


# -- SQLite specifics -------------------------------------------------------------------------------


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


# -- open_store -------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "str", "url"])
def test_open_store_sqlite(tmp_path: Path, form: str) -> None:
    path = tmp_path / "kiln.db"
    forms: dict[str, str | Path] = {"path": path, "str": str(path), "url": f"sqlite:///{path}"}
    target = forms[form]

    store = open_store(target)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == path
        _register(store, "train", "A")
    finally:
        store.close()
    assert path.is_file()


def test_open_store_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data.db")
    assert isinstance(store, SqliteStore)
    assert store.path == Path("data.db")
    store.close()


@pytest.mark.parametrize("url", ["postgresql://kiln@localhost/kiln", "postgres://localhost/kiln"])
def test_open_store_postgresql_is_not_available_yet(url: str) -> None:
    with pytest.raises(WorkspaceError, match="PostgreSQL stores are not available yet"):
        open_store(url)


@pytest.mark.parametrize("url", ["mysql://localhost/kiln", "sqlite://", "sqlite:///"])
def test_open_store_rejects_other_urls(url: str) -> None:
    with pytest.raises(WorkspaceError, match=r"mysql|sqlite:///<path"):
        open_store(url)


def test_a_version_1_workspace_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "kiln.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrations.migrate(conn, migrations.SQLITE, where=str(path), migrations=migrations.MIGRATIONS[:1])
        conn.execute("INSERT INTO environments VALUES ('old', 1, 'h', '{}', 0)")
    finally:
        conn.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == migrations.LATEST_VERSION
        assert store.get_environment(name="old") is not None
        assert store.referenced_lock_hashes() == set()
    finally:
        store.close()


def test_locks_attach_to_versions_and_keep_history(store: Store) -> None:
    _register(store, "train", "A")
    first = store.add_environment_lock(name="train", version=1, identity="id-a", python="3.11",
                                       platform="linux-x86_64", lock_hash="L1", content='{"l": 1}')
    assert (first.seq, first.content) == (1, '{"l": 1}')
    again = store.add_environment_lock(name="train", version=1, identity="id-a", python="3.11",
                                       platform="linux-x86_64", lock_hash="L1", content='{"l": 1}')
    assert again.seq == 1
    upgraded = store.add_environment_lock(name="train", version=1, identity="id-a", python="3.11",
                                          platform="linux-x86_64", lock_hash="L2", content='{"l": 2}')
    assert upgraded.seq == 2
    got = store.get_environment_lock(name="train", version=1, python="3.11", platform="linux-x86_64")
    assert got is not None and got.lock_hash == "L2"
    assert [r.lock_hash for r in store.list_environment_locks(name="train", version=1)] == ["L1", "L2"]
    assert store.get_environment_lock(name="train", version=1, python="3.12", platform="linux-x86_64") is None
    shared = store.find_lock(identity="id-a", python="3.11", platform="linux-x86_64")
    assert shared is not None and shared.lock_hash == "L2"
    assert store.find_lock(identity="id-b", python="3.11", platform="linux-x86_64") is None
    latest = store.latest_lock_of(name="train", python="3.11", platform="linux-x86_64")
    assert latest is not None and latest.lock_hash == "L2"
    assert store.referenced_lock_hashes() == {"L1", "L2"}
