"""Reading a run's metrics file (written by ``kiln.run``) into Azure ML's ``get_metrics`` shape.

A name logged once gives its value; logged several times, the list of values; ``log_list`` gives a
list; ``log_row`` and ``log_table`` give a table (column name → list of values); ``log_image`` the name of
the image's file in the run's files (``images/<name>.png``). Tags, properties, a display name and the status
a script asked for (``run.fail()``) are records of the same file, read apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_display_name", "read_metrics", "read_properties", "read_status", "read_tags"]


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a line being written right now
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def read_metrics(path: Path) -> dict[str, Any]:
    series: dict[str, list[Any]] = {}
    tables: dict[str, dict[str, list[Any]]] = {}
    lists: dict[str, list[Any]] = {}
    for r in _records(path):
        kind, name = r.get("kind"), r.get("name")
        if not isinstance(name, str):
            continue
        if kind in ("metric", "image"):
            series.setdefault(name, []).append(r.get("value"))
        elif kind == "list":
            lists[name] = list(r.get("value") or [])
        elif kind == "row":
            table = tables.setdefault(name, {})
            for column, value in (r.get("value") or {}).items():
                table.setdefault(column, []).append(value)
        elif kind == "table":
            table = tables.setdefault(name, {})
            for column, values in (r.get("value") or {}).items():
                table.setdefault(column, []).extend(values if isinstance(values, list) else [values])
    out: dict[str, Any] = {name: values[0] if len(values) == 1 else values for name, values in series.items()}
    out.update(lists)
    out.update(tables)
    return out


def read_tags(path: Path) -> dict[str, Any]:
    return {r["name"]: r.get("value") for r in _records(path) if r.get("kind") == "tag" and "name" in r}


def read_properties(path: Path) -> dict[str, Any]:
    """Properties never change: the first value recorded for a name is its value."""
    out: dict[str, Any] = {}
    for r in _records(path):
        if r.get("kind") == "property" and isinstance(r.get("name"), str):
            out.setdefault(r["name"], r.get("value"))
    return out


def read_display_name(path: Path) -> str | None:
    names = [r.get("value") for r in _records(path) if r.get("kind") == "display_name"]
    return str(names[-1]) if names and names[-1] is not None else None


def read_status(path: Path) -> tuple[str, str | None] | None:
    """The last status the run's own code asked for (``complete()``, ``fail()``) and its error, or None."""
    statuses = [r for r in _records(path) if r.get("kind") == "status" and isinstance(r.get("value"), str)]
    if not statuses:
        return None
    last = statuses[-1]
    return str(last["value"]), (None if last.get("error") is None else str(last["error"]))
