"""Build progress for the CLI: a rich progress bar on a terminal, plain lines otherwise (on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["build_progress"]

_STEPS = {"interpreter": 1, "lock": 2, "resolve": 2, "wait": 3, "build": 3, "done": 4, "image": 4}


@contextmanager
def build_progress(label: str, *, quiet: bool = False) -> Iterator[Any]:
    """Yields a ``progress(phase, message)`` callback."""
    if quiet:
        yield lambda phase, message: None
        return
    if not sys.stderr.isatty():
        def plain(phase: str, message: str) -> None:
            sys.stderr.write(f"{label}: {message}\n")
            sys.stderr.flush()

        yield plain
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[label]}"), BarColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task("starting", total=4, label=label)

        def rich_progress(phase: str, message: str) -> None:
            bar.update(task, completed=_STEPS.get(phase, 0), description=message)

        yield rich_progress
