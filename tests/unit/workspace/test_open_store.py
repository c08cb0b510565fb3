"""``open_store``: the store chosen by URL, and each store's ``cannot_open`` probe as the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import WorkspaceError
from kiln.workspace.store import STORES, PostgresStore, SqliteStore, Store, open_store, shown, store_for


@pytest.mark.parametrize("form", ["path", "str", "url"])
def test_open_store_sqlite(tmp_path: Path, form: str) -> None:
    path = tmp_path / "kiln.db"
    forms: dict[str, str | Path] = {"path": path, "str": str(path), "url": f"sqlite:///{path}"}
    target = forms[form]

    store = open_store(target)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == path
        store.register_environment(name="train", definition="A", hash="sha256:1")
    finally:
        store.close()
    assert path.is_file()


def test_open_store_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data.db")
    assert isinstance(store, SqliteStore)
    assert store.path == Path("data.db")
    store.close()


@pytest.mark.parametrize("url", ["postgresql://kiln@localhost/kiln", "postgres://localhost:5433/kiln"])
def test_open_store_postgresql_opens_without_connecting(url: str) -> None:
    store = open_store(url)  # nothing listens there: opening connects to nothing
    assert isinstance(store, PostgresStore)
    assert store.where == url
    store.close()


def test_a_literal_password_in_a_postgresql_url_is_refused_without_showing_it() -> None:
    with pytest.raises(WorkspaceError, match="PGPASSWORD") as info:
        open_store("postgresql://kiln:hunter2@db.example:5432/kiln")
    assert "hunter2" not in str(info.value)
    assert "kiln:***@db.example:5432/kiln" in str(info.value)


def test_a_password_reference_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_TEST_PG_PASSWORD", raising=False)
    url = "postgresql://kiln:${KILN_TEST_PG_PASSWORD}@db.example/kiln"
    with pytest.raises(WorkspaceError, match=r"\$\{KILN_TEST_PG_PASSWORD\} is not set"):
        open_store(url)
    monkeypatch.setenv("KILN_TEST_PG_PASSWORD", "s3cret")
    store = open_store(url)
    assert "s3cret" not in repr(store) and "s3cret" not in store.where
    store.close()


def test_a_postgresql_url_without_a_database_is_refused() -> None:
    with pytest.raises(WorkspaceError, match="names no database"):
        open_store("postgresql://kiln@localhost:5432")


@pytest.mark.parametrize("url", ["mysql://localhost/kiln", "sqlite://", "sqlite:///"])
def test_open_store_rejects_other_urls(url: str) -> None:
    with pytest.raises(WorkspaceError, match=r"mysql|sqlite:///<path"):
        open_store(url)


def test_every_store_class_names_its_schemes_and_opens_what_it_accepts(tmp_path: Path) -> None:
    assert STORES, "no store registered"
    for cls in STORES:
        assert issubclass(cls, Store) and cls.name and cls.schemes
        for scheme in cls.schemes:
            assert store_for(f"{scheme}://x") is cls
    assert store_for(str(tmp_path / "kiln.db")) is SqliteStore


def test_a_missing_folder_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "kiln.db"

    with pytest.raises(WorkspaceError) as info:
        open_store(f"sqlite:///{path}")

    assert str(info.value) == f"sqlite:///{path}: its folder {path.parent} does not exist"
    assert not path.parent.exists()


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="a folder, not a SQLite database file"):
        open_store(tmp_path)


def test_a_folder_that_is_not_writable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # simulated: the tests may run as root, for whom every folder is writable
    folder = tmp_path / "shared"
    folder.mkdir()
    monkeypatch.setattr("kiln.workspace.store.sqlite.os.access", lambda path, mode: Path(path) != folder)

    assert SqliteStore.cannot_open(str(tmp_path / "kiln.db")) is None
    with pytest.raises(WorkspaceError, match=r"its folder .*shared is not writable"):
        open_store(folder / "kiln.db")


@pytest.mark.parametrize("url", [":memory:", "sqlite:///:memory:", "sqlite:///file:x?mode=memory"])
def test_sqlite_needs_a_file(url: str) -> None:
    assert SqliteStore.cannot_open(url) == "a SQLite store needs a file path"
    with pytest.raises(WorkspaceError, match="needs a file path"):
        open_store(url)


def test_messages_never_show_a_password() -> None:
    assert shown("mysql://kiln:s3cret@db.example/kiln") == "mysql://kiln:***@db.example/kiln"
    assert shown("mysql://kiln@db.example/kiln") == "mysql://kiln@db.example/kiln"
    assert shown("sqlite:///a:b@c.db") == "sqlite:///a:b@c.db"
    with pytest.raises(WorkspaceError) as info:
        open_store("mysql://kiln:s3cret@db.example/kiln")
    assert "s3cret" not in str(info.value)
    assert "unknown store URL scheme 'mysql' (expected sqlite:// or postgresql://)" in str(info.value)


def test_a_missing_postgresql_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(WorkspaceError, match=r"pip install 'kiln\[postgres\]'"):
        open_store("postgresql://kiln@localhost/kiln")
