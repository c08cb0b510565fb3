"""The cache-hit path of ``kiln env build NAME`` and ``kiln env python NAME``, without the CLI framework.

Importing typer (which imports pydantic) costs ~80 ms, more than everything else a cache hit does.
So ``main`` first tries this: it understands only those two commands with plain arguments, answers
only when the build is already in the cache, and prints exactly what the full command prints.
Anything else — another command, an option, a miss, an error — returns None and the full CLI runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["try_fast"]

_GLOBAL = {"-w": "workspace", "--workspace": "workspace", "-o": "output", "--output": "output"}


def _parse(argv: Sequence[str]) -> tuple[dict[str, str], str, str] | None:
    opts: dict[str, str] = {}
    args = list(argv)
    while args and args[0] in _GLOBAL:
        if len(args) < 2:
            return None
        opts[_GLOBAL[args[0]]] = args[1]
        args = args[2:]
    if len(args) != 3 or args[0] != "env" or args[1] not in ("build", "python") or args[2].startswith("-"):
        return None
    if opts.get("output", "text") not in ("text", "json"):
        return None
    return opts, args[1], args[2]


def try_fast(argv: Sequence[str]) -> int | None:
    parsed = _parse(argv)
    if parsed is None:
        return None
    opts, command, ref = parsed
    try:
        from kiln.build.builder import cached_build
        from kiln.cli.output import Out
        from kiln.cli.render import build_text, parse_ref, python_output
        from kiln.settings import Settings
        from kiln.workspace.workspace import Workspace

        settings = Settings.from_env(workspace=opts.get("workspace"))
        out = Out(json_mode=opts.get("output") == "json")
        with Workspace.from_config(settings=settings) as ws:
            name, version = parse_ref(ref)
            env = ws.get_environment(name, version)
            lines: list[str] = []
            label = f"{env.name}:{env.version}"
            result = cached_build(env, ws, settings=settings,
                                  progress=lambda phase, message: lines.append(f"{label}: {message}"))
            if result is None:
                return None
    except Exception:
        return None
    if command == "build" and not out.json_mode and not sys.stderr.isatty():
        sys.stderr.write("".join(line + "\n" for line in lines))
    if command == "build":
        out.emit("env.build", result.to_dict(), build_text(result))
    else:
        out.emit("env.python", *python_output(result))
    return 0
