"""Size and shape limits for definitions, and the one way to show a long value in a message.

A definition is a few kilobytes; anything far beyond that is a mistake or an attack, and it must
fail fast, in bounded memory, with one short line. Each limit is far above what a real
environment needs (the largest curated definition is under 10 KB) and far below what hurts:

- a definition file is at most ``MAX_FILE_BYTES`` (read once, then parsed);
- JSON and YAML nest at most ``MAX_DEPTH`` levels (parsers recurse: deeper input would end in a
  ``RecursionError``); YAML aliases may not expand a document beyond ``MAX_NODES`` nodes;
- a string field is at most ``MAX_FIELD`` characters, a text field (a Dockerfile) ``MAX_TEXT``;
  a list or mapping holds at most ``MAX_ITEMS`` entries.

Messages never hold more than ``SHOWN`` characters of a value (``cut``), and a value over its
limit is described by its length only: its text is never echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kiln.errors import FormatError

__all__ = ["MAX_DEPTH", "MAX_FIELD", "MAX_FILE_BYTES", "MAX_ITEMS", "MAX_NODES", "MAX_TEXT", "SHOWN",
           "check_depth", "check_shape", "cut", "shown"]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000
MAX_FIELD = 8192  # a requirement line with a long URL is the longest word a definition needs
MAX_TEXT = 256 * 1024
MAX_ITEMS = 10_000
SHOWN = 200

#: fields whose value is a text, not a word (the key at the end of a dotted path)
TEXT_FIELDS = frozenset({"baseDockerfile", "description"})
# a JSON string (unrolled: a run of plain characters is one step, not one saved state per character, which
# took ~100 bytes of memory per character of a long value), or a bracket
_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def cut(text: str, limit: int = SHOWN) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shown(value: Any, limit: int = SHOWN) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (the repr of bounded data: linear)."""
    if isinstance(value, str) and len(value) > limit:
        # no need to repr megabytes to show a few hundred characters
        return f"{value[:limit]!r}... ({len(value)} characters)"
    return cut(repr(value), limit)


def check_depth(text: str, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON text nested deeper than ``limit``, before a recursive parser sees it (linear:
    one pass over the strings and brackets)."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        c = m[0]
        if c in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, m.start()) + 1
                raise FormatError(source, f"nested more than {limit} levels deep (line {line}): not an environment "
                                          "definition")
        elif c in "]}":
            depth -= 1


def check_shape(data: Any, source: str, field: str = "") -> None:
    """Refuse data with an over-long string, key or collection anywhere in it, naming the field."""
    stack: list[tuple[Any, str]] = [(data, field)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            limit = MAX_TEXT if where.rsplit(".", 1)[-1] in TEXT_FIELDS else MAX_FIELD
            if len(value) > limit:
                raise FormatError(source, f"a value of {len(value)} characters (at most {limit}): too long "
                                          "for this field", where or None)
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no file or database can hold it
                    raise FormatError(source, "holds a lone UTF-16 surrogate, which is not text", where or None) \
                        from None
        elif isinstance(value, Mapping):
            if len(value) > MAX_ITEMS:
                raise FormatError(source, f"{len(value)} entries (at most {MAX_ITEMS})", where or None)
            for k, v in value.items():
                key = str(k)
                if len(key) > MAX_FIELD:
                    raise FormatError(source, f"a key of {len(key)} characters (at most {MAX_FIELD})", where or None)
                stack.append((v, f"{where}.{key}" if where else key))
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_ITEMS:
                raise FormatError(source, f"{len(value)} entries (at most {MAX_ITEMS})", where or None)
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
