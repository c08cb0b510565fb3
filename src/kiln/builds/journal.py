"""The live record of builds: each build writes its progress and log lines to a file in the cache as they come,
so that another process (the studio, while ``kiln env build`` runs in a terminal) can follow it.

Layout::

    <cache>/journal/<id>/build.json   label, workspace, pid and start time; status and end once finished
    <cache>/journal/<id>/build.log    progress and build log lines, appended (already masked) one write each

A build whose process died without writing its end is told apart from a running one by its pid and the
process's start time (``kiln._process.alive``). Only the newest ``KEEP`` finished records are kept: each new
build removes the oldest others, so the folder never grows without bound.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln._files import write_text_atomic
from kiln._process import alive, start_time
from kiln.environment.secrets import mask

__all__ = ["FOLDER", "BuildJournal", "JournalRecord", "current", "read_journal", "recent_builds", "watched"]

FOLDER = "journal"
KEEP = 50
#: the tail of a log a reader is given at most (a page shows it; the whole build log is in the cache entry)
MAX_LOG = 1 << 20
_CURRENT: contextvars.ContextVar[BuildJournal | None] = contextvars.ContextVar("kiln_build_journal", default=None)
_WATCHER: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("kiln_build_journal_watcher",
                                                                                      default=None)


def current() -> BuildJournal | None:
    """The journal of the build running in this thread (build logs made during it echo their lines there)."""
    return _CURRENT.get()


@contextlib.contextmanager
def watched(callback: Callable[[str], None]) -> Iterator[None]:
    """Tell ``callback`` the id of each build recorded in this thread inside, *before* its record is written:
    whoever started the build (the studio) knows the record is its own by the time anyone can read it."""
    token = _WATCHER.set(callback)
    try:
        yield
    finally:
        _WATCHER.reset(token)


class BuildJournal:
    """The writer's side: one per ``build_environment`` call that may build."""

    def __init__(self, cache_root: Path, *, label: str, workspace: Path) -> None:
        self.id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}"
        self.folder = cache_root / FOLDER / self.id
        self.meta: dict[str, Any] = {"id": self.id, "label": label, "workspace": str(workspace), "pid": os.getpid(),
                                     "pid_started": start_time(os.getpid()), "started": time.time(), "status": None}

    def line(self, text: str) -> None:
        # one os.write per line on an O_APPEND file: a reader never sees half of a line
        data = (mask(text).rstrip("\n") + "\n").encode("utf-8", "replace")
        with contextlib.suppress(OSError):  # the record is a courtesy to watchers: it never fails a build
            fd = os.open(self.folder / "build.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def progress(self, phase: str, message: str) -> None:
        self.line(f"[{phase}] {message}")

    @contextlib.contextmanager
    def recording(self) -> Iterator[BuildJournal]:
        """Record the build run inside: its start now, its end (``Succeeded``, or ``Failed`` and why) on leaving."""
        watcher = _WATCHER.get()
        if watcher is not None:
            watcher(self.id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.folder / "build.json", json.dumps(self.meta))
            _prune(self.folder.parent, keep=self.id)
        except OSError:
            pass
        token = _CURRENT.set(self)
        try:
            yield self
        except BaseException as e:
            self.line(f"[failed] {e}")
            self._end("Failed", mask(str(e))[:400])
            raise
        else:
            self._end("Succeeded", None)
        finally:
            _CURRENT.reset(token)

    def _end(self, status: str, error: str | None) -> None:
        self.meta.update(status=status, error=error, ended=time.time())
        with contextlib.suppress(OSError):
            write_text_atomic(self.folder / "build.json", json.dumps(self.meta))


@dataclass(frozen=True)
class JournalRecord:
    id: str
    label: str
    workspace: str
    status: str  # Running, Succeeded, Failed
    started: float
    ended: float | None
    error: str | None
    folder: Path

    def log(self, offset: int = 0) -> str:
        """The log from byte ``offset`` (at most its last ``MAX_LOG`` bytes), complete lines only."""
        try:
            with open(self.folder / "build.log", "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(offset, size - MAX_LOG))
                data = f.read()
        except OSError:
            return ""
        return data[:data.rfind(b"\n") + 1].decode("utf-8", "replace")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "environment": self.label, "workspace": self.workspace, "status": self.status,
                "started": self.started, "ended": self.ended, "error": self.error}


def read_journal(cache_root: Path, build_id: str) -> JournalRecord | None:
    """The record of build ``build_id``, or None (no such build, or an id that is not one)."""
    if not build_id or "/" in build_id or build_id.startswith("."):
        return None
    folder = cache_root / FOLDER / build_id
    try:
        meta = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    status = meta.get("status")
    if status is None:  # not finished: running, or its process died before it could say so
        status = "Running" if alive(meta.get("pid"), meta.get("pid_started")) else "Failed"
        if status == "Failed":
            meta["error"] = "the building process ended without finishing the build"
    return JournalRecord(id=str(meta.get("id", build_id)), label=str(meta.get("label", "")),
                         workspace=str(meta.get("workspace", "")), status=str(status),
                         started=float(meta.get("started") or 0.0), ended=meta.get("ended"), error=meta.get("error"),
                         folder=folder)


def recent_builds(cache_root: Path, *, workspace: Path | None = None, label: str | None = None) -> list[JournalRecord]:
    """The recorded builds, newest first; only those of ``workspace`` / of ``label`` (``name:version``) if given."""
    folder = cache_root / FOLDER
    if not folder.is_dir():
        return []
    out = []
    for sub in folder.iterdir():
        record = read_journal(cache_root, sub.name)
        if record is None or (workspace is not None and record.workspace != str(workspace)):
            continue
        if label is None or record.label == label:
            out.append(record)
    return sorted(out, key=lambda r: r.started, reverse=True)


def _prune(folder: Path, *, keep: str) -> None:
    """Remove the oldest finished records beyond ``KEEP`` (running ones are never removed)."""
    finished = []
    for sub in folder.iterdir():
        record = read_journal(folder.parent, sub.name)
        if record is not None and record.status != "Running" and sub.name != keep:
            finished.append(record)
    finished.sort(key=lambda r: r.started, reverse=True)
    for record in finished[KEEP:]:
        shutil.rmtree(record.folder, ignore_errors=True)
