"""A base image read from an OCI layout folder: its layers go under Kiln's, its config is the start of ours.

No registry is needed: a base pulled once by any tool (``skopeo copy docker://python:3.12-slim
oci:DIR:3.12``) or made locally is read from its layout. Its layers are copied as they are (their
digests don't change), so the image's digest depends on the base's digest, never on where it was read.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.errors import KilnError, NotFoundError

__all__ = ["BaseImage", "read_base"]


@dataclass(frozen=True)
class BaseImage:
    name: str  # the ref name in its layout's index (or its digest)
    digest: str  # the base's manifest digest
    blobs: Path
    #: the base's layer descriptors, as its manifest has them
    layers: list[dict[str, Any]]
    diff_ids: list[str]
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def copy_layers(self, blobs: Path) -> None:
        """Put the base's layer blobs into ``blobs`` (hardlinked when the file system allows)."""
        for layer in self.layers:
            name = layer["digest"].removeprefix("sha256:")
            target = blobs / name
            if target.exists():
                continue
            source = self.blobs / name
            try:
                os.link(source, target)
            except FileExistsError:
                continue  # another writer put it there meanwhile
            except OSError:  # another file system: a copy, renamed into place (never a half blob visible)
                tmp = blobs / f".{name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
                try:
                    shutil.copyfile(source, tmp)
                    os.replace(tmp, target)
                finally:
                    tmp.unlink(missing_ok=True)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path}: not found: the base image's OCI layout is incomplete") from None
    except (OSError, ValueError) as e:
        raise KilnError(f"{path}: not a readable OCI file ({e})") from None


def read_base(layout: Path, tag: str | None = None) -> BaseImage:
    """The image ``tag`` of the OCI layout ``layout`` (its only image when ``tag`` is None)."""
    index = _read(layout / "index.json")
    manifests = index.get("manifests", [])
    if tag is not None:
        manifests = [m for m in manifests if tag in (m.get("annotations", {}).get("org.opencontainers.image.ref.name"),
                                                      m.get("annotations", {}).get("io.containerd.image.name"))]
    if len(manifests) != 1:
        names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name", m.get("digest")) for m in
                 index.get("manifests", [])]
        raise NotFoundError(f"{layout}: {'no image tagged ' + repr(tag) if tag else 'more than one image'} in this "
                            f"OCI layout (it has: {', '.join(map(str, names))[:300] or 'none'})")
    descriptor = manifests[0]
    blobs = layout / "blobs" / "sha256"
    manifest = _read(blobs / descriptor["digest"].removeprefix("sha256:"))
    if "layers" not in manifest:
        raise KilnError(f"{layout}: {descriptor['digest']} is not an image manifest (an index of platforms?): "
                        "copy one platform's image into the layout")
    config = _read(blobs / manifest["config"]["digest"].removeprefix("sha256:"))
    inner = config.get("config") or {}
    ref = descriptor.get("annotations", {}).get("io.containerd.image.name") or \
        descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") or descriptor["digest"]
    return BaseImage(name=ref, digest=descriptor["digest"], blobs=blobs, layers=list(manifest["layers"]),
                     diff_ids=list(config.get("rootfs", {}).get("diff_ids", [])), env=list(inner.get("Env") or []),
                     labels=dict(inner.get("Labels") or {}), history=list(config.get("history") or []))
