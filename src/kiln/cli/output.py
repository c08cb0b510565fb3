"""Rendering for the CLI: human text (rich tables when on a terminal, plain otherwise) or a
versioned JSON envelope (``--output json``)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from kiln.environment.secrets import mask

__all__ = ["JSON_ENVELOPE_VERSION", "Out"]

JSON_ENVELOPE_VERSION = 1


@dataclass
class Out:
    """Where a command writes its result. Exactly one of ``json`` or text is produced."""

    json_mode: bool = False

    def emit(self, kind: str, data: Any, text: str | None = None) -> None:
        """Write a result: the JSON envelope ``{"kiln": 1, "kind": ..., "data": ...}`` or ``text``."""
        if self.json_mode:
            _write(json.dumps({"kiln": JSON_ENVELOPE_VERSION, "kind": kind, "data": data}, indent=2,
                              ensure_ascii=False) + "\n")
        elif text is not None:
            _write(text if text.endswith("\n") else text + "\n")

    def table(self, kind: str, data: Any, columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
        if self.json_mode:
            self.emit(kind, data)
            return
        if not sys.stdout.isatty():
            # plain, aligned columns: stable for scripts and tests
            widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
            lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
            lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
            _write("\n".join(lines) + "\n")
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_edge=False, header_style="bold")
        for c in columns:
            table.add_column(c)
        for r in rows:
            table.add_row(*(mask(v) for v in r))
        Console().print(table)

    def info(self, message: str) -> None:
        """Progress for humans: on stderr, so stdout stays the result."""
        if not self.json_mode:
            sys.stderr.write(mask(message) + "\n")


def _write(text: str) -> None:
    # every result is masked on its way out: a credential that reached a stored value or a message is not shown
    sys.stdout.write(mask(text))
