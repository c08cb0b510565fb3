"""``kiln.serving.app.ScoringApp``: routes and answers, driven as uvicorn drives it (ASGI messages), with a
fake pool in place of the workers (the pool has its own tests; the real thing is in tests/integration)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from kiln.serving import azure_texts as texts
from kiln.serving.app import SERVER_VERSION, ScoringApp
from kiln.serving.pool import FAILED, Result
from kiln.serving.protocol import ERROR, OK, RAW_HTTP, UNENCODABLE


@dataclass
class FakePool:
    """What the app reads of a pool; ``submit`` answers ``result`` and keeps the bodies it was given."""

    result: Result = field(default_factory=lambda: Result(200, OK, b'{"ok": true}'))
    rawhttp: bool = False
    headers: bool = False
    params: list[str] | None = None
    swagger: dict[str, Any] | None = None
    ready: bool = True
    restarts: int = 0
    pids: list[int] = field(default_factory=lambda: [101])
    inflight: int = 0
    bodies: list[bytes] = field(default_factory=list)

    async def submit(self, body: bytes) -> Result:
        self.bodies.append(body)
        return self.result


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: ScoringApp, method: str, path: str, body: bytes | list[bytes] = b"", *, query: bytes = b"",
         headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    chunks = body if isinstance(body, list) else [body]
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": chunks[received - 1], "more_body": received < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": headers if headers is not None else [(b"content-type", b"application/json")]}
    asyncio.run(app(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    answer = Answer(sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"])
    assert answer.headers[b"content-length"] == str(len(answer.body)).encode()
    assert answer.headers[b"x-ms-server-version"] == SERVER_VERSION
    return answer


def make(pool: FakePool | None = None, *, keys: list[str] | None = None, max_payload: int = 1000,
         debug: bool = False) -> tuple[ScoringApp, FakePool]:
    pool = pool or FakePool()
    return ScoringApp(pool, name="svc", keys=keys, max_payload=max_payload, debug=debug), pool  # type: ignore[arg-type]


# ---- liveness, health, the documents ----------------------------------------------------------------------


def test_liveness_is_healthy_with_request_ids() -> None:
    app, _ = make()
    answer = call(app, "GET", "/", headers=[(b"x-request-id", b"abc")])
    assert (answer.status, answer.body) == (200, texts.HEALTHY)
    assert answer.headers[b"x-request-id"] == b"abc" and answer.headers[b"x-ms-request-id"] == b"abc"


def test_readiness_follows_the_pool() -> None:
    app, pool = make()
    assert (call(app, "GET", "/health/ready").status, call(app, "GET", "/health/ready").body) == (200, b"Ready")
    pool.ready = False
    assert call(app, "GET", "/health/ready").status == 503


@pytest.mark.parametrize(("method", "path", "status", "message"), [
    ("GET", "/nowhere", 404, texts.NOT_FOUND),
    ("PUT", "/", 405, texts.NOT_ALLOWED),
    ("POST", "/metrics", 405, texts.NOT_ALLOWED),
    ("DELETE", "/score", 405, texts.NOT_ALLOWED),
    ("HEAD", "/score", 405, texts.HEAD_NOT_ALLOWED),
])
def test_azure_ml_texts_for_wrong_routes_and_methods(method: str, path: str, status: int, message: str) -> None:
    app, pool = make()
    answer = call(app, method, path)
    assert (answer.status, answer.json()) == (status, {"message": message})
    assert answer.headers[texts.RUN_FAILED_HEADER] == b"False"
    assert pool.bodies == []


def test_swagger_names_the_service_and_rejects_unknown_versions() -> None:
    app, _ = make()
    document = call(app, "GET", "/swagger.json").json()
    assert document["info"]["title"] == "svc" and set(document["paths"]) == {"/", "/score"}
    bad = call(app, "GET", "/swagger.json", query=b"version=9")
    assert (bad.status, bad.json()) == (404, {"message": texts.SWAGGER_VERSION.format(version="9")})


def test_metrics_count_the_requests_answered() -> None:
    app, _ = make()
    call(app, "POST", "/score", b"{}")
    call(app, "GET", "/nowhere")
    text = call(app, "GET", "/metrics").body.decode()
    assert 'kiln_requests_total{route="/score",status="200"} 1' in text
    assert 'kiln_requests_total{route="other",status="404"} 1' in text
    assert "kiln_workers 1" in text


# ---- scoring ------------------------------------------------------------------------------------------------


def test_a_body_goes_to_the_pool_and_its_answer_comes_back() -> None:
    app, pool = make()
    answer = call(app, "POST", "/score", [b'{"a":', b" 1}"])  # in two chunks, as a client may send it
    assert (answer.status, answer.json()) == (200, {"ok": True})
    assert pool.bodies == [b'{"a": 1}']
    assert answer.headers[texts.RUN_FAILED_HEADER] == b"False"
    assert float(answer.headers[b"x-ms-run-fn-exec-ms"]) >= 0


def test_get_score_passes_the_query_as_json() -> None:
    app, pool = make()
    assert call(app, "GET", "/score", query=b"a=1&b=x&a=2").status == 200
    assert json.loads(pool.bodies[0]) == {"a": [1, 2], "b": "x"}


def test_a_body_over_the_limit_is_a_413_and_not_read_further() -> None:
    app, pool = make(max_payload=10)
    answer = call(app, "POST", "/score", [b"[1, 2, 3,", b" 4, 5, 6]", b"never read"])
    assert (answer.status, answer.json()) == (413, {"message": "the body is larger than 10 bytes"})
    assert pool.bodies == []
    assert call(app, "POST", "/score", b"[1,2,3,4]").status == 200  # exactly at the limit: scored


def test_malformed_json_is_kilns_own_400() -> None:
    app, pool = make()
    answer = call(app, "POST", "/score", b"{nope")
    assert answer.status == 400 and answer.json()["message"].startswith("the body is not valid JSON")
    assert pool.bodies == []


def test_keys_are_checked_when_set() -> None:
    app, pool = make(keys=["k1", "k2"])
    assert call(app, "POST", "/score", b"{}").status == 401
    assert call(app, "POST", "/score", b"{}", headers=[(b"authorization", b"Bearer wrong")]).status == 401
    assert call(app, "POST", "/score", b"{}", headers=[(b"authorization", b"Bearer k2")]).status == 200
    assert pool.bodies == [b"{}"]


def test_a_request_id_over_100_characters_is_a_431() -> None:
    app, _ = make()
    answer = call(app, "POST", "/score", b"{}", headers=[(b"x-request-id", b"x" * 101)])
    assert (answer.status, answer.json()) == (431, {"message": texts.REQUEST_ID_TOO_LONG})


@pytest.mark.parametrize(("kind", "message", "failed"), [(ERROR, texts.RUN_FAILED, b"True"),
                                                         (UNENCODABLE, texts.INTERNAL_ERROR, b"False")])
@pytest.mark.parametrize("debug", [False, True])
def test_failures_of_run_are_azure_mls_500s(kind: bytes, message: str, failed: bytes, debug: bool) -> None:
    error = json.dumps({"error": "ValueError: bad", "traceback": "Traceback ..."}).encode()
    app, _ = make(FakePool(result=Result(500, kind, error)), debug=debug)
    answer = call(app, "POST", "/score", b"{}")
    assert answer.status == 500
    assert answer.json() == {"message": message, "error": "ValueError: bad",
                             **({"traceback": "Traceback ..."} if debug else {})}
    assert answer.headers[texts.RUN_FAILED_HEADER] == failed


def test_a_raw_http_answer_keeps_its_status_and_headers() -> None:
    raw = {"status": 418, "headers": {"X-Tea": "yes", "Content-Length": "999"}, "body": "teapot"}
    app, _ = make(FakePool(result=Result(200, RAW_HTTP, json.dumps(raw).encode())))
    answer = call(app, "POST", "/score", b"{}")
    assert (answer.status, answer.body) == (418, b"teapot")
    assert answer.headers[b"x-tea"] == b"yes" and answer.headers[b"content-length"] == b"6"
    assert answer.headers[b"content-type"] == b"text/html; charset=utf-8"


def test_a_failure_of_kilns_own_keeps_its_status() -> None:
    app, _ = make(FakePool(result=Result(503, FAILED, b"the worker died")))
    answer = call(app, "POST", "/score", b"{}")
    assert (answer.status, answer.json()) == (503, {"message": "the worker died"})
    assert answer.headers[texts.RUN_FAILED_HEADER] == b"True"


@pytest.mark.parametrize(("content_type", "body", "status", "message"), [
    (b"text/plain", b'{"x": 1}', 415, texts.NEEDS_JSON),
    (b"application/json", b"", 400, texts.BODY_EMPTY),
    (b"application/json", b"[1]", 400, texts.BODY_NOT_DICT),
])
def test_inference_schema_scripts_take_a_json_object(content_type: bytes, body: bytes, status: int,
                                                     message: str) -> None:
    app, pool = make(FakePool(params=["x"]))
    answer = call(app, "POST", "/score", body, headers=[(b"content-type", content_type)])
    assert (answer.status, answer.json()) == (status, {"message": message})
    assert pool.bodies == []
    assert call(app, "POST", "/score", b'{"x": 1}').status == 200


def test_run_with_request_headers_gets_both() -> None:
    app, pool = make(FakePool(headers=True))
    call(app, "POST", "/score", b'"hi"', headers=[(b"content-type", b"application/json"), (b"x-custom", b"1")])
    assert json.loads(pool.bodies[0]) == {"body": '"hi"',
                                          "headers": {"Content-Type": "application/json", "X-Custom": "1"}}
