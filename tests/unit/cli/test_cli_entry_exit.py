"""The console script's exit: the command's code, its output whole, objects frozen before the last collection."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

import kiln.cli.entry as entry
import kiln.cli.main
from kiln import __version__


def test_exit_code_is_the_commands_and_objects_are_frozen_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(kiln.cli.main, "main", lambda: calls.append("run") or 3)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))  # the test process must not freeze its own
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 3
    assert calls == ["run", "freeze"]


def test_output_is_whole_through_a_pipe() -> None:
    # stdout is a pipe (block-buffered): what the command printed must still come out after the freeze
    proc = subprocess.run([sys.executable, "-m", "kiln", "--version"], capture_output=True, text=True, check=False,
                          timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"kiln {__version__}\n", "")
    proc = subprocess.run([sys.executable, "-m", "kiln", "env", "no-such-command"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode != 0 and proc.stderr.strip()
