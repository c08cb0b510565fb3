"""One build step: a backend builds a plan in a staging folder, which the cache then publishes.

A failed (or interrupted) build discards its staging folder: nothing is published, and the next
builder of the key finds no trace of it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.builds.journal import current
from kiln.builds.keys import BUILD_FORMAT
from kiln.environment.secrets import mask

if TYPE_CHECKING:
    from kiln.builds.backends.interface import Backend, BuildPlan
    from kiln.builds.cache import BuildCache, CacheEntry
    from kiln.builds.result import Progress

__all__ = ["BuildLog", "build_and_publish"]


class BuildLog:
    """Build log lines, from several uv processes at once; written into the entry when it is published."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._journal = current()  # the build's live record, when one is being written (taken in the build's thread)

    def __call__(self, line: str) -> None:
        line = mask(line)  # the one place every build log line passes
        with self._lock:
            self.lines.append(line)
        if self._journal is not None:
            self._journal.line(line)

    def write(self, path: Path) -> None:
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def build_and_publish(cache: BuildCache, stage: Path, key: str, plan: BuildPlan, backend: Backend, log: BuildLog,
                      say: Progress) -> CacheEntry:
    """Build ``plan`` in ``stage`` (which may hold a prepared environment) and publish it as ``key``;
    call with the key's lock held."""
    try:
        lock = plan.locked()
        log(f"# kiln build of {plan.label}: Python {plan.interpreter.version} ({plan.interpreter.path}), "
            f"backend {backend.name}, lock {lock.lock_hash}")
        say("build", f"installing {lock.summary} ({backend.name})")
        started = time.monotonic()
        outcome = backend.build(plan, stage=stage, log=log)
        seconds = time.monotonic() - started
        log(f"# built in {seconds:.2f} s, link mode {outcome.link_mode}")
        log.write(stage / "build.log")
        return cache.publish(stage, key, {
            "format": BUILD_FORMAT, "label": plan.label, "backend": backend.name, "lock_hash": lock.lock_hash,
            "identity": lock.identity, "interpreter": plan.interpreter.path,
            "python_version": plan.interpreter.version, "platform": plan.interpreter.platform,
            "packages": outcome.packages, "link_mode": outcome.link_mode, "build_seconds": round(seconds, 3),
        })
    except BaseException:
        cache.discard(stage)
        raise
