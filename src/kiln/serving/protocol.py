"""The protocol between the scoring server and its workers: message kinds and exact framing.

Shared by the server (``pool.py``, ``app.py``) and the worker (``worker.py``), which runs inside the
user's environment: so this module is standard library only and loads on any Python from 3.6 on
(annotations spelled with ``typing``: no ``from __future__ import annotations``, no ``X | None``,
no dataclasses).

A frame is a 4-byte big-endian length, then the payload. The first payload byte says what it is:

    worker -> server  HELLO + JSON {"swagger": {...}|null, "batch": bool, "rawhttp": bool, "params": [...]|null,
                                    "headers": bool}                        init() succeeded
                      INIT_FAILED + JSON {"error": str, "traceback": str}   init() failed (then exit)
    server -> worker  MESSAGE + count + count x (length + request body)     requests to run, in order
    worker -> server  MESSAGE + count + count x (kind + length + data)      one result per request
                      [+ 8-byte big-endian float: seconds the worker spent on the message]
        OK: the response body (JSON text of run()'s return value)
        ERROR: JSON {"error": str, "traceback": str}                        run() raised
        UNENCODABLE: the same, when run()'s value could not be encoded as JSON
        RAW_HTTP: JSON {"status": int, "headers": {...}, "body": str}       a raw HTTP response (AMLResponse)

Reads are exact: a pipe hands out what it holds at the moment (64 KiB at a time, or less), so one short
``read`` is not the end of the stream; only a read that returns nothing is.
"""

import struct
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ["COUNT", "ENV_BATCHING", "ENV_DEBUG", "ENV_WORKER_SHIM", "ERROR", "HEADER", "HELLO", "INIT_FAILED",
           "MESSAGE", "OK", "RAW_HTTP", "RESULT_KINDS", "UNENCODABLE", "frame", "pack_requests", "pack_results",
           "read_exactly", "read_frame", "results_seconds", "unpack_requests", "unpack_results", "unpack_timed_results",
           "write_all"]

HEADER = struct.Struct(">I")
COUNT = struct.Struct(">I")
SECONDS = struct.Struct(">d")

# ---- message kinds (a payload's first byte) ----------------------------------------------------------
HELLO = b"I"
INIT_FAILED = b"F"
MESSAGE = b"M"

# ---- result kinds (one per request, in a MESSAGE from the worker) --------------------------------------
OK = b"O"
ERROR = b"E"
UNENCODABLE = b"X"
RAW_HTTP = b"H"
RESULT_KINDS = (OK, ERROR, UNENCODABLE, RAW_HTTP)

# ---- what the server tells the worker through its environment ------------------------------------------
# The same names as kiln.settings' constants (a unit test keeps them equal): the worker cannot import
# kiln.settings, which is neither installed in the user's environment nor Python 3.6 code.
ENV_DEBUG = "KILN_DEBUG"
ENV_BATCHING = "KILN_BATCHING"
ENV_WORKER_SHIM = "KILN_WORKER_SHIM"

#: frames up to this size are read with one ``read`` (no buffer to fill and no copy when it comes whole);
#: larger ones are read into a buffer allocated once
_SMALL = 64 * 1024


def read_exactly(stream: Any, size: int) -> Optional[Any]:
    """``size`` bytes from ``stream`` (bytes, or a bytearray for big reads); None if it ends before."""
    if size <= _SMALL:
        data = stream.read(size)
        if data is None or len(data) == size:  # None: only from a non-blocking stream, which we never get
            return data
        parts = [data]
        got = len(data)
        while data and got < size:  # a short read (rare at this size): the rest, part by part
            data = stream.read(size - got)
            parts.append(data)
            got += len(data)
        return b"".join(parts) if got == size else None
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            return None
        got += n
    return buffer


def read_frame(stream: Any) -> Optional[Any]:
    """The next frame's payload; None at the end of the stream (also when it ends mid-frame)."""
    head = read_exactly(stream, HEADER.size)
    if head is None:
        return None
    (length,) = HEADER.unpack(head)
    return read_exactly(stream, length)


def write_all(stream: Any, data: bytes) -> None:
    """Write all of ``data``: a raw (unbuffered) stream may take less than it was given."""
    view = memoryview(data)
    while view:
        n = stream.write(view)
        view = view[len(view) if n is None else n:]


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def _framed(parts: List[bytes], size: int) -> bytes:
    """``parts`` (starting with a placeholder for the header) as one frame, copied once."""
    parts[0] = HEADER.pack(size)
    return b"".join(parts)


def pack_requests(bodies: Sequence[bytes]) -> bytes:
    parts = [b"", MESSAGE, COUNT.pack(len(bodies))]
    size = 1 + COUNT.size
    for body in bodies:
        parts.append(HEADER.pack(len(body)))
        parts.append(body)
        size += HEADER.size + len(body)
    return _framed(parts, size)


def unpack_requests(payload: Any) -> List[Any]:
    (count,) = COUNT.unpack_from(payload, 1)
    pos = 1 + COUNT.size
    out = []
    for _ in range(count):
        (length,) = HEADER.unpack_from(payload, pos)
        pos += HEADER.size
        out.append(payload[pos:pos + length])
        pos += length
    return out


def pack_results(results: Sequence[Tuple[bytes, bytes]], seconds: Optional[float] = None) -> bytes:
    """The results of a message; ``seconds``: what running it took the worker (after the results)."""
    parts = [b"", MESSAGE, COUNT.pack(len(results))]
    size = 1 + COUNT.size
    for kind, data in results:
        parts.append(kind)
        parts.append(HEADER.pack(len(data)))
        parts.append(data)
        size += 1 + HEADER.size + len(data)
    if seconds is not None:
        parts.append(SECONDS.pack(seconds))
        size += SECONDS.size
    return _framed(parts, size)


def unpack_timed_results(payload: Any) -> Tuple[List[Tuple[bytes, Any]], Optional[float]]:
    """The results of a message and, when the worker said (``pack_results(seconds=...)``), what running it
    took the worker: one pass over the payload."""
    (count,) = COUNT.unpack_from(payload, 1)
    pos = 1 + COUNT.size
    out = []
    for _ in range(count):
        kind = bytes(payload[pos:pos + 1])
        (length,) = HEADER.unpack_from(payload, pos + 1)
        pos += 1 + HEADER.size
        out.append((kind, payload[pos:pos + length]))
        pos += length
    seconds = float(SECONDS.unpack_from(payload, pos)[0]) if len(payload) - pos == SECONDS.size else None
    return out, seconds


def results_seconds(payload: Any) -> Optional[float]:
    """What running the message took the worker, when its results say."""
    return unpack_timed_results(payload)[1]


def unpack_results(payload: Any) -> List[Tuple[bytes, Any]]:
    return unpack_timed_results(payload)[0]
