"""The images in Kiln's cache: one OCI layout (``images-v1/``) whose blobs all images share.

Listing reads ``index.json`` and each image's manifest and config; removing an image drops it from the
index, then deletes the blobs no remaining image names (a layer two images share stays).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.builds.oci.writer import LABEL
from kiln.errors import KilnError, NotFoundError

__all__ = ["StoredImage", "list_images", "remove_image"]


@dataclass(frozen=True)
class StoredImage:
    reference: str  # name:tag
    digest: str
    size: int  # bytes of its blobs (layers, config, manifest)
    labels: dict[str, str]
    layers: list[dict[str, Any]]
    env: list[str]

    @property
    def name(self) -> str:
        return self.reference.rpartition(":")[0]

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.reference, "digest": self.digest, "size": self.size, "labels": dict(self.labels),
                "definition_hash": self.labels.get(f"{LABEL}.definition-hash"),
                "lock_hash": self.labels.get(f"{LABEL}.lock-hash"),
                "environment": self.labels.get(f"{LABEL}.environment"),
                "interpreter": self.labels.get(f"{LABEL}.interpreter"),
                "base_image": self.labels.get(f"{LABEL}.base-image"), "env": list(self.env),
                "layers": list(self.layers)}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KilnError(f"{path}: not a readable OCI file ({e})") from None


def _index(layout: Path) -> dict[str, Any]:
    path = layout / "index.json"
    return _read(path) if path.is_file() else {"schemaVersion": 2, "manifests": []}


def list_images(layout: Path) -> list[StoredImage]:
    """Every image of the layout, by reference."""
    blobs = layout / "blobs" / "sha256"
    out = []
    for descriptor in _index(layout).get("manifests", []):
        ref = descriptor.get("annotations", {}).get("io.containerd.image.name", "")
        manifest = _read(blobs / descriptor["digest"].removeprefix("sha256:"))
        config = _read(blobs / manifest["config"]["digest"].removeprefix("sha256:"))
        size = descriptor["size"] + manifest["config"]["size"] + sum(x["size"] for x in manifest["layers"])
        layers = [{"digest": x["digest"], "size": x["size"],
                   "title": x.get("annotations", {}).get("org.opencontainers.image.title") or "base"}
                  for x in manifest["layers"]]
        out.append(StoredImage(reference=ref, digest=descriptor["digest"], size=size,
                               labels=config.get("config", {}).get("Labels", {}) or {}, layers=layers,
                               env=config.get("config", {}).get("Env", []) or []))
    return sorted(out, key=lambda i: i.reference)


def remove_image(layout: Path, reference: str) -> tuple[StoredImage, int]:
    """Remove the image ``reference`` (``name:tag``); returns it and the bytes of blobs freed (a blob another image
    names stays). Waits for image builds writing into ``layout`` (``kiln.builds.oci.gc``)."""
    from kiln.builds.oci.gc import collect
    from kiln.builds.oci.locks import collecting

    with collecting(layout):
        found = next((i for i in list_images(layout) if i.reference == reference), None)
        if found is None:
            raise NotFoundError(f"image {reference[:200]}: no such image in {layout}")
        return found, collect(layout, remove=[reference]).freed
