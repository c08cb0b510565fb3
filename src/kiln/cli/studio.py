"""``kiln studio``: serve the studio (``kiln.studio``) over the workspace the CLI finds, on uvicorn.

Loopback by default. On any other address a token is required on every request: generated and printed,
or given as ``--token '${VAR}'`` (a reference, so the secret stays out of the shell history and ``ps``).
"""

from __future__ import annotations

import os
import re
import sys
from argparse import Namespace
from typing import TYPE_CHECKING

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.cli.context import CliState
    from kiln.cli.parser import Handler, KilnParser

__all__ = ["add_options", "resolve_token", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_options(parser: KilnParser) -> Handler:
    from kiln.settings import STUDIO_PORT

    parser.add_argument("--port", metavar="P", type=int, default=STUDIO_PORT,
                        help=f"Port (default: {STUDIO_PORT}, where Run.get_portal_url() points).")
    parser.add_argument("--host", metavar="H", default="127.0.0.1",
                        help="Address to listen on (default: 127.0.0.1). Any other needs a token.")
    parser.add_argument("--token", metavar="TOKEN",
                        help="Access token, as a '${VAR}' reference (default beyond loopback: a new one, printed).")
    parser.add_argument("--read-only", action="store_true", help="Show, never change: every action is refused.")
    return serve


def resolve_token(value: str | None, host: str, environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The token the studio requires: ``None`` on loopback without ``--token``; a new one beyond it."""
    from kiln.studio.guard import new_token

    if value is None:
        return None if host in LOOPBACK else new_token()
    ref = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value)
    if ref is None:
        raise KilnError("--token: give a reference such as '${STUDIO_TOKEN}', not the token itself "
                        "(it would stay in the shell history and in ps)")
    token = environ.get(ref.group(1), "")
    if len(token) < 16:
        raise KilnError(f"--token: ${{{ref.group(1)}}} is {'not set' if not token else 'shorter than 16 characters'}")
    return token


def serve(st: CliState, args: Namespace) -> None:
    import uvicorn

    from kiln.studio.app import create_app

    if not 0 < args.port < 65536:
        raise KilnError(f"--port: {args.port} is not a port number (1-65535)")
    host = args.host
    token = resolve_token(args.token, host, os.environ)
    ws = st.workspace()
    everywhere = host in ("0.0.0.0", "::", "")
    hosts = None if everywhere else tuple({*LOOPBACK[:2], host})
    app = create_app(ws, hosts=hosts, token=token, read_only=args.read_only)
    shown = "127.0.0.1" if everywhere else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token and args.token is None else "")
    st.out.emit("studio", {"url": url.split("?")[0], "workspace": ws.name, "read_only": args.read_only,
                           "token": "given" if args.token else ("generated" if token else None)},
                f"Kiln studio for workspace {ws.name!r} at {url}" + (" (read-only)" if args.read_only else "")
                + "\nPress Ctrl+C to stop.")
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=args.port, log_level="warning", access_log=False)
