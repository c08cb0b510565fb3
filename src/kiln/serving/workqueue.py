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
        self._loop: asyncio.AbstractEventLoop | None = None

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

    async def get(self) -> T:
        while not self._items:
            loop = self._loop
            if loop is None:  # asked once: on Python < 3.12 each asking is a getpid() system call (a fork check)
                loop = self._loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._idle.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._idle:
                    self._idle.remove(waiter)
                elif self._items:  # woken, then cancelled: the wake-up goes to another worker
                    self._wake()
                raise
        return self._items.popleft()

    def _wake(self) -> None:
        while self._idle:
            waiter = self._idle.pop()
            if not waiter.done():
                waiter.set_result(None)
                return
