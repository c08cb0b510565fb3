"""Counts in words: ``1 build``, ``2 builds``, ``0 builds`` — the one rule for plurals in Kiln's output."""

from __future__ import annotations

__all__ = ["count"]


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular only for exactly one (``count(1, "build")`` is ``"1 build"``); ``plural``
    for nouns that don't just take an ``s``."""
    return f"{n} {singular if n == 1 else plural if plural is not None else singular + 's'}"
