"""Local conda channels and helpers for the conda build tests.

No public conda channel is reachable here, so the tests make their own (``conda_channel.py``, run as
a script: py-rattler never runs in the test process): two versions of a ``noarch: generic`` data
package, a ``noarch: python`` package with a console script that reads the data package, a
``linux-64`` package with a prefix placeholder, and a conda ``six``. No channel serves ``python``:
Kiln's stand-in channel offers the interpreter found on this machine.

A module rather than a ``conftest.py`` (see ``tests/integration/build/build_support.py``): a test
module takes the fixtures with ``from conda_support import *`` and imports the helpers by name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kiln.builds.interpreters import Interpreter, discover, select
from kiln.errors import DefinitionError

#: what ``from conda_support import *`` gives a test module: the fixtures
__all__ = ["channel", "own_channel", "python", "served_channel"]

PY = "3.12"
HERE = Path(__file__).resolve().parent
#: the build prefix recorded in prefixpkg: the installer must replace it with the environment's final path
PLACEHOLDER = "/opt/kiln-test-build-prefix/host_env_placehold_placehold_placehold"
HELLO = """\
import pathlib
import sys


def data():
    return pathlib.Path(sys.prefix, "share", "datapkg", "data.txt").read_text().strip()


def main():
    print("hello from", data())
"""
SIX = "KILN_CONDA_BUILD = True\n__version__ = '1.16.0'\n"
SIX_METADATA = "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n"


def datapkg(version: str) -> dict[str, Any]:
    return {"name": "datapkg", "version": version, "noarch": "generic",
            "files": {"share/datapkg/data.txt": f"datapkg {version}\n"}}


PACKAGES: list[dict[str, Any]] = [
    datapkg("1.0"),
    datapkg("2.0"),
    {"name": "hellokiln", "version": "0.1", "build": "pyh_0", "noarch": "python",
     "depends": ["python", "datapkg >=1"], "entry_points": ["hellokiln = hellokiln:main"],
     "files": {"site-packages/hellokiln/__init__.py": HELLO}},
    {"name": "prefixpkg", "version": "1.0", "build": "h0_0", "placeholder": PLACEHOLDER,
     "files": {"share/prefixpkg/where.txt": f"prefix={PLACEHOLDER}\n",
               "bin/prefixpkg-where": f"#!/bin/sh\necho {PLACEHOLDER}/share\n"},
     "executable": ["bin/prefixpkg-where"]},
    {"name": "six", "version": "1.16.0", "build": "pyh_0", "noarch": "python", "depends": ["python"],
     "files": {"site-packages/six.py": SIX, "site-packages/six-1.16.0.dist-info/METADATA": SIX_METADATA,
               "site-packages/six-1.16.0.dist-info/INSTALLER": "conda\n"}},
]


# ---- channels ------------------------------------------------------------------------------------


def publish(channel: Path, packages: list[dict[str, Any]]) -> list[Path]:
    """Add ``packages`` to ``channel`` and index it (in a child process: see conda_channel.py)."""
    proc = subprocess.run([sys.executable, str(HERE / "conda_channel.py"), str(channel)], input=json.dumps(packages),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return [Path(p) for p in json.loads(proc.stdout)]


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's channel: read-only (tests that change a channel change a copy)."""
    folder = tmp_path_factory.mktemp("conda") / "channel"
    made = publish(folder, PACKAGES)
    assert sorted(p.relative_to(folder).as_posix() for p in made) == [
        "linux-64/prefixpkg-1.0-h0_0.tar.bz2", "noarch/datapkg-1.0-0.conda", "noarch/datapkg-2.0-0.conda",
        "noarch/hellokiln-0.1-pyh_0.tar.bz2", "noarch/six-1.16.0-pyh_0.conda"]
    return folder


@pytest.fixture
def own_channel(channel: Path, tmp_path: Path) -> Path:
    """A copy of the module's channel, for a test to change."""
    copy = tmp_path / "own-channel"
    shutil.copytree(channel, copy)
    return copy


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gate:
    """Makes the channel server hold the download of one file until released."""

    def __init__(self, hold: str | None = None) -> None:
        self.hold = hold
        self.requested = threading.Event()
        self.release = threading.Event()


@contextlib.contextmanager
def serving(channel: Path, gate: Gate, *, revalidate: bool = False) -> Iterator[str]:
    """``channel`` over HTTP on 127.0.0.1 (its URL), holding ``gate.hold`` until the gate opens.

    By default every request is answered in full (200), conditional ones too: py-rattler 0.28 fails on a
    304 for sharded repodata (see test_conda_builds.py::test_a_second_solve_against_an_http_channel).
    ``revalidate=True`` serves as a web server or CDN does: ``Cache-Control: no-cache``, and 304 Not
    Modified for a conditional request of an unchanged file.
    """

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if gate.hold is not None and self.path.endswith(gate.hold) and not gate.release.is_set():
                gate.requested.set()
                gate.release.wait(120)
                return  # its client is gone by now
            if not revalidate:
                del self.headers["If-Modified-Since"], self.headers["If-None-Match"]
            super().do_GET()

        def end_headers(self) -> None:
            if revalidate:
                self.send_header("Cache-Control", "no-cache")
            super().end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # clients killed mid-request

    server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(channel)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        gate.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def served_channel(channel: Path) -> Iterator[tuple[str, Gate]]:
    """The module's channel over HTTP, holding hellokiln's package until the gate opens."""
    gate = Gate("hellokiln-0.1-pyh_0.tar.bz2")
    with serving(channel, gate) as url:
        yield url, gate


# ---- Kiln ------------------------------------------------------------------------------------------


@pytest.fixture
def python() -> Interpreter:
    from kiln.settings import Settings

    try:
        return select(PY, discover(cache_dir=Settings.from_env().cache_dir), default=PY)
    except DefinitionError:
        pytest.skip(f"no Python {PY} interpreter on this machine")


def cache_root() -> Path:
    return Path(os.environ["KILN_CACHE_DIR"]).resolve()


def published() -> list[Path]:
    bucket = cache_root() / "envs-v1"
    return sorted(bucket.iterdir()) if bucket.is_dir() else []


def conda_file(folder: Path, name: str, channels: list[str], conda: list[str], pip: Sequence[str] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    text = f"name: {name}\nchannels:\n" + "".join(f"  - {c}\n" for c in channels)
    text += f"dependencies:\n  - python={PY}\n" + "".join(f"  - {c}\n" for c in conda)
    if pip:
        text += "  - pip:\n" + "".join(f"    - {p}\n" for p in pip)
    path.write_text(text)
    return path


def envelope(run_kiln: Any, *args: str, kind: str, env: dict[str, str] | None = None) -> Any:
    code, out, err = run_kiln("-o", "json", *args, env=env)
    assert (code, err) == (0, ""), (args, code, out, err)
    doc = json.loads(out)
    assert (doc["kiln"], doc["kind"]) == (1, kind)
    return doc["data"]


def register(run_kiln: Any, tmp_path: Path, name: str, channels: list[str], conda: list[str],
             pip: Sequence[str] = ()) -> None:
    envelope(run_kiln, "env", "register", "-d", str(conda_file(tmp_path / "defs", name, channels, conda, pip)),
             kind="env.register")


def build(run_kiln: Any, name: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return envelope(run_kiln, "env", "build", name, *args, kind="env.build", env=env)


def fails(run_kiln: Any, *args: str, env: dict[str, str] | None = None) -> str:
    """A command that fails as a user error: exit 1, nothing on stdout, no traceback; returns the error."""
    code, out, err = run_kiln(*args, env=env)
    assert (code, out) == (1, ""), (args, code, out, err)
    assert "Traceback" not in err
    assert err.count("kiln: error: ") == 1, err  # after the progress lines
    return str(err.partition("kiln: error: ")[2].rstrip("\n"))


def run(program: Path | str, *args: str) -> str:
    """Run a program of a built environment, in a clean environment (no bytecode written into the entry)."""
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([str(program), *args], capture_output=True, text=True, env=environ, timeout=60, check=True)
    return proc.stdout.strip()


def installed(python: Path | str) -> dict[str, tuple[str, str]]:
    """The distributions of ``python``'s environment: name -> (version, installer)."""
    code = ("import importlib.metadata as m, json; print(json.dumps([[d.metadata['Name'].lower(), d.version, "
            "(d.read_text('INSTALLER') or '').strip()] for d in m.distributions()]))")
    return {name: (version, installer) for name, version, installer in json.loads(run(python, "-c", code))}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
