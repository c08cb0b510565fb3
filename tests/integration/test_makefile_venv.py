"""``make``'s virtual environment: ``PYTHON=... make demo`` makes ``.venv`` again when it was made with another
interpreter; without ``PYTHON`` an existing ``.venv`` is kept. Checked on the Makefile's ``.venv/bin/python``
target in a copy of the Makefile (nothing is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")]

REPO = Path(__file__).resolve().parents[2]
FAKE = "#!/bin/sh\necho 3.0.0 /elsewhere\n"  # a .venv made with some other Python


def make(folder: Path, python: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MAKELEVEL")}
    if python is not None:
        env["PYTHON"] = python
    return subprocess.run(["make", ".venv/bin/python"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(FAKE)
    fake.chmod(0o755)
    return tmp_path


def identity(python: str) -> str:
    code = "import sys; print(sys.version.split()[0], sys.base_prefix)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout


def test_without_python_an_existing_venv_is_kept(folder: Path) -> None:
    result = make(folder, None)
    assert result.returncode == 0, result.stderr
    assert (folder / ".venv" / "bin" / "python").read_text() == FAKE


def test_another_python_makes_the_venv_again(folder: Path) -> None:
    result = make(folder, sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "made with another Python: making it again" in result.stdout
    venv_python = str(folder / ".venv" / "bin" / "python")
    assert identity(venv_python) == identity(sys.executable)
    (folder / ".venv" / "kept").touch()
    again = make(folder, sys.executable)  # the same interpreter: nothing to do
    assert again.returncode == 0, again.stderr
    assert (folder / ".venv" / "kept").exists()


def test_a_python_that_does_not_run_leaves_the_venv_alone(folder: Path) -> None:
    result = make(folder, str(folder / "no-such-python"))
    assert result.returncode != 0
    assert "is not a Python >= 3.10" in result.stderr
    assert (folder / ".venv" / "bin" / "python").read_text() == FAKE
