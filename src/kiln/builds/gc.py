"""Garbage collection of the build cache: unreferenced entries go, least recently used first.

An entry is referenced when a lock that some environment version of a known workspace uses has
its lock hash (``BuildCache.known_workspaces`` lists the workspaces that built here). Referenced
entries are never removed; ``max_size`` stops removing once the cache is at or under that size.

Images (the cache's OCI layout, ``images-v1/``) are counted and collected with the builds: an image is
referenced by its lock hash (its ``io.kiln.lock-hash`` label) as a build is; its last use is its last write.
Blobs are shared between images, so removing an image frees only the blobs no kept image names; blobs no
image names at all (left by a crashed build) are freed too. A collection holds the layout's lock exclusively
(``kiln.builds.oci.locks``): it waits for image builds under way, which can't lose a blob to it.

Saved base images (``bases-v1/``, ``kiln.builds.engine.saved``) are counted too. A base stays while an image
left in ``images-v1/`` was built on it (its ``org.opencontainers.image.base.digest`` label); its turn in the
least-recently-used order is its own last use or its images' last write, whichever is later, so its
images come first and a base whose images all go goes after them. What a killed save left goes too. The
collection holds the bases' lock exclusively before the images' (the order builds take them).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builds.cache import BuildCache, CacheEntry, disk_usage
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.engine.saved import SavedBase

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
    #: images removed (``reference``, ``digest``, ``lock_hash``, ``freed``: bytes of blobs no kept image names)
    removed_images: list[dict[str, Any]] = field(default_factory=list)
    kept_images: int = 0
    #: bytes of blobs no image named and of writers' temp files (a killed build's), freed with them
    orphans: int = 0
    #: saved bases removed (``id``, ``name``, ``digest``, ``size``: bytes not hardlinked into the images' blobs)
    removed_bases: list[dict[str, Any]] = field(default_factory=list)
    kept_bases: int = 0
    #: bytes of what killed base saves left, freed with them
    base_leftovers: int = 0


def referenced_lock_hashes(workspaces: Iterable[Path]) -> set[str]:
    from kiln.workspace.workspace import Workspace

    refs: set[str] = set()
    for path in workspaces:
        if not (path / "workspace.json").is_file():
            continue  # a workspace that is gone references nothing
        with Workspace(path) as ws:
            refs |= ws.store.referenced_lock_hashes()
    return refs


@dataclass
class _Candidate:
    last_used: float
    entry: CacheEntry | None = None
    image: dict[str, Any] | None = None
    base: SavedBase | None = None
    base_digest: str = ""  # an image's: the base it was built on


def _order(candidate: _Candidate) -> tuple[float, bool]:
    return candidate.last_used, candidate.base is not None  # at the same time, a base after its images


def prune(cache: BuildCache, *, references: set[str], max_size: int | None = None, dry_run: bool = False
          ) -> PruneResult:
    from kiln.builds.engine.base import BASES_FOLDER
    from kiln.builds.engine.saved import collecting_bases
    from kiln.builds.oci.build import IMAGES_FOLDER
    from kiln.builds.oci.locks import collecting

    layout = cache.root / IMAGES_FOLDER
    images = (layout / "index.json").is_file()
    bases = (cache.root / BASES_FOLDER).is_dir()
    # an actual collection excludes image writers and base users from listing to removing; a preview only reads.
    # The bases' lock first: a build holds it around its image write, which takes the images' lock
    with (collecting_bases(cache.root) if bases and not dry_run else contextlib.nullcontext(),
          collecting(layout) if images and not dry_run else contextlib.nullcontext()):
        return _prune(cache, layout if images else None, references=references, max_size=max_size, dry_run=dry_run)


def _prune(cache: BuildCache, layout: Path | None, *, references: set[str], max_size: int | None, dry_run: bool
           ) -> PruneResult:
    entries = cache.entries()
    sizes = {e.key: disk_usage([e.path]) for e in entries}
    result = PruneResult(dry_run=dry_run, size_before=sum(sizes.values()))
    candidates = [_Candidate(e.last_used, entry=e) for e in entries if e.meta.get("lock_hash") not in references]
    result.kept = [e for e in entries if e.meta.get("lock_hash") in references]
    blob_sizes: dict[str, int] = {}
    users: dict[str, int] = {}  # blob -> how many images left name it
    if layout is not None:
        image_candidates, blob_sizes, users, kept_images = _images(layout, references)
        result.kept_images = kept_images
        candidates += image_candidates
        result.orphans = sum(size for blob, size in blob_sizes.items() if not users.get(blob)) + _temporary(layout)
        result.size_before += sum(blob_sizes.values()) + _temporary(layout)
    base_users = _bases(cache.root, candidates, result)
    total = result.size_before - result.orphans - result.base_leftovers
    removed_refs: list[str] = []
    for candidate in sorted(candidates, key=_order):
        if candidate.base is not None and base_users.get(candidate.base.digest):
            result.kept_bases += 1  # an image left was built on it
            continue
        if max_size is not None and total <= max_size:
            if candidate.entry is not None:
                result.kept.append(candidate.entry)
            elif candidate.base is not None:
                result.kept_bases += 1
            else:
                result.kept_images += 1
            continue
        if candidate.base is not None:
            from kiln.builds.engine.saved import remove_base

            if not dry_run:
                remove_base(candidate.base)
            result.removed_bases.append(candidate.base.to_dict())
            freed = candidate.base.size
        elif candidate.entry is not None:
            if not dry_run:
                cache.remove(candidate.entry.key)
            result.removed.append(candidate.entry)
            freed = sizes[candidate.entry.key]
        else:
            assert candidate.image is not None
            freed = 0
            for blob in candidate.image.pop("blobs"):
                users[blob] -= 1
                if users[blob] == 0:
                    freed += blob_sizes.get(blob, 0)
            candidate.image["freed"] = freed
            if candidate.base_digest in base_users:
                base_users[candidate.base_digest] -= 1
            result.removed_images.append(candidate.image)
            removed_refs.append(candidate.image["reference"])
        result.freed += freed
        total -= freed
    if layout is not None and not dry_run:
        from kiln.builds.oci.gc import collect

        collect(layout, remove=removed_refs)  # also the blobs no image named, and crashed writers' temp files
    if result.base_leftovers and not dry_run:
        from kiln.builds.engine.saved import remove_leftovers

        remove_leftovers(cache.root)
    result.freed += result.orphans + result.base_leftovers
    result.size_after = total
    return result


def _temporary(layout: Path) -> int:
    """Bytes of writers' temp files in the layout's blobs: what a killed build left (a collection holds the lock
    writers hold, so none is being written then)."""
    total = 0
    folder = layout / "blobs" / "sha256"
    for path in folder.glob(".*") if folder.is_dir() else []:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def _images(layout: Path, references: set[str]) -> tuple[list[_Candidate], dict[str, int], dict[str, int], int]:
    """The layout's unreferenced images as candidates, its blobs' sizes, how many images name each blob, and
    how many images are referenced (kept whatever the size)."""
    from kiln.builds.engine.saved import BASE_DIGEST_LABEL
    from kiln.builds.oci.gc import image_blobs, layout_bytes
    from kiln.builds.oci.store import list_images

    blob_sizes = layout_bytes(layout)
    users: dict[str, int] = {}
    candidates, kept = [], 0
    for image in list_images(layout):
        blobs = image_blobs(layout, image.digest)
        for blob in blobs:
            users[blob] = users.get(blob, 0) + 1
        lock_hash = image.labels.get("io.kiln.lock-hash")
        if lock_hash in references:
            kept += 1
            continue
        try:
            last = (layout / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).stat().st_mtime
        except OSError:
            last = 0.0
        candidates.append(_Candidate(last, image={"reference": image.reference, "digest": image.digest,
                                                  "lock_hash": lock_hash, "blobs": sorted(blobs)},
                                     base_digest=image.labels.get(BASE_DIGEST_LABEL, "")))
    return candidates, blob_sizes, users, kept


def _bases(root: Path, candidates: list[_Candidate], result: PruneResult) -> dict[str, int]:
    """Add the saved bases to ``candidates`` (each after the images built on it) and to ``result``'s sizes;
    returns how many images of the layout were built on each base, by its digest."""
    from kiln.builds.engine.saved import bases_in_use, inodes, leftover_bytes, own_bytes, saved_bases
    from kiln.builds.oci.build import IMAGES_FOLDER
    from kiln.builds.oci.store import list_images

    layout = root / IMAGES_FOLDER
    # a base's layers are hardlinked into the images' blobs (one file system): counted there, not twice
    shared = inodes(layout / "blobs") if (layout / "blobs").is_dir() else frozenset()
    saved = [replace(b, size=own_bytes(b, shared)) for b in saved_bases(root)]
    result.base_leftovers = leftover_bytes(root)
    result.size_before += sum(b.size for b in saved) + result.base_leftovers
    if not saved:
        return {}
    images = list_images(layout) if (layout / "index.json").is_file() else []
    users = bases_in_use(i.labels for i in images)
    last_image = {c.base_digest: c.last_used for c in sorted(candidates, key=lambda c: c.last_used) if c.base_digest}
    candidates += [_Candidate(max(b.last_used, last_image.get(b.digest, 0.0)), base=b) for b in saved]
    return users
