"""The server's pool of scoring workers (``worker.py`` processes in the environment's interpreter).

Requests wait in one queue; each worker has a task that takes its share of what is queued (up to a
batch size) and sends it in one message, so under load the pipes carry several requests per round trip, and
another that reads the answers; a busy worker holds a second message in its pipe (``IN_FLIGHT``). A
worker that dies is replaced and its in-flight requests fail with 503; a message that runs past a
request's deadline gets its worker killed and replaced, and its requests fail with 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.serving.protocol import (
    ERROR,
    HEADER,
    INIT_FAILED,
    UNENCODABLE,
    pack_requests,
    unpack_results,
    unpack_timed_results,
)
from kiln.serving.workqueue import WorkQueue

__all__ = ["FAILED", "IN_FLIGHT", "KEEP_WHOLE", "InitFailed", "Pool", "PoolSettings", "Result"]


#: a Result's kind when the worker gave no result (it died, or timed out): ``data`` is the message
FAILED = b""


class InitFailed(Exception):
    """A worker's ``init()`` raised: the deployment fails with this error."""


@dataclass(frozen=True)
class Result:
    status: int  # 200, or the HTTP status of a failure (500 run() raised, 503 worker died, 504 timeout)
    kind: bytes  # a result kind of the protocol (OK, ERROR...), or FAILED: a failure of Kiln's own
    data: bytes


@dataclass
class PoolSettings:
    python: str
    entry_script: Path
    cwd: Path
    env: dict[str, str]
    workers: int = 1
    timeout: float = 60.0
    max_batch: int = 32
    batching: bool = False
    batch_wait: float = 0.0  # seconds to wait for more requests before a batch goes (batching only; 0: never)
    log: Callable[[str], None] = field(default=lambda line: None)


@dataclass
class _Pending:
    body: bytes
    deadline: float
    future: asyncio.Future[Result]


#: messages a worker holds at once: the one it runs and one waiting in its pipe. With one, a worker that finished a
#: message waited for the front to turn around (read the answers, then send what queued meanwhile) while the front
#: was busy answering the last message's clients: a slow model lost ~10 % of its compute to those waits.
IN_FLIGHT = 2
#: seconds of work under which what is queued goes whole to one worker rather than in shares (see serve)
KEEP_WHOLE = 0.0005


class _Worker:
    """One worker process and its two tasks: ``serve`` sends it messages (its share of what is queued, up to
    ``IN_FLIGHT`` at once), ``receive`` reads its answers in order and replaces it when it dies or stalls."""

    def __init__(self, pool: Pool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.inflight: deque[list[_Pending]] = deque()  # sent, in order; the head is the one it runs
        self.recovering = False  # replacing the process: nothing is sent meanwhile
        self._room: asyncio.Future[None] | None = None  # the sender waits here for room (or the end of a recovery)
        self._work: asyncio.Future[None] | None = None  # the receiver waits here for a message to be sent

    async def start(self) -> dict[str, Any]:
        s = self.pool.settings
        worker_py = Path(__file__).with_name("worker.py")
        self.proc = await asyncio.create_subprocess_exec(
            s.python, "-u", str(worker_py), str(s.entry_script), cwd=str(s.cwd), env=s.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            limit=1 << 26)
        payload = await self._read()
        if payload is None:
            code = await self.proc.wait()
            raise InitFailed(f"worker {self.index} exited with code {code} before init() finished")
        info: dict[str, Any] = json.loads(payload[1:] or b"{}")
        if payload[:1] == INIT_FAILED:
            await self.proc.wait()
            raise InitFailed(str(info.get("error")) + ("\n" + info["traceback"] if info.get("traceback") else ""))
        return info

    async def _read(self) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            head = await self.proc.stdout.readexactly(HEADER.size)
            (length,) = HEADER.unpack(head)
            return await self.proc.stdout.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def _write(self, data: bytes) -> None:
        """Send ``data``; when the pipe is full, wait for room or for the worker's end, whichever comes first (a
        write into a worker dying meanwhile left ``drain()`` waiting for ever under uvloop). A worker gone is
        not an error here: the receiver finds its pipe closed and recovers what it held."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        transport = proc.stdin.transport
        if transport.is_closing():  # gone already (uvloop raises on a write to a closed pipe)
            return
        try:
            proc.stdin.write(data)
            if not transport.get_write_buffer_size():
                return  # all of it is in the pipe already (the usual case): nothing to wait for
            drained = asyncio.ensure_future(proc.stdin.drain())
            ended = asyncio.ensure_future(proc.wait())
            try:
                await asyncio.wait((drained, ended), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (drained, ended):
                    waiter.cancel()
            if drained.done() and not drained.cancelled():
                drained.exception()  # retrieved: a lost pipe is the receiver's to handle
        except (ConnectionError, BrokenPipeError):
            pass
        except RuntimeError:  # uvloop: the pipe closed between the check and the write
            if not transport.is_closing():
                raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def _wake(self, name: str) -> None:
        waiter = getattr(self, name)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def serve(self) -> None:
        """Take queued requests and send them; up to ``IN_FLIGHT`` messages are in the worker's hands."""
        pool = self.pool
        queue = pool.queue
        s = pool.settings
        loop = asyncio.get_running_loop()
        last = 1
        while True:
            while len(self.inflight) >= IN_FLIGHT or self.recovering:
                self._room = loop.create_future()
                await self._room
            # a worker with a message in hand takes more only when no worker is idle (idle ones are woken first)
            first = await queue.get(busy=self if self.inflight else None)
            batch = [first]
            # An idle worker takes what is queued and goes (Triton's dynamic batcher with no queue delay): under
            # load, requests pile up while it runs, so batches form by themselves and no one waits for a window.
            # A window (batch_wait, opt-in) is waited only under load (the last batch had company).
            if s.batching and s.batch_wait > 0 and last > 1 and queue.empty():
                await asyncio.sleep(s.batch_wait)
            # Its share of what is queued, not all of it: the other workers free up soon, and a message's answers
            # come back together, so one worker holding everything left the others idle (a random forest with
            # 2 workers served no more than with 1). Unless all of it runs in less than a round trip through a
            # pipe costs: then splitting only makes more, smaller messages for the front, which is what limits a
            # cheap run() (a trivial script served 21.8k req/s with 1 worker and 13.6k with 4 at concurrency 8).
            cost = pool.cost
            if cost is not None and cost * (queue.qsize() + 1) <= KEEP_WHOLE:
                share = s.max_batch
            else:
                share = min(s.max_batch, -(-(queue.qsize() + 1) // len(pool.workers)))
            while len(batch) < share and not queue.empty():
                batch.append(queue.get_nowait())
            last = len(batch)
            batch = [p for p in batch if not p.future.done()]  # their clients gave up (timeout)
            if not batch:
                continue
            while self.recovering:  # the process is being replaced: the batch waits for the new one
                self._room = loop.create_future()
                await self._room
            assert self.proc is not None and self.proc.stdin is not None
            self.inflight.append(batch)
            self._wake("_work")
            await self._write(pack_requests([p.body for p in batch]))

    async def receive(self) -> None:
        """Read each message's answers in order and hand them out; replace the worker when it fails."""
        loop = asyncio.get_running_loop()
        while True:
            while not self.inflight:
                self._work = loop.create_future()
                await self._work
            batch = self.inflight[0]
            deadline = min(p.deadline for p in batch)
            try:
                payload = await asyncio.wait_for(self._read(), timeout=max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                await self._recover("timed out", 504, b"the request took longer than the service's timeout")
                continue
            if payload is None:
                await self._recover("died", 503, b"the worker died while handling the request; it is being restarted")
                continue
            self.inflight.popleft()
            results, seconds = unpack_timed_results(payload)
            # what a request costs the worker (it says how long the message took it)
            pool = self.pool
            if seconds is not None:
                each = seconds / len(batch)
                pool.cost = each if pool.cost is None else 0.8 * pool.cost + 0.2 * each
            if not self.inflight:
                pool.queue.mark_idle(self)
            self._wake("_room")
            for pending, (kind, data) in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(_result(kind, data))

    async def _recover(self, why: str, status: int, message: bytes) -> None:
        """The message it ran failed it: a new process; that message's requests retried one at a time (only the
        one at fault fails, with ``status``); the message behind it, never started, goes back to the queue."""
        self.recovering = True
        try:
            batches = list(self.inflight)
            self.inflight.clear()
            await self._replace(why)
            self.pool.queue.requeue([p for batch in batches[1:] for p in batch if not p.future.done()])
            await self._one_by_one(batches[0], status, message)
        finally:
            self.recovering = False
            if not self.inflight:
                self.pool.queue.mark_idle(self)
            self._wake("_room")

    async def _one_by_one(self, batch: list[_Pending], status: int, message: bytes) -> None:
        """After a message failed: the request alone in it failed; several are sent again one at a time, so that
        only the one that kills or stalls the worker fails (with ``status``), not those queued with it."""
        if len(batch) == 1:
            self._fail(batch, status, message)
            return
        for pending in batch:
            if pending.future.done():
                continue
            if time.monotonic() >= pending.deadline:
                self._fail([pending], 504, b"the request took longer than the service's timeout")
                continue
            assert self.proc is not None and self.proc.stdin is not None
            try:
                await self._write(pack_requests([pending.body]))
                payload = await asyncio.wait_for(self._read(), timeout=max(0.0, pending.deadline - time.monotonic()))
            except asyncio.TimeoutError:
                self._fail([pending], 504, b"the request took longer than the service's timeout")
                await self._replace("timed out")
                continue
            except (ConnectionError, BrokenPipeError):
                payload = None
            if payload is None:
                self._fail([pending], 503, b"the worker died while handling the request; it is being restarted")
                await self._replace("died")
                continue
            kind, data = unpack_results(payload)[0]
            if not pending.future.done():  # its client may have gone (cancelled) meanwhile
                pending.future.set_result(_result(kind, data))

    def _fail(self, batch: list[_Pending], status: int, message: bytes) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_result(Result(status, FAILED, message))

    async def _replace(self, why: str) -> None:
        self.kill()
        if self.proc is not None:
            await self.proc.wait()
        self.pool.restarts += 1
        self.pool.settings.log(f"worker {self.index} {why}: restarting it")
        while True:
            try:
                await self.start()
                return
            except InitFailed as e:
                self.pool.settings.log(f"worker {self.index} could not restart: {e}")
                await asyncio.sleep(1.0)


def _expire(future: asyncio.Future[Result]) -> None:
    if not future.done():
        future.set_result(Result(504, FAILED, b"the request took longer than the service's timeout"))


def _result(kind: bytes, data: bytes) -> Result:
    return Result(500 if kind in (ERROR, UNENCODABLE) else 200, kind, data)


class Pool:
    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self.queue: WorkQueue[_Pending] = WorkQueue()  # the worker idle last is woken first
        self.workers: list[_Worker] = []
        self.restarts = 0
        self.swagger: dict[str, Any] | None = None
        self.batch = False
        self.rawhttp = False
        self.headers = False
        self.params: list[str] | None = None
        self.ready = False
        self.inflight = 0
        self.cost: float | None = None  # seconds a request takes a worker (moving average), None until known
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start every worker and wait for their ``init()``; ``InitFailed`` if one fails."""
        self.workers = [_Worker(self, i) for i in range(self.settings.workers)]
        try:
            infos = await asyncio.gather(*(w.start() for w in self.workers))
        except BaseException:
            for w in self.workers:
                w.kill()
            raise
        self.swagger = infos[0].get("swagger")
        self.batch = bool(infos[0].get("batch"))
        self.rawhttp = bool(infos[0].get("rawhttp"))
        self.headers = bool(infos[0].get("headers"))
        self.params = infos[0].get("params")
        for w in self.workers:
            w.task = asyncio.create_task(w.serve())
            w.reader = asyncio.create_task(w.receive())
        self.ready = True

    async def submit(self, body: bytes) -> Result:
        loop = self._loop
        if loop is None:  # asked once: on Python < 3.12 each asking is a getpid() system call (a fork check)
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        pending = _Pending(body, time.monotonic() + self.settings.timeout, future)
        self.inflight += 1
        self.queue.put_nowait(pending)
        # a safety net past the worker's own deadline (504 and a new worker), with one timer: wait_for + shield
        # cost two more futures and a task switch per request
        timer = loop.call_later(self.settings.timeout + 1.0, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()
            self.inflight -= 1

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until nothing is queued or in flight (before a rollout switches pools, or a shutdown)."""
        end = time.monotonic() + timeout
        while self.inflight and time.monotonic() < end:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.ready = False
        for w in self.workers:
            for task in (w.task, w.reader):
                if task is not None:
                    task.cancel()
            if w.proc is not None and w.proc.stdin is not None:
                with contextlib.suppress(Exception):
                    w.proc.stdin.close()
        for w in self.workers:
            if w.proc is not None:
                try:
                    await asyncio.wait_for(w.proc.wait(), timeout=5.0)
                except asyncio.TimeoutError:
                    w.kill()
                    await w.proc.wait()

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None]
