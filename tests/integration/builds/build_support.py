"""Fixtures of the build tests: a workspace, the build cache, definitions, interpreters by version.

Builds use the real uv against the package index, the machine's real interpreters and uv's default
(shared) cache; Kiln's own cache is the per-test one of the autouse fixture (``KILN_CACHE_DIR``).

A module rather than a ``conftest.py``: test modules elsewhere import ``conftest`` by name (the root
one), which a second ``conftest.py`` would shadow. Each test module takes them all with
``from build_support import *``.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds.cache import BuildCache
from kiln.builds.interpreters import Interpreter, discover, select
from kiln.errors import DefinitionError
from kiln.settings import Settings

#: what ``from build_support import *`` gives a test module: the fixtures, the autouse ones included
__all__ = ["_collect_garbage", "_uv_binary_found_once", "cache", "interpreter", "look", "make_env", "workspace"]

#: Kiln's default Python: most tests build for it
PY = "3.12"


@pytest.fixture(autouse=True, scope="session")
def _uv_binary_found_once() -> None:
    """Find uv before any build runs it from two threads at once.

    Works around a race on first use, reported by test_build.py::test_uv_binary_is_safe_from_two_threads_at_once.
    """
    from kiln.builds.uv import uv_binary

    uv_binary()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect the test's garbage while its warning filters still apply (see ``pytestmark`` of the modules)."""
    yield
    gc.collect()


@pytest.fixture
def cache() -> BuildCache:
    return BuildCache(Settings.from_env().cache_dir)


@pytest.fixture
def interpreter(cache: BuildCache) -> Callable[[str], Interpreter]:
    """``interpreter("3.9")``: what Kiln picks for ``python=3.9``; the test is skipped without one."""

    def find(version: str) -> Interpreter:
        try:
            return select(version, discover(cache_dir=cache.root), default=version)
        except DefinitionError:
            pytest.skip(f"no Python {version} interpreter on this machine")

    return find


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.create("builds", path=tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def make_env(interpreter: Callable[[str], Interpreter]) -> Callable[..., Environment]:
    """``make_env(name, *pip, python=PY, options=(), variables=None)``: a definition (skipped without that Python)."""

    def make(name: str, *pip: str, python: str = PY, options: tuple[str, ...] = (),
             variables: dict[str, str] | None = None) -> Environment:
        interpreter(python)
        env = Environment(name)
        cd = CondaDependencies.create(pip_packages=list(pip), python_version=python)
        for option in options:
            cd.set_pip_option(option)
        env.python.conda_dependencies = cd
        env.environment_variables = dict(variables or {})
        return env

    return make


class Inspect:
    """Looking at the results of builds: the cache's folders and what an environment holds."""

    def __init__(self, cache: BuildCache) -> None:
        self.cache = cache

    def published(self) -> list[str]:
        """The keys of the published entries (``envs-v1/``)."""
        bucket = self.cache.bucket
        return sorted(p.name for p in bucket.iterdir()) if bucket.is_dir() else []

    def staged(self) -> list[str]:
        """What is left in ``tmp/`` (entries being built, or leftovers)."""
        folder = self.cache.root / "tmp"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    @staticmethod
    def run(python: Path | str, code: str, env: dict[str, str] | None = None) -> str:
        """Run ``code`` with ``python`` (in a clean environment unless ``env``); return its stdout."""
        base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                              env=base if env is None else env, timeout=60)
        return proc.stdout.strip()

    def installed(self, python: Path | str) -> dict[str, str]:
        """The distributions in ``python``'s environment (name -> version), pip and setuptools aside."""
        from packaging.utils import canonicalize_name

        code = ("import importlib.metadata as m, json; "
                "print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))")
        found = {str(canonicalize_name(name)): version for name, version in json.loads(self.run(python, code))}
        return {name: version for name, version in found.items() if name not in ("pip", "setuptools")}


@pytest.fixture
def look(cache: BuildCache) -> Inspect:
    return Inspect(cache)


def make_wheel(folder: Path, name: str, version: str, body: str) -> Path:
    """A minimal pure-Python wheel ``name`` whose ``__init__.py`` is ``body``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": body,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for member, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        for member, text in files.items():
            z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
    return path
