from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kiln import CondaDependencies, ContainerRegistry, Environment, Workspace
from kiln.errors import DefinitionError, NotFoundError, WorkspaceError
from kiln.settings import Settings


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("test", path=tmp_path / "ws")


def _env(name: str = "myenv", *pip: str) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(pip) or ["six==1.16.0"],
                                                             python_version="3.11")
    return env


def test_create_open_and_exist_ok(tmp_path: Path) -> None:
    ws = Workspace.create("w1", path=tmp_path / "w")
    assert (tmp_path / "w" / "workspace.json").is_file()
    assert Workspace(tmp_path / "w").name == "w1"
    assert Workspace.create("w1", path=tmp_path / "w").path == ws.path
    with pytest.raises(WorkspaceError, match="exists already"):
        Workspace.create("w1", path=tmp_path / "w", exist_ok=False)
    with pytest.raises(WorkspaceError, match="holds the workspace 'w1'"):
        Workspace.create("other", path=tmp_path / "w")
    with pytest.raises(WorkspaceError, match="not a Kiln workspace"):
        Workspace(tmp_path / "nothing")


def test_from_config_searches_upward_then_user_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       kiln_home: Path) -> None:
    ws = Workspace.create("proj", path=tmp_path / "ws")
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    config = ws.write_config(project)
    assert config == project / ".kiln" / "config.json"
    monkeypatch.chdir(project / "src" / "deep")
    assert Workspace.from_config().path == ws.path
    assert Workspace.from_config(config).path == ws.path
    assert Workspace.from_config(project).path == ws.path
    monkeypatch.chdir(tmp_path)
    default = Workspace.from_config()
    assert default.path == (kiln_home / "workspace").resolve()
    assert default.name == "default"
    explicit = Workspace.from_config(settings=Settings.from_env(workspace=str(ws.path)))
    assert explicit.path == ws.path


def test_register_versions_only_on_change(ws: Workspace) -> None:
    env = _env()
    v1 = env.register(ws)
    assert v1.version == "1"
    assert env.register(ws).version == "1"
    assert env.version is None  # the caller's object is not changed
    env.environment_variables["A"] = "1"  # not in the hash, but in the definition
    assert env.register(ws).version == "2"
    assert env.python.conda_dependencies is not None
    env.python.conda_dependencies.add_pip_package("attrs==24.2.0")
    v3 = env.register(ws)
    assert v3.version == "3"
    assert [e.version for e in ws.environment_versions("myenv")] == ["1", "2", "3"]
    assert Environment.get(ws, "myenv").version == "3"
    got = Environment.get(ws, "myenv", version="1")
    assert got.hash == v1.hash and got.environment_variables == {}
    assert Environment.get(ws, "myenv", 2).environment_variables == {"A": "1"}


def test_same_definition_under_two_names_shares_the_hash(ws: Workspace) -> None:
    a = _env("a").register(ws)
    b = _env("b").register(ws)
    assert a.hash == b.hash and (a.version, b.version) == ("1", "1")


def test_get_missing_names_and_versions(ws: Workspace) -> None:
    _env().register(ws)
    with pytest.raises(NotFoundError, match="no environment 'nope'"):
        Environment.get(ws, "nope")
    with pytest.raises(NotFoundError, match=r"has no version 9 \(versions: 1\)"):
        Environment.get(ws, "myenv", "9")
    with pytest.raises(NotFoundError, match="not a version number"):
        Environment.get(ws, "myenv", "latest-ish")


def test_list_includes_curated_and_latest(ws: Workspace) -> None:
    _env("zeta").register(ws)
    _env("zeta", "six==1.17.0").register(ws)
    envs = Environment.list(ws)
    assert envs["zeta"].version == "2"
    curated = [n for n in envs if n.startswith("Kiln-")]
    assert len(curated) >= 6
    assert ws.environments["zeta"].version == "2"


def test_curated_prefix_is_reserved(ws: Workspace) -> None:
    curated = Environment.get(ws, "Kiln-sklearn-1.9-py311-cpu")
    with pytest.raises(DefinitionError, match="reserved"):
        curated.register(ws)
    with pytest.raises(DefinitionError, match="reserved"):
        _env("kiln-mine").register(ws)
    clone = curated.clone("my-sklearn")
    assert clone.register(ws).version == "1"
    assert clone.hash == curated.hash


def test_literal_registry_password_is_never_stored(ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    env = _env()
    env.docker.base_image_registry = ContainerRegistry(address="reg.example", username="u", password="hunter2")
    with caplog.at_level(logging.WARNING):
        got = env.register(ws)
    assert "not stored" in caplog.text
    assert got.docker.base_image_registry.password is None
    assert got.docker.base_image_registry.username == "u"
    db = b"".join(p.read_bytes() for p in ws.path.iterdir() if p.is_file())
    assert b"hunter2" not in db
    env.docker.base_image_registry.password = "${REG_PASSWORD}"
    assert env.register(ws).docker.base_image_registry.password == "${REG_PASSWORD}"


def test_literal_password_in_an_index_url_is_refused(ws: Workspace) -> None:
    env = _env()
    assert env.python.conda_dependencies is not None
    env.python.conda_dependencies.set_pip_option("--extra-index-url https://me:s3cret@pkgs.example/simple")
    with pytest.raises(DefinitionError) as e:
        env.register(ws)
    assert "s3cret" not in str(e.value) and "${" in str(e.value)
    assert ws.store.list_environments() == []
    env.python.conda_dependencies.remove_pip_option("--extra-index-url")
    env.python.conda_dependencies.set_pip_option("--extra-index-url https://me:${TOKEN}@pkgs.example/simple")
    assert env.register(ws).version == "1"


def test_newer_workspace_format_is_refused(tmp_path: Path) -> None:
    ws = Workspace.create("w", path=tmp_path / "w")
    meta = json.loads((ws.path / "workspace.json").read_text())
    meta["format"] = 99
    (ws.path / "workspace.json").write_text(json.dumps(meta))
    with pytest.raises(WorkspaceError, match="newer than this Kiln"):
        Workspace(ws.path)
