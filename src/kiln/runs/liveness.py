"""Is a process still the one we started? (A pid alone can be reused after the process dies.)"""

from __future__ import annotations

import os

__all__ = ["alive", "start_time"]


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
