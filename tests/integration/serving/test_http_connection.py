"""``kiln.serving.http.HttpProtocol``, the scoring server's HTTP/1.1 connection, under uvicorn's real server on
127.0.0.1 (uvloop, as the service runs it), driven with raw sockets and ``http.client``: keep-alive, pipelining,
``Expect: 100-continue``, chunked bodies both ways, HEAD, HTTP/1.0, refusals (malformed, oversized head, a
header that would split the response), app errors, a client gone mid-body, the idle timeout, graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from kiln.serving.http import MAX_HEAD, HttpProtocol, protocol

pytestmark = pytest.mark.integration


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Routes for the tests: /echo reads the whole body; the others each misbehave in one way."""
    path = scope["path"]

    async def reply(status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                    length: bool = True) -> None:
        extra = [(b"content-length", str(len(body)).encode())] if length else []
        await send({"type": "http.response.start", "status": status, "headers": [*(headers or []), *extra]})
        await send({"type": "http.response.body", "body": body})

    if path == "/echo":
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                ECHO_DISCONNECTS.append(scope["path"])
                return
            chunks.append(message["body"])
            if not message["more_body"]:
                break
        await reply(200, b"".join(chunks), [(b"x-pieces", str(len(chunks)).encode())])
    elif path == "/refuse":  # answers without reading the body (as the scoring app's 413)
        await reply(413, b"too big")
    elif path == "/split":
        await reply(200, b"ok", [(b"x-evil", b"a\r\nset-cookie: injected=1")])
    elif path == "/raise":
        raise ValueError("the app failed")
    elif path == "/raise-late":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise ValueError("the app failed after its head")
    elif path == "/chunked":  # no content-length: the response goes chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/short":  # a body shorter than its Content-Length
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345"})
    elif path == "/noresponse":
        return
    elif path == "/status":
        await reply(int(scope["query_string"]), b"odd")
    elif path == "/after-body":  # reads the body, then asks again: that waits for the end of the request
        while (await receive()).get("more_body"):
            pass
        try:
            AFTER_BODY.append((await asyncio.wait_for(receive(), 0.3))["type"])
        except asyncio.TimeoutError:
            AFTER_BODY.append("waited")
        await reply(200, b"done")
    elif path == "/headers":
        while (await receive()).get("more_body"):
            pass
        await reply(200, b";".join(k + b"=" + v for k, v in scope["headers"] if k.startswith(b"x-")))
    elif path == "/hang":
        await asyncio.sleep(3600)
    elif path == "/slow":
        await asyncio.sleep(0.5)
        await reply(200, b"slow")
    elif path == "/big":
        await reply(200, b"z" * (int(scope["query_string"] or b"0")))
    else:
        await reply(200, scope["method"].encode() + b" " + path.encode() + b"?" + scope["query_string"])


ECHO_DISCONNECTS: list[str] = []
AFTER_BODY: list[str] = []


class Running:
    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def client(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    import uvloop

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=HttpProtocol, lifespan="off", log_level="critical",
                            timeout_keep_alive=1, server_header=False, date_header=True)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: uvloop.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield Running(server, port)
    server.should_exit = True
    thread.join(10)


_FILES: weakref.WeakKeyDictionary[socket.socket, Any] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One content-length framed response from a raw socket, read through one buffered file per socket (a file
    per response would lose what the previous one read ahead of its end)."""
    fp = _FILES.setdefault(sock, sock.makefile("rb"))
    status = int(fp.readline(65537).split(b" ", 2)[1])
    headers = {k.lower(): v for k, v in http.client.parse_headers(fp).items()}
    return status, headers, fp.read(int(headers.get("content-length", "0")))


def closed(sock: socket.socket) -> bool:
    sock.settimeout(3)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_protocol_is_offered_where_httptools_imports() -> None:
    assert protocol() is HttpProtocol


def test_keep_alive_serves_many_requests_on_one_connection(running: Running) -> None:
    client = running.client()
    for i in range(20):
        client.request("POST", "/echo", body=b"body-%d" % i)
        response = client.getresponse()
        assert (response.status, response.read()) == (200, b"body-%d" % i)
        assert response.getheader("date") and response.getheader("connection") is None
    client.close()


def test_pipelined_requests_are_answered_in_order(running: Running) -> None:
    with running.connect() as sock:
        requests = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(b), b)
                            for b in (b"first", b"second" * 50_000, b"third"))
        sock.sendall(requests + b"GET /hello?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        bodies = [read_response(sock)[2] for _ in range(4)]
    assert bodies == [b"first", b"second" * 50_000, b"third", b"GET /hello?x=1"]


def test_expect_100_continue_gets_its_interim_answer_when_the_body_is_read(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        assert read_response(sock)[::2] == (200, b"hello")


def test_the_unread_rest_of_a_refused_body_is_dropped_and_the_connection_goes_on(running: Running) -> None:
    with running.connect() as sock:
        body = b"x" * 3_000_000
        sock.sendall(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        sender = threading.Thread(target=sock.sendall, args=(body + b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n",))
        sender.start()
        assert read_response(sock)[::2] == (413, b"too big")
        assert read_response(sock)[::2] == (200, b"GET /after?")
        sender.join()


def test_a_chunked_request_body_reaches_the_app_whole(running: Running) -> None:
    client = running.client()
    client.request("POST", "/echo", body=iter([b"a" * 70_000, b"b" * 10, b"c"]), encode_chunked=True)
    response = client.getresponse()
    assert response.read() == b"a" * 70_000 + b"b" * 10 + b"c"
    client.close()


def test_a_body_sent_slowly_in_pieces_is_waited_for(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n")
        for piece in (b"abc", b"def", b"ghi"):
            time.sleep(0.1)
            sock.sendall(piece)
        status, headers, body = read_response(sock)
    assert (status, body) == (200, b"abcdefghi")
    assert int(headers["x-pieces"]) >= 2  # the app got it as it came, not buffered to the end


def test_a_response_without_a_length_goes_chunked(running: Running) -> None:
    client = running.client()
    client.request("GET", "/chunked")
    response = client.getresponse()
    assert (response.getheader("transfer-encoding"), response.read()) == ("chunked", b"one,two,three")
    client.request("GET", "/again")  # and the connection is still usable
    assert client.getresponse().read() == b"GET /again?"
    client.close()


def test_head_has_the_length_and_no_body(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"HEAD /big?1000 HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        data = b""
        while b"GET /next?" not in data:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: 1000" in head.lower()
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no body between the HEAD answer and the next one


@pytest.mark.parametrize(("request_bytes", "answer"), [
    # refused before its body was asked for: the client won't send it, the next bytes aren't this request's
    (b"POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n",
     (413, "close", b"too big")),
    (b"GET /old HTTP/1.0\r\n\r\n", (200, "close", b"GET /old?")),  # HTTP/1.0: one request per connection
    (b"THIS IS NOT HTTP\r\n\r\n", (400, "close", b"Invalid HTTP request received.")),  # malformed
], ids=["expect-100-refused", "http-1.0", "malformed"])
def test_the_connection_ends_after_answers_that_leave_it_unusable(running: Running, request_bytes: bytes,
                                                                  answer: tuple[int, str, bytes]) -> None:
    with running.connect() as sock:
        sock.sendall(request_bytes)
        status, headers, body = read_response(sock)
        assert (status, headers["connection"], body) == answer
        assert closed(sock)


def test_a_head_over_the_limit_is_a_431(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 4096 + b"\r\n")
        for _ in range(MAX_HEAD // 4096 + 1):
            try:
                sock.sendall(b"X-More: " + b"b" * 4096 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (431, "close")


def test_a_url_over_the_limit_is_a_414(running: Running) -> None:
    with running.connect() as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may stop reading before the end
            sock.sendall(b"GET /" + b"u" * (MAX_HEAD + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (414, "close")


def test_a_header_that_would_split_the_response_is_refused(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET /split HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(sock)
    assert (status, body) == (500, b"Internal Server Error")
    assert "set-cookie" not in headers and "x-evil" not in headers


def test_an_app_error_is_a_500_and_the_server_goes_on(running: Running) -> None:
    client = running.client()
    client.request("GET", "/raise")
    response = client.getresponse()
    assert (response.status, response.read()) == (500, b"Internal Server Error")
    client.close()
    client = running.client()  # failing after its head, before any byte went out: still a 500
    client.request("GET", "/raise-late")
    response = client.getresponse()
    assert (response.status, response.getheader("connection"), response.read()) == (500, "close",
                                                                                   b"Internal Server Error")
    client.close()
    client = running.client()
    client.request("GET", "/still-here")
    assert client.getresponse().read() == b"GET /still-here?"
    client.close()


def test_a_client_gone_mid_body_leaves_the_server_serving(running: Running) -> None:
    ECHO_DISCONNECTS.clear()
    sock = running.connect()
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly part")
    time.sleep(0.2)
    sock.close()
    deadline = time.monotonic() + 5
    while not ECHO_DISCONNECTS and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ECHO_DISCONNECTS == ["/echo"]  # the app's receive() said http.disconnect
    client = running.client()
    client.request("POST", "/echo", body=b"next")
    assert client.getresponse().read() == b"next"
    client.close()


def test_a_big_answer_to_a_slow_reader_arrives_whole(running: Running) -> None:
    size = 30 * 1024 * 1024
    with running.connect(timeout=30) as sock:
        sock.sendall(b"GET /big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
        time.sleep(0.5)  # the server fills the socket's buffer and waits for room
        status, _, body = read_response(sock)
    assert (status, len(body)) == (200, size)


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout_and_a_busy_one_is_not(running: Running) -> None:
    busy = running.client()
    with running.connect() as idle:
        for i in range(8):  # 2 s of requests every 0.25 s, across the 1 s timeout
            busy.request("GET", f"/tick{i}")
            assert busy.getresponse().read() == f"GET /tick{i}?".encode()
            time.sleep(0.25)
        assert closed(idle)
    busy.close()


def test_graceful_shutdown_finishes_the_request_in_flight() -> None:
    import uvloop

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=HttpProtocol, lifespan="off",
                                           log_level="critical"))
    thread = threading.Thread(target=lambda: uvloop.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        server.should_exit = True
        status, headers, body = read_response(sock)
        assert (status, headers["connection"], body) == (200, "close", b"slow")
        assert closed(idle)
    thread.join(10)
    assert not thread.is_alive()


def exchange(running: Running, raw: bytes, wait: float = 1.0) -> bytes:
    """Send ``raw``, then everything the server answers until it closes or goes quiet for ``wait`` seconds."""
    with running.connect() as sock:
        sock.sendall(raw)
        sock.settimeout(wait)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return data


def test_a_request_with_connection_close_is_answered_whatever_follows_it(running: Running) -> None:
    answer = exchange(running, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"GET /a?") and b"/b" not in answer
    answer = exchange(running, b"GET /c HTTP/1.0\r\n\r\nGET /d HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"GET /c?")


def test_a_bad_request_behind_good_ones_is_refused_after_their_answers(running: Running) -> None:
    answer = exchange(running, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                               b"GARBAGE\x01\r\n\r\n", wait=3)
    assert answer.index(b"\r\n\r\nslow") < answer.index(b"GET /two?") < answer.index(b"HTTP/1.1 400")
    assert answer.endswith(b"Invalid HTTP request received.")


def test_a_header_line_that_never_ends_is_cut_at_the_limit(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 4 * MAX_HEAD:
                sock.sendall(b"a" * 4096)
                sent += 4096
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (431, "close")  # not buffered until the idle timeout cut it


def test_the_app_gets_the_end_of_the_request_only_when_it_ends(running: Running) -> None:
    AFTER_BODY.clear()
    client = running.client()
    client.request("POST", "/after-body", body=b"x" * 100)
    assert client.getresponse().read() == b"done"
    client.close()
    assert AFTER_BODY == ["waited"]  # a second receive() after the body waits (for a disconnect), never spins


def test_a_chunked_body_s_trailers_are_not_request_headers(running: Running) -> None:
    answer = exchange(running, b"POST /headers HTTP/1.1\r\nHost: x\r\nX-Real: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3\r\nabc\r\n0\r\nX-Trailer: evil\r\n\r\n")
    assert answer.endswith(b"\r\n\r\nx-real=1")


@pytest.mark.parametrize("path", ["/short", "/noresponse", "/status?1000", "/status?101"])
def test_a_response_the_app_gets_wrong_is_a_500_not_a_broken_connection(running: Running, path: str) -> None:
    answer = exchange(running, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error") and answer.endswith(b"Internal Server Error")
    assert b"/next" not in answer and b"12345" not in answer  # the connection ended: nothing out of step


def test_http_1_0_gets_no_chunks(running: Running) -> None:
    answer = exchange(running, b"GET /chunked HTTP/1.0\r\n\r\n")
    assert b"transfer-encoding" not in answer.lower() and answer.endswith(b"\r\n\r\none,two,three")


def test_a_drained_refused_body_and_a_slow_head_keep_to_the_idle_timeout(running: Running) -> None:
    # the rest of a refused body, sent slowly, then nothing: closed after the timeout (1 s here)
    with running.connect() as sock:
        sock.sendall(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n")
        for _ in range(3):
            sock.sendall(b"y" * 10000)
            time.sleep(0.3)
        assert read_response(sock)[0] == 413
        assert closed(sock)
    # a head that starts before the deadline and ends after it is answered
    with running.connect() as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"GET /first?"
        time.sleep(0.8)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n")
        time.sleep(0.5)
        sock.sendall(b"\r\nbody")
        assert read_response(sock)[::2] == (200, b"body")


def test_a_request_cut_by_the_shutdown_deadline_is_answered_500() -> None:
    import uvloop

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=HttpProtocol, lifespan="off",
                                           log_level="critical", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=lambda: uvloop.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        server.should_exit = True
        status, _, body = read_response(sock)
        assert (status, body) == (500, b"Internal Server Error")
    thread.join(10)
    assert not thread.is_alive()
