"""The hot commands without the CLI framework: ``kiln env build|python NAME`` on a cache hit, and
``kiln run submit``.

Importing typer (which imports pydantic) costs ~80 ms, more than everything else a cache hit does
and a third of a run's whole overhead. So ``main`` first tries this: it understands only those
commands with their plain options and prints exactly what the full command prints (through the
same code). Anything else — another command, ``--help``, a bad option, a cache miss, an error —
returns None and the full CLI runs (and reports errors its own way).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["try_fast"]

_GLOBAL = {"-w": "workspace", "--workspace": "workspace", "-o": "output", "--output": "output"}


def _parse(argv: Sequence[str]) -> tuple[dict[str, str], str, str] | None:
    split = _globals(argv)
    if split is None:
        return None
    opts, args = split
    if len(args) != 3 or args[0] != "env" or args[1] not in ("build", "python") or args[2].startswith("-"):
        return None
    return opts, args[1], args[2]


class _NotMine(Exception):
    pass


def _globals(argv: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    opts: dict[str, str] = {}
    args = list(argv)
    while args and args[0] in _GLOBAL:
        if len(args) < 2:
            return None
        opts[_GLOBAL[args[0]]] = args[1]
        args = args[2:]
    if opts.get("output", "text") not in ("text", "json"):
        return None
    return opts, args


# kiln run submit's options, as kiln.cli.run.submit declares them (a test compares the two)
_VALUE_OPTIONS = {"--env": "env", "-e": "env", "--source-dir": "source_dir", "-s": "source_dir",
                  "--experiment": "experiment", "-x": "experiment", "--timeout": "timeout"}
_FLAG_OPTIONS = {"--detach": "detach", "-d": "detach", "--no-snapshot": "no_snapshot"}


def _parse_submit(args: list[str]) -> dict[str, Any]:
    """Parse like click does for this command: options anywhere before ``--``, exact names only,
    positionals are SCRIPT then ARGS, everything after the first ``--`` is ARGS as it is."""
    values: dict[str, Any] = {"env": None, "source_dir": ".", "experiment": "default", "timeout": None,
                              "detach": False, "no_snapshot": False}
    positionals: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            positionals += args[i + 1:]
            break
        name, eq, inline = token.partition("=")
        if name in _VALUE_OPTIONS:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise _NotMine(f"{name} needs a value")
            values[_VALUE_OPTIONS[name]] = value
        elif token in _FLAG_OPTIONS:
            values[_FLAG_OPTIONS[token]] = True
        elif token.startswith("-") and token != "-":
            raise _NotMine(f"unknown option {token}")
        else:
            positionals.append(token)
        i += 1
    if not positionals:
        raise _NotMine("missing SCRIPT")
    if values["timeout"] is not None:
        try:
            values["timeout"] = float(values["timeout"])
        except ValueError:
            raise _NotMine("bad --timeout") from None
    values["script"], values["args"] = positionals[0], positionals[1:]
    return values


def _try_submit(opts: dict[str, str], args: list[str]) -> int | None:
    import os

    if any(a in ("-h", "--help") for a in args[: args.index("--") if "--" in args else len(args)]):
        return None
    try:
        ns = _parse_submit(args)
    except _NotMine:
        return None
    from pathlib import Path

    from kiln.cli.submit_flow import run_submit
    from kiln.errors import KilnError
    from kiln.settings import Settings

    try:
        return run_submit(Settings.from_env(workspace=opts.get("workspace")), json_mode=opts.get("output") == "json",
                          script=ns["script"], args=ns["args"], env=ns["env"], source_dir=Path(ns["source_dir"]),
                          experiment=ns["experiment"], detach=ns["detach"], no_snapshot=ns["no_snapshot"],
                          timeout=ns["timeout"])
    except KilnError as e:
        if os.environ.get("KILN_DEBUG", "") not in ("", "0"):
            raise
        from kiln.cli.render import error_text

        sys.stderr.write(error_text(e))
        return 1


def try_fast(argv: Sequence[str]) -> int | None:
    split = _globals(argv)
    if split is not None and split[1][:2] == ["run", "submit"]:
        return _try_submit(split[0], split[1][2:])
    parsed = _parse(argv)
    if parsed is None:
        return None
    opts, command, ref = parsed
    try:
        from kiln.builds.builder import cached_build
        from kiln.cli.output import Out
        from kiln.cli.render import build_text, parse_ref, python_output
        from kiln.sdk.workspace import Workspace
        from kiln.settings import Settings

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
                if command != "build":
                    return None
                return _build_here(env, ws, settings, out, label)
    except Exception:
        return None
    if command == "build" and not out.json_mode and not sys.stderr.isatty():
        sys.stderr.write("".join(line + "\n" for line in lines))
    if command == "build":
        out.emit("env.build", result.to_dict(), build_text(result))
    else:
        out.emit("env.python", *python_output(result))
    return 0


def _build_here(env: Any, ws: Any, settings: Any, out: Any, label: str) -> int:
    """A cache miss of ``kiln env build NAME``: the build itself, reported as the full command does."""
    import os

    from kiln.builds import build
    from kiln.cli.progress import build_progress
    from kiln.cli.render import build_text, error_text
    from kiln.errors import KilnError

    try:
        with build_progress(label, quiet=out.json_mode) as progress:
            result = build(env, ws, settings=settings, progress=progress)
    except KilnError as e:
        if os.environ.get("KILN_DEBUG", "") not in ("", "0"):
            raise
        sys.stderr.write(error_text(e))
        return 1
    out.emit("env.build", result.to_dict(), build_text(result))
    return 0
