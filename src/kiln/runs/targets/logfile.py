"""A run's log file read as lines, once or following it until the run ends: what every target's handle gives."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["read_log"]


def read_log(path: Path, *, alive: Callable[[], bool], follow: bool, poll: float) -> Iterator[str]:
    """The lines of ``path`` (a last unterminated one too); with ``follow``, new ones as they come until
    ``alive()`` is false, polling every ``poll`` seconds."""
    offset = 0
    pending = b""
    while True:
        ended = not alive()  # looked at before reading: what is read after the end is all of it
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        offset += len(data)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", errors="replace") + "\n"
        if not follow or ended:
            if pending:
                yield pending.decode("utf-8", errors="replace")
            return
        time.sleep(poll)
