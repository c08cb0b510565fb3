"""Calls into the rattler child process (``kiln.builds.conda.child``): solve, install, index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kiln.environment.secrets import mask
from kiln.errors import KilnError

__all__ = ["CondaError", "index_channel", "install", "solve"]


class CondaError(KilnError):
    """The conda solve or install failed; the message is rattler's explanation."""


def _call(action: str, request: dict[str, Any], what: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "kiln.builds.conda.child", action], input=json.dumps(request),
                          capture_output=True, text=True, check=False)
    try:
        answer: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-3:]
        raise CondaError(f"{what}: the conda worker failed (exit code {proc.returncode})"
                         + ("".join(f"\n{mask(line.strip())}" for line in tail))) from None
    if "error" in answer:
        raise CondaError(f"{what}: {mask(str(answer['error']))}")
    return answer


def solve(channels: list[str], specs: list[str], platforms: list[str], *, locked: str | None = None,
          what: str = "solving conda packages") -> dict[str, Any]:
    return _call("solve", {"channels": channels, "specs": specs, "platforms": platforms, "locked": locked}, what)


def install(lock: str, platform: str, prefix: Path, final_prefix: Path, cache_dir: Path,
            what: str = "installing conda packages", standin: Path | None = None) -> dict[str, Any]:
    return _call("install", {"lock": lock, "platform": platform, "prefix": str(prefix),
                             "final_prefix": str(final_prefix), "cache_dir": str(cache_dir),
                             "standin": standin.as_uri() if standin is not None else None}, what)


def index_channel(channel: Path) -> None:
    _call("index", {"channel": str(channel)}, f"indexing the channel {channel}")
