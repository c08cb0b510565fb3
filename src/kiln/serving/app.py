"""The scoring server's HTTP front: a bare ASGI app (no framework: every microsecond is per request).

Routes, as Azure ML's server has them: ``GET /`` (liveness), ``GET /score`` (health),
``POST /score``, ``GET /swagger.json``; plus ``GET /health/ready`` and ``GET /metrics``
(Prometheus text). Errors are JSON ``{"error": ...}`` with a status code; a traceback only in debug.

With keys (auth on), what reaches the model or describes the service needs ``Authorization: Bearer <key>``
(the one form Azure ML's services take): ``/score`` (any method that reaches ``run()``), ``/swagger.json``
and ``/metrics``. The probes (``/``, ``/health/ready``) and a CORS preflight (``OPTIONS /score`` when
``run()`` doesn't see it) answer without one: probes and browsers can't send a key.
"""

from __future__ import annotations

import hmac
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kiln.serving import azure_texts as texts
from kiln.serving.metrics import Metrics
from kiln.serving.pool import Pool, Result
from kiln.serving.protocol import ERROR, OK, RAW_HTTP, UNENCODABLE

__all__ = ["SERVER_VERSION", "ScoringApp"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_NOT_FAILED = (texts.RUN_FAILED_HEADER, b"False")
#: Kiln's own error answers (404, 405, 400...), as Azure ML's server sends them
_ERR = [*_JSON, _NOT_FAILED]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_HTML = [(b"content-type", b"text/html; charset=utf-8")]
SERVER_VERSION = b"kiln-scoring/1"
#: request ids need to be unique, not secret: a generator seeded once from the OS
_random_bits = random.Random().getrandbits
_ROUTES = frozenset(("/", "/score", "/swagger.json", "/health/ready", "/metrics"))


def _error(message: str, **extra: Any) -> bytes:
    return json.dumps({"message": message, **extra}).encode()


class ScoringApp:
    """``pool`` is swapped on rollouts (``update``): requests in flight finish on the old one."""

    def __init__(self, pool: Pool, *, name: str, keys: list[str] | None, max_payload: int, debug: bool) -> None:
        self.pool = pool
        self.name = name
        self.keys = [k.encode() for k in keys or []]
        self.max_payload = max_payload
        self.debug = debug
        self.metrics = Metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        method = scope["method"]
        status = await self._route(scope, receive, send, path, method)
        self.metrics.observe(path if path in _ROUTES else "other", status, time.perf_counter() - started)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str, method: str) -> int:
        if path == "/score":
            ids = _request_ids(scope)
            if isinstance(ids, str):
                return await _reply(send, 431, _error(ids), _ERR)
            if (method != "OPTIONS" or self.pool.rawhttp) and (refused := self._unauthorized(scope)) is not None:
                return await _reply(send, 401, _error(refused), [*_ERR, (b"www-authenticate", b"Bearer"), *ids])
            if method == "POST" or (method == "OPTIONS" and self.pool.rawhttp):
                return await self._score(scope, receive, send, await _body(receive, self.max_payload), ids=ids)
            if method == "GET":  # as Azure ML's server: run() gets the query parameters as a JSON object
                return await self._score(scope, receive, send, json.dumps(_query(scope)).encode(), get=True, ids=ids)
            if method == "OPTIONS":
                return await _reply(send, 200, b"", [*_HTML, _NOT_FAILED, *ids])
            message = texts.HEAD_NOT_ALLOWED if method == "HEAD" else texts.NOT_ALLOWED
            return await _reply(send, 405, _error(message), _ERR)
        if path == "/":
            if method in ("GET", "HEAD"):
                ids = _request_ids(scope)
                return await _reply(send, 200, texts.HEALTHY, [*_HTML, *([] if isinstance(ids, str) else ids)])
            if method == "OPTIONS":
                return await _reply(send, 200, b"", _HTML)
            return await _reply(send, 405, _error(texts.NOT_ALLOWED), _ERR)
        if path in ("/swagger.json", "/health/ready", "/metrics") and method != "GET":
            return await _reply(send, 405, _error(texts.NOT_ALLOWED), _ERR)
        if path in ("/swagger.json", "/metrics") and (refused := self._unauthorized(scope)) is not None:
            return await _reply(send, 401, _error(refused), [*_ERR, (b"www-authenticate", b"Bearer")])
        if path == "/swagger.json":
            version = _query_strings(scope).get("version", "2")
            if version not in texts.SWAGGER_VERSIONS:
                return await _reply(send, 404, _error(texts.SWAGGER_VERSION.format(version=version)), _ERR)
            return await _reply(send, 200, json.dumps(self._swagger()).encode(), _JSON)
        if path == "/health/ready":
            ready = self.pool.ready
            return await _reply(send, 200 if ready else 503, b"Ready" if ready else b"Not ready", _TEXT)
        if path == "/metrics":
            return await _reply(send, 200, self.metrics.render(self.pool).encode(),
                                [(b"content-type", b"text/plain; version=0.0.4")])
        return await _reply(send, 404, _error(texts.NOT_FOUND), _ERR)

    def _unauthorized(self, scope: Scope) -> str | None:
        """Why the request's key is refused (never echoing what was sent), or None when auth is off or it fits."""
        if not self.keys:
            return None
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        if not values:
            return "missing key: send the header Authorization: Bearer <key>"
        if len(values) > 1:
            return "more than one Authorization header: send one, Authorization: Bearer <key>"
        scheme, _, token = values[0].strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return "the Authorization header is not of the form 'Bearer <key>': send Authorization: Bearer <key>"
        token = token.strip()
        # every key compared (no early exit): the time taken says nothing about which key was close
        if not [key for key in self.keys if hmac.compare_digest(token, key)]:
            return "wrong key: send Authorization: Bearer <key> with the service's primary or secondary key"
        return None

    async def _score(self, scope: Scope, receive: Receive, send: Send, body: bytes | None, get: bool = False,
                     ids: list[tuple[bytes, bytes]] | str | None = None) -> int:
        ids = ids if isinstance(ids, list) else []
        if body is None:
            return await _reply(send, 413, _error(f"the body is larger than {self.max_payload} bytes"), [*_ERR, *ids])
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
        is_json = content_type == b"application/json" or (content_type.startswith(b"application/")
                                                           and content_type.endswith(b"+json"))
        pool = self.pool
        if pool.rawhttp:
            body = json.dumps({"method": scope["method"], "path": scope["path"], "args": _query_strings(scope),
                               "headers": _headers(scope), "body": body.decode("latin-1")}).encode()
        elif pool.params is not None and not get:  # inference-schema: a JSON object, one key per parameter
            if not is_json:
                return await _reply(send, 415, _error(texts.NEEDS_JSON), [*_ERR, *ids])
            if not body:
                return await _reply(send, 400, _error(texts.BODY_EMPTY), [*_ERR, *ids])
            try:
                parsed = json.loads(body)
            except ValueError as e:
                return await _reply(send, 400, _error(texts.BODY_NOT_JSON.format(error=e)), [*_ERR, *ids])
            if not isinstance(parsed, dict):
                return await _reply(send, 400, _error(texts.BODY_NOT_DICT), [*_ERR, *ids])
        else:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as e:
                return await _reply(send, 400, _error(texts.BODY_NOT_UTF8.format(error=e)), [*_ERR, *ids])
            if is_json or not content_type:
                # Kiln's own check (Azure ML's server hands malformed JSON to run(), which then fails with 500)
                try:
                    json.loads(text)
                except ValueError as e:
                    return await _reply(send, 400, _error(f"the body is not valid JSON: {e}"), [*_ERR, *ids])
            if pool.headers:  # run(raw_data, request_headers)
                body = json.dumps({"body": text, "headers": _headers(scope)}).encode()
        started = time.perf_counter()
        result = await pool.submit(body)
        exec_ms = f"{(time.perf_counter() - started) * 1000:.3f}".encode()
        return await self._result(send, result, exec_ms, ids)

    async def _result(self, send: Send, result: Result, exec_ms: bytes, ids: list[tuple[bytes, bytes]]) -> int:
        if result.kind == OK:
            return await _reply(send, 200, result.data, [*_JSON, _NOT_FAILED, (b"x-ms-run-fn-exec-ms", exec_ms), *ids])
        if result.kind == RAW_HTTP:
            raw = json.loads(result.data)
            status = int(raw.get("status", 200))
            headers = [(k.lower().encode(), str(v).encode()) for k, v in raw.get("headers", {}).items()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            if not any(k == b"content-type" for k, _ in headers):
                headers.append((b"content-type", b"text/html; charset=utf-8"))
            headers.append((texts.RUN_FAILED_HEADER, b"True" if status >= 500 else b"False"))
            headers.append((b"x-ms-run-fn-exec-ms", exec_ms))
            return await _reply(send, status, str(raw.get("body", "")).encode(), [*headers, *ids])
        if result.kind in (ERROR, UNENCODABLE):  # run() raised; or its answer isn't JSON (Azure ML's texts for each)
            info = json.loads(result.data)
            extra = {"traceback": info.get("traceback", "")} if self.debug else {}
            message, failed = (texts.RUN_FAILED, b"True") if result.kind == ERROR else (texts.INTERNAL_ERROR, b"False")
            return await _reply(send, 500, _error(message, error=info.get("error", "run() failed"), **extra),
                                [*_JSON, (texts.RUN_FAILED_HEADER, failed), *ids])
        return await _reply(send, result.status, _error(result.data.decode("utf-8", "replace")),
                            [*_JSON, (texts.RUN_FAILED_HEADER, b"True"), *ids])

    def _swagger(self) -> dict[str, Any]:
        schema = self.pool.swagger or {}
        request = schema.get("input") or {"type": "string", "description": "the body, passed as text to run()"}
        response = schema.get("output") or {"description": "run()'s return value, as JSON"}
        return {
            "swagger": "2.0",
            "info": {"title": self.name, "description": f"API of the Kiln service {self.name}", "version": "1.0"},
            "schemes": ["http"], "consumes": ["application/json"], "produces": ["application/json"],
            "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"}}
            if self.keys else {},
            "paths": {
                "/": {"get": {"operationId": "ServiceHealthCheck", "description": "liveness",
                              "responses": {"200": {"description": "Healthy"}}}},
                "/score": {"post": {"operationId": "RunMLService", "description": "run the model on the input",
                                    "parameters": [{"name": "serviceInputPayload", "in": "body", "required": True,
                                                    "schema": request}],
                                    "responses": {"200": {"description": "Success", "schema": response},
                                                  "default": {"description": "Failure"}}}},
            },
        }


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()),
                            (b"x-ms-server-version", SERVER_VERSION)]})
    await send({"type": "http.response.body", "body": body})
    return status


async def _body(receive: Receive, limit: int) -> bytes | None:
    """The request body; None when it is larger than ``limit`` (read no further)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _query(scope: Scope) -> dict[str, Any]:
    """Query parameters as Azure ML's server gives them to run(): JSON values where they parse, lists when
    a key repeats."""
    from urllib.parse import parse_qsl

    out: dict[str, Any] = {}
    for key, raw in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if key in out:
            out[key] = out[key] + [value] if isinstance(out[key], list) else [out[key], value]
        else:
            out[key] = value
    return out


def _query_strings(scope: Scope) -> dict[str, str]:
    """Query parameters as Flask's ``request.args`` gives them to a ``@rawhttp`` run(): strings, first value."""
    from urllib.parse import parse_qsl

    out: dict[str, str] = {}
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        out.setdefault(key, value)
    return out


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers with their usual spelling (``Content-Type``), as Flask gives them."""
    return {"-".join(p.capitalize() for p in k.decode("latin-1").split("-")): v.decode("latin-1")
            for k, v in scope["headers"]}


#: a version-4 UUID's fixed bits: the version (4) and the variant (RFC 4122)
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def _new_id() -> bytes:
    """A version-4 UUID from the process's seeded generator (``uuid4()`` asks the kernel, a system call per
    request), formatted without building a ``UUID`` object."""
    h = b"%032x" % (_random_bits(128) & _UUID_CLEAR | _UUID_SET)
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


def _request_ids(scope: Scope) -> list[tuple[bytes, bytes]] | str:
    """Azure ML's request ids: ``x-request-id`` echoed (or made), ``x-ms-request-id`` from the client's
    ``x-ms-request-id``, ``x-ms-client-request-id`` or ``x-request-id``; the error text (431) when one is over
    100 characters."""
    given = {k: v for k, v in scope["headers"] if k in (b"x-request-id", b"x-ms-request-id",
                                                           b"x-ms-client-request-id", b"traceid")}
    if len(given.get(b"x-request-id", b"")) > 100:
        return texts.REQUEST_ID_TOO_LONG
    if any(len(given.get(k, b"")) > 100 for k in (b"x-ms-request-id", b"x-ms-client-request-id")):
        return texts.CLIENT_REQUEST_ID_TOO_LONG
    request_id = given.get(b"x-request-id") or _new_id()
    ms_id = given.get(b"x-ms-request-id") or given.get(b"x-ms-client-request-id") or request_id
    out = [(b"x-request-id", request_id), (b"x-ms-request-id", ms_id)]
    client = given.get(b"x-ms-client-request-id") or given.get(b"x-ms-request-id")
    if client is not None:
        out.append((b"x-ms-client-request-id", client))
    if b"traceid" in given:
        out.append((b"traceid", given[b"traceid"]))
    return out
