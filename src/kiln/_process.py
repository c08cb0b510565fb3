"""Starting the long-lived processes Kiln leaves running (run supervisors, service servers), and telling
whether such a process is still the one that was started (a pid alone can be reused after it dies).

They get a session of their own (a Ctrl-C in the caller's terminal doesn't reach them) and outlive
the process that started it. The ``Popen`` objects are kept here until their process ends, so that
Python neither warns that a child "is still running" when an object is dropped nor leaves zombies:
each start reaps the children that have ended since.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["alive", "spawn_detached", "start_time"]

_children: list[subprocess.Popen[bytes]] = []


def spawn_detached(cmd: Sequence[str], *, env: Mapping[str, str], log: Path) -> int:
    """Start ``cmd`` in its own session, output appended to ``log``; return its pid."""
    _children[:] = [p for p in _children if p.poll() is None]
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(env), start_new_session=True, close_fds=True)
    _children.append(proc)
    return proc.pid


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing ")"
    fields = data[data.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def alive(pid: int | None, started: str | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if started is None:
        return True
    now = start_time(pid)
    if now is None:
        return True  # no /proc: trust the pid
    if now != started:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not running anything
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True
