"""The cache's keys: a build's (what it is made of) and a definition's resolve lock (who resolves it).

A build key names everything that makes two builds the same: the lock's hash, the interpreter (its
path and exact version, since a venv links to it), the platform and the backend. Changing
``BUILD_FORMAT`` makes every existing entry unreachable (GC then removes them).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.builds.interpreters import Interpreter
    from kiln.builds.lock import Lock
    from kiln.environment.environment import Environment

__all__ = ["BUILD_FORMAT", "build_key", "resolve_key"]

BUILD_FORMAT = 1


def build_key(lock: Lock, interpreter: Interpreter, backend: str) -> str:
    text = json.dumps({"format": BUILD_FORMAT, "lock": lock.lock_hash, "interpreter": str(Path(interpreter.path)),
                       "python": interpreter.version, "platform": interpreter.platform, "backend": backend},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def resolve_key(env: Environment, interpreter: Interpreter) -> str:
    """The file lock one definition's resolver holds (per Python minor and platform): the others wait."""
    text = f"{env.hash}:{interpreter.minor}:{interpreter.platform}"
    return "resolve-" + hashlib.sha256(text.encode()).hexdigest()[:24]
