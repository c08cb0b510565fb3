"""The file locks of an OCI layout Kiln writes: writers and collectors of its blobs, and its index.

Every writer holds ``kiln-locks/gc.lock`` *shared* from its first blob to its index entry; a collector
(``kiln.builds.oci.gc``) holds it *exclusively*. Index updates hold ``kiln-locks/index.lock``. ``flock``
locks: the kernel releases them when a process dies, so a killed build never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCKS", "collecting", "index_lock", "writing"]

LOCKS = "kiln-locks"


@contextlib.contextmanager
def _flock(layout: Path, name: str, mode: int) -> Iterator[None]:
    folder = layout / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a+") as f:
        fcntl.flock(f, mode)  # released by the kernel if this process dies
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def writing(layout: Path) -> contextlib.AbstractContextManager[None]:
    """Held by a writer from its first blob to its index entry: no collection runs meanwhile."""
    return _flock(layout, "gc.lock", fcntl.LOCK_SH)


def collecting(layout: Path) -> contextlib.AbstractContextManager[None]:
    """Held by a collector: no writer runs meanwhile."""
    return _flock(layout, "gc.lock", fcntl.LOCK_EX)


def index_lock(layout: Path) -> contextlib.AbstractContextManager[None]:
    """Held around each read-change-write of ``index.json``: two writers never lose each other's entry."""
    return _flock(layout, "index.lock", fcntl.LOCK_EX)
