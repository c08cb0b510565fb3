"""Reading a run's metrics file (written by ``kiln.run``) into Azure ML's ``get_metrics`` shape.

A name logged once gives its value; logged several times, the list of values; ``log_list`` gives a
list; ``log_row`` and ``log_table`` give a table (column name → list of values); ``log_image`` the name of
the image's file in the run's files (``images/<name>.png``). Tags, properties, a display name and the status
a script asked for (``run.fail()``) are records of the same file, read apart.
"""

from __future__ import annotations

import json
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["read_display_name", "read_metrics", "read_properties", "read_status", "read_tags"]


def _records(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    complete = text[:text.rfind("\n") + 1]  # a last line with no newline yet is being written right now
    if not complete:
        return []
    try:
        # the whole file as one JSON array: one call into the C decoder instead of one per line (100,000 points:
        # 0.42 -> 0.10 s). A newline inside a JSON line is always escaped, so lines are exactly the array's items.
        parsed = json.loads("[" + complete[:-1].replace("\n", ",") + "]")
    except ValueError:  # a damaged or blank line somewhere: line by line, skipping what doesn't parse
        return _records_by_line(complete)
    return [r for r in parsed if isinstance(r, dict)]


def _records_by_line(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


@dataclass(frozen=True)
class _Summary:
    """Everything the readers give, from one pass over the file."""

    metrics: dict[str, Any]
    tags: dict[str, Any]
    properties: dict[str, Any]
    display_name: str | None
    status: tuple[str, str | None] | None


_EMPTY = _Summary({}, {}, {}, None, None)
# Run.get_details() alone reads tags, properties, display name and status, and a run page its metrics too:
# parsed once per field, a run of 100,000 points took ~1 s. The last few files parsed are kept, each under
# its (inode, size, mtime): the file is only ever appended to, so a new record changes its size and it is
# read again. Small: a summary of 100,000 points is a few MB.
_CACHE: OrderedDict[tuple[str, int, int, int], _Summary] = OrderedDict()
_CACHE_SIZE = 8
_LOCK = threading.Lock()


def _summary(path: Path) -> _Summary:
    try:
        st = path.stat()
    except OSError:
        return _EMPTY
    if not stat.S_ISREG(st.st_mode):
        return _EMPTY
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    try:
        summary = _summarize(_records(path))
    except OSError:
        return _EMPTY
    with _LOCK:
        _CACHE[key] = summary
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return summary


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """A copy of a JSON value, so that a caller changing what it got can't change what the cache holds."""
    if isinstance(value, list):
        if set(map(type, value)) <= _SCALARS:  # a series of numbers: copied in C, not value by value
            return value.copy()
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _summarize(records: list[dict[str, Any]]) -> _Summary:
    series: dict[str, list[Any]] = {}
    tables: dict[str, dict[str, list[Any]]] = {}
    lists: dict[str, list[Any]] = {}
    tags: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    names: list[Any] = []
    status: tuple[str, str | None] | None = None
    for r in records:
        kind, name = r.get("kind"), r.get("name")
        if kind == "metric" and type(name) is str:  # nearly every record: the shortest path first
            if name in series:
                series[name].append(r.get("value"))
            else:
                series[name] = [r.get("value")]
            continue
        if kind == "display_name":
            names.append(r.get("value"))
        elif kind == "status" and isinstance(r.get("value"), str):
            status = str(r["value"]), (None if r.get("error") is None else str(r["error"]))
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
        elif kind == "tag":
            tags[name] = r.get("value")
        elif kind == "property":
            properties.setdefault(name, r.get("value"))  # properties never change: the first value is the value
    metrics: dict[str, Any] = {name: values[0] if len(values) == 1 else values for name, values in series.items()}
    metrics.update(lists)
    metrics.update(tables)
    display = str(names[-1]) if names and names[-1] is not None else None
    return _Summary(metrics, tags, properties, display, status)


def read_metrics(path: Path) -> dict[str, Any]:
    return _copy(_summary(path).metrics)


def read_tags(path: Path) -> dict[str, Any]:
    return _copy(_summary(path).tags)


def read_properties(path: Path) -> dict[str, Any]:
    """Properties never change: the first value recorded for a name is its value."""
    return _copy(_summary(path).properties)


def read_display_name(path: Path) -> str | None:
    return _summary(path).display_name


def read_status(path: Path) -> tuple[str, str | None] | None:
    """The last status the run's own code asked for (``complete()``, ``fail()``) and its error, or None."""
    return _summary(path).status
