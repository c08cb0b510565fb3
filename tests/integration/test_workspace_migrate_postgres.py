"""``kiln workspace migrate --to URL``: a SQLite workspace's records moved into PostgreSQL, as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln import Environment, Workspace
from kiln.workspace.store import ComputeRecord, RunRecord, ServiceRecord, Store
from kiln.workspace.store.copy import TABLES

pytestmark = pytest.mark.integration


def _everything(store: Store) -> dict[str, object]:
    return {
        "environments": [store.list_environment_versions(name=r.name) for r in store.list_environments()],
        "locks": [store.list_environment_locks(name="train", version=v) for v in (1, 2)],
        "runs": store.list_runs(),
        "models": store.list_models(),
        "services": store.list_services(),
        "computes": store.list_computes(),
    }


def _fill(ws: Workspace) -> None:
    for value in ("1", "2"):
        env = Environment(name="train")
        env.environment_variables["V"] = value
        env.register(workspace=ws)
    Environment(name="serve").register(workspace=ws)
    store = ws.store
    for seq in range(2):
        store.add_environment_lock(name="train", version=2, identity="id", python="3.11", platform="linux-x86_64",
                                   lock_hash=f"L{seq}", content=json.dumps({"lock": seq}))
    store.create_run(RunRecord(id="run-1", experiment="exp", status="Completed", created_at=1000.5, definition="{}",
                               tags='{"a": "b"}', exit_code=0, environment="train", environment_version=2))
    store.register_model(name="clf", manifest="abc", path="model.pkl", run_id="run-1", tags="{}", description="d")
    store.put_service(ServiceRecord(name="svc", state="Healthy", port=8123, generation=3, config="{}", pid=None,
                                    pid_start=None, error=None, created_at=1.0, updated_at=2.0))
    store.attach_compute(ComputeRecord(name="ray-dev", type="ray", config='{"address": "http://127.0.0.1:8265"}',
                                       created_at=3.0))


def test_migrate_moves_every_record_and_keeps_the_sqlite_file(tmp_path: Path, postgres_url: str,
                                                              run_kiln) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace.create("proj", path=tmp_path / "proj")
    _fill(ws)
    before = _everything(ws.store)
    ws.close()

    code, out, err = run_kiln("-o", "json", "-w", str(ws.path), "workspace", "migrate", "--to", postgres_url)

    assert code == 0, err
    copied = json.loads(out)["data"]["copied"]
    assert copied == {"environments": 3, "environment_locks": 2, "locks": 0, "runs": 1, "models": 1, "services": 1,
                      "compute_targets": 1}
    assert set(copied) == set(TABLES)
    assert json.loads((ws.path / "workspace.json").read_text())["store"] == postgres_url
    assert (ws.path / "registry.sqlite").is_file()  # the backup
    moved = Workspace(ws.path)
    try:
        assert moved.store.name == "postgresql"
        assert _everything(moved.store) == before
        # the history goes on where it was: the next version is 3
        env = Environment(name="train")
        env.environment_variables["V"] = "3"
        assert env.register(workspace=moved).version == "3"
    finally:
        moved.close()


def test_migrate_refuses_a_database_that_has_records(tmp_path: Path, postgres_url: str,
                                                     run_kiln) -> None:  # type: ignore[no-untyped-def]
    first = Workspace.create("one", path=tmp_path / "one")
    _fill(first)
    first.migrate_store(postgres_url)
    first.close()
    second = Workspace.create("two", path=tmp_path / "two")
    Environment(name="other").register(workspace=second)
    second.close()

    code, _out, err = run_kiln("-w", str(second.path), "workspace", "migrate", "--to", postgres_url)

    assert code != 0
    assert "not an empty Kiln store" in err and "Traceback" not in err
    assert json.loads((second.path / "workspace.json").read_text())["store"] == "registry.sqlite"
    reopened = Workspace(tmp_path / "one")
    try:  # the first workspace's records are untouched by the refused copy
        assert [r.name for r in reopened.store.list_environments()] == ["serve", "train"]
    finally:
        reopened.close()
