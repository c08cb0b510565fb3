"""``Environment.add_private_pip_wheel`` as in Azure ML v1: the wheel is stored in the workspace's artifact store
by its content hash, the definition names it, the lock pins it, and the built environment imports it; a teammate
whose workspace shares the store and the blob folder builds the same file. Offline: the wheel is made here and has
no dependencies."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from build_support import make_wheel

from kiln import CondaDependencies, Environment, Workspace
from kiln.errors import DefinitionError, WorkspaceError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]


def test_a_private_wheel_is_stored_by_hash_named_by_the_definition_and_built(tmp_path: Path) -> None:
    ws = Workspace.create("wheels", path=tmp_path / "ws")
    wheel = make_wheel(tmp_path / "dist", "kilnpriv", "0.1", "ANSWER = 42\n")

    url = Environment.add_private_pip_wheel(workspace=ws, file_path=str(wheel), exist_ok=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    stored = ws.path / "blobs" / "wheels" / digest / wheel.name  # the workspace's own artifact store
    assert url == f"kilnpriv @ {stored.as_uri()}" and stored.read_bytes() == wheel.read_bytes()
    assert ws.blobs.path_of(digest).read_bytes() == wheel.read_bytes()  # a blob by content, like any other
    assert Environment.add_private_pip_wheel(ws, wheel) == url  # the same bytes: the same requirement

    env = Environment("private")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[url], python_version="3.12")
    registered = env.register(ws)
    result = registered.build_local(ws)
    out = subprocess.run([str(result.python), "-c", "import kilnpriv; print(kilnpriv.ANSWER)"], capture_output=True,
                         text=True, check=True)
    assert out.stdout == "42\n"
    (package,) = [p for p in result.lock.packages if p.name == "kilnpriv"]
    assert digest in (package.url or "")  # the lock names the stored file and pins its bytes
    assert package.hashes == (f"sha256:{digest}",)

    # another wheel of the same file name: refused unless exist_ok, then kept beside the first
    other = make_wheel(tmp_path / "dist2", "kilnpriv", "0.1", "ANSWER = 43\n")
    with pytest.raises(DefinitionError, match=re.escape("a different wheel named 'kilnpriv-0.1-py3-none-any.whl'")):
        Environment.add_private_pip_wheel(ws, other)
    second = Environment.add_private_pip_wheel(ws, other, exist_ok=True)
    assert second != url and stored.read_bytes() == wheel.read_bytes()


def test_a_local_wheel_outside_the_store_or_changed_since_is_refused(tmp_path: Path) -> None:
    ws = Workspace.create("wheels2", path=tmp_path / "ws")
    wheel = make_wheel(tmp_path / "dist", "kilnpriv", "0.1", "ANSWER = 1\n")
    env = Environment("loose")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=[f"kilnpriv @ {wheel.as_uri()}"], python_version="3.12")
    with pytest.raises(DefinitionError, match="add_private_pip_wheel"):
        env.register(ws)
    assert ws.store.get_environment(name="loose") is None

    url = Environment.add_private_pip_wheel(ws, wheel)
    stored = Path(url.split(" @ file://", 1)[1])
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"\0")  # no longer the bytes its name hashes
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[url], python_version="3.12")
    with pytest.raises(DefinitionError, match="local-path requirement"):
        env.register(ws)


def test_not_a_wheel_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    ws = Workspace.create("wheels3", path=tmp_path / "ws")
    bad = tmp_path / "notawheel.zip"
    bad.write_bytes(b"PK")
    with pytest.raises(DefinitionError, match="is not a wheel file name"):
        Environment.add_private_pip_wheel(ws, bad)
    with pytest.raises(DefinitionError, match="is not a file"):
        Environment.add_private_pip_wheel(ws, tmp_path / "missing.whl")
    assert not (ws.path / "wheels").exists() and not (ws.path / "blobs" / "wheels").exists()


def _imports(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import kilnpriv; print(kilnpriv.ANSWER)"], capture_output=True,
                          text=True, check=True).stdout


def test_a_teammate_on_another_machine_builds_the_same_wheel_from_the_shared_store(
        tmp_path: Path, postgres_url: str) -> None:
    from kiln.settings import Settings

    shared = tmp_path / "team-blobs"
    alice_settings = Settings.from_env()
    alice = Workspace.create("team", path=tmp_path / "alice", store=postgres_url, blobs=shared,
                             settings=alice_settings)
    wheel = make_wheel(tmp_path / "dist", "kilnpriv", "0.3", "ANSWER = 'shared'\n")
    url = Environment.add_private_pip_wheel(alice, wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert url == f"kilnpriv @ {(shared / 'wheels' / digest / wheel.name).resolve().as_uri()}"
    env = Environment("private")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[url], python_version="3.12")
    built = env.register(alice).build_local(alice)
    assert _imports(built.python) == "shared\n"
    alice.close()
    shutil.rmtree(tmp_path / "alice")  # her machine is gone: only the database and the shared folder are left
    wheel.unlink()

    # another machine: its own workspace folder (same store, same blobs) and its own, empty build cache
    bob_settings = Settings.from_env({**os.environ, "KILN_CACHE_DIR": str(tmp_path / "bob-cache")})
    bob = Workspace.create("team", path=tmp_path / "bob", store=postgres_url, blobs=shared, settings=bob_settings)
    result = Environment.get(bob, "private").build_local(bob)
    assert not result.cache_hit and str(result.python).startswith(str(tmp_path / "bob-cache"))
    assert _imports(result.python) == "shared\n"
    assert result.lock is not None and built.lock is not None and result.lock.lock_hash == built.lock.lock_hash
    (package,) = [p for p in result.lock.packages if p.name == "kilnpriv"]
    assert package.hashes == (f"sha256:{digest}",)
    # the same wheel again from bob: the same requirement; another of that name is refused there too
    assert Environment.add_private_pip_wheel(bob, shared / "wheels" / digest / wheel.name) == url
    other = make_wheel(tmp_path / "dist2", "kilnpriv", "0.3", "ANSWER = 'mine'\n")
    with pytest.raises(DefinitionError, match="a different wheel named"):
        Environment.add_private_pip_wheel(bob, other)
    bob.close()


def test_a_wheel_stored_by_an_older_kiln_in_the_workspace_folder_still_builds(tmp_path: Path) -> None:
    ws = Workspace.create("legacy", path=tmp_path / "ws")
    wheel = make_wheel(tmp_path / "dist", "kilnpriv", "0.2", "ANSWER = 'old'\n")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    old = ws.path / "wheels" / digest / wheel.name  # where Kiln stored wheels before the artifact store did
    old.parent.mkdir(parents=True)
    shutil.copyfile(wheel, old)
    env = Environment("old-private")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[f"kilnpriv @ {old.as_uri()}"],
                                                             python_version="3.12")
    assert _imports(env.register(ws).build_local(ws).python) == "old\n"
    other = make_wheel(tmp_path / "dist2", "kilnpriv", "0.2", "ANSWER = 'new'\n")
    with pytest.raises(DefinitionError, match=f"sha256 {digest[:12]}"):
        Environment.add_private_pip_wheel(ws, other)
    assert "/blobs/wheels/" in Environment.add_private_pip_wheel(ws, other, exist_ok=True)


def test_a_teammate_mounting_the_shared_folder_elsewhere_builds_the_same_wheel(tmp_path: Path,
                                                                               postgres_url: str) -> None:
    from kiln.settings import Settings

    alice = Workspace.create("team", path=tmp_path / "alice", store=postgres_url, blobs=tmp_path / "mnt-alice",
                             settings=Settings.from_env())
    wheel = make_wheel(tmp_path / "dist", "kilnpriv", "0.4", "ANSWER = 'mounted elsewhere'\n")
    url = Environment.add_private_pip_wheel(alice, wheel)
    env = Environment("private")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[url], python_version="3.12")
    built = env.register(alice).build_local(alice)
    alice.close()
    # bob's machine mounts the same folder at another path; alice's machine (and her mount) is gone
    shutil.copytree(tmp_path / "mnt-alice", tmp_path / "mnt-bob", symlinks=True)
    shutil.rmtree(tmp_path / "mnt-alice")
    shutil.rmtree(tmp_path / "alice")
    settings = Settings.from_env({**os.environ, "KILN_CACHE_DIR": str(tmp_path / "bob-cache")})
    bob = Workspace.create("team", path=tmp_path / "bob", store=postgres_url, blobs=tmp_path / "mnt-bob",
                           settings=settings)

    # her lock, installed here: the wheel is found by its digest in bob's mount
    result = Environment.get(bob, "private").build_local(bob)
    assert not result.cache_hit and _imports(result.python) == "mounted elsewhere\n"
    assert result.lock is not None and built.lock is not None and result.lock.lock_hash == built.lock.lock_hash
    # a new version naming her path registers and resolves here too (the definition keeps her path)
    again = Environment.get(bob, "private")
    again.environment_variables["WHO"] = "bob"
    again.python.conda_dependencies.set_pip_option("--no-index")  # another identity: resolved afresh, here
    second = again.register(bob)
    assert second.version == "2" and url in second.python.conda_dependencies.pip_packages
    rebuilt = second.build_local(bob)
    assert rebuilt.resolved and _imports(rebuilt.python) == "mounted elsewhere\n"
    assert rebuilt.lock is not None and rebuilt.lock.requirements == (url,)  # as the definition writes it

    # a workspace whose artifact store lacks the wheel: one clear error naming it, nothing built
    # (version 2's lock, resolved by bob, names his mount: on this one file system carol would read it there)
    carol = Workspace.create("team", path=tmp_path / "carol", store=postgres_url, blobs=tmp_path / "mnt-carol",
                             settings=Settings.from_env({**os.environ, "KILN_CACHE_DIR": str(tmp_path / "c-cache")}))
    with pytest.raises(WorkspaceError, match=r"the private wheel 'kilnpriv-0.4-py3-none-any.whl' \(sha256 "):
        Environment.get(carol, "private", version="1").build_local(carol)  # her lock names her mount
    assert not list((tmp_path / "c-cache").glob("envs-v1/*"))
    bob.close()
    carol.close()
