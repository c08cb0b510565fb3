"""The build cache: immutable entries, one per build key, safe under concurrent builders and crashes.

Layout (uv's habits)::

    <cache>/CACHEDIR.TAG          backup tools skip the folder
    <cache>/envs-v1/<key>/        published entries: env/, kiln-entry.json, build.log, lock.txt
    <cache>/tmp/<key>.<random>/   entries being built (inside the cache: publishing is one rename)
    <cache>/locks/<key>.lock      one file lock per key: concurrent builders of a key wait for one build
    <cache>/used/<key>            its mtime is the entry's last use (the entry itself never changes)
    <cache>/workspaces/<id>       the workspaces that built here (their locks are the references GC keeps)

A build killed at any moment leaves at most a ``tmp/`` folder, never a published entry; the next
builder of that key removes it while it holds the key's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BUCKET", "BuildCache", "CacheEntry", "disk_usage"]

BUCKET = "envs-v1"
ENTRY_FILE = "kiln-entry.json"
_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file is a cache directory tag created by Kiln.\n"
        "# For information about cache directory tags see https://bford.info/cachedir/\n")


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    meta: dict[str, Any]
    last_used: float

    @property
    def python(self) -> Path:
        return self.path / "env" / "bin" / "python"

    @property
    def log_path(self) -> Path:
        return self.path / "build.log"


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bucket = root / BUCKET

    def ensure(self) -> None:
        for sub in (BUCKET, "tmp", "locks", "used", "workspaces"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text(_TAG)

    # ---- reading ------------------------------------------------------------------------------

    def lookup(self, key: str) -> CacheEntry | None:
        path = self.bucket / key
        try:
            meta = json.loads((path / ENTRY_FILE).read_text())
        except (OSError, ValueError):
            return None
        return CacheEntry(key, path, meta, self._last_used(key, path))

    def entries(self) -> list[CacheEntry]:
        if not self.bucket.is_dir():
            return []
        found = (self.lookup(p.name) for p in sorted(self.bucket.iterdir()) if p.is_dir())
        return [e for e in found if e is not None]

    def _last_used(self, key: str, path: Path) -> float:
        for candidate in (self.root / "used" / key, path / ENTRY_FILE):
            with contextlib.suppress(OSError):
                return candidate.stat().st_mtime
        return 0.0

    def touch(self, key: str) -> None:
        marker = self.root / "used" / key
        try:
            os.utime(marker)
        except FileNotFoundError:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()

    # ---- building -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, key: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the key's file lock (released by the kernel if this process dies)."""
        self.ensure()
        with open(self.root / "locks" / f"{key}.lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def stage(self, key: str) -> Path:
        """A fresh folder to build ``key`` in; call with the key's lock held. Leftovers of killed
        builds of this key are removed first."""
        tmp = self.root / "tmp"
        for stale in tmp.glob(f"{key}.*"):
            shutil.rmtree(stale, ignore_errors=True)
        path = tmp / f"{key}.{os.urandom(4).hex()}"  # not uuid: it imports platform, ~2 ms of every build
        path.mkdir(parents=True)
        return path

    def publish(self, stage: Path, key: str, meta: dict[str, Any]) -> CacheEntry:
        """Write the entry's metadata, then make the staged folder the entry with one rename."""
        data = {**meta, "key": key, "published_at": time.time()}
        (stage / ENTRY_FILE).write_text(json.dumps(data, indent=1))
        target = self.bucket / key
        os.rename(stage, target)  # atomic; fails if the entry exists (only under the key's lock)
        self.touch(key)
        entry = self.lookup(key)
        assert entry is not None
        return entry

    def discard(self, stage: Path) -> None:
        shutil.rmtree(stage, ignore_errors=True)

    def remove(self, key: str) -> None:
        """Remove a published entry: first out of sight (rename), then from disk."""
        with self.locked(key):
            path = self.bucket / key
            if not path.exists():
                return
            trash = self.root / "tmp" / f"{key}.removing-{os.urandom(4).hex()}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
            (self.root / "used" / key).unlink(missing_ok=True)

    # ---- workspaces that reference entries -----------------------------------------------------

    def remember_workspace(self, path: Path) -> None:
        import hashlib

        marker = self.root / "workspaces" / hashlib.sha256(str(path).encode()).hexdigest()[:16]
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(path))

    def known_workspaces(self) -> list[Path]:
        folder = self.root / "workspaces"
        if not folder.is_dir():
            return []
        out = []
        for marker in sorted(folder.iterdir()):
            with contextlib.suppress(OSError):
                out.append(Path(marker.read_text().strip()))
        return out


def disk_usage(paths: list[Path]) -> int:
    """Bytes on disk under ``paths``, each inode counted once (hardlinks to uv's cache count once too)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in paths:
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                try:
                    st = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in seen:
                    continue
                seen.add(ident)
                total += st.st_blocks * 512
    return total
