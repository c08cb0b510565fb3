"""A team's workspace on a real PostgreSQL server: many processes at once, and workspaces on two
"machines" sharing the database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiln import Environment, Workspace
from kiln.workspace.store import PostgresStore

pytestmark = pytest.mark.integration

# Waits for the start file so that every process hits the new database at once, then registers
# environment versions and logs a run's updates, printing one JSON line per registration.
WORKER = """
import json, os, sys, time
from kiln import Environment, Workspace
from kiln.workspace.store import RunRecord

folder, go, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("start file never appeared")
    time.sleep(0.001)
ws = Workspace(folder)
run_id = "run-%d" % worker
ws.store.create_run(RunRecord(id=run_id, experiment="team", status="Queued", created_at=time.time(),
                              definition="{}"))
for i in range(count):
    env = Environment(name="shared")
    env.environment_variables["WHO"] = "%d-%d" % (worker, i)
    registered = env.register(workspace=ws)
    ws.store.update_run(run_id, status="Running", tags=json.dumps({"step": i}))
    print(json.dumps({"version": registered.version, "who": "%d-%d" % (worker, i)}), flush=True)
ws.store.update_run(run_id, status="Completed", exit_code=0)
"""


def test_sixteen_processes_on_one_postgresql_workspace_lose_nothing(tmp_path: Path, postgres_url: str) -> None:
    ws = Workspace.create("team", path=tmp_path / "team", store=postgres_url)
    assert isinstance(ws.store, PostgresStore)
    assert json.loads((ws.path / "workspace.json").read_text())["store"] == postgres_url
    ws.close()
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(ws.path), str(go), str(n), "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(16)]
    time.sleep(1.0)  # let every interpreter start and reach the wait loop
    go.touch()
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        lines += [json.loads(line) for line in out.splitlines()]

    assert len(lines) == 80
    assert sorted(int(line["version"]) for line in lines) == list(range(1, 81))
    reopened = Workspace(ws.path)
    try:
        stored = reopened.store.list_environment_versions(name="shared")
        assert [r.version for r in stored] == list(range(1, 81))
        by_version = {int(line["version"]): line["who"] for line in lines}
        for record in stored:
            assert json.loads(record.definition)["environmentVariables"]["WHO"] == by_version[record.version]
        runs = reopened.store.list_runs(experiment="team")
        assert len(runs) == 16
        assert {r.status for r in runs} == {"Completed"}
        assert {json.loads(r.tags)["step"] for r in runs} == {4}
    finally:
        reopened.close()


def test_two_workspaces_share_one_postgresql_database(tmp_path: Path, postgres_url: str) -> None:
    alice = Workspace.create("team", path=tmp_path / "alice", store=postgres_url)
    bob = Workspace.create("team", path=tmp_path / "bob", store=postgres_url)
    try:
        env = Environment(name="shared")
        env.environment_variables["A"] = "1"
        env.register(workspace=alice)
        seen = Environment.get(workspace=bob, name="shared")
        assert seen.version == "1"
        assert seen.environment_variables["A"] == "1"
    finally:
        alice.close()
        bob.close()


def test_a_model_and_a_snapshot_written_on_one_machine_are_read_on_the_other(tmp_path: Path,
                                                                          postgres_url: str) -> None:
    from kiln import Model
    from kiln.workspace.snapshot import take_snapshot

    shared = tmp_path / "mnt" / "team-blobs"
    alice = Workspace.create("team", path=tmp_path / "alice", store=postgres_url, blobs=shared)
    bob = Workspace.create("team", path=tmp_path / "bob", store=postgres_url, blobs=shared)
    try:
        assert json.loads((bob.path / "workspace.json").read_text())["blobs"] == str(shared.resolve())
        assert bob.get_details()["storageAccount"] == str(shared.resolve())
        weights = tmp_path / "model.pkl"
        weights.write_bytes(b"\x80\x04weights")
        Model.register(workspace=alice, model_path=str(weights), model_name="clf")
        project = tmp_path / "project"
        project.mkdir()
        (project / "train.py").write_text("print('hi')\n")
        snapshot = take_snapshot(project, alice.blobs)

        downloaded = Path(Model(bob, "clf").download(target_dir=tmp_path / "bob-download"))
        assert downloaded.read_bytes() == b"\x80\x04weights"
        bob.blobs.materialize(snapshot.id, tmp_path / "bob-snapshot")
        assert (tmp_path / "bob-snapshot" / "train.py").read_text() == "print('hi')\n"
        assert not (alice.path / "blobs").exists() and not (bob.path / "blobs").exists()
    finally:
        alice.close()
        bob.close()


def test_cli_creates_a_team_workspace_and_refuses_missing_credentials_clearly(tmp_path: Path, postgres_url: str,
                                                                             run_kiln) -> None:  # type: ignore[no-untyped-def]
    with_reference = postgres_url.replace("postgresql://kiln@", "postgresql://kiln:${KILN_TEST_PG_PASSWORD}@")
    folder = tmp_path / "team"
    env = {"KILN_TEST_PG_PASSWORD": "not-checked-by-trust-auth"}
    code, out, err = run_kiln("-o", "json", "workspace", "create", "team", "-d", str(folder), "--no-config",
                              "--store", with_reference, "--blobs", str(tmp_path / "shared"), env=env)
    assert code == 0, err
    assert json.loads(out)["data"]["store"] == "postgresql"
    meta = json.loads((folder / "workspace.json").read_text())
    assert meta["store"] == with_reference  # the reference, never the value
    assert "not-checked-by-trust-auth" not in (folder / "workspace.json").read_text()

    code, out, err = run_kiln("-w", str(folder), "workspace", "show", env=env)
    assert code == 0, err
    assert "postgresql" in out

    # the same workspace on a machine where the variable is not set
    code, out, err = run_kiln("-w", str(folder), "workspace", "show", env={"KILN_TEST_PG_PASSWORD": ""})
    assert code != 0
    assert "${KILN_TEST_PG_PASSWORD} is not set" in err
    assert "Traceback" not in err


def test_cli_names_an_unreachable_server_and_never_a_password(tmp_path: Path, run_kiln) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://kiln:${{KILN_TEST_PG_PASSWORD}}@127.0.0.1:{port}/kiln"
    code, out, err = run_kiln("workspace", "create", "team", "-d", str(tmp_path / "team"), "--store", url,
                              env={"KILN_TEST_PG_PASSWORD": "pw-do-not-show"})
    assert code != 0
    assert f"can't connect to PostgreSQL at 127.0.0.1:{port}" in err
    assert "pw-do-not-show" not in err + out and "Traceback" not in err
    assert not (tmp_path / "team").exists()  # nothing left behind

    code, out, err = run_kiln("workspace", "create", "team", "-d", str(tmp_path / "team"), "--store",
                              f"postgresql://kiln:pw-do-not-show@127.0.0.1:{port}/kiln")
    assert code != 0
    assert "PGPASSWORD" in err and "pw-do-not-show" not in err + out and "Traceback" not in err


def test_a_role_without_write_privileges_gets_a_clear_error(postgres_url: str) -> None:
    import psycopg

    from kiln.errors import WorkspaceError

    owner = PostgresStore(postgres_url)
    owner.register_environment(name="train", definition="{}", hash="sha256:0")
    owner.close()
    reader_url = postgres_url.replace("postgresql://kiln@", "postgresql://kiln_reader@")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS kiln_reader")  # roles are cluster-wide: another test's may be there
        conn.execute("CREATE ROLE kiln_reader LOGIN")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO kiln_reader")
    reader = PostgresStore(reader_url)
    try:
        assert reader.get_environment(name="train") is not None  # reading needs SELECT only
        with pytest.raises(WorkspaceError, match="lacks a privilege Kiln needs") as info:
            reader.register_environment(name="train", definition='{"a": 1}', hash="sha256:1")
        assert "Teams section" in str(info.value) and reader_url in str(info.value)
    finally:
        reader.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM kiln_reader")
            conn.execute("DROP ROLE kiln_reader")
