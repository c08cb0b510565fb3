"""The ``kiln`` console script: the fast cache-hit path first, then the full CLI."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> Any:
    from kiln.cli.fast import try_fast

    args = sys.argv[1:] if argv is None else argv
    code = try_fast(args)
    if code is not None:
        sys.exit(code)
    from kiln.cli.main import main as full

    return full(args)
