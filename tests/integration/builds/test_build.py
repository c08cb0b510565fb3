"""Building environments through the API: real uv installing from the package index, real interpreters.

Covers picking the interpreter, what a lock holds, reproducing a lock after the cache is gone,
``upgrade``, sharing one build between definitions, environment variables, the background build
handle, image details, user-managed interpreters, and failed builds leaving nothing behind.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)
from packaging.version import Version

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds import build
from kiln.builds.builder import BuildResult, LockedError
from kiln.builds.cache import BuildCache
from kiln.builds.interpreters import Interpreter
from kiln.builds.lock import Lock, LockChange
from kiln.errors import DefinitionError, KilnError, NotFoundError, WorkspaceError

pytestmark = [
    pytest.mark.integration,
    # BUG (see test_run_uv_closes_its_pipe): run_uv leaks uv's output pipe on every run
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

MakeEnv = Callable[..., Environment]
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def lock_records(ws: Workspace, name: str, version: int) -> list[Lock]:
    return [Lock.from_json(r.content) for r in ws.store.list_environment_locks(name=name, version=version)]


# ---- interpreters ------------------------------------------------------------------------------


@pytest.mark.parametrize("python", ["3.9", "3.10", "3.11", "3.12"])
def test_the_build_runs_the_python_of_the_definition(python: str, make_env: MakeEnv,
                                                     interpreter: Callable[[str], Interpreter],
                                                     workspace: Workspace, look: Any) -> None:
    env = make_env(f"py{python.replace('.', '')}", "six==1.16.0", python=python)
    expected = interpreter(python)  # the newest python<version>.x of this machine
    result = env.build_local(workspace)
    assert result.python_version == expected.version
    assert result.lock is not None and result.lock.python == expected.version
    reported = look.run(result.python, "import sys, six; print('%d.%d.%d' % sys.version_info[:3], six.__version__)")
    assert reported == f"{expected.version} 1.16.0"
    assert result.python == result.path / "env" / "bin" / "python"


def test_no_interpreter_for_the_version_lists_those_found(workspace: Workspace, look: Any) -> None:
    env = Environment("ancient")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"], python_version="3.4")
    with pytest.raises(DefinitionError) as e:
        env.build_local(workspace)
    message = str(e.value)
    assert message.startswith("no Python interpreter for python=3.4 on this machine (found: ")
    found = re.search(r"\(found: ([^)]*)\)", message)
    assert found is not None and all(re.fullmatch(r"3\.\d+\.\d+", v) for v in found.group(1).split(", "))
    assert look.published() == []
    assert lock_records(workspace, "ancient", 1) == []


# ---- locks -------------------------------------------------------------------------------------


def test_the_lock_holds_exact_versions_hashes_and_the_index(make_env: MakeEnv, workspace: Workspace,
                                                           interpreter: Callable[[str], Interpreter],
                                                           look: Any) -> None:
    env = make_env("locked", "six==1.16.0", "idna==3.7", "attrs==23.2.0")
    result = env.build_local(workspace)
    lock = result.lock
    assert lock is not None
    assert [(p.name, p.version) for p in lock.packages] == [("attrs", "23.2.0"), ("idna", "3.7"),
                                                            ("six", "1.16.0")]
    assert all(p.hashes and all(SHA256.fullmatch(h) for h in p.hashes) for p in lock.packages)
    assert lock.indexes == ("https://pypi.org/simple",)
    assert lock.requirements == ("six==1.16.0", "idna==3.7", "attrs==23.2.0")
    assert (lock.python, lock.platform) == (interpreter("3.12").version, interpreter("3.12").platform)
    assert lock.identity == env.hash
    assert result.resolved is True and result.cache_hit is False
    assert result.environment == "locked:1"
    # stored with the version, exactly as built
    assert lock_records(workspace, "locked", 1) == [lock]
    # and the environment holds exactly the lock's packages
    assert look.installed(result.python) == {"attrs": "23.2.0", "idna": "3.7", "six": "1.16.0"}
    assert result.path is not None and result.log_path == result.path / "build.log"
    assert "# kiln build of locked:1" in result.get_log()
    assert result.link_mode in ("hardlink", "clone", "copy")


def test_credentials_of_an_index_never_reach_the_lock(make_env: MakeEnv, workspace: Workspace,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-kiln-test-token"
    monkeypatch.setenv("KILN_TEST_INDEX_TOKEN", secret)
    index = "https://kiln:${KILN_TEST_INDEX_TOKEN}@pypi.org/simple"
    env = make_env("private", "idna==3.7", options=(f"--extra-index-url {index}",))
    result = env.build_local(workspace)
    assert result.lock is not None
    assert result.lock.indexes == ("https://pypi.org/simple", index)
    assert result.lock.version_of("idna") == "3.7"
    stored = workspace.store.list_environment_locks(name="private", version=1)[0].content
    assert result.path is not None
    for text in (result.lock.to_json(), stored, result.get_log(), (result.path / "kiln-entry.json").read_text()):
        assert secret not in text


def test_a_rebuild_without_the_cache_entry_reproduces_the_lock(make_env: MakeEnv, workspace: Workspace,
                                                               cache: BuildCache, look: Any) -> None:
    env = make_env("repro", "attrs", "idna", "six")  # unpinned: only the lock keeps them
    first = env.build_local(workspace)
    assert first.lock is not None and first.key is not None
    packages = look.installed(first.python)
    assert set(packages) == {"attrs", "idna", "six"}
    cache.remove(first.key)
    assert look.published() == []

    again = Environment.get(workspace, "repro").build_local(workspace)
    assert (again.resolved, again.cache_hit) == (False, False)
    assert again.lock is not None and again.lock.to_json() == first.lock.to_json()
    assert (again.key, again.path) == (first.key, first.path)
    assert look.installed(again.python) == packages
    assert len(lock_records(workspace, "repro", 1)) == 1


def _attrs_v1_then_unpinned_v2(make_env: MakeEnv, workspace: Workspace) -> BuildResult:
    """``up:1`` pins attrs 23.1.0 and is built; ``up:2`` asks for any attrs: the preferences keep 23.1.0."""
    v1 = make_env("up", "attrs==23.1.0").build_local(workspace)
    assert v1.lock is not None and v1.lock.version_of("attrs") == "23.1.0"
    v2 = make_env("up", "attrs").build_local(workspace)
    assert v2.environment == "up:2"
    assert v2.resolved is True
    assert v2.lock is not None and v2.lock.version_of("attrs") == "23.1.0"
    return v2


def test_an_unpinned_package_stays_at_its_locked_version(make_env: MakeEnv, workspace: Workspace,
                                                         cache: BuildCache, look: Any) -> None:
    _attrs_v1_then_unpinned_v2(make_env, workspace)
    shutil.rmtree(cache.root)  # the whole build cache is gone

    again = Environment.get(workspace, "up", 2).build_local(workspace)
    assert (again.resolved, again.cache_hit) == (False, False)
    assert again.lock is not None and again.lock.version_of("attrs") == "23.1.0"
    assert look.installed(again.python) == {"attrs": "23.1.0"}


def test_upgrade_makes_a_new_lock_and_keeps_the_old_one(make_env: MakeEnv, workspace: Workspace,
                                                        look: Any) -> None:
    v2 = _attrs_v1_then_unpinned_v2(make_env, workspace)
    before = [r.content for r in workspace.store.list_environment_locks(name="up", version=2)]
    assert len(before) == 1

    upgraded = build(Environment.get(workspace, "up", 2), workspace, upgrade=True)
    assert upgraded.resolved is True and upgraded.cache_hit is False
    assert upgraded.lock is not None
    newer = upgraded.lock.version_of("attrs")
    assert newer is not None and Version(newer) > Version("23.1.0")
    assert upgraded.lock_changes == [LockChange("attrs", "23.1.0", newer)]
    assert upgraded.key != v2.key
    records = workspace.store.list_environment_locks(name="up", version=2)
    assert [r.seq for r in records] == [1, 2]
    assert records[0].content == before[0]  # the old lock is never altered
    assert records[1].lock_hash == upgraded.lock.lock_hash
    assert len(workspace.store.list_environment_locks(name="up", version=1)) == 1

    # later builds of up:2 take the new lock; up:1 keeps its own
    later = Environment.get(workspace, "up", 2).build_local(workspace)
    assert (later.resolved, later.cache_hit, later.key) == (False, True, upgraded.key)
    assert look.installed(later.python) == {"attrs": newer}
    first = Environment.get(workspace, "up", 1).build_local(workspace)
    assert first.lock is not None and first.lock.version_of("attrs") == "23.1.0"
    assert first.cache_hit is True


def test_upgrade_with_nothing_newer_changes_nothing(make_env: MakeEnv, workspace: Workspace) -> None:
    first = make_env("pinned", "six==1.16.0").build_local(workspace)
    again = Environment.get(workspace, "pinned").build_local(workspace, upgrade=True)
    assert again.resolved is True and again.lock_changes == []
    assert (again.key, again.cache_hit) == (first.key, True)
    assert len(workspace.store.list_environment_locks(name="pinned", version=1)) == 1


def test_a_version_lock_records_its_own_requirements(make_env: MakeEnv, workspace: Workspace) -> None:
    _attrs_v1_then_unpinned_v2(make_env, workspace)
    v2 = Environment.get(workspace, "up", 2)
    (stored,) = lock_records(workspace, "up", 2)
    assert (stored.requirements, stored.identity) == (("attrs",), v2.hash)


def test_locked_refuses_to_resolve(make_env: MakeEnv, workspace: Workspace, look: Any) -> None:
    env = make_env("strict", "six==1.16.0")
    with pytest.raises(LockedError) as e:
        build(env, workspace, locked=True)
    assert str(e.value).startswith("strict:1 has no lock for Python 3.12 on ")
    assert "--locked forbids resolving one" in str(e.value)
    assert look.published() == []
    built = build(Environment.get(workspace, "strict"), workspace)
    assert build(Environment.get(workspace, "strict"), workspace, locked=True).key == built.key


# ---- sharing -----------------------------------------------------------------------------------


def test_two_names_with_one_definition_share_one_build(make_env: MakeEnv, workspace: Workspace,
                                                       look: Any) -> None:
    a = make_env("twin-a", "six==1.16.0", "idna==3.7").build_local(workspace)
    b = make_env("twin-b", "six==1.16.0", "idna==3.7", variables={"ONLY_B": "1"}).build_local(workspace)
    assert a.identity == b.identity
    assert (b.key, b.path, b.lock_hash) == (a.key, a.path, a.lock_hash)
    assert (a.cache_hit, b.cache_hit) == (False, True)
    assert b.resolved is False  # the lock of the same definition is reused, not resolved again
    assert look.published() == [a.key]
    assert [lk.lock_hash for lk in lock_records(workspace, "twin-b", 1)] == [a.lock_hash]
    assert (a.environment_variables, b.environment_variables) == ({}, {"ONLY_B": "1"})


def test_definitions_that_resolve_alike_share_one_build(make_env: MakeEnv, workspace: Workspace,
                                                        look: Any) -> None:
    a = make_env("exact", "six==1.16.0").build_local(workspace)
    b = make_env("ranged", "six>=1.16,<1.17").build_local(workspace)
    assert a.identity != b.identity
    assert b.resolved is True and b.cache_hit is True
    assert (b.lock_hash, b.key, b.path) == (a.lock_hash, a.key, a.path)
    assert look.published() == [a.key]


# ---- running in a built environment ----------------------------------------------------------------


def test_environ_applies_the_environment_and_its_variables(make_env: MakeEnv, workspace: Workspace,
                                                           look: Any) -> None:
    variables = {"KILN_TEST_GREETING": "hello world", "OMP_NUM_THREADS": "1"}
    result = make_env("vars", "six==1.16.0", variables=variables).build_local(workspace)
    assert result.path is not None
    environ = result.environ({"PATH": "/usr/bin:/bin", "PYTHONHOME": "/nowhere"})
    assert "PYTHONHOME" not in environ
    code = ("import json, os, shutil, sys; print(json.dumps([os.environ['KILN_TEST_GREETING'], "
            "os.environ['OMP_NUM_THREADS'], os.environ['VIRTUAL_ENV'], sys.prefix, shutil.which('python')]))")
    import json

    out = json.loads(look.run("python", code, env=environ))
    venv = str(result.path / "env")
    assert out == ["hello world", "1", venv, venv, str(result.python)]
    assert result.environ()["KILN_TEST_GREETING"] == "hello world"


# ---- background builds and images ----------------------------------------------------------------


def test_build_returns_a_handle(make_env: MakeEnv, workspace: Workspace, capsys: pytest.CaptureFixture[str]
                                ) -> None:
    handle = make_env("bg", "six==1.16.0").build(workspace)
    assert handle.status in ("Running", "Succeeded")
    result = handle.wait_for_completion(show_output=True)
    assert handle.status == "Succeeded"
    assert handle.result is result
    assert result.environment == "bg:1" and result.python.is_file()
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("[interpreter] Python 3.12.")
    assert shown[-1] == f"[done] built: {result.python}"
    log = handle.get_log()
    assert log.startswith("\n".join(shown))
    assert "# kiln build of bg:1" in log
    assert handle.wait_for_completion() is result


def test_a_failed_background_build(make_env: MakeEnv, workspace: Workspace, look: Any) -> None:
    handle = make_env("bg-bad", "kiln-surely-no-such-package-zq9").build(workspace)
    with pytest.raises(KilnError, match="kiln-surely-no-such-package-zq9 was not found in the package registry"):
        handle.wait_for_completion()
    assert handle.status == "Failed"
    assert handle.result is None
    assert "\n[failed] resolving bg-bad: " in handle.get_log()
    assert look.published() == []


def test_image_details(make_env: MakeEnv, workspace: Workspace) -> None:
    env = make_env("img", "six==1.16.0", variables={"KILN_TEST_GREETING": "hello"})
    result = env.build_local(workspace)
    details = env.get_image_details(workspace)
    registered = Environment.get(workspace, "img")
    assert re.fullmatch(r"kiln/kiln_[0-9a-f]{32}", details.image)
    assert details.image == f"kiln/kiln_{registered.hash[:32]}"
    assert details.interpreter_path == "/kiln/env/bin/python"
    assert details["lockHash"] == result.lock_hash
    assert details["pythonVersion"] == result.python_version
    lines = details.dockerfile.splitlines()
    step1 = lines.index("# Step 1: the base image and the environment's Docker steps")
    assert lines[step1 + 1] == "FROM docker.io/library/python:3.12-slim-bookworm"
    step2 = next(i for i, line in enumerate(lines) if line.startswith("# Step 2: "))
    assert step1 < step2
    assert lines[step2] == f"# Step 2: the Python environment from lock {result.lock_hash} (1 package)"
    assert any("uv pip sync --require-hashes" in line for line in lines[step2:])
    assert 'ENV KILN_TEST_GREETING="hello"' in lines
    assert len(workspace.environment_versions("img")) == 1  # asking did not register a new version


def test_build_local_with_docker_writes_the_image_and_its_details_show_it(make_env: MakeEnv, workspace: Workspace,
                                                                          look: Any) -> None:
    env = make_env("dockered", "six==1.16.0")
    with pytest.raises(WorkspaceError, match=r"pushImageToWorkspaceAcr=True, but the workspace has no registry"):
        env.build_local(workspace, useDocker=True, pushImageToWorkspaceAcr=True)
    with pytest.raises(NotFoundError):
        workspace.get_environment("dockered")
    assert look.published() == []
    assert env.get_image_details(workspace).digest is None  # registers, locks, writes nothing
    details = env.build_local(workspace, useDocker=True)
    assert SHA256.fullmatch(details.digest)
    assert details["imageExistState"] == "Succeeded"
    assert [layer["title"] for layer in details["layers"]] == ["environment", "six 1.16.0"]
    assert details["interpreterSource"] == ("the base image's (docker.io/library/python:3.12-slim-bookworm) at "
                                            "/usr/local/bin/python3.12")
    assert details["labels"]["io.kiln.lock-hash"] == details["lockHash"]
    assert Environment.get(workspace, "dockered").get_image_details(workspace) == details
    assert len(look.published()) == 1


# ---- user-managed interpreters -------------------------------------------------------------------


def _user_managed(name: str, path: str) -> Environment:
    env = Environment(name)
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = path
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.16.0"])  # not installed
    env.environment_variables = {"KILN_TEST_GREETING": "hi"}
    return env


def test_a_user_managed_interpreter_is_used_as_it_is(workspace: Workspace, interpreter: Callable[[str], Interpreter],
                                                     look: Any) -> None:
    python = interpreter("3.11")
    result = _user_managed("mine", python.path).build_local(workspace)
    assert result.python == Path(python.path)
    assert (result.python_version, result.backend, result.lock, result.path) == (python.version, "user-managed",
                                                                                 None, None)
    assert look.published() == []
    assert lock_records(workspace, "mine", 1) == []
    environ = result.environ({"PATH": "/usr/bin:/bin"})
    assert environ == {"PATH": "/usr/bin:/bin", "KILN_TEST_GREETING": "hi"}
    details = Environment.get(workspace, "mine").get_image_details(workspace)
    assert details.interpreter_path == python.path
    assert "# Step 2: none: Python is user-managed" in details.dockerfile.splitlines()


def test_a_missing_user_managed_interpreter_is_an_error(workspace: Workspace, tmp_path: Path, look: Any
                                                        ) -> None:
    missing = tmp_path / "gone" / "bin" / "python3"
    with pytest.raises(DefinitionError) as e:
        _user_managed("missing", str(missing)).build_local(workspace)
    assert str(e.value) == f"python.interpreter_path: {str(missing)!r} does not exist"
    not_python = tmp_path / "python3"
    not_python.write_text("just text\n")
    with pytest.raises(DefinitionError, match="does not run as a Python interpreter"):
        _user_managed("not-python", str(not_python)).build_local(workspace)
    with pytest.raises(KilnError, match=r"python.interpreter_path: 'kiln-no-such-python' is not on PATH"):
        _user_managed("no-command", "kiln-no-such-python").build_local(workspace)
    assert look.published() == []


# ---- failed builds -----------------------------------------------------------------------------


def make_sdist(folder: Path, name: str, setup_py: str) -> Path:
    """A minimal sdist ``<name>-1.0.tar.gz`` in ``folder`` whose ``setup.py`` is ``setup_py``."""
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{name}-1.0"
    members = {f"{base}/setup.py": setup_py,
               f"{base}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"}
    path = folder / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


RAISES = "raise SystemExit('kiln-test: this sdist refuses to build')\n"
NO_WHEEL = ("import sys\nfrom setuptools import setup\nif 'bdist_wheel' in sys.argv:\n"
            "    raise SystemExit('kiln-test: no wheel today')\nsetup(name='{name}', version='1.0')\n")
BUILDS = "from setuptools import setup\nsetup(name='{name}', version='1.0', py_modules=[])\n"


def assert_left_nothing(workspace: Workspace, look: Any, name: str) -> None:
    assert look.published() == []
    assert look.staged() == []
    assert lock_records(workspace, name, 1) == []
    assert workspace.store.referenced_lock_hashes() == set()


@pytest.mark.parametrize(("requirement", "message"), [
    ("kiln-surely-no-such-package-zq9", "Because kiln-surely-no-such-package-zq9 was not found in the package "
                                        "registry and you require kiln-surely-no-such-package-zq9, we can conclude "
                                        "that your requirements are unsatisfiable."),
    ("six==0.0.999", "Because there is no version of six==0.0.999 and you require six==0.0.999, we can conclude "
                     "that your requirements are unsatisfiable."),
    ("kiln-test-broken-sdist==1.0", "kiln-test: this sdist refuses to build"),
], ids=["unknown-package", "no-such-version", "sdist-fails"])
def test_a_bad_package_fails_the_build_and_leaves_nothing(requirement: str, message: str, make_env: MakeEnv,
                                                          workspace: Workspace, tmp_path: Path,
                                                          look: Any) -> None:
    dists = tmp_path / "dists"
    make_sdist(dists, "kiln_test_broken_sdist", RAISES)
    env = make_env("bad", "six==1.16.0", requirement, options=(f"--find-links {dists}",))
    with pytest.raises(KilnError) as e:
        env.build_local(workspace)
    assert str(e.value).startswith("resolving bad: ")
    assert message in str(e.value)
    assert_left_nothing(workspace, look, "bad")
    assert workspace.get_environment("bad").version == "1"  # registered, as Azure ML does, but not built


def test_a_failure_while_installing_leaves_nothing(make_env: MakeEnv, workspace: Workspace, tmp_path: Path,
                                                   look: Any) -> None:
    """The sdist's metadata is fine (the lock resolves) but its wheel fails to build: the staged build goes."""
    dists = tmp_path / "dists"
    make_sdist(dists, "kiln_test_no_wheel", NO_WHEEL.format(name="kiln_test_no_wheel"))
    env = make_env("late", "six==1.16.0", "kiln-test-no-wheel==1.0", options=(f"--find-links {dists}",))
    with pytest.raises(KilnError) as e:
        env.build_local(workspace)
    assert str(e.value).startswith("installing late:1: ")
    assert "kiln-test-no-wheel" in str(e.value)
    assert_left_nothing(workspace, look, "late")
    assert (look.cache.root / "tmp").is_dir()  # a build was staged, then removed


def test_a_package_from_find_links_installs_from_the_lock(make_env: MakeEnv, workspace: Workspace, tmp_path: Path,
                                                          look: Any) -> None:
    dists = tmp_path / "dists"
    make_sdist(dists, "kiln_test_local", BUILDS.format(name="kiln_test_local"))
    first = make_env("local", "kiln-test-local==1.0", options=(f"--find-links {dists}",)).build_local(workspace)
    assert first.key is not None
    assert look.installed(first.python) == {"kiln-test-local": "1.0"}
    look.cache.remove(first.key)  # the next build installs from the lock alone
    again = Environment.get(workspace, "local").build_local(workspace)
    assert look.installed(again.python) == {"kiln-test-local": "1.0"}


# ---- known bugs of the build machinery --------------------------------------------------------------


def test_run_uv_closes_its_pipe() -> None:
    code = ("import gc, warnings\nwarnings.simplefilter('error')\nfrom kiln.builds.uv import run_uv\n"
            "run_uv(['--version'], what='uv --version')\ngc.collect()\n")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_uv_binary_is_safe_from_two_threads_at_once() -> None:
    code = ("import threading\nfrom kiln.builds.uv import uv_binary\nerrors = []\n"
            "def find():\n    try:\n        uv_binary()\n    except Exception as e:\n        errors.append(repr(e))\n"
            "threads = [threading.Thread(target=find) for _ in range(2)]\n"
            "[t.start() for t in threads]\n[t.join() for t in threads]\nprint(errors)\n")
    for _ in range(40):  # a fresh process each time: the race is on first use
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]"
