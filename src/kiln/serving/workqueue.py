"""The scoring pool's request queue: FIFO for requests, LIFO for the workers waiting on it.

``asyncio.Queue`` wakes its waiting getters first come, first served: with several workers and light
load each request went to the worker that had waited longest, so every worker ran in turn and each
found its caches (and its model's thread pools) cold. A random forest with 2 workers at concurrency 1
served 0.4x what it served with 1 (issue 15). Here the worker that went idle last is woken first:
under light load one hot worker takes the requests, under heavy load they all do.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["WorkQueue"]

T = TypeVar("T")


class WorkQueue(Generic[T]):
    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._idle: list[asyncio.Future[None]] = []  # waiting workers; the last one went idle last
        # waiting workers that already hold work, by worker: woken only when no idle one waits
        self._busy: dict[object, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._promised = 0  # getters woken and not yet back for their item

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake()

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def requeue(self, items: list[T]) -> None:
        """Put ``items`` back at the front, in their order (a worker gave back what it never started)."""
        self._items.extendleft(reversed(items))
        for _ in items:
            self._wake()

    def mark_idle(self, owner: object) -> None:
        """``owner``'s work is done: its waiting getter is now the idle one that went idle last."""
        waiter = self._busy.pop(owner, None)
        if waiter is not None:
            self._idle.append(waiter)

    async def get(self, busy: object = None) -> T:
        """The next item. ``busy``: the caller (any object naming it) already has work, so every idle getter is
        served before it, until it calls ``mark_idle``; nor does it take an item a woken getter is coming for."""
        while not self._items or (busy is not None and len(self._items) <= self._promised):
            loop = self._loop
            if loop is None:  # asked once: on Python < 3.12 each asking is a getpid() system call (a fork check)
                loop = self._loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            if busy is None:
                self._idle.append(waiter)
            else:
                self._busy[busy] = waiter
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._idle:
                    self._idle.remove(waiter)
                elif busy is not None and self._busy.get(busy) is waiter:
                    del self._busy[busy]
                else:  # woken, then cancelled: the wake-up goes to another worker
                    self._promised -= 1
                    if self._items:
                        self._wake()
                raise
            self._promised -= 1
        return self._items.popleft()

    def _wake(self) -> None:
        while self._idle:
            waiter = self._idle.pop()
            if not waiter.done():
                waiter.set_result(None)
                self._promised += 1
                return
        while self._busy:
            _, waiter = self._busy.popitem()
            if not waiter.done():
                waiter.set_result(None)
                self._promised += 1
                return
