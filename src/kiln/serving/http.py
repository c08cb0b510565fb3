"""The scoring server's HTTP/1.1 connection: uvicorn's ``http`` protocol slot, on httptools, for one app.

uvicorn's own httptools protocol is general (any ASGI app, websockets, access logs, concurrency limits) and
pays for it per request: the response head and body go out in two writes (two loopback sends, the client
woken twice), a keep-alive timer is cancelled and re-armed per request, an ``asyncio.Event`` is made per
request, every header is matched against two regular expressions. For a one-row ``run()`` that is most of a
request's cost. This protocol keeps uvicorn's server (sockets, signals, graceful shutdown, the Date header)
and replaces the connection:

- head and body leave in **one write** when the body comes in one message (Kiln's app always does);
- the keep-alive timer is armed when a connection goes idle and re-armed only when it fires (once per
  timeout, not once per request);
- a request whose body arrived with its head (almost all of them) never waits on an event;
- response headers are checked in one scan of the joined head (a CR or LF inside a name or value would
  split the response: refused with a 500, as uvicorn refuses it);
- pipelined requests are answered in order; ``Expect: 100-continue`` gets its interim answer when the app
  first reads the body; a malformed request gets a 400 and the connection closes; a request head over
  ``MAX_HEAD`` bytes gets a 431 (a URL that long, a 414); the unread rest of a body the app refused (413) is
  read and dropped.

When httptools is not importable (a container whose Python has no wheel of it), ``protocol()`` says so and
the server lets uvicorn pick its pure-Python h11 protocol: the same answers, slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from collections import deque
from typing import Any, cast
from urllib.parse import unquote

__all__ = ["MAX_HEAD", "protocol"]

#: the most bytes of request line and headers taken for one request (uvicorn/h11's limit is 64 KiB too)
MAX_HEAD = 64 * 1024
#: a request body buffered beyond this, with the app not reading it yet, pauses reading from the socket
_HIGH_WATER = 64 * 1024
_log = logging.getLogger("uvicorn.error")


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {code} {phrase}\r\n".encode()


_STATUS = {code: _status_line(code) for code in range(100, 600)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _plain(status: int, message: bytes, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole response of the protocol's own (400, 431), closing the connection."""
    lines = [_STATUS[status], *(name + b": " + value + b"\r\n" for name, value in default_headers),
             b"content-type: text/plain; charset=utf-8\r\n", b"content-length: %d\r\n" % len(message),
             b"connection: close\r\n\r\n", message]
    return b"".join(lines)


def protocol() -> type[asyncio.Protocol] | None:
    """The protocol class for ``uvicorn.Config(http=...)``; None when httptools is missing."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return None
    return HttpProtocol


class _Cycle:
    """One request and its response."""

    __slots__ = ("body", "chunked", "complete", "disconnected", "drained", "expect_continue", "head", "keep_alive",
                 "left", "more_body", "scope", "started", "waiter")

    def __init__(self, scope: dict[str, Any], keep_alive: bool, expect_continue: bool) -> None:
        self.scope = scope
        self.body = bytearray()
        self.more_body = True
        self.waiter: asyncio.Future[None] | None = None
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.head: bytes | None = None  # written with the first body message
        self.started = False
        self.complete = False
        self.chunked = False
        self.disconnected = False
        self.drained = False  # the whole body was handed to the app
        self.left: int | None = None  # response bytes its Content-Length still announces

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class HttpProtocol(asyncio.Protocol):
    """One client connection (``config``, ``server_state`` and ``app_state`` as uvicorn's server passes them)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        import httptools

        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.keep_alive_timeout = float(config.timeout_keep_alive)
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # httptools >= 0.6.3: answer the request before the data after it
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._parse_url = httptools.parse_url
        self._parser_error = httptools.HttpParserError
        self._upgrade = httptools.HttpParserUpgrade
        self.transport: asyncio.Transport | None = None
        self.server: Any = None
        self.client: Any = None
        self.cycle: _Cycle | None = None  # the request being answered
        self.pipeline: deque[_Cycle] = deque()  # requests that came in behind it
        self.reading = True
        self.writable: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.expect_continue = False
        self.parsing: _Cycle | None = None
        self.in_head = False  # between a request's first byte and the end of its head
        self.head_read = 0  # raw bytes read while in a head: a header line that never ends is still counted
        self.refusal: bytes | None = None  # the protocol's own answer, sent once the requests before it are answered

    # ---- the connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports aren't asyncio's classes
        self.server_state.connections.add(self)
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self._idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for cycle in (self.cycle, *self.pipeline):
            if cycle is not None and not cycle.complete:
                cycle.disconnected = True
                cycle.wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def eof_received(self) -> None:
        pass  # the transport closes itself; a request in flight notices on its next write

    def pause_writing(self) -> None:
        if self.writable is None or self.writable.done():
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when idle, else after the response in flight."""
        if self.cycle is None:
            self._close()
        else:
            self.cycle.keep_alive = False

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _idle(self) -> None:
        self.idle_since = self.loop.time()
        if self.timer is None:
            self.timer = self.loop.call_later(self.keep_alive_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self.timer = None
        if self.cycle is not None:
            return  # busy: armed again when its response completes
        left = self.idle_since + self.keep_alive_timeout - self.loop.time()
        if left <= 0:
            self._close()
        else:
            self.timer = self.loop.call_later(left, self._idle_check)

    def _pause(self) -> None:
        if self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()

    def _resume(self) -> None:
        if not self.reading and self.transport is not None:
            self.reading = True
            self.transport.resume_reading()

    # ---- parsing ---------------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        in_head = self.in_head
        try:
            self.parser.feed_data(data)
        except self._parser_error:
            self._refuse(400, b"Invalid HTTP request received.")
            return
        except self._upgrade:
            # no upgrades here (no websockets): the request was answered as plain HTTP; what follows the head
            # is another protocol's, so the connection ends after the answer
            for cycle in (self.cycle, *self.pipeline):
                if cycle is not None:
                    cycle.keep_alive = False
            return
        if in_head and self.in_head:  # httptools holds a header line until it ends: count what it holds
            self.head_read += len(data)
            if self.head_read > MAX_HEAD:
                self._refuse(431, b"Request header fields too large.")

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer ``status`` and close, after the requests that came before (answered in order); nothing more
        is read."""
        if self.transport is None or self.transport.is_closing() or self.refusal is not None:
            return
        self._pause()
        answer = _plain(status, message, self.server_state.default_headers)
        if self.cycle is not None:  # the requests before the bad one (running, or pipelined) are answered first
            self.refusal = answer
            return
        self.transport.write(answer)
        self._close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.head_read = 0
        self.in_head = True
        self.expect_continue = False
        self.idle_since = self.loop.time()  # a head has the whole keep-alive timeout from its first byte

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > MAX_HEAD:
            self._refuse(414, b"URI too long.")
            raise self._parser_error("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a chunked body's trailer: not the request's headers (the app has read those already)
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD:
            self._refuse(431, b"Request header fields too large.")
            raise self._parser_error("request head too large")
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        version = parser.get_http_version()
        url = self._parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": version,
                 "server": self.server, "client": self.client, "scheme": "http",
                 "method": parser.get_method().decode("ascii"), "root_path": "", "path": path, "raw_path": raw_path,
                 "query_string": url.query or b"", "headers": self.headers, "state": self.app_state.copy()}
        cycle = _Cycle(scope, version != "1.0" and parser.should_keep_alive(),
                       self.expect_continue and version == "1.1")
        self.parsing = cycle
        if self.cycle is None:
            self._start(cycle)
        else:  # pipelined: answered in order, and nothing more is read meanwhile
            self.pipeline.append(cycle)
            self._pause()

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is None or cycle.complete:
            self.idle_since = self.loop.time()  # a drain that progresses is not idle
            return  # the app answered without reading it all (413): the rest is dropped
        cycle.body += body
        if len(cycle.body) > _HIGH_WATER:
            self._pause()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        self.parsing = None
        if cycle is not None:
            cycle.more_body = False
            cycle.wake()

    # ---- the app ------------------------------------------------------------------------------------------

    def _start(self, cycle: _Cycle) -> None:
        self.cycle = cycle  # an idle timer that fires now finds the connection busy and stands down
        task = self.loop.create_task(self._run(cycle))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, cycle: _Cycle) -> None:
        try:
            await self.app(cycle.scope, lambda: self._receive(cycle), lambda message: self._send(cycle, message))
        except BaseException as e:  # an app error must not take the connection's other requests with it
            if isinstance(e, Exception):
                _log.error("Exception in the scoring app", exc_info=e)
            await self._fail(cycle)
            if not isinstance(e, Exception):  # cancelled (a shutdown's deadline): answered, then passed on
                raise
            return
        if not cycle.complete and not cycle.disconnected:
            _log.error("the scoring app returned without completing its response")
            await self._fail(cycle)

    async def _fail(self, cycle: _Cycle) -> None:
        """A 500 if nothing of the response went out yet (a head waits for its body), else the connection ends."""
        if cycle.complete or cycle.disconnected:
            return
        if cycle.started and cycle.head is None:
            self._close()  # mid-response: no room for another answer
            return
        cycle.started, cycle.head, cycle.chunked, cycle.keep_alive, cycle.left = False, None, False, False, None
        await self._send(cycle, {"type": "http.response.start", "status": 500,
                                 "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                             (b"content-length", b"21")]})
        await self._send(cycle, {"type": "http.response.body", "body": b"Internal Server Error"})

    async def _receive(self, cycle: _Cycle) -> dict[str, Any]:
        if cycle.expect_continue:
            cycle.expect_continue = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(_CONTINUE)
        if cycle.drained:  # all of the body was handed out: what comes next is the end of the request
            while not cycle.disconnected and not cycle.complete:
                cycle.waiter = self.loop.create_future()
                await cycle.waiter
            return {"type": "http.disconnect"}
        while not cycle.disconnected and not cycle.complete and cycle.more_body and not cycle.body:
            self._resume()
            cycle.waiter = self.loop.create_future()
            await cycle.waiter
            cycle.waiter = None
        if cycle.disconnected or cycle.complete:
            return {"type": "http.disconnect"}
        body = bytes(cycle.body)
        cycle.body.clear()
        if cycle.more_body:
            self._resume()
        else:
            cycle.drained = True
        return {"type": "http.request", "body": body, "more_body": cycle.more_body}

    async def _send(self, cycle: _Cycle, message: dict[str, Any]) -> None:
        if cycle.disconnected:
            return
        kind = message["type"]
        if not cycle.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            cycle.head = self._head(cycle, int(message["status"]), message.get("headers", ()))
            cycle.started = True
            return
        if cycle.complete or kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if self.writable is not None and not self.writable.done():
            await self.writable  # the client reads slowly: wait for room rather than buffer without bound
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if cycle.scope["method"] == "HEAD":
            body = b""
        else:
            if cycle.left is not None:  # a body that isn't its Content-Length would desynchronise the connection
                cycle.left -= len(body)
                if cycle.left < 0 or (not more and cycle.left):
                    raise RuntimeError("the response body does not match its Content-Length")
            if cycle.chunked:
                body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        out = cycle.head + body if cycle.head is not None else body
        cycle.head = None
        transport = self.transport
        if transport is None or transport.is_closing():
            cycle.disconnected = True
            return
        if out:
            transport.write(out)
        if not more:
            self._complete(cycle)

    def _head(self, cycle: _Cycle, status: int, headers: Any) -> bytes:
        if not 200 <= status <= 599:  # 1xx are the protocol's own; anything else is no HTTP status
            raise RuntimeError(f"the response status {status} is not a final HTTP status")
        parts = [_STATUS[status]]
        lines = 2  # the status line and the empty line
        length = None
        framed = False  # the app chose its framing (transfer-encoding)
        closing = False
        for name, value in (*self.server_state.default_headers, *headers):
            parts += (name, b": ", value, b"\r\n")
            lines += 1
            lowered = name.lower()
            if lowered == b"content-length":
                length = value
            elif lowered == b"connection" and b"close" in value.lower():
                cycle.keep_alive = False
                closing = True
            elif lowered == b"transfer-encoding":
                framed = True
                cycle.chunked = value.lower().strip() == b"chunked"
        if length is not None and not framed:
            try:
                cycle.left = int(length)
            except ValueError:
                raise RuntimeError(f"the response's Content-Length {length[:40]!r} is not a number") from None
        if cycle.expect_continue and cycle.more_body:
            # answered before asking for the body: the client won't send it, and the bytes that come next are
            # not this request's, so the connection ends here (as h11 does)
            cycle.keep_alive = False
        if length is None and not framed and cycle.scope["method"] != "HEAD" and status not in (204, 304):
            if cycle.scope["http_version"] == "1.1":
                cycle.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
                lines += 1
            else:  # HTTP/1.0 knows no chunks: the end of the connection ends the body
                cycle.keep_alive = False
        if not cycle.keep_alive and not closing:
            parts.append(b"connection: close\r\n")
            lines += 1
        parts.append(b"\r\n")
        head = b"".join(parts)
        # one scan for what would split the response: a CR or LF inside a name or a value
        if head.count(b"\n") != lines or head.count(b"\r") != lines:
            raise RuntimeError("a response header name or value holds a line break")
        return head

    def _complete(self, cycle: _Cycle) -> None:
        cycle.complete = True
        cycle.wake()  # a receive() waiting for the end of the request
        self.server_state.total_requests += 1
        if self.cycle is cycle:
            self.cycle = None
        if not cycle.keep_alive:
            self._close()
            return
        if self.pipeline:
            self._start(self.pipeline.popleft())
            if not self.pipeline and self.refusal is None:
                self._resume()
        elif self.refusal is not None:  # a bad request came after this one: its answer now, then the end
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(self.refusal)
            self._close()
        else:
            self._resume()  # (also after an early answer, 413: the rest of its body is read and dropped)
            self._idle()


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None
