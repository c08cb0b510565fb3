"""A base image through the engine: pulled if the engine lacks it, then kept as an OCI layout in Kiln's cache
(``bases-v1/<image id>``), which Kiln's writer stacks the environment's layers on.

The engine hands the image over in ``docker save`` form: uncompressed layer tars named by their diff_id.
They go into the layout as they are (``...layer.v1.tar``: a blob's digest is then its diff_id), so the
layout depends on the base's content only, never on how an engine or a registry compressed it, and
saving it costs no compression. Registry credentials come from ``${VAR}`` references resolved here, at
pull time, and go to the engine for that one call: never into the cache, a log or the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builds.oci.base import BaseImage, read_base
from kiln.builds.oci.locks import writing
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.backends.plan import RegistryPlan
    from kiln.builds.engine.client import Engine

__all__ = ["BASES_FOLDER", "base_from_engine", "base_reference", "registry_auth"]

BASES_FOLDER = "bases-v1"
UNCOMPRESSED = "application/vnd.oci.image.layer.v1.tar"
_CHUNK = 1 << 20


def _has_registry(name: str) -> bool:
    first = name.split("/", 1)[0]
    return "/" in name and ("." in first or ":" in first or first == "localhost")


def base_reference(base_image: str, registry: RegistryPlan) -> str:
    """The base image's full reference: a name without a registry host is looked up in ``registry.address``
    when the definition names one (Azure ML's ``base_image_registry.address``)."""
    if registry.address and not _has_registry(base_image):
        return f"{registry.address.rstrip('/')}/{base_image}"
    return base_image


def registry_auth(registry: RegistryPlan, environ: Mapping[str, str]) -> dict[str, str] | None:
    """Credentials for the engine, resolved from the definition's ``${VAR}`` references now; None: anonymous."""
    from kiln.environment.secrets import resolve_reference

    if registry.password_reference is None:
        return None
    what = "docker.base_image_registry.password"
    password = resolve_reference(registry.password_reference, environ, what)
    username = resolve_reference(registry.username or "", environ, "docker.base_image_registry.username")
    auth = {"username": username, "password": password}
    if registry.address:
        auth["serveraddress"] = registry.address
    return auth


def base_from_engine(engine: Engine, reference: str, *, cache_dir: Path, platform: str = "linux/amd64",
                     auth: dict[str, str] | None = None, log: Callable[[str], None] | None = None) -> BaseImage:
    """The base image ``reference`` from ``engine`` (pulled first if it lacks it), as an OCI layout in the cache."""
    say = log or (lambda line: None)
    if not engine.has(reference):
        say(f"pulling {reference}")
        engine.pull(reference, auth=auth, platform=platform, log=say)
    image = engine.image(reference)
    if image.platform and image.platform.lower() != platform.lower():
        raise KilnError(f"docker.platform: the base image {reference[:200]} is {image.platform}, not {platform}: pick "
                        "a base image built for it, or set docker.platform to the base's")
    folder = cache_dir / BASES_FOLDER
    target = folder / image.id.removeprefix("sha256:")
    folder.mkdir(parents=True, exist_ok=True)
    # shared with other builds, exclusive of a collection (kiln.builds.engine.saved): the base isn't removed
    # while it is saved or read here; the caller holds it on until its image is in the index
    with writing(folder):
        if not (target / "index.json").is_file():
            say(f"base {reference}: saving {image.id[:19]} from the engine into Kiln's cache")
            staging = Path(tempfile.mkdtemp(prefix=".save-", dir=folder))
            try:
                _save(engine, reference, staging)
                try:
                    os.rename(staging, target)
                except OSError:  # another process saved it first: the same content
                    if not (target / "index.json").is_file():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            say(f"base {reference}: {image.id[:19]}, from Kiln's cache")
        os.utime(target / "index.json")  # its last use: a collection removes the least recently used base first
        return read_base(target)


def _save(engine: Engine, reference: str, layout: Path) -> None:
    """Write the engine's image ``reference`` as an OCI layout at ``layout`` (its only image, named ``reference``)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    archive = engine.save(reference, layout / "save.tar")
    with tarfile.open(archive) as tar:
        manifest = json.loads(_member(tar, "manifest.json", reference))[0]
        config_bytes = _member(tar, manifest["Config"], reference)
        layers: list[dict[str, Any]] = []
        for name in manifest["Layers"]:
            member = tar.getmember(name)
            while member.issym():  # older saves link <id>/layer.tar to the blob
                member = tar.getmember(os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname)))
            source = tar.extractfile(member)
            if source is None:
                raise KilnError(f"{reference}: the engine's save has no layer {name[:100]}")
            digest = hashlib.sha256()
            tmp = blobs / ".layer.tmp"
            with source, tmp.open("wb") as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            size = tmp.stat().st_size
            tmp.rename(blobs / digest.hexdigest())
            layers.append({"mediaType": UNCOMPRESSED, "digest": f"sha256:{digest.hexdigest()}", "size": size})
    archive.unlink()
    config = json.loads(config_bytes)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if diff_ids != [x["digest"] for x in layers]:
        raise KilnError(f"{reference}: the engine's save doesn't match its config (layers {len(layers)}, diff_ids "
                        f"{len(diff_ids)}): save it again")
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    (blobs / config_digest).write_bytes(config_bytes)
    manifest_bytes = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config_digest}",
                   "size": len(config_bytes)},
        "layers": layers}, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    (blobs / manifest_digest).write_bytes(manifest_bytes)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_digest}",
        "size": len(manifest_bytes), "annotations": {"io.containerd.image.name": reference,
                                                     "org.opencontainers.image.ref.name": reference}}]}))


def _member(tar: tarfile.TarFile, name: str, reference: str) -> bytes:
    try:
        source = tar.extractfile(name)
    except KeyError:
        source = None
    if source is None:
        raise KilnError(f"{reference}: the engine's save has no {name[:100]}")
    with source:
        return source.read()
