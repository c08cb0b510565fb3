"""``kiln.serving.protocol``: the frames between the server and its workers, exact at any size.

Pipes hand out what they hold (64 KiB or less at a time): the reader must take a short read for what
it is, not for the end of the stream (a 220 KB body used to kill the worker that read it)."""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiln.serving import protocol
from kiln.serving.protocol import (
    HEADER,
    frame,
    pack_requests,
    pack_results,
    read_exactly,
    read_frame,
    results_seconds,
    unpack_requests,
    unpack_results,
    write_all,
)


def unframe(framed: bytes) -> bytes:
    """The payload of one whole frame (and check that nothing follows it)."""
    stream = io.BytesIO(framed)
    payload = read_frame(stream)
    assert payload is not None
    assert stream.read() == b""
    return bytes(payload)


class Trickle(io.RawIOBase):
    """A raw stream that hands out at most ``step`` bytes per read, as a pipe under load does."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = memoryview(data)
        self.step = step
        self.pos = 0
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self.reads += 1
        n = min(len(buffer), self.step, len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class Sink(io.RawIOBase):
    """A raw stream that takes at most ``step`` bytes per write, as a raw pipe may."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.out = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(data), self.step)
        self.out += bytes(data[:n])
        return n


# ---- the frames -----------------------------------------------------------------------------------------


def test_a_frame_is_a_big_endian_length_then_the_payload() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00"
    assert HEADER.size == 4
    assert HEADER.pack(70000) == struct.pack(">I", 70000)


def test_requests_are_counted_and_each_length_prefixed() -> None:
    framed = pack_requests([b"ab", b""])
    assert framed == (b"\x00\x00\x00\x0f" + b"M" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x00")
    assert framed[4:5] == protocol.MESSAGE


def test_the_kinds_are_distinct_single_bytes() -> None:
    kinds = [protocol.HELLO, protocol.INIT_FAILED, protocol.MESSAGE]
    assert all(len(k) == 1 for k in kinds) and len(set(kinds)) == 3
    assert all(len(k) == 1 for k in protocol.RESULT_KINDS) and len(set(protocol.RESULT_KINDS)) == 4
    assert protocol.RESULT_KINDS == (protocol.OK, protocol.ERROR, protocol.UNENCODABLE, protocol.RAW_HTTP)


def test_the_worker_environment_names_are_kilns_settings() -> None:
    """The worker can't import kiln.settings: the protocol (and the shim) spell the same names."""
    from kiln import settings
    from kiln.serving.shim import kiln_model_path

    assert protocol.ENV_DEBUG == settings.ENV_DEBUG
    assert protocol.ENV_BATCHING == settings.ENV_BATCHING
    assert protocol.ENV_WORKER_SHIM == settings.ENV_WORKER_SHIM
    assert kiln_model_path.ENV_MODEL_DIR == settings.ENV_MODEL_DIR


@pytest.mark.parametrize("bodies", [
    [],
    [b""],
    [b"", b"", b""],
    [b'{"data": [[1, 2, 3]]}'],
    [bytes(range(256)) * 3, b"\x00", b"M\x00\x00\x00\x01"],  # bytes that look like framing
    [f"request {i}".encode() for i in range(1000)],
], ids=["none", "one-empty", "three-empty", "json", "binary", "a-thousand"])
def test_requests_round_trip(bodies: list[bytes]) -> None:
    assert unpack_requests(unframe(pack_requests(bodies))) == bodies


def test_a_large_request_body_round_trips() -> None:
    big = os.urandom(8 * 1024 * 1024 + 7)
    payload = unframe(pack_requests([b"small", big, b"tail"]))
    assert unpack_requests(payload) == [b"small", big, b"tail"]


@pytest.mark.parametrize("results", [
    [],
    [(b"O", b"")],
    [(b"O", b'{"a": 1}'), (b"E", b'{"error": "ValueError: x", "traceback": ""}'),
     (b"H", b'{"status": 418, "headers": {}, "body": "teapot"}')],
    [(b"O", os.urandom(3 * 1024 * 1024)), (b"O", b"{}")],
], ids=["none", "one-empty", "every-kind", "large"])
def test_results_round_trip(results: list[tuple[bytes, bytes]]) -> None:
    assert unpack_results(unframe(pack_results(results))) == results
    assert results_seconds(unframe(pack_results(results))) is None
    timed = unframe(pack_results(results, seconds=0.0125))  # the worker's time rides after the results
    assert (unpack_results(timed), results_seconds(timed)) == (results, 0.0125)


def test_frames_are_read_one_after_the_other() -> None:
    stream = io.BytesIO(pack_requests([b"first"]) + pack_results([(b"O", b"second")]) + frame(b""))
    assert unpack_requests(read_frame(stream)) == [b"first"]
    assert unpack_results(read_frame(stream)) == [(b"O", b"second")]
    assert read_frame(stream) == b""
    assert read_frame(stream) is None  # end of stream


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 5, 10])
def test_a_truncated_frame_reads_as_the_end(cut: int) -> None:
    assert read_frame(io.BytesIO(frame(b"0123456789")[:cut])) is None


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024])
def test_a_big_frame_cut_short_reads_as_the_end(size: int) -> None:
    framed = frame(b"x" * size)
    assert read_frame(Trickle(framed[:-1], 7000)) is None


# ---- short reads and writes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 220 * 1024, 3 * 1024 * 1024 + 5])
@pytest.mark.parametrize("step", [1, 3, 4096, 65536])
def test_short_reads_are_not_the_end(size: int, step: int) -> None:
    if step == 1 and size > 100 * 1024:
        pytest.skip("a byte at a time: the small sizes say enough")
    bodies = [os.urandom(size), b"next"]
    stream = Trickle(pack_requests(bodies) + frame(b"after"), step)
    assert unpack_requests(read_frame(stream)) == bodies
    assert read_frame(stream) == b"after"  # the first frame was read to its end, not past it
    assert read_frame(stream) is None


def test_read_exactly_takes_what_is_asked_and_no_more() -> None:
    stream = Trickle(b"abcdefgh" * 20000, 1000)
    assert read_exactly(stream, 3) == b"abc"
    assert bytes(read_exactly(stream, 150000)) == (b"defghabc" * 20000)[:150000]
    assert read_exactly(stream, 10) == (b"defghabc" * 20000)[150000:150010]


def test_a_small_frame_that_comes_whole_is_not_copied() -> None:
    """One read, and the bytes it returned are the payload (speed: most requests are small)."""
    class Whole(io.BytesIO):
        calls = 0

        def read(self, size: int | None = -1) -> bytes:
            Whole.calls += 1
            return super().read(size)

    payload = read_frame(Whole(frame(b"small body")))
    assert payload == b"small body" and type(payload) is bytes
    assert Whole.calls == 2  # the header, then the payload


@pytest.mark.parametrize("size", [0, 10, 220 * 1024, 2 * 1024 * 1024])
def test_write_all_writes_everything_to_a_stream_that_takes_little(size: int) -> None:
    data = os.urandom(size)
    sink = Sink(5000)
    write_all(sink, data)
    assert bytes(sink.out) == data


@pytest.mark.parametrize("size", [220 * 1024, 5 * 1024 * 1024])
def test_frames_cross_a_real_socket_fed_in_small_chunks(size: int) -> None:
    bodies = [os.urandom(size), b"{}"]
    framed = pack_requests(bodies)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        def feed() -> None:
            for start in range(0, len(framed), 1500):  # one network packet at a time
                theirs.sendall(framed[start:start + 1500])
            theirs.shutdown(socket.SHUT_WR)

        feeder = threading.Thread(target=feed)
        feeder.start()
        reader = ours.makefile("rb", buffering=0)
        try:
            assert unpack_requests(read_frame(reader)) == bodies
            assert read_frame(reader) is None
        finally:
            reader.close()
            feeder.join()


@pytest.mark.parametrize("size", [220 * 1024, 20 * 1024 * 1024])
def test_frames_cross_a_real_pipe_both_ways(size: int) -> None:
    """A child process echoes frames through unbuffered pipes, as the worker reads and writes them."""
    echo = ("import os, sys; sys.path.insert(0, sys.argv[1]); import protocol as p\n"
            "i = os.fdopen(0, 'rb', buffering=0); o = os.fdopen(1, 'wb', buffering=0)\n"
            "while True:\n"
            "    f = p.read_frame(i)\n"
            "    if f is None: break\n"
            "    p.write_all(o, p.pack_results([(p.OK, bytes(b)) for b in p.unpack_requests(f)]))\n")
    proc = subprocess.Popen([sys.executable, "-c", echo, str(Path(protocol.__file__).parent)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    body = os.urandom(size)
    writer = threading.Thread(target=lambda: (proc.stdin.write(pack_requests([body, b"x"])),  # type: ignore[union-attr]
                                              proc.stdin.close()))  # type: ignore[union-attr]
    writer.start()
    try:
        assert unpack_results(read_frame(proc.stdout)) == [(protocol.OK, body), (protocol.OK, b"x")]
        assert read_frame(proc.stdout) is None
    finally:
        writer.join()
        proc.stdout.close()
        assert proc.wait(timeout=30) == 0
