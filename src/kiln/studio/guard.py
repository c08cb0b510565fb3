"""The studio's door: the access token, the Host check, read-only mode and cross-site request refusal.

An ASGI middleware in front of the pages. In order:
- **Host**: only the names the studio was started for (DNS rebinding: a page on another site must not
  reach 127.0.0.1 under its own name); any name when it listens on every interface (the token guards it).
- **Token** (when the studio listens beyond loopback): ``Authorization: Bearer T``, the ``kiln_studio``
  cookie, or ``?token=T`` once (answered by a redirect that sets the cookie and drops it from the address).
- **POST only changes things**: refused in read-only mode; refused when ``Origin`` (or ``Sec-Fetch-Site``)
  says another site sent it. The per-session CSRF token (cookie ``kiln_csrf`` = form field ``csrf``) is
  checked by the action handlers, which read the form (``check_csrf``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["CSRF_COOKIE", "TOKEN_COOKIE", "Guard", "check_csrf", "new_token"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "kiln_studio"
#: scripts only from the studio itself (a value that slipped through escaping still could not run), no framing
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                 b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    # "same-origin", not "no-referrer": with no-referrer a browser sends "Origin: null" on the studio's own forms
    (b"referrer-policy", b"same-origin"),
]
CSRF_COOKIE = "kiln_csrf"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def check_csrf(cookie: str | None, field: object) -> bool:
    """The form's ``csrf`` field is this session's cookie: a page of another site can't read the cookie."""
    return isinstance(field, str) and _same(cookie, field)


class Guard:
    def __init__(self, app: App, *, hosts: frozenset[str] | None, token: str | None, read_only: bool) -> None:
        self.app, self.hosts, self.token, self.read_only = app, hosts, token, read_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and _hostname(host) not in self.hosts:
            await _plain(send, 421, f"unknown host {host[:100]!r}: open the address the studio printed")
            return
        cookies = _cookies(headers.get("cookie", ""))
        if self.token is not None and not self._authorized(headers, cookies):
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if _same(query.get("token"), self.token):
                rest = urlencode({k: v for k, v in query.items() if k != "token"})
                await _redirect(send, scope["path"] + (f"?{rest}" if rest else ""),
                                f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
                return
            await _plain(send, 401, "this studio needs its token: open the address it printed (with ?token=...)")
            return
        if scope["method"] not in ("GET", "HEAD"):
            if self.read_only:
                await _plain(send, 403, "the studio is read-only (started with --read-only)")
                return
            if not self._same_origin(headers, host):
                await _plain(send, 403, "refused: a cross-site request")
                return
        csrf = cookies.get(CSRF_COOKIE)
        fresh = csrf is None or len(csrf) < 16
        if fresh:
            csrf = new_token()
        scope.setdefault("state", {})["csrf"] = csrf
        scope["state"]["read_only"] = self.read_only

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = message.setdefault("headers", [])
                extra += SECURITY_HEADERS
                if fresh:
                    extra.append((b"set-cookie", f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict".encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _authorized(self, headers: dict[str, str], cookies: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        return _same(bearer, self.token) or _same(cookies.get(TOKEN_COOKIE), self.token)

    @staticmethod
    def _same_origin(headers: dict[str, str], host: str) -> bool:
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        if origin is None or origin == "null":
            return origin is None  # a form posted from a sandboxed or file: page says "null"
        return urlsplit(origin).netloc == host


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header: as if none
        return {}
    return {k: m.value for k, m in jar.items()}


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, cookie: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1", "replace")), (b"set-cookie", cookie.encode()),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
