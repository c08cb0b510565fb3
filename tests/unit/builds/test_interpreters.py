"""Finding Python interpreters and picking one for a definition's Python version.

Discovery is fed an explicit ``environ`` (its own PATH, PYENV_ROOT, uv folder and ``KILN_PYTHONS``)
so that what it finds is exactly what a test put there. Fake interpreters are small shell scripts
named ``python3`` that either run this test's real interpreter (counting their runs in a file) or
print the JSON answer of Kiln's probe for a chosen version.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from kiln.builds.interpreters import (
    ENV_PYTHONS,
    Interpreter,
    discover,
    find_interpreter,
    inspect_interpreter,
    select,
    version_matches,
)
from kiln.errors import DefinitionError

THIS_VERSION = ".".join(str(n) for n in sys.version_info[:3])


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def real_python(path: Path, runs: Path | None = None) -> Path:
    """A ``python3`` wrapper around this test's interpreter; each run appends a line to ``runs``."""
    count = f'echo run >> "{runs}"\n' if runs is not None else ""
    return _script(path, f'{count}exec "{sys.executable}" "$@"\n')


def fake_python(path: Path, version: str, runs: Path | None = None) -> Path:
    """A ``python3`` that answers Kiln's probe as CPython ``version`` would (each run counted in ``runs``)."""
    answer = json.dumps({"version": version, "implementation": "cpython", "machine": "x86_64", "system": "Linux"})
    count = f'echo run >> "{runs}"\n' if runs is not None else ""
    return _script(path, f"{count}echo '{answer}'\n")


def environ_for(tmp_path: Path, *, path: list[Path] | None = None, pythons: list[Path] | None = None
                ) -> dict[str, str]:
    """An environment where discovery sees only ``path`` (PATH folders) and ``pythons`` (KILN_PYTHONS)."""
    empty = tmp_path / "nothing-here"
    empty.mkdir(exist_ok=True)
    return {"PATH": os.pathsep.join(str(p) for p in path or []), "PYENV_ROOT": str(tmp_path / "pyenv"),
            "UV_PYTHON_INSTALL_DIR": str(empty), ENV_PYTHONS: os.pathsep.join(str(p) for p in pythons or [])}


def runs_of(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


# ---- version_matches ---------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "spec", "expected"), [
    ("3.9.18", "3.9", True),
    ("3.9.18", "3.9.*", True),
    ("3.9.18", "3.9.18", True),
    ("3.9.18", "3.9.1", False),  # an exact release, not a prefix of the text
    ("3.10.13", "3.1", False),
    ("3.10.13", "3.10", True),
    ("3.10.13", "3.9", False),
    ("3.12.1", "3", True),
    ("3.11.7", "==3.11.7", True),
    ("3.11.7", ">=3.9,<3.12", True),
    ("3.12.1", ">=3.9,<3.12", False),
    ("3.11.7", ">=3.9, <3.12", True),
    ("3.8.18", ">=3.9", False),
    ("3.11.7", "!=3.11.*", False),
    ("3.11.7", "3.9|3.11", True),
    ("3.10.13", "3.9|3.11", False),
    ("3.12.1", "3.9.*|>=3.12", True),
    ("3.11.7", " 3.11 ", True),
])
def test_version_matches(version: str, spec: str, expected: bool) -> None:
    assert version_matches(version, spec) is expected


@pytest.mark.parametrize("spec", ["banana", "3.11.x", ">=three"])
def test_version_matches_refuses_what_it_does_not_understand(spec: str) -> None:
    with pytest.raises(DefinitionError, match=f"python version {spec!r} is not a version or a range"):
        version_matches("3.11.7", spec)


# ---- select ------------------------------------------------------------------------------------

POOL = [Interpreter("/py/3.12.1", "3.12.1"), Interpreter("/py/3.11.7", "3.11.7"), Interpreter("/py/3.9.18", "3.9.18"),
        Interpreter("/py/3.9.2", "3.9.2")]


@pytest.mark.parametrize(("spec", "picked"), [
    ("3.9", "3.9.18"), ("3.9.2", "3.9.2"), (">=3.10", "3.12.1"), ("<3.12", "3.11.7"), ("3.9|3.11", "3.11.7"),
    (None, "3.11.7"),  # the default
])
def test_select_picks_the_newest_match_of_discovery_order(spec: str | None, picked: str) -> None:
    assert select(spec, POOL, default="3.11").version == picked


def test_select_picks_the_newest_match_whatever_the_order() -> None:
    shuffled = [POOL[3], POOL[1], POOL[2], POOL[0]]  # 3.9.2 before 3.9.18
    assert select("3.9", shuffled, default="3.12").version == "3.9.18"


def test_select_without_a_match_lists_the_versions_found() -> None:
    with pytest.raises(DefinitionError) as e:
        select("3.4", POOL, default="3.12")
    assert str(e.value) == ("no Python interpreter for python=3.4 on this machine (found: 3.12.1, 3.11.7, 3.9.18, "
                            "3.9.2); install one (e.g. with pyenv or `uv python install 3.4`) or list it in "
                            "KILN_PYTHONS")
    with pytest.raises(DefinitionError, match=r"python=3\.12 on this machine \(found: none\)"):
        select(None, [], default="3.12")


# ---- discover ----------------------------------------------------------------------------------


def test_discover_sorts_newest_first_and_skips_python2(tmp_path: Path) -> None:
    folders = []
    for version in ("3.9.2", "3.12.1", "2.7.18", "3.9.18"):
        folder = tmp_path / f"bin-{version}"
        fake_python(folder / "python3", version)
        folders.append(folder)
    found = discover(environ=environ_for(tmp_path, path=folders))
    assert [i.version for i in found] == ["3.12.1", "3.9.18", "3.9.2"]
    assert found[0].path == str(tmp_path / "bin-3.12.1" / "python3")
    assert select("3.9", found, default="3.12").path == str(tmp_path / "bin-3.9.18" / "python3")


def test_discover_skips_pyenv_shims(tmp_path: Path) -> None:
    shims = tmp_path / "pyenv" / "shims"
    real_python(shims / "python3")
    other = tmp_path / "bin"
    real_python(other / "python3")  # the same script outside shims/ is found: only the folder decides
    found = discover(environ=environ_for(tmp_path, path=[shims, other]))
    assert [(i.path, i.version) for i in found] == [(str(other / "python3"), THIS_VERSION)]


def test_discover_finds_pyenv_versions(tmp_path: Path) -> None:
    fake_python(tmp_path / "pyenv" / "versions" / "3.10.4" / "bin" / "python3", "3.10.4")
    found = discover(environ=environ_for(tmp_path))
    assert [(i.path, i.version) for i in found] == [
        (str(tmp_path / "pyenv" / "versions" / "3.10.4" / "bin" / "python3"), "3.10.4")]


def test_discover_finds_uv_managed_pythons(tmp_path: Path) -> None:
    uv_pythons = tmp_path / "uv-pythons"
    python = fake_python(uv_pythons / "cpython-3.11.9-linux-x86_64-gnu" / "bin" / "python3", "3.11.9")
    environ = {**environ_for(tmp_path), "UV_PYTHON_INSTALL_DIR": str(uv_pythons)}
    assert [(i.path, i.version) for i in discover(environ=environ)] == [(str(python), "3.11.9")]


def test_discover_on_this_machine_never_returns_shims(tmp_path: Path) -> None:
    found = discover(cache_dir=tmp_path / "cache")
    assert found, "no Python interpreter found on this machine"
    assert not [i for i in found if "/shims/" in i.path]
    assert [i.version_tuple for i in found] == sorted((i.version_tuple for i in found), reverse=True)
    assert all(not i.version.startswith("2.") for i in found)


def test_kiln_pythons_adds_interpreters(tmp_path: Path) -> None:
    mine = real_python(tmp_path / "custom" / "python3")
    fake = fake_python(tmp_path / "elsewhere" / "python3.10", "3.10.4")
    environ = environ_for(tmp_path, pythons=[mine, tmp_path / "missing" / "python3", fake])
    found = discover(environ=environ)
    expected = sorted([(str(mine), THIS_VERSION), (str(fake), "3.10.4")],
                      key=lambda pv: tuple(int(n) for n in pv[1].split(".")), reverse=True)
    assert [(i.path, i.version) for i in found] == expected
    assert discover(environ=environ_for(tmp_path)) == []


def test_probe_results_are_cached_by_mtime(tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    python = real_python(tmp_path / "custom" / "python3", runs)
    environ = environ_for(tmp_path, pythons=[python])
    cache = tmp_path / "cache"

    first = discover(cache_dir=cache, environ=environ)
    assert [i.version for i in first] == [THIS_VERSION]
    assert runs_of(runs) == 1
    assert json.loads((cache / "interpreters-v1.json").read_text())["entries"][str(python)]["info"]["version"] \
        == THIS_VERSION

    assert discover(cache_dir=cache, environ=environ) == first
    assert runs_of(runs) == 1  # answered from the cache file: not run again

    st = python.stat()
    os.utime(python, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # a new interpreter at that path
    assert discover(cache_dir=cache, environ=environ) == first
    assert runs_of(runs) == 2


def test_an_unreadable_probe_cache_is_ignored_and_rewritten(tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    python = real_python(tmp_path / "custom" / "python3", runs)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "interpreters-v1.json").write_text("{not json")
    found = discover(cache_dir=cache, environ=environ_for(tmp_path, pythons=[python]))
    assert [i.version for i in found] == [THIS_VERSION]
    assert runs_of(runs) == 1
    assert json.loads((cache / "interpreters-v1.json").read_text())["format"] == 1


# ---- find_interpreter ---------------------------------------------------------------------------


def test_find_interpreter_runs_only_candidates_that_may_match(tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    versions = tmp_path / "pyenv" / "versions"
    fake_python(versions / "3.9.2" / "bin" / "python3", "3.9.2", runs)
    fake_python(versions / "3.9.18" / "bin" / "python3", "3.9.18", runs)
    fake_python(versions / "3.12.1" / "bin" / "python3", "3.12.1", runs)
    found = find_interpreter("3.9", default="3.12", environ=environ_for(tmp_path))
    assert (found.version, found.path) == ("3.9.18", str(versions / "3.9.18" / "bin" / "python3"))
    assert runs_of(runs) == 2  # 3.12.1 was never run: its folder says what it is
    assert find_interpreter(None, default="3.12", environ=environ_for(tmp_path)).version == "3.12.1"
    with pytest.raises(DefinitionError, match=r"python=3\.4 on this machine \(found: 3\.12\.1, 3\.9\.18, 3\.9\.2\)"):
        find_interpreter("3.4", default="3.12", environ=environ_for(tmp_path))


def test_find_interpreter_error_lists_every_version_that_exists(tmp_path: Path) -> None:
    versions = tmp_path / "pyenv" / "versions"
    fake_python(versions / "3.9.2" / "bin" / "python3", "3.9.2")
    fake_python(versions / "3.12.1" / "bin" / "python3", "3.12.1")
    fake_python(tmp_path / "bin" / "python3", "3.10.4")
    with pytest.raises(DefinitionError, match=r"\(found: 3\.12\.1, 3\.10\.4, 3\.9\.2\)"):
        find_interpreter("3.4", default="3.12", environ=environ_for(tmp_path, path=[tmp_path / "bin"]))


def test_find_interpreter_exact_release_behind_a_minor_name(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin" / "python3.10", "3.10.4")
    fake_python(tmp_path / "other" / "python3", "3.12.1")
    environ = environ_for(tmp_path, path=[tmp_path / "bin", tmp_path / "other"])
    assert find_interpreter("3.10.4", default="3.12", environ=environ).path == str(tmp_path / "bin" / "python3.10")


# ---- inspect_interpreter -----------------------------------------------------------------------


def test_inspect_interpreter_reads_the_real_version() -> None:
    info = inspect_interpreter(sys.executable)
    assert (info.path, info.version, info.implementation) == (sys.executable, THIS_VERSION,
                                                              sys.implementation.name)
    assert info.minor == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_inspect_interpreter_errors_for_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "python3"
    with pytest.raises(DefinitionError) as e:
        inspect_interpreter(missing)
    assert str(e.value) == f"python.interpreter_path: {str(missing)!r} does not exist"


@pytest.mark.parametrize("body", [None, "exit 0\n", "echo hello\n", "exit 3\n"])
def test_inspect_interpreter_errors_for_something_not_python(tmp_path: Path, body: str | None) -> None:
    target = tmp_path / "python3"
    if body is None:
        target.write_text("print('not executable')\n")  # exists, but can't be run
    else:
        _script(target, body)
    with pytest.raises(DefinitionError) as e:
        inspect_interpreter(target)
    assert str(e.value) == f"python.interpreter_path: {str(target)!r} does not run as a Python interpreter"


def test_the_probe_skips_site_and_reads_the_platform_as_platform_does(tmp_path: Path) -> None:
    """The probe runs ``python -I -S`` (importing ``site`` made every cold build ~0.1 s slower) and reads
    the machine from ``os.uname``: the answer must be what ``platform`` says."""
    import platform

    args = tmp_path / "args"
    wrapper = _script(tmp_path / "bin" / "python3", f'echo "$@" >> "{args}"\nexec "{sys.executable}" "$@"\n')
    info = inspect_interpreter(wrapper)
    assert (info.version, info.machine, info.system) == (THIS_VERSION, platform.machine(), platform.system())
    assert info.platform == f"{platform.system().lower()}-{platform.machine().lower()}"
    assert args.read_text().split()[:2] == ["-I", "-S"]


def test_uncached_candidates_are_probed_side_by_side(tmp_path: Path) -> None:
    """Each fake waits (up to 10 s) until all of them have started: probed one after another, the first would give
    up and not count as an interpreter. A broken candidate among them is left out."""
    started = tmp_path / "started"
    folders = []
    for version in ("3.10.1", "3.11.2", "3.12.3"):
        folder = tmp_path / f"bin-{version}"
        answer = json.dumps({"version": version, "implementation": "cpython", "machine": "x86_64", "system": "Linux"})
        count = f'"$(wc -l < "{started}")"'
        _script(folder / "python3", f'echo x >> "{started}"\n'
                                    f"for i in $(seq 200); do [ {count} -ge 4 ] && break; sleep 0.05; done\n"
                                    f"[ {count} -ge 4 ] || exit 1\n"
                                    f"echo '{answer}'\n")
        folders.append(folder)
    broken = tmp_path / "bin-broken"
    _script(broken / "python3", f'echo x >> "{started}"\nexit 3\n')
    found = discover(environ=environ_for(tmp_path, path=[*folders, broken]), cache_dir=tmp_path / "cache")
    assert [i.version for i in found] == ["3.12.3", "3.11.2", "3.10.1"]


def test_probing_imports_no_thread_pool(tmp_path: Path) -> None:
    """``concurrent.futures`` (and the ``logging`` it imports) cost a cold build more than the probes' wait."""
    import subprocess

    for version in ("3.10.1", "3.11.2"):
        fake_python(tmp_path / f"bin-{version}" / "python3", version)
    environ = environ_for(tmp_path, path=[tmp_path / "bin-3.10.1", tmp_path / "bin-3.11.2"])
    code = ("import json, sys; from pathlib import Path; from kiln.builds.interpreters import discover; "
            "found = discover(environ=json.loads(sys.argv[1]), cache_dir=Path(sys.argv[2])); "
            "print(len(found), 'concurrent.futures' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(environ), str(tmp_path / "cache")],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.split() == ["2", "False"]
