"""The base images saved in Kiln's cache (``<cache>/bases-v1/<image id>``, ``kiln.builds.engine.base``), as the
cache's accounting and collection see them.

A saved base is in use while an image of the cache's ``images-v1/`` was built on it: the image's
``org.opencontainers.image.base.digest`` label names the base's manifest digest. Its last use is the last
time a build took it (the build touches its ``index.json``).

Concurrency, as for images (``kiln.builds.oci.locks``): a build holds ``bases-v1/kiln-locks/gc.lock`` *shared*
from taking (or saving) its base until its image is in the index; a collection holds it *exclusively*, so it
never removes a base a build is about to stack on, and an image written meanwhile is in the index it reads.
A save writes into a hidden ``.save-*`` folder renamed into place: a killed save leaves only that folder,
which the next collection (no save can run then) removes; a removal renames the base out of sight first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kiln.builds.engine.base import BASES_FOLDER
from kiln.builds.oci.locks import LOCKS, collecting, writing

__all__ = ["BASE_DIGEST_LABEL", "SavedBase", "bases_in_use", "collecting_bases", "inodes", "leftover_bytes",
           "own_bytes", "remove_base", "remove_leftovers", "saved_bases", "using_bases"]

BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class SavedBase:
    path: Path  # <cache>/bases-v1/<image id>
    digest: str  # its manifest digest: what an image built on it names in its base.digest label
    name: str  # the reference it was saved as
    size: int  # bytes of its files
    last_used: float

    def to_dict(self) -> dict[str, object]:
        return {"id": self.path.name, "name": self.name, "digest": self.digest, "size": self.size}


def using_bases(cache_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Held by a build from taking its base until its image is in the index: no collection removes the base."""
    return writing(cache_dir / BASES_FOLDER)


def collecting_bases(cache_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Held by a collection of the saved bases: no build takes or saves one meanwhile."""
    return collecting(cache_dir / BASES_FOLDER)


def _bytes(folder: Path, shared: frozenset[tuple[int, int]] = frozenset()) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                if (st.st_dev, st.st_ino) not in shared:
                    total += st.st_size
    return total


def inodes(folder: Path) -> frozenset[tuple[int, int]]:
    """The files under ``folder`` (an image layout's blobs), by inode: a base's layers are hardlinked into them."""
    out = set()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                out.add((st.st_dev, st.st_ino))
    return frozenset(out)


def own_bytes(base: SavedBase, shared: frozenset[tuple[int, int]]) -> int:
    """Bytes of ``base``'s files that aren't also ``shared`` files (hardlinks to an image layout's blobs, counted
    there): what removing the base frees once the images are gone too, counted once."""
    return _bytes(base.path, shared)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == LOCKS


def saved_bases(cache_dir: Path) -> list[SavedBase]:
    """The complete saved bases (those with an ``index.json``; a save under way or killed has none yet)."""
    folder = cache_dir / BASES_FOLDER
    out = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if _hidden(path) or not path.is_dir():
            continue
        index = path / "index.json"
        try:
            manifests = json.loads(index.read_text(encoding="utf-8")).get("manifests") or [{}]
            last_used = index.stat().st_mtime
        except (OSError, ValueError, AttributeError):
            continue  # not a saved base Kiln could stack on: left alone
        first = manifests[0] if isinstance(manifests[0], dict) else {}
        annotations = first.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        out.append(SavedBase(path=path, digest=str(first.get("digest", "")), size=_bytes(path), last_used=last_used,
                             name=str(annotations.get("org.opencontainers.image.ref.name", path.name))))
    return out


def bases_in_use(labels: Iterable[dict[str, str]]) -> dict[str, int]:
    """How many images (their config labels) were built on each base, by the base's manifest digest."""
    out: dict[str, int] = {}
    for each in labels:
        digest = each.get(BASE_DIGEST_LABEL)
        if digest:
            out[digest] = out.get(digest, 0) + 1
    return out


def remove_base(base: SavedBase) -> None:
    """Remove a saved base: first out of sight (a hidden name, never taken for a base), then from disk. Call
    holding ``collecting_bases``."""
    trash = base.path.parent / f".removing-{base.path.name}-{uuid.uuid4().hex[:8]}"
    os.rename(base.path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _leftovers(cache_dir: Path) -> list[Path]:
    folder = cache_dir / BASES_FOLDER
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.is_dir() else []


def leftover_bytes(cache_dir: Path) -> int:
    """Bytes of what killed saves or removals left (hidden folders)."""
    return sum(_bytes(p) if p.is_dir() else p.stat().st_size for p in _leftovers(cache_dir))


def remove_leftovers(cache_dir: Path) -> None:
    """Remove what killed saves or removals left. Call holding ``collecting_bases``: no save runs then."""
    for path in _leftovers(cache_dir):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
