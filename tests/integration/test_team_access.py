"""Access to a team workspace on a PostgreSQL server that checks passwords (scram-sha-256; the
``postgres_password_server`` of tests/conftest.py), set up as the README's Teams section says: an owner role
that owns the database (it creates Kiln's tables), and a member role with CONNECT on the database, USAGE on its
schema and SELECT, INSERT, UPDATE, DELETE on Kiln's tables, nothing more. The password comes from PGPASSWORD,
a password file (PGPASSFILE, as ~/.pgpass) or a ``${VAR}`` reference in the URL; none or a wrong one is one
clear message from Python and from the CLI, never a traceback, never the password."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiln import CondaDependencies, Environment, Workspace
from kiln.errors import WorkspaceError

pytestmark = pytest.mark.integration

#: Kiln's tables, as the README's Teams section lists them
TABLES = ("kiln_schema", "environments", "environment_locks", "locks", "runs", "models", "services")


@dataclass
class Team:
    server: Any
    database: str
    owner_password: str
    member_password: str

    def url(self, role: str, password_reference: str | None = None) -> str:
        user = f"{role}:${{{password_reference}}}" if password_reference else role
        return f"postgresql://{user}@127.0.0.1:{self.server.port}/{self.database}"


@pytest.fixture(scope="module")
def team(postgres_password_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    import psycopg

    from kiln.workspace.store.postgres import PostgresStore

    server = postgres_password_server
    team = Team(server, "kiln_team", "kilnowner" + uuid.uuid4().hex, "kilnmember" + uuid.uuid4().hex)
    with psycopg.connect(server.admin_url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE kiln_owner LOGIN PASSWORD '{team.owner_password}'")
        conn.execute(f"CREATE ROLE kiln_member LOGIN PASSWORD '{team.member_password}'")
        conn.execute("CREATE DATABASE kiln_team OWNER kiln_owner")
        conn.execute("REVOKE ALL ON DATABASE kiln_team FROM PUBLIC")  # CONNECT and TEMP by default: not for all
    # the owner's first connection creates Kiln's tables (the password as PGPASSWORD, set only for this)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PGPASSWORD", team.owner_password)
        owner = PostgresStore(team.url("kiln_owner"))
        owner.schema_version  # noqa: B018
        owner.close()
    with psycopg.connect(server.admin_url("kiln_team"), autocommit=True) as conn:
        conn.execute("GRANT CONNECT ON DATABASE kiln_team TO kiln_member")
        conn.execute("GRANT USAGE ON SCHEMA public TO kiln_member")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO kiln_member")
    yield team


@pytest.fixture(autouse=True)
def _no_password_around(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No password but the test's own: none in the environment, no ~/.pgpass of the machine's user."""
    for name in ("PGPASSWORD", "PGUSER", "KILN_TEAM_PG_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def _register(ws: Workspace, name: str, package: str) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[package], python_version="3.12")
    return env.register(ws)


def _rows(team: Team) -> str:
    import psycopg

    with psycopg.connect(team.server.admin_url(team.database), autocommit=True) as conn:
        return "\n".join(str(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES)


def test_each_source_of_the_password_opens_the_team_workspace_and_none_is_kept(
        team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the owner, password from PGPASSWORD
    monkeypatch.setenv("PGPASSWORD", team.owner_password)
    owner = Workspace.create("team", path=tmp_path / "owner", store=team.url("kiln_owner"))
    first = _register(owner, "access-train", "six==1.16.0")
    owner.close()
    monkeypatch.delenv("PGPASSWORD")

    # a member, password from a password file (libpq's ~/.pgpass format, mode 0600)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{team.server.port}:{team.database}:kiln_member:{team.member_password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    member = Workspace.create("team", path=tmp_path / "member", store=team.url("kiln_member"))
    assert Environment.get(member, "access-train").version == first.version
    second = _register(member, "access-train", "six==1.17.0")  # INSERT and UPDATE are all a member needs
    assert int(second.version) == int(first.version) + 1
    member.close()
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))

    # a member, password from a ${VAR} reference in the URL (read from the environment at each connection)
    monkeypatch.setenv("KILN_TEAM_PG_PASSWORD", team.member_password)
    again = Workspace.create("team", path=tmp_path / "member2",
                             store=team.url("kiln_member", "KILN_TEAM_PG_PASSWORD"))
    assert [e.version for e in again.environment_versions("access-train")] == [first.version, second.version]
    again.close()
    stored = json.loads((tmp_path / "member2" / "workspace.json").read_text())["store"]
    assert "${KILN_TEAM_PG_PASSWORD}" in stored and team.member_password not in stored

    rows = _rows(team)
    assert "access-train" in rows
    for password in (team.owner_password, team.member_password):
        assert password not in rows
        for path in tmp_path.rglob("*"):
            if path.is_file() and path != pgpass:
                assert password.encode() not in path.read_bytes(), path


def test_the_member_role_has_no_more_than_the_readme_names(team: Team) -> None:
    import psycopg

    url = f"postgresql://kiln_member:{team.member_password}@127.0.0.1:{team.server.port}/{team.database}"
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in ("CREATE TABLE kiln_extra (x int)", "DROP TABLE runs", "CREATE TEMP TABLE t (x int)",
                          "ALTER TABLE runs ADD COLUMN x int"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_no_password_or_a_wrong_one_is_one_clear_message_in_python(team: Team, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WorkspaceError) as none:
        Workspace.create("team", path=tmp_path / "none", store=team.url("kiln_member"))
    message = str(none.value)
    assert "wants a password for role 'kiln_member'" in message and "PGPASSWORD" in message
    assert "\n" not in message and not (tmp_path / "none").exists()  # no folder left behind

    wrong = "kilnwrong" + uuid.uuid4().hex
    monkeypatch.setenv("PGPASSWORD", wrong)
    with pytest.raises(WorkspaceError, match=r"refused the password of role 'kiln_member' \(it came from "
                                             r"PGPASSWORD\)") as refused:
        Workspace.create("team", path=tmp_path / "wrong", store=team.url("kiln_member"))
    assert wrong not in str(refused.value)
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("KILN_TEAM_PG_PASSWORD", wrong)
    with pytest.raises(WorkspaceError, match=r"it came from \$\{KILN_TEAM_PG_PASSWORD\} in the URL") as refused:
        Workspace.create("team", path=tmp_path / "wrong", store=team.url("kiln_member", "KILN_TEAM_PG_PASSWORD"))
    assert wrong not in str(refused.value)

    # a workspace that worked, opened later without its password: the same message on first use
    monkeypatch.setenv("KILN_TEAM_PG_PASSWORD", team.member_password)
    ws = Workspace.create("team", path=tmp_path / "ok", store=team.url("kiln_member", "KILN_TEAM_PG_PASSWORD"))
    ws.close()
    monkeypatch.setenv("KILN_TEAM_PG_PASSWORD", wrong)
    later = Workspace(tmp_path / "ok")
    with pytest.raises(WorkspaceError, match="refused the password"):
        later.list_environments()
    later.close()


def test_no_password_or_a_wrong_one_is_one_clear_line_from_the_cli(team: Team, tmp_path: Path,
                                                                   run_kiln: Any) -> None:
    wrong = "kilnwrong" + uuid.uuid4().hex
    url = team.url("kiln_member", "KILN_TEAM_PG_PASSWORD")
    code, out, err = run_kiln("workspace", "create", "team", "-d", str(tmp_path / "cli"), "--store", url,
                              "--no-config", env={"KILN_TEAM_PG_PASSWORD": team.member_password})
    assert code == 0, err
    listing = ("-w", str(tmp_path / "cli"), "env", "list")

    def create(store: str) -> tuple[str, ...]:
        return "workspace", "create", "team2", "-d", str(tmp_path / "cli2"), "--no-config", "--store", store

    refused = "refused the password of role 'kiln_member'"
    cases = [({"KILN_TEAM_PG_PASSWORD": wrong}, listing, refused),
             ({"KILN_TEAM_PG_PASSWORD": wrong}, create(url), refused),
             ({"KILN_TEAM_PG_PASSWORD": ""}, listing, "${KILN_TEAM_PG_PASSWORD} is not set"),
             ({"PGPASSWORD": wrong}, create(team.url("kiln_member")), refused + " (it came from PGPASSWORD)"),
             ({}, create(team.url("kiln_member")), "wants a password for role 'kiln_member'")]
    for env, args, expected in cases:
        code, out, err = run_kiln(*args, env=env)
        assert code == 1, out + err
        assert err.startswith("kiln: error: ") and len(err.strip().splitlines()) == 1, err
        assert expected in err and "Traceback" not in err
        assert wrong not in out + err and team.member_password not in out + err
    assert not (tmp_path / "cli2").exists()
