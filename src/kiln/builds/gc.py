"""Garbage collection of the build cache: unreferenced entries go, least recently used first.

An entry is referenced when a lock that some environment version of a known workspace uses has
its lock hash (``BuildCache.known_workspaces`` lists the workspaces that built here). Referenced
entries are never removed; ``max_size`` stops removing once the cache is at or under that size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiln.builds.cache import BuildCache, CacheEntry, disk_usage
from kiln.errors import KilnError

__all__ = ["PruneResult", "parse_size", "prune", "referenced_lock_hashes"]

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}


def parse_size(text: str) -> int:
    """``"500M"``, ``"2GiB"``, ``"1.5g"``, ``"1024"`` → bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise KilnError(f"--max-size: {text!r} is not a size like 500M, 2G or 1024")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass
class PruneResult:
    removed: list[CacheEntry] = field(default_factory=list)
    kept: list[CacheEntry] = field(default_factory=list)
    freed: int = 0
    size_before: int = 0
    size_after: int = 0
    dry_run: bool = False


def referenced_lock_hashes(workspaces: Iterable[Path]) -> set[str]:
    from kiln.workspace.workspace import Workspace

    refs: set[str] = set()
    for path in workspaces:
        if not (path / "workspace.json").is_file():
            continue  # a workspace that is gone references nothing
        with Workspace(path) as ws:
            refs |= ws.store.referenced_lock_hashes()
    return refs


def prune(cache: BuildCache, *, references: set[str], max_size: int | None = None, dry_run: bool = False
          ) -> PruneResult:
    entries = cache.entries()
    sizes = {e.key: disk_usage([e.path]) for e in entries}
    result = PruneResult(dry_run=dry_run, size_before=sum(sizes.values()))
    total = result.size_before
    candidates = sorted((e for e in entries if e.meta.get("lock_hash") not in references), key=lambda e: e.last_used)
    result.kept = [e for e in entries if e.meta.get("lock_hash") in references]
    for entry in candidates:
        if max_size is not None and total <= max_size:
            result.kept.append(entry)
            continue
        if not dry_run:
            cache.remove(entry.key)
        result.removed.append(entry)
        result.freed += sizes[entry.key]
        total -= sizes[entry.key]
    result.size_after = total
    return result
