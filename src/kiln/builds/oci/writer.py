"""Writing an OCI image from a locked build, with no daemon: an OCI layout folder and a loadable tar.

The image is an export of the same locked build that runs locally: the published ``venv`` build's
environment at ``ENV_PREFIX``, one layer per distribution (``kiln.builds.oci.content``), each layer
reproducible (``kiln.builds.oci.layer``). The config carries the definition's environment variables,
the environment activated (``VIRTUAL_ENV``, ``PATH``) and Kiln's labels; it has no creation time. So
the same lock, interpreter version and base give the same manifest digest, bit for bit, and a changed
package changes only its own layer.

The interpreter is the base image's: the environment's ``bin/python`` points at
``/usr/local/bin/python<minor>``, where Kiln's default base (the official ``python:<minor>-slim-bookworm``
image) has it. The image written here holds Kiln's layers only; the base's layers are stacked under
them by the engine that builds ``FROM`` it (the image details and the labels name the base).

The tar holds the OCI layout and a ``manifest.json`` (the ``docker save`` format), so both
``podman load`` and ``docker load`` accept it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builds.image import ENV_PREFIX
from kiln.builds.oci.content import group_small, split_environment
from kiln.builds.oci.layer import Entry, Layer, add_entry, source_date_epoch, write_layer
from kiln.builds.oci.locks import index_lock, writing
from kiln.errors import KilnError

if TYPE_CHECKING:
    from collections.abc import Callable

    from kiln.builds.oci.base import BaseImage

__all__ = ["IMAGE_PATH", "LABEL", "OciImage", "base_image_of", "canonical", "image_interpreter", "write_base_only",
           "write_image", "write_tar"]

IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
LABEL = "io.kiln"


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def image_interpreter(python_version: str) -> str:
    minor = ".".join(python_version.split(".")[:2])
    return f"/usr/local/bin/python{minor}"


def base_image_of(python_version: str, base_image: str | None) -> str:
    """The base the environment is meant to stack on: the definition's, else the official slim Python image."""
    from kiln.environment.sections import DEFAULT_CPU_IMAGE

    if base_image and base_image != DEFAULT_CPU_IMAGE:
        return base_image
    minor = ".".join(python_version.split(".")[:2])
    return f"docker.io/library/python:{minor}-slim-bookworm"


@dataclass(frozen=True)
class OciImage:
    """An image written into an OCI layout folder."""

    layout: Path
    name: str
    tag: str
    digest: str  # the manifest's
    config_digest: str
    layers: list[Layer]
    labels: dict[str, str]
    interpreter: str
    base_image: str
    env: list[str] = field(default_factory=list)
    #: the base image's layers, under ``layers`` (none: the image is Kiln's layers only)
    base_layers: list[Layer] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def size(self) -> int:
        return sum(layer.size for layer in [*self.base_layers, *self.layers])

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.reference, "name": self.name, "tag": self.tag, "digest": self.digest,
                "config_digest": self.config_digest, "layout": str(self.layout), "size": self.size,
                "interpreter": self.interpreter, "interpreter_source": f"the base image's ({self.base_image})",
                "base_image": self.base_image, "labels": dict(self.labels), "env": list(self.env),
                "base_layers": [{"digest": x.digest, "size": x.size} for x in self.base_layers],
                "layers": [{"digest": x.digest, "size": x.size, "title": x.title} for x in self.layers]}


def write_image(*, env_dir: Path, name: str, tag: str, python_version: str, labels: dict[str, str],
                variables: dict[str, str], layout: Path, base_image: str | None = None, platform: str = "linux/amd64",
                base: BaseImage | None = None, log: Callable[[str], None] | None = None) -> OciImage:
    """Write the environment in ``env_dir`` (a published ``venv`` build's ``env``) as an image into ``layout``.

    ``layout`` is created if needed; blobs already there are kept (a second image shares the unchanged
    layers). ``labels`` are Kiln's (definition hash, lock hash, ...); ``variables`` the definition's.
    """
    say = log or (lambda line: None)
    if not (env_dir / "pyvenv.cfg").is_file():
        raise KilnError(f"{env_dir}: not a built environment (no pyvenv.cfg): build it first")
    mtime = source_date_epoch()
    interpreter = image_interpreter(python_version)
    base_name = base.name if base is not None else base_image_of(python_version, base_image)
    held = f"its layers go first ({base.digest})" if base is not None else "the image holds the environment only"
    say(f"interpreter: the base image's ({base_name}) at {interpreter}; {held}; the environment is at {ENV_PREFIX}")
    # shared with other writers, exclusive of a collection: no blob written or found here is removed before
    # the index names it (kiln.builds.oci.gc)
    with writing(layout):
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        if base is not None:
            base.copy_layers(blobs)
        layers: list[Layer] = []
        groups = list(group_small(split_environment(env_dir, prefix=ENV_PREFIX, interpreter=interpreter)))
        # layers compressed side by side (zlib and hashing release the GIL: most of a first image's time), written
        # each to its own temp file; listed in their order, so the image's bytes are the same
        with ThreadPoolExecutor(max_workers=max(1, min(len(groups), os.cpu_count() or 1))) as pool:
            written = pool.map(lambda g: write_layer(g.entries, blobs, title=g.title, mtime=mtime), groups)
            for group, layer in zip(groups, written, strict=True):
                say(f"layer {layer.digest[7:19]} {layer.size:>10} bytes  {group.title}")
                layers.append(layer)
        os_name, _, arch = platform.partition("/")
        inherited = dict(item.partition("=")[::2] for item in (base.env if base is not None else []))
        image_env = [f"{k}={v}" for k, v in inherited.items() if k not in ("PATH", "VIRTUAL_ENV", *variables)]
        image_env += [f"PATH={ENV_PREFIX}/bin:{inherited.get('PATH') or IMAGE_PATH}", f"VIRTUAL_ENV={ENV_PREFIX}",
                      *(f"{k}={v}" for k, v in sorted(variables.items()))]
        all_labels = {**(base.labels if base is not None else {}), **labels, f"{LABEL}.interpreter": interpreter,
                      f"{LABEL}.base-image": base_name, "org.opencontainers.image.base.name": base_name}
        if base is not None:
            all_labels["org.opencontainers.image.base.digest"] = base.digest
        config = {
            "architecture": arch or "amd64", "os": os_name or "linux",
            "config": {"Env": image_env, "Cmd": [f"{ENV_PREFIX}/bin/python"], "Labels": all_labels},
            "rootfs": {"type": "layers", "diff_ids": [*(base.diff_ids if base is not None else []),
                                                      *(x.diff_id for x in layers)]},
            "history": [*(base.history if base is not None else []),
                        *({"created_by": f"kiln: {x.title}", "created": _created(mtime)} for x in layers)],
        }
        config_bytes = canonical(config)
        config_digest = _blob(blobs, config_bytes)
        manifest = {
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config_bytes)},
            "layers": [*(base.layers if base is not None else []),
                       *({"mediaType": LAYER_TYPE, "digest": x.digest, "size": x.size,
                          "annotations": {"org.opencontainers.image.title": x.title}} for x in layers)],
            "annotations": {"org.opencontainers.image.base.name": base_name},
        }
        manifest_bytes = canonical(manifest)
        digest = _blob(blobs, manifest_bytes)
        os.utime(blobs / digest[7:])  # the image's last write: collection removes the least recently written first
        (layout / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
        _add_to_index(layout, {"mediaType": MANIFEST_TYPE, "digest": digest, "size": len(manifest_bytes),
                               "annotations": {"org.opencontainers.image.ref.name": tag,
                                               "io.containerd.image.name": f"{name}:{tag}"}})
    say(f"image {name}:{tag} {digest}")
    return OciImage(layout=layout, name=name, tag=tag, digest=digest, config_digest=config_digest, layers=layers,
                    labels=all_labels, interpreter=interpreter, base_image=base_name, env=image_env,
                    base_layers=[] if base is None else [Layer(digest=x["digest"], diff_id=d, size=int(x["size"]),
                                                               title="base")
                                                         for x, d in zip(base.layers, base.diff_ids, strict=True)])


def write_base_only(*, base: BaseImage, name: str, tag: str, interpreter: str, labels: dict[str, str],
                    variables: dict[str, str], layout: Path, platform: str = "linux/amd64",
                    log: Callable[[str], None] | None = None) -> OciImage:
    """An image of ``base``'s layers alone, with Kiln's labels and the definition's variables: a user-managed
    environment's image (``python.user_managed_dependencies``: Kiln installs nothing; ``interpreter`` is
    the image's own Python, ``python.interpreter_path``)."""
    say = log or (lambda line: None)
    with writing(layout):  # as write_image: no collection removes a blob before the index names it
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        base.copy_layers(blobs)
        os_name, _, arch = platform.partition("/")
        inherited = dict(item.partition("=")[::2] for item in base.env)
        image_env = [f"{k}={v}" for k, v in inherited.items() if k not in variables]
        image_env += [f"{k}={v}" for k, v in sorted(variables.items())]
        all_labels = {**base.labels, **labels, f"{LABEL}.interpreter": interpreter, f"{LABEL}.base-image": base.name,
                      "org.opencontainers.image.base.name": base.name,
                      "org.opencontainers.image.base.digest": base.digest}
        config = {"architecture": arch or "amd64", "os": os_name or "linux",
                  "config": {"Env": image_env, "Cmd": [interpreter], "Labels": all_labels},
                  "rootfs": {"type": "layers", "diff_ids": list(base.diff_ids)}, "history": list(base.history)}
        config_bytes = canonical(config)
        config_digest = _blob(blobs, config_bytes)
        described = {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config_bytes)}
        manifest_bytes = canonical({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": described,
                                    "layers": list(base.layers),
                                    "annotations": {"org.opencontainers.image.base.name": base.name}})
        digest = _blob(blobs, manifest_bytes)
        (layout / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
        _add_to_index(layout, {"mediaType": MANIFEST_TYPE, "digest": digest, "size": len(manifest_bytes),
                               "annotations": {"org.opencontainers.image.ref.name": tag,
                                               "io.containerd.image.name": f"{name}:{tag}"}})
    say(f"image {name}:{tag} {digest}: the base's layers only (user-managed: Kiln installs nothing)")
    return OciImage(layout=layout, name=name, tag=tag, digest=digest, config_digest=config_digest, layers=[],
                    labels=all_labels, interpreter=interpreter, base_image=base.name, env=image_env,
                    base_layers=[Layer(digest=x["digest"], diff_id=d, size=int(x["size"]), title="base")
                                 for x, d in zip(base.layers, base.diff_ids, strict=True)])


def _created(mtime: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _blob(blobs: Path, data: bytes) -> str:
    hexdigest = hashlib.sha256(data).hexdigest()
    target = blobs / hexdigest
    if not target.exists():
        tmp = blobs / f".{hexdigest}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return f"sha256:{hexdigest}"


def _add_to_index(layout: Path, descriptor: dict[str, Any]) -> None:
    """Put ``descriptor`` into the layout's ``index.json``, replacing one of the same name (tag)."""
    with index_lock(layout):
        _change_index(layout, descriptor)


def _change_index(layout: Path, descriptor: dict[str, Any]) -> None:
    path = layout / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": []}
    if path.is_file():
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KilnError(f"{path}: not a readable OCI index ({e})") from None
    ref = descriptor["annotations"]["io.containerd.image.name"]
    kept = [m for m in index.get("manifests", []) if m.get("annotations", {}).get("io.containerd.image.name") != ref]
    index["manifests"] = sorted([*kept, descriptor], key=lambda m: m["annotations"]["io.containerd.image.name"])
    tmp = path.with_name(f".index.json.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    tmp.write_bytes(canonical(index))
    os.replace(tmp, path)


def write_tar(image: OciImage, tar: Path) -> Path:
    """One image as a tar that ``podman load`` / ``docker load`` accept: its OCI layout (only its own blobs)
    plus ``manifest.json``; entries sorted, times fixed, so the tar too is the same for the same image."""
    blobs = image.layout / "blobs" / "sha256"
    manifest_bytes = (blobs / image.digest[7:]).read_bytes()
    every = [*image.base_layers, *image.layers]
    names = [image.digest[7:], image.config_digest[7:], *(x.digest[7:] for x in every)]
    docker = [{"Config": f"blobs/sha256/{image.config_digest[7:]}", "RepoTags": [image.reference],
               "Layers": [f"blobs/sha256/{x.digest[7:]}" for x in every]}]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": MANIFEST_TYPE, "digest": image.digest, "size": len(manifest_bytes),
                            "annotations": {"org.opencontainers.image.ref.name": image.tag,
                                            "io.containerd.image.name": image.reference}}]}
    entries = [Entry("blobs", "dir"), Entry("blobs/sha256", "dir"),
               Entry("index.json", "file", data=canonical(index)),
               Entry("manifest.json", "file", data=canonical(docker)),
               Entry("oci-layout", "file", data=canonical({"imageLayoutVersion": "1.0.0"})),
               *(Entry(f"blobs/sha256/{n}", "file", source=blobs / n) for n in dict.fromkeys(names))]
    tar.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar.with_name(f".{tar.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
        for entry in sorted(entries, key=lambda e: e.name.encode()):
            add_entry(out, entry, 0)
    os.replace(tmp, tar)
    return tar

