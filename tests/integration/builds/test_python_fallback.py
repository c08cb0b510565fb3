"""A definition that leaves its Python to Kiln and whose pins don't install on Kiln's default is built on
the newest interpreter on which they do; a pinned Python is never moved; the error keeps uv's whole
explanation. Offline: the package is a local wheel for CPython 3.8 only, beside a source release whose
in-tree build backend fails as old ``setup.py`` files do on new Pythons (no ``pkg_resources``)."""

from __future__ import annotations

import base64
import hashlib
import tarfile
import zipfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds.builder import build_environment
from kiln.builds.interpreters import Interpreter
from kiln.builds.lock import Lock
from kiln.builds.uv import UvError

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]

BACKEND = ("def _fail(*args, **kwargs):\n"
           "    raise ModuleNotFoundError(\"No module named 'pkg_resources'\")\n"
           "get_requires_for_build_wheel = build_wheel = build_sdist = prepare_metadata_for_build_wheel = _fail\n")


def _wheel_cp38(folder: Path) -> None:
    info = "oldpin-1.0.dist-info"
    files = {"oldpin/__init__.py": "VALUE = 'old pin'\n",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: oldpin\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: cp38-none-any\n"}
    record = []
    for member, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / "oldpin-1.0-cp38-none-any.whl", "w") as z:
        for member, text in files.items():
            z.writestr(member, text)


def _failing_sdist(folder: Path) -> None:
    members = {"oldpin-1.0/PKG-INFO": "Metadata-Version: 1.0\nName: oldpin\nVersion: 1.0\n",
               "oldpin-1.0/pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                                            'backend-path = ["."]\n',
               "oldpin-1.0/backend.py": BACKEND}
    with tarfile.open(folder / "oldpin-1.0.tar.gz", "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, BytesIO(data))


@pytest.fixture
def links(tmp_path: Path) -> Path:
    folder = tmp_path / "links"
    folder.mkdir()
    _wheel_cp38(folder)
    _failing_sdist(folder)
    return folder


def _env(name: str, links: Path, python: str | None) -> Environment:
    env = Environment(name)
    cd = CondaDependencies() if python is None else CondaDependencies.create(python_version=python)
    cd.set_pip_option("--no-index")
    cd.set_pip_option(f"--find-links {links}")
    cd.add_pip_package("oldpin==1.0")
    env.python.conda_dependencies = cd
    return env


def test_unpinned_python_moves_to_the_newest_interpreter_the_pins_install_on(
        workspace: Workspace, links: Path, interpreter: Callable[[str], Interpreter]) -> None:
    py38 = interpreter("3.8")
    interpreter("3.12")  # Kiln's default must exist for its failure to be the reason
    env = _env("oldpins", links, None).register(workspace)
    said: list[str] = []
    result = build_environment(env, workspace, settings=workspace.settings,
                               progress=lambda phase, message: said.append(f"{phase}: {message}"))
    assert result.python_version == py38.version and not result.cache_hit
    assert result.lock is not None and result.lock.python_minor == "3.8"
    reason = ("the definition doesn't pin Python and its pins don't install on Python 3.12 (Kiln's default); "
              "Python 3.8 is the newest here on which they do")
    assert result.lock.python_reason == reason
    assert any(s.startswith("interpreter: the pins don't install on Python 3.12") for s in said)
    assert f"interpreter: using Python {py38.version}: {reason} (recorded in the lock)" in said
    stored = workspace.store.list_environment_locks(name="oldpins", version=1)
    assert [r.python for r in stored] == ["3.8"] and Lock.from_json(stored[0].content).python_reason == reason
    again = build_environment(env, workspace, settings=workspace.settings)  # found again: no resolve, no retries
    assert again.cache_hit and again.python_version == py38.version and again.key == result.key


def test_a_pinned_python_is_never_moved_and_the_error_keeps_the_root_cause(
        workspace: Workspace, links: Path, interpreter: Callable[[str], Interpreter]) -> None:
    interpreter("3.12")
    env = _env("pinned", links, "3.12.*").register(workspace)
    with pytest.raises(UvError) as caught:
        build_environment(env, workspace, settings=workspace.settings)
    message = str(caught.value)
    assert "Failed to build `oldpin==1.0`" in message
    assert "No module named 'pkg_resources'" in message  # the root cause, at the end of the traceback
    assert "also tried" not in message
    assert workspace.store.list_environment_locks(name="pinned", version=1) == []
