"""Reading a run's metrics file (written by ``kiln.run``) into Azure ML's ``get_metrics`` shape.

A name logged once gives its value; logged several times, the list of values; ``log_list`` gives a
list; ``log_row`` and ``log_table`` give a table (column name → list of values); ``log_image`` the name of
the image's file in the run's files (``images/<name>.png``). Tags, properties, a display name and the status
a script asked for (``run.fail()``) are records of the same file, read apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["INDEX_SUFFIX", "index_metrics", "read_display_name", "read_metrics", "read_properties", "read_status",
           "read_tags"]


def _records(text: str) -> list[dict[str, Any]]:
    """The records of ``text`` (complete lines)."""
    if not text:
        return []
    try:
        # the whole text as one JSON array: one call into the C decoder instead of one per line (100,000 points:
        # 0.42 -> 0.10 s). A newline inside a JSON line is always escaped, so lines are exactly the array's items.
        parsed = json.loads("[" + text[:-1].replace("\n", ",") + "]")
    except ValueError:  # a damaged or blank line somewhere: line by line, skipping what doesn't parse
        return _records_by_line(text)
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


def _complete_lines(path: Path, offset: int) -> tuple[str, int]:
    """The complete lines of ``path`` from byte ``offset``, and the offset after them: a last line with no newline
    yet is being written right now, and is left for later."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", "replace"), offset + end


@dataclass(frozen=True)
class _Summary:
    """Everything the readers give, from one pass over the file."""

    metrics: dict[str, Any]
    tags: dict[str, Any]
    properties: dict[str, Any]
    display_name: str | None
    status: tuple[str, str | None] | None


@dataclass
class _State:
    """What has been read of a file so far: the records folded in, in order; more records continue it."""

    series: dict[str, list[Any]] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    display: list[Any] = field(default_factory=list)  # the last display name recorded (0 or 1 item)
    status: list[Any] | None = None

    def add(self, records: list[dict[str, Any]]) -> None:
        series, tables = self.series, self.tables
        for r in records:
            kind, name = r.get("kind"), r.get("name")
            if kind == "metric" and type(name) is str:  # nearly every record: the shortest path first
                if name in series:
                    series[name].append(r.get("value"))
                else:
                    series[name] = [r.get("value")]
                continue
            if kind == "display_name":
                self.display = [r.get("value")]
            elif kind == "status" and isinstance(r.get("value"), str):
                self.status = [str(r["value"]), None if r.get("error") is None else str(r["error"])]
            if not isinstance(name, str):
                continue
            if kind in ("metric", "image"):
                series.setdefault(name, []).append(r.get("value"))
            elif kind == "list":
                self.lists[name] = list(r.get("value") or [])
            elif kind == "row":
                table = tables.setdefault(name, {})
                for column, value in (r.get("value") or {}).items():
                    table.setdefault(column, []).append(value)
            elif kind == "table":
                table = tables.setdefault(name, {})
                for column, values in (r.get("value") or {}).items():
                    table.setdefault(column, []).extend(values if isinstance(values, list) else [values])
            elif kind == "tag":
                self.tags[name] = r.get("value")
            elif kind == "property":
                self.properties.setdefault(name, r.get("value"))  # properties never change: the first value is it

    def summary(self) -> _Summary:
        metrics: dict[str, Any] = {name: values[0] if len(values) == 1 else values
                                   for name, values in self.series.items()}
        metrics.update(self.lists)
        metrics.update(self.tables)
        display = str(self.display[-1]) if self.display and self.display[-1] is not None else None
        status = None if self.status is None else (self.status[0], self.status[1])
        return _Summary(metrics, self.tags, self.properties, display, status)


_EMPTY = _Summary({}, {}, {}, None, None)
# Run.get_details() alone reads tags, properties, display name and status, and a run page its metrics too:
# parsed once per field, a run of 100,000 points took ~1 s. The last few files parsed are kept, each under
# its (inode, size, mtime): the file is only ever appended to, so a new record changes its size and it is
# read again. Small: a summary of 100,000 points is a few MB.
_CACHE: OrderedDict[tuple[str, int, int, int], _Summary] = OrderedDict()
_CACHE_SIZE = 8
_LOCK = threading.Lock()

# A big file's state is also kept on disk beside it (``metrics.jsonl.index``), with the byte offset it was read
# to and a checksum of the bytes before that offset: another process (the studio, a new ``kiln run show``) reads
# that and only the lines appended since, instead of parsing 100,000 records again (an array of numbers parses
# ~10x faster than as many records). Only the file's own bytes decide: a stale or foreign index is not used.
INDEX_SUFFIX = ".index"
INDEX_FROM = 1 << 20  # bytes parsed at once from which the state is worth keeping on disk
_INDEX_FORMAT = 1


def _index_path(path: Path) -> Path:
    return path.with_name(path.name + INDEX_SUFFIX)


def _guard(path: Path, offset: int) -> int:
    """A checksum of the file's first ``offset`` bytes (CRC-32: ~2 ms for 11 MB): a file written again in place,
    or another file given this one's index, doesn't match."""
    crc = 0
    with open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(offset, 1 << 22))
            if not chunk:
                return -1
            crc = zlib.crc32(chunk, crc)
            offset -= len(chunk)
    return crc


def _load_index(path: Path, st: os.stat_result) -> tuple[_State, int] | None:
    try:
        saved = json.loads(_index_path(path).read_text(encoding="utf-8"))
        offset = int(saved["offset"])
        if saved.get("format") != _INDEX_FORMAT or saved.get("inode") != st.st_ino or not 0 < offset <= st.st_size:
            return None
        if saved.get("guard") != _guard(path, offset):
            return None
        state = _State(**saved["state"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (state, offset) if _well_formed(state) else None


def _well_formed(state: _State) -> bool:
    """An index of the right shape (it is only a file beside the metrics: anything may have written it)."""
    folds = (state.series, state.lists, state.tables, state.tags, state.properties)
    if not all(isinstance(d, dict) for d in folds) or not isinstance(state.display, list):
        return False
    if state.status is not None and not (isinstance(state.status, list) and len(state.status) == 2):
        return False
    return (all(isinstance(v, list) for v in (*state.series.values(), *state.lists.values()))
            and all(isinstance(t, dict) and all(isinstance(c, list) for c in t.values())
                    for t in state.tables.values()))


def _save_index(path: Path, st: os.stat_result, state: _State, offset: int) -> None:
    from kiln._files import write_text_atomic

    body = {"format": _INDEX_FORMAT, "inode": st.st_ino, "offset": offset, "guard": _guard(path, offset),
            "state": dataclasses.asdict(state)}
    with contextlib.suppress(OSError, ValueError):  # a read-only run folder only means no index
        write_text_atomic(_index_path(path), json.dumps(body))


def _read(path: Path, st: os.stat_result) -> _Summary:
    loaded = _load_index(path, st)
    state, offset = loaded if loaded is not None else (_State(), 0)
    text, end = _complete_lines(path, offset)
    state.add(_records(text))
    if end - offset >= INDEX_FROM:
        _save_index(path, st, state, end)
    return state.summary()


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
        summary = _read(path, st)
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


def index_metrics(path: Path) -> None:
    """Read a big metrics file once now (when its run ends), so that its index is on disk for the next reader."""
    with contextlib.suppress(OSError):
        if path.stat().st_size >= INDEX_FROM:
            _summary(path)


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
