"""``kiln env build / python / lock`` and ``kiln cache list / du / prune``: the real command, real builds.

Standard streams are pipes here, so progress is plain ``NAME:VERSION: message`` lines on stderr.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from kiln.builds.cache import BuildCache, disk_usage
from kiln.builds.interpreters import Interpreter

pytestmark = pytest.mark.integration

PY = "3.12"


def conda_file(folder: Path, name: str, *pip: str, python: str = PY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(f"name: {name}\nchannels:\n  - conda-forge\ndependencies:\n  - python={python}\n  - pip:\n"
                    + "".join(f"    - {p}\n" for p in pip))
    return path


def ok(run_kiln: Any, *args: str) -> tuple[str, str]:
    code, out, err = run_kiln(*args)
    assert code == 0, (args, code, out, err)
    return out, err


def envelope(run_kiln: Any, *args: str, kind: str) -> Any:
    out, err = ok(run_kiln, "-o", "json", *args)
    assert err == ""
    doc = json.loads(out)
    assert (doc["kiln"], doc["kind"]) == (1, kind)
    return doc["data"]


def register(run_kiln: Any, tmp_path: Path, name: str, *pip: str, workspace: Path | None = None,
             python: str = PY) -> str:
    where = ("-w", str(workspace)) if workspace is not None else ()
    data = envelope(run_kiln, *where, "env", "register", "-d", str(conda_file(tmp_path / "defs", name, *pip,
                                                                                python=python)),
                    kind="env.register")
    assert data["created"] is True
    return str(data["version"])


@pytest.fixture
def python(interpreter: Any) -> Interpreter:
    found: Interpreter = interpreter(PY)
    return found


def test_env_build_shows_progress_then_the_environment(run_kiln: Any, tmp_path: Path, python: Interpreter,
                                                       look: Any) -> None:
    register(run_kiln, tmp_path, "cli-env", "six==1.16.0", "idna==3.7")
    out, err = ok(run_kiln, "env", "build", "cli-env")
    (key,) = look.published()
    entry = look.cache.bucket / key
    lines = out.splitlines()
    assert re.fullmatch(r"cli-env:1: built \(venv, \d+\.\d\d s\)", lines[0])
    lock_hash = envelope(run_kiln, "env", "lock", "cli-env", kind="env.lock")["lock_hash"]
    assert lines[1:] == [f"  python       {entry}/env/bin/python  (Python {python.version})",
                         f"  environment  {entry}",
                         f"  lock         {lock_hash[:12]}  (2 packages)"]
    progress = err.splitlines()
    assert "\x1b" not in err  # no terminal: no colours, no bar
    assert all(line.startswith("cli-env:1: ") for line in progress)
    assert progress[0] == f"cli-env:1: Python {python.version} ({python.path})"
    assert progress[-1] == f"cli-env:1: built: {entry}/env/bin/python"

    out, err = ok(run_kiln, "env", "build", "cli-env:1")
    assert re.fullmatch(r"cli-env:1: cache hit \(venv, \d+\.\d\d s\)", out.splitlines()[0])
    assert out.splitlines()[1:] == lines[1:]
    assert err.splitlines()[-1] == f"cli-env:1: cache hit: {entry}/env/bin/python"
    assert look.published() == [key]

    data = envelope(run_kiln, "env", "build", "cli-env", kind="env.build")
    assert (data["cache_hit"], data["resolved"], data["key"], data["path"]) == (True, False, key, str(entry))
    assert data["packages"] == ["idna==3.7", "six==1.16.0"]


def test_env_python_prints_the_interpreter(run_kiln: Any, tmp_path: Path, python: Interpreter, look: Any) -> None:
    register(run_kiln, tmp_path, "py-env", "six==1.16.0")
    out, err = ok(run_kiln, "env", "python", "py-env")  # builds first when needed, quietly
    assert err == ""
    path = Path(out.removesuffix("\n"))
    assert out == f"{path}\n"
    assert path == look.cache.bucket / look.published()[0] / "env" / "bin" / "python"
    assert look.run(path, "import sys, six; print('%d.%d.%d' % sys.version_info[:3], six.__version__)") \
        == f"{python.version} 1.16.0"
    assert ok(run_kiln, "env", "python", "py-env") == (out, "")
    assert envelope(run_kiln, "env", "python", "py-env", kind="env.python") == {"python": str(path),
                                                                               "version": python.version}


def test_env_lock_shows_the_lock(run_kiln: Any, tmp_path: Path, python: Interpreter) -> None:
    register(run_kiln, tmp_path, "lock-env", "six==1.16.0", "idna==3.7")
    before = envelope(run_kiln, "env", "lock", "lock-env", kind="env.lock")
    assert before["stored"] is False  # resolved to show it; stored only by a build
    ok(run_kiln, "env", "build", "lock-env")

    data = envelope(run_kiln, "env", "lock", "lock-env", kind="env.lock")
    assert data["stored"] is True
    assert data["lock_hash"] == before["lock_hash"]
    assert (data["environment"], data["python"], data["platform"]) == ("lock-env:1", python.version,
                                                                       python.platform)
    assert data["indexes"] == ["https://pypi.org/simple"]
    assert data["requirements"] == ["six==1.16.0", "idna==3.7"]
    assert [(p["name"], p["version"]) for p in data["packages"]] == [("idna", "3.7"), ("six", "1.16.0")]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for p in data["packages"] for h in p["hashes"])

    out, err = ok(run_kiln, "env", "lock", "lock-env")
    assert err == ""
    idna, six = data["packages"]
    assert out.splitlines() == [
        f"lock-env:1  lock {data['lock_hash']}",
        f"  python {python.version} on {python.platform}, resolved by {data['resolver']} at {data['created_at']}",
        "  indexes: https://pypi.org/simple",
        f"  idna==3.7  {idna['hashes'][0]}",
        f"  six==1.16.0  {six['hashes'][0]}",
    ]


def test_locked_without_a_lock_fails_clearly(run_kiln: Any, tmp_path: Path, python: Interpreter,
                                             look: Any) -> None:
    register(run_kiln, tmp_path, "strict", "six==1.16.0")
    ok(run_kiln, "env", "build", "strict")
    assert register(run_kiln, tmp_path, "strict", "six==1.16.0", "idna==3.7") == "2"
    expected = (f"kiln: error: strict:2 has no lock for Python {PY} on {python.platform} and --locked forbids "
                "resolving one; the newest lock of 'strict' is version 1's: the definition changed since\n")
    assert run_kiln("env", "lock", "strict", "--locked") == (1, "", expected)
    code, out, err = run_kiln("env", "build", "strict", "--locked")
    assert (code, out) == (1, "")
    assert err.endswith(expected) and "Traceback" not in err
    assert len(look.published()) == 1  # nothing was built for version 2
    ok(run_kiln, "env", "build", "strict:1", "--locked")  # version 1 has its lock


def test_cache_list_and_du(run_kiln: Any, tmp_path: Path, python: Interpreter, look: Any) -> None:
    assert envelope(run_kiln, "cache", "list", kind="cache.list") == []
    register(run_kiln, tmp_path, "first", "six==1.16.0", "idna==3.7", "attrs==23.2.0", "packaging==24.1")
    first = envelope(run_kiln, "env", "build", "first", kind="env.build")

    (row,) = envelope(run_kiln, "cache", "list", kind="cache.list")
    assert (row["key"], row["environment"], row["python"], row["backend"], row["packages"], row["path"]) == (
        first["key"], "first:1", python.version, "venv", 4, first["path"])
    out, _ = ok(run_kiln, "cache", "list")
    header, line = out.splitlines()
    assert header.split() == ["KEY", "BUILT", "FOR", "PYTHON", "BACKEND", "PACKAGES", "LAST", "USED"]
    assert line.split()[:5] == [first["key"][:12], "first:1", python.version, "venv", "4"]

    du1 = envelope(run_kiln, "cache", "du", kind="cache.du")
    assert (du1["path"], du1["entries"]) == (str(look.cache.root), 1)
    entry_size = disk_usage([Path(first["path"])])
    assert du1["bytes"] >= entry_size > 0
    out, _ = ok(run_kiln, "cache", "du")
    assert re.fullmatch(rf"\d+\.\d (KiB|MiB) in 1 build \({re.escape(str(look.cache.root))}\)\n", out)

    # another definition with the same packages and one more: its files are uv's, hardlinked, counted once
    register(run_kiln, tmp_path, "second", "six==1.16.0", "idna==3.7", "attrs==23.2.0", "packaging==24.1",
             "iniconfig==2.0.0")
    second = envelope(run_kiln, "env", "build", "second", kind="env.build")
    assert second["key"] != first["key"] and second["cache_hit"] is False
    du2 = envelope(run_kiln, "cache", "du", kind="cache.du")
    assert du2["entries"] == 2
    assert 0 < du2["bytes"] - du1["bytes"] < entry_size * 0.5, (du1, du2, entry_size)


def test_cache_prune_keeps_what_a_workspace_references(run_kiln: Any, tmp_path: Path, python: Interpreter,
                                                       look: Any) -> None:
    register(run_kiln, tmp_path, "kept", "six==1.16.0")
    kept = envelope(run_kiln, "env", "build", "kept", kind="env.build")
    other = tmp_path / "other-ws"
    ok(run_kiln, "workspace", "create", "other", "-d", str(other), "--no-config")
    register(run_kiln, tmp_path, "gone", "idna==3.7", workspace=other)
    gone = envelope(run_kiln, "-w", str(other), "env", "build", "gone", kind="env.build")
    assert look.published() == sorted([kept["key"], gone["key"]])

    # while the other workspace exists its version references its build: nothing to prune
    assert envelope(run_kiln, "cache", "prune", "--dry-run", kind="cache.prune")["removed"] == []
    shutil.rmtree(other)

    out, err = ok(run_kiln, "cache", "prune", "--dry-run")
    lines = out.splitlines()
    assert lines[0] == f"would remove {gone['key'][:12]}  gone:1"
    assert re.fullmatch(r"would remove 1 build, would free \d+\.\d KiB; kept 1 \(\d+\.\d KiB\)", lines[1])
    assert len(lines) == 2 and err == ""
    assert look.published() == sorted([kept["key"], gone["key"]])  # a dry run removes nothing

    data = envelope(run_kiln, "cache", "prune", kind="cache.prune")
    assert (data["dry_run"], data["removed"], data["kept"]) == (False, [gone["key"]], 1)
    assert data["freed"] > 0
    assert look.published() == [kept["key"]]
    assert look.staged() == []
    again = envelope(run_kiln, "env", "build", "kept", kind="env.build")
    assert (again["cache_hit"], again["path"]) == (True, kept["path"])
    assert subprocess.run([again["python"], "-c", "import six"], check=False).returncode == 0


def test_cache_prune_max_size(run_kiln: Any, tmp_path: Path, python: Interpreter, look: Any) -> None:
    code, out, err = run_kiln("cache", "prune", "--max-size", "lots")
    assert (code, out) == (1, "")
    assert err == "kiln: error: --max-size: 'lots' is not a size like 500M, 2G or 1024\n"
    register(run_kiln, tmp_path, "small", "six==1.16.0")
    ok(run_kiln, "env", "build", "small")
    # a referenced build stays even when the cache is over the limit
    data = envelope(run_kiln, "cache", "prune", "--max-size", "0", kind="cache.prune")
    assert (data["removed"], data["kept"]) == ([], 1)
    assert len(BuildCache(look.cache.root).entries()) == 1


def test_env_build_upgrade_shows_what_moved(run_kiln: Any, tmp_path: Path, python: Interpreter) -> None:
    register(run_kiln, tmp_path, "up", "attrs==23.1.0")
    ok(run_kiln, "env", "build", "up")
    register(run_kiln, tmp_path, "up", "attrs")  # version 2: any attrs; its first lock keeps 23.1.0
    assert envelope(run_kiln, "env", "build", "up", kind="env.build")["packages"] == ["attrs==23.1.0"]

    out, _ = ok(run_kiln, "env", "build", "up", "--upgrade")
    lines = out.splitlines()
    assert lines[-2] == "  upgrade:"
    moved = re.fullmatch(r"    ~ attrs 23\.1\.0 -> (\S+)", lines[-1])
    assert moved is not None
    history = envelope(run_kiln, "env", "lock", "up:2", "--history", kind="env.lock.history")
    assert [h["seq"] for h in history] == [1, 2]
    assert envelope(run_kiln, "env", "build", "up", kind="env.build")["packages"] == [f"attrs=={moved.group(1)}"]
    out, _ = ok(run_kiln, "env", "build", "up:1", "--upgrade")
    assert out.splitlines()[-1] == "  upgrade: no newer versions"
    code, out, err = run_kiln("env", "build", "up", "--upgrade", "--locked")
    assert (code, out) == (1, "")
    assert "--upgrade and --locked exclude each other" in err
