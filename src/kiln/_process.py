"""Starting the long-lived processes Kiln leaves running (run supervisors, service servers).

They get a session of their own (a Ctrl-C in the caller's terminal doesn't reach them) and outlive
the process that started it. The ``Popen`` objects are kept here until their process ends, so that
Python neither warns that a child "is still running" when an object is dropped nor leaves zombies:
each start reaps the children that have ended since.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["spawn_detached"]

_children: list[subprocess.Popen[bytes]] = []


def spawn_detached(cmd: Sequence[str], *, env: Mapping[str, str], log: Path) -> int:
    """Start ``cmd`` in its own session, output appended to ``log``; return its pid."""
    _children[:] = [p for p in _children if p.poll() is None]
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(env), start_new_session=True, close_fds=True)
    _children.append(proc)
    return proc.pid
