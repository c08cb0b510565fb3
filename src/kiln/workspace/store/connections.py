"""One database connection per thread (and per process), shared by the stores that hold connections.

A thread reuses its own connection; a forked child never uses (or closes) its parent's, it opens its
own; connections of threads that have ended are closed when the next one is opened; ``close`` ends
them all, and a closed pool refuses to open more. ``open`` runs under the pool's lock, so a store's
first-connection work (its schema check) happens once at a time.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from kiln.errors import WorkspaceError

__all__ = ["ThreadConnections"]

C = TypeVar("C")


class _Local(threading.local):
    conn: object | None = None
    pid: int = 0


class ThreadConnections(Generic[C]):
    """``get()``: this thread's connection, opened with ``open`` on first use; ``where`` names the
    database in errors; ``usable`` says whether a kept connection may still be used."""

    def __init__(self, where: str, *, open: Callable[[], C], usable: Callable[[C], bool] = lambda conn: True
                 ) -> None:
        self._where = where
        self._open = open
        self._usable = usable
        self._local = _Local()
        self._lock = threading.Lock()
        self._connections: list[tuple[threading.Thread, C]] = []
        self._closed = False
        self._pid = os.getpid()

    def get(self) -> C:
        local = self._local
        pid = os.getpid()
        conn = local.conn
        if conn is not None and local.pid == pid and self._usable(conn):  # type: ignore[arg-type]
            if self._closed:
                raise WorkspaceError(f"{self._where}: the store is closed")
            return conn  # type: ignore[return-value]
        with self._lock:
            if self._closed:
                raise WorkspaceError(f"{self._where}: the store is closed")
            if self._pid != pid:
                # forked: the parent's connections belong to the parent; never use or close them here
                self._connections, self._pid = [], pid
            new = self._open()
            self._prune()
            self._connections.append((threading.current_thread(), new))
        local.conn, local.pid = new, pid
        return new

    def forget(self, conn: C) -> None:
        """Stop handing out ``conn`` (it broke); the caller closes it."""
        with self._lock:
            self._connections = [(t, c) for t, c in self._connections if c is not conn]
        if self._local.conn is conn:
            self._local.conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for _, conn in connections:
            _close(conn)

    def _prune(self) -> None:
        """Close the connections of threads that have ended (called with the lock held)."""
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                _close(conn)
        self._connections = alive


def _close(conn: object) -> None:
    with contextlib.suppress(Exception):
        conn.close()  # type: ignore[attr-defined]
