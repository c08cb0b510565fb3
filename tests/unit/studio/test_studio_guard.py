"""The studio's guard alone, on a tiny ASGI app: Host check, token, read-only, cross-site POSTs, the CSRF
cookie and the security headers."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from kiln.studio.guard import Guard, check_csrf


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.scope["state"]["csrf"])


def client(**kw: object) -> TestClient:
    app = Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])
    options = {"hosts": frozenset({"127.0.0.1"}), "token": None, "read_only": False, **kw}
    return TestClient(Guard(app, **options), base_url="http://127.0.0.1:8790")  # type: ignore[arg-type]


def test_hosts_and_headers() -> None:
    c = client()
    r = c.get("/")
    assert r.status_code == 200 and r.cookies.get("kiln_csrf") == r.text and len(r.text) >= 16
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert c.get("/").text == r.text  # the same session keeps its token
    assert c.get("/", headers={"host": "attacker.example:8790"}).status_code == 421
    assert client(hosts=None).get("/", headers={"host": "box.lan:8790"}).status_code == 200


def test_posts() -> None:
    c = client()
    assert c.post("/").status_code == 200  # same origin (no Origin header: not a browser's cross-site form)
    assert c.post("/", headers={"origin": "http://127.0.0.1:8790"}).status_code == 200
    assert c.post("/", headers={"origin": "http://127.0.0.1:9999"}).status_code == 403
    assert c.post("/", headers={"origin": "null"}).status_code == 403
    assert c.post("/", headers={"sec-fetch-site": "same-site"}).status_code == 403
    ro = client(read_only=True)
    assert ro.get("/").status_code == 200 and ro.post("/").status_code == 403


def test_token() -> None:
    c = client(token="k" * 20)
    assert c.get("/").status_code == 401
    assert c.get("/", headers={"authorization": "Bearer " + "k" * 19}).status_code == 401
    assert c.get("/", headers={"authorization": "Bearer " + "k" * 20}).status_code == 200
    assert c.get("/?token=" + "k" * 20, follow_redirects=False).headers["location"] == "/"


def test_check_csrf() -> None:
    assert check_csrf("a" * 20, "a" * 20)
    assert not check_csrf("a" * 20, "b" * 20)
    assert not check_csrf(None, "a")
    assert not check_csrf("a" * 20, None)
