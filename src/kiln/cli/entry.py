"""The ``kiln`` console script (and ``python -m kiln``/``python -m kiln.cli``): ``kiln.cli.main`` and exit."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    from kiln.cli.main import main as run

    sys.exit(run())
