"""Kiln's images and an engine: loading an image Kiln wrote, and pushing it to a registry.

A push goes through the engine (``docker push`` / podman's compatible API): the engine asks the registry
which blobs it has and sends only the others, so a second image that differs by one package sends that
package's layer (and the small config and manifest). The registry's credentials come from ``${VAR}``
references, resolved here for the one call.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builds.oci.writer import OciImage, write_tar
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.engine.client import Engine, PushResult
    from kiln.settings import Settings

__all__ = ["load_image", "push_image", "stored_image", "workspace_registry_auth"]


def load_image(engine: Engine, image: OciImage, *, settings: Settings, tar: Path | None = None,
               log: Callable[[str], None] | None = None) -> None:
    """Load ``image`` into ``engine`` unless it has it already (the same name:tag with Kiln's config digest)."""
    say = log or (lambda line: None)
    if engine.has(image.reference) and engine.image(image.reference).id == image.config_digest:
        say(f"engine {engine.url}: has {image.reference}")
        return
    if tar is None:
        folder = settings.cache_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="image-", suffix=".tar", dir=folder)
        os.close(fd)
        try:
            engine.load(write_tar(image, Path(name)))
        finally:
            os.unlink(name)
    else:
        engine.load(tar)
    say(f"engine {engine.url}: loaded {image.reference}")


def stored_image(layout: Path, reference: str) -> OciImage:
    """The image ``reference`` (``name:tag``) of Kiln's image layout, as the writer describes what it wrote."""
    import json

    from kiln.builds.oci.layer import Layer
    from kiln.builds.oci.store import list_images

    found = next((i for i in list_images(layout) if i.reference == reference), None)
    if found is None:
        from kiln.errors import NotFoundError

        raise NotFoundError(f"image {reference[:200]}: no such image in Kiln's cache (see kiln image list)")
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / found.digest.removeprefix("sha256:")).read_text(encoding="utf-8"))
    layers = [Layer(digest=x["digest"], diff_id="", size=int(x["size"]),
                    title=x.get("annotations", {}).get("org.opencontainers.image.title", "base"))
              for x in manifest["layers"]]
    data = found.to_dict()
    name, _, tag = reference.rpartition(":")
    return OciImage(layout=layout, name=name, tag=tag, digest=found.digest,
                    config_digest=manifest["config"]["digest"], layers=layers, labels=dict(found.labels),
                    interpreter=str(data["interpreter"] or ""), base_image=str(data["base_image"] or ""),
                    env=list(found.env))


def workspace_registry_auth(registry: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str] | None:
    """The engine's credentials for a workspace's registry (``{"address", "username", "password"}`` with
    ``${VAR}`` references), resolved now; None: anonymous."""
    from kiln.environment.secrets import resolve_reference

    if not registry.get("password"):
        return None
    what = f"the workspace's registry {registry.get('address')}"
    return {"username": resolve_reference(str(registry.get("username") or ""), environ, f"{what}: username"),
            "password": resolve_reference(str(registry["password"]), environ, f"{what}: password"),
            "serveraddress": str(registry.get("address"))}


def push_image(engine: Engine, image: OciImage, registry: str, *, settings: Settings,
               auth: dict[str, str] | None = None, log: Callable[[str], None] | None = None) -> PushResult:
    """Push ``image`` to ``registry`` (``host:port``) as ``registry/name:tag``, loading it into the engine first."""
    say = log or (lambda line: None)
    if not registry.strip() or "://" in registry:
        raise KilnError(f"registry {registry[:200]!r}: expected an address (host:port), without a scheme")
    load_image(engine, image, settings=settings, log=say)
    target = f"{registry.rstrip('/')}/{image.reference}"
    engine.tag(image.reference, target)
    say(f"pushing {target}")
    result = engine.push(target, auth=auth, log=say)
    say(f"pushed {target} {result.digest or ''}".rstrip())
    return result
