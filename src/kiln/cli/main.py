"""The ``kiln`` command: parse, build the settings once, run the command, apply the error policy."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run ``kiln ARGV``; return the exit code (see ``kiln.cli.failures``). Writes only to stdout and stderr."""
    from kiln.cli.failures import UsageError, failure
    from kiln.settings import debug_enabled

    env = os.environ if environ is None else environ
    args = sys.argv[1:] if argv is None else list(argv)
    # until the settings exist (a bad KILN_CONDA_VIA fails to build them), the same rule from the raw input
    traceback = [debug_enabled(env) or "--traceback" in args[: args.index("--") if "--" in args else len(args)]]
    try:
        return _run(args, env, traceback)
    except SystemExit as e:  # --help and --version print, then argparse exits
        return e.code if isinstance(e.code, int) else 0
    except (Exception, KeyboardInterrupt) as e:
        code, text = failure(e, traceback=traceback[0] and not isinstance(e, UsageError))
        sys.stdout.flush()
        sys.stderr.write(text)
        return code


def _run(args: list[str], environ: Mapping[str, str], traceback: list[bool]) -> int:
    from kiln.cli.context import CliState
    from kiln.cli.failures import UsageError
    from kiln.cli.parser import build_parser, noun_of, parse
    from kiln.settings import Settings

    ns = parse(build_parser(noun_of(args)), args)
    if ns.handler is None:  # a noun (or nothing) without a command: its help, as a usage error
        ns.parser.print_help(sys.stdout)
        return 1
    settings = Settings.from_env(environ, workspace=getattr(ns, "workspace", None))
    state = CliState(settings=settings, json_mode=getattr(ns, "output", "text") == "json",
                     traceback=getattr(ns, "traceback", False) or settings.debug, prog=ns.parser.prog)
    traceback[0] = state.traceback
    try:
        code = ns.handler(state, ns)
    except UsageError as e:
        e.prog = e.prog or ns.parser.prog
        raise
    return 0 if code is None else code
