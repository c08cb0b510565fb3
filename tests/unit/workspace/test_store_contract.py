"""The contract every ``Store`` implementation passes: environments, locks, runs (with the
compare-and-set of ``update_run``), models, services, and schema migrations.

Each implementation is one ``Harness`` (how to open a store, and how to reach its database behind
its back); adding PostgreSQL is one more entry in ``HARNESSES``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiln.errors import WorkspaceError
from kiln.workspace.store import (
    ComputeRecord,
    EnvironmentRecord,
    ModelRecord,
    PostgresStore,
    RunRecord,
    ServiceRecord,
    SqliteStore,
    Store,
    migrations,
)
from kiln.workspace.store.interface import FINAL_STATUSES


@dataclass
class Harness:
    """One store implementation, with a database of its own for each test."""

    open: Callable[[], Store]
    dialect: migrations.Dialect
    #: a DB-API connection to the test's database, in autocommit mode
    connect: Callable[[], contextlib.AbstractContextManager[Any]]
    #: make the database unreadable; None when that makes no sense for the implementation
    corrupt: Callable[[], None] | None
    #: what the error about a corrupt database says
    corrupt_message: str
    #: the text an error about this database names
    where: str

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        """Run ``sql`` (``?`` placeholders) on the database, behind the store's back."""
        with self.connect() as conn:
            conn.execute(sql.replace("?", self.dialect.param), params)

    def migrate_to(self, version: int) -> None:
        """Bring a new database to schema ``version``, as an older Kiln left it."""
        with self.connect() as conn:
            migrations.migrate(conn, self.dialect, where=self.where, migrations=migrations.MIGRATIONS[:version])


def _sqlite_harness(tmp_path: Path) -> Harness:
    path = tmp_path / "workspace" / "kiln.db"
    path.parent.mkdir()

    @contextlib.contextmanager
    def connect() -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def corrupt() -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(b"this is not a database, it is a text file\n" * 200)

    return Harness(open=lambda: SqliteStore(path), dialect=migrations.SQLITE, connect=connect, corrupt=corrupt,
                   corrupt_message="not an SQLite database", where=str(path))


class _PyformatConnection:
    """A sqlite3 connection that takes psycopg's ``%s`` placeholders (and refuses ``?``)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        assert "?" not in sql, f"a placeholder that is not the dialect's: {sql}"
        return self._conn.execute(sql.replace("%s", "?"), parameters)


class _PyformatStore(SqliteStore):
    """SQLite spoken in the ``%s`` style: every statement must go through the dialect's placeholder,
    as a psycopg (PostgreSQL) store needs."""

    dialect = dataclasses.replace(migrations.SQLITE, param="%s",
                                  table_exists=migrations.SQLITE.table_exists.replace("?", "%s"))

    def _run(self, operation: Callable[[Any], Any]) -> Any:
        return super()._run(lambda conn: operation(_PyformatConnection(conn)))

    def _check_schema(self, conn: Any) -> None:
        super()._check_schema(_PyformatConnection(conn))


def _pyformat_harness(tmp_path: Path) -> Harness:
    sqlite = _sqlite_harness(tmp_path)
    return dataclasses.replace(sqlite, open=lambda: _PyformatStore(sqlite.where))


def _postgres_harness(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    # the server starts once per session, only when a PostgreSQL test runs; each test gets a new database
    url = request.getfixturevalue("postgres_url")

    @contextlib.contextmanager
    def connect() -> Iterator[Any]:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            yield conn

    return Harness(open=lambda: PostgresStore(url), dialect=migrations.POSTGRESQL, connect=connect, corrupt=None,
                   corrupt_message="", where=url)


HARNESSES: dict[str, Callable[[Path, pytest.FixtureRequest], Harness]] = {
    "sqlite": lambda tmp_path, _: _sqlite_harness(tmp_path),
    "sqlite-pyformat": lambda tmp_path, _: _pyformat_harness(tmp_path),
    "postgresql": _postgres_harness,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return HARNESSES[request.param](tmp_path, request)


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
    harness.execute("UPDATE kiln_schema SET version = ? WHERE id = 1", (migrations.LATEST_VERSION + 1,))

    reopened = harness.open()
    try:
        with pytest.raises(WorkspaceError) as info:
            reopened.get_environment(name="train")
    finally:
        reopened.close()
    message = str(info.value)
    assert harness.where in message
    assert (
        f"workspace schema version {migrations.LATEST_VERSION + 1} is newer than this Kiln "
        f"(knows up to {migrations.LATEST_VERSION}): upgrade Kiln"
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
        with pytest.raises(WorkspaceError, match=harness.corrupt_message) as info:
            reopened.list_environments()
    finally:
        reopened.close()
    assert harness.where in str(info.value)


# -- locks ---------------------------------------------------------------------------------------------


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


# -- runs ----------------------------------------------------------------------------------------------

_ACTIVE = frozenset({"Queued", "Preparing", "Running"})


def _run(run_id: str, *, experiment: str = "exp", created_at: float = 1000.0, **fields: Any) -> RunRecord:
    return RunRecord(id=run_id, experiment=experiment, status=fields.pop("status", "Queued"), created_at=created_at,
                     definition='{"script": "train.py"}', **fields)


def test_a_run_round_trips_with_every_field(store: Store) -> None:
    full = _run("r-full", status="Running", tags='{"k": "ü"}', started_at=1001.5, environment="train",
                environment_version=2, lock_hash="L1", build_key="b-1", pid=4242, pid_start="17 s", exit_code=None,
                error=None)
    bare = _run("r-bare")
    store.create_run(full)
    store.create_run(bare)

    assert store.get_run("r-full") == full
    assert store.get_run("r-bare") == bare
    assert store.get_run("nope") is None


def test_runs_are_listed_newest_first_and_by_experiment(store: Store) -> None:
    assert store.list_runs() == []
    store.create_run(_run("a", experiment="one", created_at=1.0))
    store.create_run(_run("c", experiment="two", created_at=3.0))
    store.create_run(_run("b", experiment="one", created_at=2.0))
    store.create_run(_run("b2", experiment="one", created_at=2.0))  # same time: the greater id first

    assert [r.id for r in store.list_runs()] == ["c", "b2", "b", "a"]
    assert [r.id for r in store.list_runs(experiment="one")] == ["b2", "b", "a"]
    assert store.list_runs(experiment="none") == []


def test_update_run_sets_fields(store: Store) -> None:
    store.create_run(_run("r1"))

    assert store.update_run("r1", status="Running", pid=7, pid_start="x", started_at=5.0) is True
    record = store.get_run("r1")
    assert record is not None
    assert (record.status, record.pid, record.pid_start, record.started_at) == ("Running", 7, "x", 5.0)
    assert store.update_run("missing", status="Running") is False
    with pytest.raises(ValueError, match="unknown run fields"):
        store.update_run("r1", colour="blue")
    with pytest.raises(ValueError):
        store.update_run("r1")


def test_update_run_only_if_status(store: Store) -> None:
    store.create_run(_run("r1", status="Running"))

    assert store.update_run("r1", status="Completed", exit_code=0, only_if_status=_ACTIVE) is True
    # a final status is never overwritten by a guarded update
    assert store.update_run("r1", status="Failed", error="late", only_if_status=_ACTIVE) is False
    assert store.update_run("r1", tags='{"a": 1}', only_if_status=frozenset()) is False
    record = store.get_run("r1")
    assert record is not None
    assert (record.status, record.exit_code, record.error, record.tags) == ("Completed", 0, None, "{}")
    # an unguarded update still applies
    assert store.update_run("r1", tags='{"a": 1}') is True
    assert store.get_run("r1") == RunRecord(**{**record.__dict__, "tags": '{"a": 1}'})


def _race_to_finish(stores: list[Store], run_id: str, writers: int) -> dict[int, bool]:
    """``writers`` threads, released at once, each trying to give the run a final status of its own."""
    barrier = threading.Barrier(writers)
    won: dict[int, bool] = {}
    errors: list[BaseException] = []

    def finish(n: int) -> None:
        try:
            barrier.wait()
            won[n] = stores[n % len(stores)].update_run(run_id, status=sorted(FINAL_STATUSES)[n % 3],
                                                        error=f"writer {n}", only_if_status=_ACTIVE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return won


def test_concurrent_guarded_updates_one_wins(harness: Harness) -> None:
    # eight writers on four store objects (each with connections of its own, as separate processes have)
    stores = [harness.open() for _ in range(4)]
    try:
        for round_ in range(5):
            run_id = f"r{round_}"
            stores[0].create_run(_run(run_id, status="Running"))

            won = _race_to_finish(stores, run_id, writers=8)

            winners = [n for n, ok in won.items() if ok]
            assert len(won) == 8 and len(winners) == 1
            record = stores[1].get_run(run_id)
            assert record is not None
            assert (record.status, record.error) == (sorted(FINAL_STATUSES)[winners[0] % 3], f"writer {winners[0]}")
    finally:
        for opened in stores:
            opened.close()


def test_referenced_build_keys(store: Store) -> None:
    store.create_run(_run("a", build_key="k1"))
    store.create_run(_run("b", build_key="k1"))
    store.create_run(_run("c", build_key="k2"))
    store.create_run(_run("d"))

    assert store.referenced_build_keys() == {"k1", "k2"}


# -- models --------------------------------------------------------------------------------------------


def _model(store: Store, name: str, manifest: str = "m1", *, tags: str = "{}", description: str | None = None,
           run_id: str | None = None) -> tuple[ModelRecord, bool]:
    return store.register_model(name=name, manifest=manifest, path="model.pkl", run_id=run_id, tags=tags,
                                description=description)


def test_models_get_versions_and_identical_files_write_nothing(store: Store) -> None:
    first, created = _model(store, "clf", run_id="r1", description="first")
    assert (first.name, first.version, first.manifest, first.path, first.run_id, created) == (
        "clf", 1, "m1", "model.pkl", "r1", True)
    assert first.created_at > 0
    assert _model(store, "clf", run_id="r2", description="first") == (first, False)
    second, created = _model(store, "clf", "m2", description="first")
    assert (second.version, created) == (2, True)
    third, created = _model(store, "clf", "m2", tags='{"stage": "prod"}', description="first")
    assert (third.version, created) == (3, True)
    fourth, _ = _model(store, "clf", "m2", tags='{"stage": "prod"}', description=None)
    assert fourth.version == 4

    assert store.get_model(name="clf") == fourth
    assert store.get_model(name="clf", version=1) == first
    assert store.get_model(name="clf", version=9) is None
    assert store.get_model(name="other") is None


def test_models_keep_properties_and_framework_and_a_change_of_them_is_a_new_version(store: Store) -> None:
    first, _ = store.register_model(name="clf", manifest="m1", path="model.pkl", run_id=None, tags="{}",
                                    description=None, properties='{"auc": "0.9"}', framework="ScikitLearn",
                                    framework_version="1.5")
    assert (first.properties, first.framework, first.framework_version) == ('{"auc": "0.9"}', "ScikitLearn", "1.5")
    assert store.get_model(name="clf") == first
    again, created = store.register_model(name="clf", manifest="m1", path="model.pkl", run_id=None, tags="{}",
                                          description=None, properties='{"auc": "0.9"}', framework="ScikitLearn",
                                          framework_version="1.5")
    assert (again, created) == (first, False)
    other, created = store.register_model(name="clf", manifest="m1", path="model.pkl", run_id=None, tags="{}",
                                          description=None, properties='{"auc": "0.9"}', framework="Onnx")
    assert (other.version, created, other.framework_version) == (2, True, None)


def test_a_model_version_s_tags_properties_and_description_change_and_its_files_do_not(store: Store) -> None:
    first, _ = _model(store, "clf", tags='{"a": "1"}', description="old")
    _model(store, "clf", "m2")
    changed = store.update_model(name="clf", version=1, tags='{"b": "2"}', properties='{"p": "q"}')
    assert changed is not None
    assert (changed.tags, changed.properties, changed.description, changed.manifest, changed.created_at) == (
        '{"b": "2"}', '{"p": "q"}', "old", "m1", first.created_at)
    described = store.update_model(name="clf", version=1, description="new")
    assert described is not None and (described.tags, described.description) == ('{"b": "2"}', "new")
    assert store.get_model(name="clf", version=1) == described
    assert store.get_model(name="clf", version=2) is not None and store.get_model(name="clf", version=2).tags == "{}"
    assert store.update_model(name="clf", version=9, tags="{}") is None


def test_a_deleted_model_version_is_gone_and_the_others_stay(store: Store) -> None:
    _model(store, "clf")
    second, _ = _model(store, "clf", "m2")
    assert store.delete_model(name="clf", version=1) is True
    assert store.delete_model(name="clf", version=1) is False
    assert store.get_model(name="clf", version=1) is None
    assert store.list_models() == [second]


def test_models_are_listed_by_name_then_version(store: Store) -> None:
    assert store.list_models() == []
    _model(store, "zeta")
    _model(store, "alpha")
    _model(store, "zeta", "m2")
    _model(store, "Mid")

    assert [(r.name, r.version) for r in store.list_models()] == [("Mid", 1), ("alpha", 1), ("zeta", 1), ("zeta", 2)]
    assert [(r.name, r.version) for r in store.list_models(name="zeta")] == [("zeta", 1), ("zeta", 2)]
    assert store.list_models(name="none") == []


def test_threads_registering_models_get_consecutive_versions(store: Store) -> None:
    versions: list[int] = []
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        barrier.wait()
        versions.extend(_model(store, "clf", f"m{n}-{i}")[0].version for i in range(5))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(versions) == list(range(1, 21))


# -- services ------------------------------------------------------------------------------------------


def _service(name: str, **fields: Any) -> ServiceRecord:
    values: dict[str, Any] = {"state": "Transitioning", "port": 8001, "generation": 1, "config": '{"models": []}',
                              "pid": None, "pid_start": None, "error": None, "created_at": 100.0,
                              "updated_at": 100.0}
    return ServiceRecord(name=name, **{**values, **fields})


def test_services_put_get_list_delete(store: Store) -> None:
    assert store.list_services() == []
    store.put_service(_service("zeta"))
    store.put_service(_service("alpha", port=8002))
    store.put_service(_service("Mid", port=8003))

    assert store.get_service("alpha") == _service("alpha", port=8002)
    assert store.get_service("nope") is None
    assert [s.name for s in store.list_services()] == ["Mid", "alpha", "zeta"]
    assert store.delete_service("alpha") is True
    assert store.delete_service("alpha") is False
    assert [s.name for s in store.list_services()] == ["Mid", "zeta"]


def test_putting_a_service_again_replaces_it_but_keeps_its_creation_time(store: Store) -> None:
    store.put_service(_service("svc"))
    store.put_service(_service("svc", state="Healthy", generation=2, pid=99, config='{"models": ["m:1"]}',
                               created_at=500.0, updated_at=500.0))

    assert store.get_service("svc") == _service("svc", state="Healthy", generation=2, pid=99,
                                                config='{"models": ["m:1"]}', created_at=100.0, updated_at=500.0)
    assert len(store.list_services()) == 1


def test_update_service_sets_fields_and_the_update_time(store: Store) -> None:
    store.put_service(_service("svc"))

    assert store.update_service("svc", state="Unhealthy", error="crashed", pid=None) is True
    record = store.get_service("svc")
    assert record is not None
    assert (record.state, record.error, record.created_at) == ("Unhealthy", "crashed", 100.0)
    assert record.updated_at > 100.0
    assert store.update_service("nope", state="Healthy") is False
    with pytest.raises(ValueError, match="unknown service fields"):
        store.update_service("svc", colour="blue")


# -- attached compute --------------------------------------------------------------------------------


def _compute(name: str, **fields: Any) -> ComputeRecord:
    values: dict[str, Any] = {"type": "ray", "config": '{"address": "http://127.0.0.1:8265"}', "created_at": 100.0}
    return ComputeRecord(name=name, **{**values, **fields})


def test_computes_attach_get_list_detach(store: Store) -> None:
    assert store.list_computes() == []
    assert store.attach_compute(_compute("zeta")) is True
    assert store.attach_compute(_compute("alpha", config='{"address": "http://10.0.0.1:8265"}')) is True
    assert store.attach_compute(_compute("Mid")) is True

    assert store.get_compute("alpha") == _compute("alpha", config='{"address": "http://10.0.0.1:8265"}')
    assert store.get_compute("nope") is None
    assert [c.name for c in store.list_computes()] == ["Mid", "alpha", "zeta"]
    assert store.detach_compute("alpha") is True
    assert store.detach_compute("alpha") is False
    assert [c.name for c in store.list_computes()] == ["Mid", "zeta"]


def test_attaching_a_name_twice_keeps_the_first(store: Store) -> None:
    assert store.attach_compute(_compute("ray-dev")) is True
    assert store.attach_compute(_compute("ray-dev", config='{"address": "http://other:8265"}', created_at=5.0)) is False
    assert store.get_compute("ray-dev") == _compute("ray-dev")


def test_concurrent_attaches_of_one_name_have_one_winner(store: Store) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def attach(i: int) -> None:
        barrier.wait()
        results.append(store.attach_compute(_compute("shared", config=f'{{"address": "http://h{i}:8265"}}')))

    threads = [threading.Thread(target=attach, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(store.list_computes()) == 1


# -- migrations from older schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, migrations.LATEST_VERSION))
def test_a_database_at_an_older_schema_is_migrated_and_keeps_its_records(harness: Harness, version: int) -> None:
    harness.migrate_to(version)
    harness.execute("INSERT INTO environments (name, version, hash, definition, created_at) VALUES (?, ?, ?, ?, ?)",
                    ("old", 1, "h", "{}", 1.0))
    if 2 <= version < 4:
        # before schema 4 a lock's document lived in ``locks``, shared by lock hash
        harness.execute("INSERT INTO locks (lock_hash, content, created_at) VALUES (?, ?, ?)", ("L0", "doc", 1.0))
        harness.execute("INSERT INTO environment_locks (name, version, seq, identity, python, platform, lock_hash,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ("old", 1, 1, "id", "3.11", "linux", "L0", 1.0))

    opened = harness.open()
    try:
        assert opened.schema_version == migrations.LATEST_VERSION
        old = opened.get_environment(name="old")
        assert old is not None and old.definition == "{}"
        lock = opened.get_environment_lock(name="old", version=1, python="3.11", platform="linux")
        if 2 <= version < 4:
            assert lock is not None and lock.content == "doc"
        else:
            assert lock is None
        # every table of the latest schema is there
        opened.create_run(_run("r1"))
        if version >= 3:  # a model registered before schema 6 reads with no properties and no framework
            harness.execute("INSERT INTO models (name, version, manifest, path, run_id, tags, description, created_at)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ("clf", 1, "m0", "model.pkl", None, "{}", None, 1.0))
            old_model = opened.get_model(name="clf", version=1)
            assert old_model is not None
            assert (old_model.properties, old_model.framework, old_model.framework_version) == (None, None, None)
            assert _model(opened, "clf")[0].version == 2
        else:
            assert _model(opened, "clf")[0].version == 1
        opened.put_service(_service("svc"))
        assert (opened.get_run("r1"), opened.get_service("svc")) == (_run("r1"), _service("svc"))
    finally:
        opened.close()
