"""Every test runs with Kiln's paths in its own temp folder and the current folder there too."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def kiln_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "kiln-home"
    monkeypatch.setenv("KILN_HOME", str(home))
    monkeypatch.setenv("KILN_CACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("KILN_WORKSPACE", raising=False)
    monkeypatch.delenv("KILN_DEBUG", raising=False)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield home


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def kiln_cmd() -> list[str]:
    """The real `kiln` command of this interpreter's environment."""
    exe = Path(sys.executable).parent / "kiln"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "kiln.cli"]


@pytest.fixture
def run_kiln(kiln_home: Path):  # type: ignore[no-untyped-def]
    """Run the real CLI in a subprocess: returns (exit code, stdout, stderr)."""
    import subprocess

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run([*kiln_cmd(), *args], capture_output=True, text=True, cwd=cwd, env=full_env,
                              timeout=300, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for a whole test module (builds are slow; most tests can share them)."""
    return tmp_path_factory.mktemp("kiln-cache")


@pytest.fixture
def module_build_cache(kiln_home: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use in a module (``pytestmark = pytest.mark.usefixtures("module_build_cache")``): its tests build
    into, and take builds from, the module's cache."""
    monkeypatch.setenv("KILN_CACHE_DIR", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="session", autouse=True)
def _no_detached_process_left() -> Iterator[None]:
    """Whatever a test started detached (run supervisors, service servers) has ended by the session's end:
    the tests stop what they start."""
    yield
    import time

    from kiln._process import _children

    deadline = time.monotonic() + 20  # supervisors of canceled runs and draining servers end on their own
    while any(p.poll() is None for p in _children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [" ".join(map(str, p.args)) for p in _children if p.poll() is None]  # type: ignore[union-attr]
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not left, f"still running at the end of the session: {left}"
