"""Private wheels where this machine has them: a definition (and a lock) names a stored wheel by the path at
which the machine that stored it mounts the artifact store, ``file:///mnt/team/wheels/<sha256>/<file>.whl``;
a teammate may mount the same folder elsewhere. Before uv reads requirements or a lock, a stored wheel that
is not at its path is pointed at this workspace's copy of the same digest (its artifact store, then the
``wheels/`` folder older workspaces kept). The name carries the hash and uv checks the lock's hashes, so
the file installed is the one the definition names, wherever it lives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from kiln.errors import WorkspaceError

if TYPE_CHECKING:
    from kiln.builds.lock import Lock

__all__ = ["WheelPaths"]

_URL = re.compile(r"file://(?P<path>/[^\s'\"#]*?/wheels/(?P<digest>[0-9a-f]{64})/(?P<file>[^/\s'\"#]+\.whl))")


class WheelPaths:
    """``localize(text)``: ``text`` with each stored wheel that is not at its path pointed at this workspace's
    copy (``folders``: where stored wheels live here, ``<folder>/<sha256>/<file>.whl``)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = tuple(folders)

    def localize(self, text: str) -> str:
        if "/wheels/" not in text:
            return text
        return _URL.sub(self._one, text)

    def lock(self, lock: Lock) -> Lock:
        """``lock`` with its installer text localized (its hash, which names no path, is unchanged)."""
        text = self.localize(lock.text)
        return lock if text == lock.text else replace(lock, text=text)

    def _one(self, match: re.Match[str]) -> str:
        if Path(unquote(match["path"])).is_file():
            return match.group(0)
        name = unquote(match["file"])
        for folder in self.folders:
            here = folder / match["digest"] / name
            if here.is_file():
                return here.resolve().as_uri()
        where = ", ".join(str(f) for f in self.folders) or "none"
        raise WorkspaceError(f"the private wheel {name[:200]!r} (sha256 {match['digest'][:12]}...) is neither at "
                             f"{unquote(match['path'])[:300]} nor in this workspace's artifact store ({where}): "
                             "point the workspace at the team's blob folder (--blobs), or add the wheel again "
                             "with Environment.add_private_pip_wheel")
