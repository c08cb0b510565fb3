"""What the benchmark scripts share: the tools of this venv, and timing one command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["KILN", "UV", "kiln_env", "timed"]

BIN = Path(sys.executable).parent
KILN = str(BIN / "kiln")
UV = str(BIN / "uv")


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds the command took; stops the benchmark with its output if it failed."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def kiln_env(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment with Kiln's (and uv's, given in ``extra``) paths under ``root``."""
    env = {**os.environ, "KILN_HOME": str(root / "home"), "KILN_CACHE_DIR": str(root / "home" / "cache"),
           "UV_PYTHON_DOWNLOADS": "never", **extra}
    env.pop("KILN_WORKSPACE", None)
    return env
