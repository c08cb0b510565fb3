"""Conda builds for real: ``kiln env build`` solves with py-rattler against a local channel, installs
into a prefix, puts the pip list on top with uv and records one lock for both (see ``conda_support``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conda_support import *  # noqa: F403 - the fixtures (see conda_support)
from conda_support import (
    PLACEHOLDER,
    PY,
    Gate,
    build,
    cache_root,
    datapkg,
    envelope,
    fails,
    files_of,
    installed,
    publish,
    published,
    register,
    run,
    serving,
    sha256,
)

from kiln.builds.interpreters import Interpreter

pytestmark = pytest.mark.integration


# ---- solve and install ---------------------------------------------------------------------------


def test_solve_and_install_from_a_local_channel(run_kiln: Any, tmp_path: Path, channel: Path,
                                                python: Interpreter) -> None:
    register(run_kiln, tmp_path, "conda-env", [str(channel)], ["datapkg<2", "hellokiln", "prefixpkg"])
    result = build(run_kiln, "conda-env")
    assert (result["backend"], result["cache_hit"], result["resolved"]) == ("conda", False, True)
    entry = Path(result["path"])
    assert published() == [entry]
    prefix = entry / "env"
    assert Path(result["python"]) == prefix / "bin" / "python"

    # the noarch: python package, its console script, and the data package it reads (the pinned version)
    assert run(prefix / "bin" / "python", "-c", "import hellokiln; print(hellokiln.__file__, hellokiln.data())") == (
        f"{prefix}/lib/python{PY}/site-packages/hellokiln/__init__.py datapkg 1.0")
    assert run(prefix / "bin" / "hellokiln") == "hello from datapkg 1.0"
    assert f"{prefix}/bin/python{PY}" in (prefix / "bin" / "hellokiln").read_text()  # its interpreter, published
    assert (prefix / "share" / "datapkg" / "data.txt").read_text() == "datapkg 1.0\n"
    # hardlinked from rattler's package cache, inside Kiln's cache
    assert (prefix / "share" / "datapkg" / "data.txt").samefile(
        cache_root() / "conda-pkgs" / "datapkg-1.0-0" / "share" / "datapkg" / "data.txt")

    # the placeholder holds the published path: not the build's staging folder, not the build prefix
    where = (prefix / "share" / "prefixpkg" / "where.txt").read_text()
    assert where == f"prefix={prefix}\n"
    assert run(prefix / "bin" / "prefixpkg-where") == f"{prefix}/share"
    assert PLACEHOLDER not in (prefix / "bin" / "prefixpkg-where").read_text()
    assert not list((cache_root() / "tmp").iterdir())

    assert sorted(p.name for p in (prefix / "conda-meta").glob("*.json")) == [
        "datapkg-1.0-0.json", "hellokiln-0.1-pyh_0.json", "prefixpkg-1.0-h0_0.json",
        f"python-{python.version}-kiln_0.json"]
    log = (entry / "build.log").read_text()
    assert f"# python: {python.path} (Python {python.version}, found on this machine: no channel serves python)" in log
    assert "  conda datapkg=1.0=0  (" in log
    assert "# installing 4 conda packages with py-rattler" in log


def test_an_unpinned_package_takes_the_newest_version(run_kiln: Any, tmp_path: Path, channel: Path,
                                                      python: Interpreter) -> None:
    register(run_kiln, tmp_path, "newest", [channel.as_uri()], ["hellokiln"])
    prefix = Path(build(run_kiln, "newest")["path"]) / "env"
    assert run(prefix / "bin" / "hellokiln") == "hello from datapkg 2.0"
    locked = envelope(run_kiln, "env", "lock", "newest", kind="env.lock")
    assert {c["name"]: c["version"] for c in locked["conda"]} == {"datapkg": "2.0", "hellokiln": "0.1",
                                                                  "python": python.version}


def test_an_unsolvable_spec_names_the_package(run_kiln: Any, tmp_path: Path, channel: Path,
                                              python: Interpreter) -> None:
    register(run_kiln, tmp_path, "unsolvable", [str(channel)], ["hellokiln", "datapkg>=3"])
    message = fails(run_kiln, "env", "build", "unsolvable")
    assert message == ("solving the conda packages of unsolvable: SolverError: Cannot solve the request because of: "
                       "No candidates were found for datapkg >=3.")
    assert published() == []
    assert not list((cache_root() / "tmp").iterdir())
    assert envelope(run_kiln, "env", "lock", "unsolvable", "--history", kind="env.lock.history") == []


# ---- pip on top, one lock ----------------------------------------------------------------------------


def test_pip_on_top_and_one_lock_for_both(run_kiln: Any, tmp_path: Path, channel: Path,
                                          python: Interpreter) -> None:
    register(run_kiln, tmp_path, "both", [str(channel)], ["hellokiln", "prefixpkg"], ["six==1.16.0"])
    result = build(run_kiln, "both")
    prefix = Path(result["path"]) / "env"
    assert installed(prefix / "bin" / "python") == {"six": ("1.16.0", "uv")}  # conda packages have no dist-info
    assert run(prefix / "bin" / "python", "-c", "import six, hellokiln; print(hasattr(six, 'KILN_CONDA_BUILD'))") == \
        "False"

    lock = envelope(run_kiln, "env", "lock", "both", kind="env.lock")
    assert lock["stored"] is True
    assert lock["lock_hash"] == result["lock_hash"]
    assert (lock["python_source"], lock["conda_via"]) == ("kiln", "conda")
    assert lock["requirements"] == ["six==1.16.0"]
    (six,) = lock["packages"]
    assert (six["name"], six["version"]) == ("six", "1.16.0")
    assert six["hashes"] and all(h.startswith("sha256:") for h in six["hashes"])
    base = channel.as_uri() + "/"
    expected = [("datapkg", "2.0", "0", "noarch/datapkg-2.0-0.conda"),
                ("hellokiln", "0.1", "pyh_0", "noarch/hellokiln-0.1-pyh_0.tar.bz2"),
                ("prefixpkg", "1.0", "h0_0", "linux-64/prefixpkg-1.0-h0_0.tar.bz2")]
    conda = {c["name"]: c for c in lock["conda"]}
    assert sorted(conda) == ["datapkg", "hellokiln", "prefixpkg", "python"]
    for name, version, build_string, file in expected:
        assert conda[name] == {"name": name, "version": version, "build": build_string, "channel": base,
                               "subdir": file.split("/")[0], "url": base + file, "sha256": sha256(channel / file)}
    stand_in = conda["python"]
    assert (stand_in["version"], stand_in["build"], stand_in["subdir"]) == (python.version, "kiln_0", "linux-64")
    assert stand_in["url"].startswith((cache_root() / "channels" / "kiln-interpreters").as_uri())


def test_a_pip_package_that_conda_provides_is_not_installed_twice(run_kiln: Any, tmp_path: Path, channel: Path,
                                                                  python: Interpreter) -> None:
    register(run_kiln, tmp_path, "once", [str(channel)], ["six"], ["six==1.16.0"])
    result = build(run_kiln, "once")
    prefix = Path(result["path"]) / "env"
    assert installed(prefix / "bin" / "python") == {"six": ("1.16.0", "conda")}
    assert run(prefix / "bin" / "python", "-c", "import six; print(six.KILN_CONDA_BUILD)") == "True"
    assert len(list((prefix / "lib" / f"python{PY}" / "site-packages").glob("six-*.dist-info"))) == 1
    lock = envelope(run_kiln, "env", "lock", "once", kind="env.lock")
    assert lock["packages"] == []
    assert "six" in {c["name"] for c in lock["conda"]}


# ---- the lock: rebuilds without a solve, upgrades --------------------------------------------------


def test_a_rebuild_installs_the_lock_without_solving(run_kiln: Any, tmp_path: Path, own_channel: Path,
                                                     python: Interpreter) -> None:
    register(run_kiln, tmp_path, "again", [str(own_channel)], ["datapkg<2", "hellokiln", "prefixpkg"],
             ["six==1.16.0"])
    first = build(run_kiln, "again")
    entry = Path(first["path"])
    before = files_of(entry / "env")

    # no build, no unpacked packages, and a channel that can no longer be solved against: only the lock is left
    shutil.rmtree(entry)
    shutil.rmtree(cache_root() / "conda-pkgs")
    for index in [*own_channel.glob("*/repodata*"), *own_channel.glob("*/shards")]:
        shutil.rmtree(index) if index.is_dir() else index.unlink()

    second = build(run_kiln, "again")
    assert (second["resolved"], second["cache_hit"]) == (False, False)
    assert (second["lock_hash"], second["path"]) == (first["lock_hash"], first["path"])
    assert files_of(entry / "env") == before
    assert run(entry / "env" / "bin" / "hellokiln") == "hello from datapkg 1.0"

    # a solve would fail now (which is what the rebuild did without)
    code, _, err = run_kiln("env", "build", "again", "--upgrade")
    assert code == 1, err
    assert [p.name for p in published()] == [entry.name]


def test_upgrade_solves_again(run_kiln: Any, tmp_path: Path, own_channel: Path, python: Interpreter) -> None:
    register(run_kiln, tmp_path, "moving", [str(own_channel)], ["hellokiln"])
    first = build(run_kiln, "moving")
    assert run(Path(first["path"]) / "env" / "bin" / "hellokiln") == "hello from datapkg 2.0"
    publish(own_channel, [datapkg("3.0")])

    # the lock holds: a plain build is the same build; a changed definition keeps what it can
    assert build(run_kiln, "moving")["cache_hit"] is True
    register(run_kiln, tmp_path, "moving", [str(own_channel)], ["hellokiln", "prefixpkg"])
    changed = build(run_kiln, "moving")
    assert changed["resolved"] is True
    assert run(Path(changed["path"]) / "env" / "bin" / "hellokiln") == "hello from datapkg 2.0"

    upgraded = build(run_kiln, "moving", "--upgrade")
    assert upgraded["resolved"] is True
    assert upgraded["lock_changes"] == ["~ conda:datapkg 2.0=0 -> 3.0=0"]
    assert run(Path(upgraded["path"]) / "env" / "bin" / "hellokiln") == "hello from datapkg 3.0"
    history = envelope(run_kiln, "env", "lock", "moving", "--history", kind="env.lock.history")
    assert [h["lock_hash"] for h in history] == [changed["lock_hash"], upgraded["lock_hash"]]
    assert Path(changed["path"]).is_dir()  # the old build stays for whoever uses the old lock


def test_two_names_with_one_definition_share_a_build(run_kiln: Any, tmp_path: Path, channel: Path,
                                                     python: Interpreter) -> None:
    register(run_kiln, tmp_path, "first-name", [str(channel)], ["hellokiln"])
    register(run_kiln, tmp_path, "second-name", [str(channel)], ["hellokiln"])
    first = build(run_kiln, "first-name")
    second = build(run_kiln, "second-name")
    assert (first["cache_hit"], second["cache_hit"], second["resolved"]) == (False, True, False)
    assert (second["path"], second["lock_hash"]) == (first["path"], first["lock_hash"])
    assert len(published()) == 1


# ---- crashes -----------------------------------------------------------------------------------------


def test_a_build_killed_while_installing_leaves_nothing_published(run_kiln: Any, tmp_path: Path,
                                                                  served_channel: tuple[str, Gate],
                                                                  python: Interpreter) -> None:
    from conftest import kiln_cmd

    url, gate = served_channel
    register(run_kiln, tmp_path, "killed", [url], ["datapkg<2", "hellokiln", "prefixpkg"], ["six==1.16.0"])
    proc = subprocess.Popen([*kiln_cmd(), "env", "build", "killed"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert gate.requested.wait(120), "the build never downloaded hellokiln"
        staged = list((cache_root() / "tmp").iterdir())
        assert len(staged) == 1 and (staged[0] / "env").is_dir()  # installing into the staging folder
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert published() == []
    assert envelope(run_kiln, "env", "lock", "killed", "--history", kind="env.lock.history") == []

    gate.release.set()
    result = build(run_kiln, "killed")
    assert (result["cache_hit"], result["resolved"]) == (False, True)
    prefix = Path(result["path"]) / "env"
    assert published() == [Path(result["path"])]
    assert run(prefix / "bin" / "hellokiln") == "hello from datapkg 1.0"
    assert (prefix / "share" / "prefixpkg" / "where.txt").read_text() == f"prefix={prefix}\n"
    assert installed(prefix / "bin" / "python") == {"six": ("1.16.0", "uv")}
    assert not list((cache_root() / "tmp").iterdir())  # the killed build's staging folder is gone too


# ---- reported bugs -----------------------------------------------------------------------------------


def test_a_rebuild_from_the_lock_with_a_new_cache(run_kiln: Any, tmp_path: Path, channel: Path,
                                                  python: Interpreter) -> None:
    register(run_kiln, tmp_path, "fresh-cache", [str(channel)], ["hellokiln"])
    first = build(run_kiln, "fresh-cache")
    shutil.rmtree(cache_root())
    second = build(run_kiln, "fresh-cache")
    assert (second["resolved"], second["lock_hash"]) == (False, first["lock_hash"])


def test_a_second_solve_against_an_http_channel(run_kiln: Any, tmp_path: Path, channel: Path,
                                                python: Interpreter) -> None:
    with serving(channel, Gate(), revalidate=True) as url:
        register(run_kiln, tmp_path, "first", [url], ["datapkg"])
        register(run_kiln, tmp_path, "second", [url], ["datapkg<2"])
        assert build(run_kiln, "first", "--conda-via", "conda")["resolved"] is True
        assert build(run_kiln, "second", "--conda-via", "conda")["resolved"] is True
