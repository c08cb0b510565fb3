"""Removing images from an OCI layout Kiln writes (the cache's ``images-v1/``), safely next to image builds.

Blobs are shared between images: a blob is removed only when no image left in the layout's index names it.

Concurrency: every writer of the layout holds ``kiln-locks/gc.lock`` *shared* from its first blob to its
index entry (``writing``); a collector holds it *exclusively* (``collecting``), so it waits for the running
writers and they wait for it. A blob a build has written, or found already there and is about to name, can't
be removed before its image is in the index. Index updates are serialized apart (``kiln-locks/index.lock``).

Crash safety: blobs are written to a hidden temp file and renamed (a reader never sees half a blob); a
writer killed mid-way leaves only temp files, which the next collection (no writer can be running then)
removes with the blobs nothing names.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiln.builds.oci.locks import index_lock
from kiln.builds.oci.writer import canonical
from kiln.errors import KilnError

__all__ = ["Collected", "collect", "image_blobs", "layout_bytes", "referenced_blobs"]


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KilnError(f"{path}: not a readable OCI file ({e})") from None
    if not isinstance(data, dict):
        raise KilnError(f"{path}: not a readable OCI file (not a JSON object)")
    return data


def _index(layout: Path) -> dict[str, object]:
    path = layout / "index.json"
    return _read(path) if path.is_file() else {"schemaVersion": 2, "manifests": []}


def _reference(descriptor: dict[str, object]) -> str:
    annotations = descriptor.get("annotations")
    return str(annotations.get("io.containerd.image.name", "")) if isinstance(annotations, dict) else ""


def image_blobs(layout: Path, digest: str) -> set[str]:
    """The blobs (``sha256:...``) image ``digest`` is made of: its manifest, config and layers."""
    manifest = _read(layout / "blobs" / "sha256" / digest.removeprefix("sha256:"))
    config, layers = manifest.get("config"), manifest.get("layers")
    out = {digest}
    if isinstance(config, dict):
        out.add(str(config.get("digest")))
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict):
            out.add(str(layer.get("digest")))
    return out


def referenced_blobs(layout: Path) -> set[str]:
    """Every blob an image of the layout's index names."""
    out: set[str] = set()
    manifests = _index(layout).get("manifests")
    for descriptor in manifests if isinstance(manifests, list) else []:
        if isinstance(descriptor, dict):
            out |= image_blobs(layout, str(descriptor.get("digest")))
    return out


def layout_bytes(layout: Path) -> dict[str, int]:
    """Bytes of each blob in the layout (temp files left out)."""
    folder = layout / "blobs" / "sha256"
    sizes = {}
    for blob in folder.iterdir() if folder.is_dir() else []:
        if not blob.name.startswith("."):
            with contextlib.suppress(OSError):
                sizes[f"sha256:{blob.name}"] = blob.stat().st_size
    return sizes


@dataclass
class Collected:
    removed_images: list[str] = field(default_factory=list)
    removed_blobs: list[str] = field(default_factory=list)
    freed: int = 0


def collect(layout: Path, *, remove: Iterable[str] = ()) -> Collected:
    """Drop the images ``remove`` (references ``name:tag``) from the index, then remove every blob no image left
    names and what crashed writers left (temp files). Call holding ``kiln.builds.oci.locks.collecting(layout)``."""
    result = Collected()
    gone = set(remove)
    with index_lock(layout):
        index = _index(layout)
        manifests = index.get("manifests")
        listed = [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
        kept = [m for m in listed if _reference(m) not in gone]
        result.removed_images = sorted(_reference(m) for m in listed if _reference(m) in gone)
        if len(kept) != len(listed):
            index["manifests"] = kept
            tmp = layout / f".index.json.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
            tmp.write_bytes(canonical(index))
            os.replace(tmp, layout / "index.json")
    named = referenced_blobs(layout)
    folder = layout / "blobs" / "sha256"
    for blob in sorted(folder.iterdir()) if folder.is_dir() else []:
        temp = blob.name.startswith(".")  # a writer's temp file: no writer runs while we hold the lock
        if temp or f"sha256:{blob.name}" not in named:
            with contextlib.suppress(OSError):
                size = blob.stat().st_size
                blob.unlink()
                result.freed += size
                if not temp:
                    result.removed_blobs.append(f"sha256:{blob.name}")
    notes = layout / "kiln-diff-ids"  # the writer's memory of compressed layers: drop those of removed blobs
    for note in notes.iterdir() if notes.is_dir() else []:
        with contextlib.suppress(OSError):
            if note.name.startswith(".") or note.read_text(encoding="ascii").partition(" ")[0] not in named:
                note.unlink()
    for tmp in layout.glob(".index.json.*.tmp"):
        tmp.unlink(missing_ok=True)
    return result
