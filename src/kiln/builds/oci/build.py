"""An environment's image: build the environment (or take its cached build), then write the image.

Images go into one OCI layout in Kiln's cache (``images-v1/``), whose blobs all images share, so a
second image writes only its new layers; ``layout``/``tar`` write it elsewhere as well.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builds.image import image_name
from kiln.builds.oci.writer import LABEL, OciImage, write_image, write_tar
from kiln.errors import KilnError

if TYPE_CHECKING:
    from collections.abc import Callable

    from kiln.builds.backends.plan import DockerPlan
    from kiln.builds.engine.client import Engine
    from kiln.builds.oci.base import BaseImage
    from kiln.builds.result import Progress
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["IMAGES_FOLDER", "build_image", "written_image"]

IMAGES_FOLDER = "images-v1"


def build_image(env: Environment, workspace: Workspace, *, settings: Settings, layout: Path | None = None,
                tar: Path | None = None, progress: Progress | None = None, base_layout: Path | None = None,
                base_tag: str | None = None, engine: Engine | None = None) -> OciImage:
    """Build ``env`` (registering it if needed) and write its image; returns the image written.

    ``base_layout`` (an OCI layout folder; ``base_tag`` picks one of its images): the base image whose layers
    go under the environment's. Else, with an ``engine``: the definition's ``docker.base_image`` (Kiln's
    default otherwise), pulled through it if needed; and the image written is loaded into it. Without
    either, the image holds the environment's layers only.
    """
    from kiln.builds import build, registered
    from kiln.builds.backends.plan import DockerPlan

    target = registered(env, workspace)
    say: Callable[[str], None] = (lambda line: progress("image", line)) if progress else (lambda line: None)
    docker = DockerPlan.of(target.docker)
    if target.python.user_managed_dependencies:
        return _user_managed(target, settings=settings, layout=layout, tar=tar, base_layout=base_layout,
                             base_tag=base_tag, engine=engine, say=say)
    result = build(target, workspace, settings=settings, progress=progress)
    if result.backend != "venv" or result.path is None or result.lock is None:
        raise KilnError(f"{result.environment}: images are written from venv builds; this one was built by the "
                        f"{result.backend} backend")
    labels = {f"{LABEL}.definition-hash": result.identity, f"{LABEL}.lock-hash": result.lock.lock_hash,
              f"{LABEL}.environment": result.environment, f"{LABEL}.python": result.python_version}
    base = None
    with _holding_base(settings, engine if base_layout is None else None):
        if base_layout is not None:
            from kiln.builds.oci.base import read_base

            base = read_base(base_layout, base_tag)
        elif engine is not None:
            from kiln.builds.oci.writer import base_image_of

            base = _engine_base(engine, docker, base_image_of(result.python_version, docker.base_image), settings,
                                say)
        image = write_image(env_dir=result.path / "env", name=image_name(target), tag=result.lock.lock_hash[:16],
                            python_version=result.python_version, labels=labels,
                            variables=dict(target.environment_variables),
                            layout=layout or settings.cache_dir / IMAGES_FOLDER, base_image=docker.base_image,
                            platform=docker.platform, base=base, log=say)
    if tar is not None:
        write_tar(image, tar)
        say(f"tar {tar}")
    if engine is not None:
        from kiln.builds.engine.images import load_image

        load_image(engine, image, settings=settings, tar=tar, log=say)
    return image


def _holding_base(settings: Settings, engine: Engine | None) -> contextlib.AbstractContextManager[None]:
    """With an engine, the saved bases' shared lock, from taking the base until the image naming it is in the index:
    a collection (``kiln cache prune``) never removes a base under a build (``kiln.builds.engine.saved``).
    ``base_from_engine`` takes it again inside: shared flocks aren't queued behind a waiting collector, so
    holding it twice can't deadlock."""
    if engine is None:
        return contextlib.nullcontext()
    from kiln.builds.engine.saved import using_bases

    return using_bases(settings.cache_dir)


def _engine_base(engine: Engine, docker: DockerPlan, base_image: str, settings: Settings,
                 say: Callable[[str], None]) -> BaseImage:
    """Step one through the engine: the Docker steps' image when the definition has some, else ``base_image``
    (from ``docker.base_image_registry`` when it names one), pulled if needed."""
    import os

    from kiln.builds.engine.base import base_from_engine, base_reference, registry_auth
    from kiln.builds.engine.steps import build_steps

    steps = build_steps(engine, docker, log=say)
    if steps is not None:
        return base_from_engine(engine, steps, cache_dir=settings.cache_dir, platform=docker.platform, log=say)
    return base_from_engine(engine, base_reference(base_image, docker.registry), cache_dir=settings.cache_dir,
                            platform=docker.platform, auth=registry_auth(docker.registry, os.environ), log=say)


def _user_managed(target: Environment, *, settings: Settings, layout: Path | None, tar: Path | None,
                  base_layout: Path | None, base_tag: str | None, engine: Engine | None,
                  say: Callable[[str], None]) -> OciImage:
    """``python.user_managed_dependencies``: the image is step one alone (the base image, or the Docker steps'),
    with the image's own Python (``python.interpreter_path``); Kiln installs nothing, so there is no step two."""
    from kiln.builds.backends.plan import DockerPlan
    from kiln.builds.oci.writer import write_base_only
    from kiln.environment.sections import DEFAULT_CPU_IMAGE

    docker = DockerPlan.of(target.docker)
    if base_layout is None and engine is None:
        raise KilnError(f"{target.name}: python.user_managed_dependencies is set: Kiln installs nothing, so its image "
                        "is the base image (or the Docker steps') alone: that needs a container engine (DOCKER_HOST) "
                        "or --base-layout")
    interpreter = target.python.interpreter_path or "python"
    labels = {f"{LABEL}.definition-hash": target.hash, f"{LABEL}.environment": f"{target.name}:{target.version}",
              f"{LABEL}.user-managed": "true"}
    with _holding_base(settings, engine if base_layout is None else None):
        if base_layout is not None:
            from kiln.builds.oci.base import read_base

            base = read_base(base_layout, base_tag)
        else:
            assert engine is not None
            base = _engine_base(engine, docker, docker.base_image or DEFAULT_CPU_IMAGE, settings, say)
        say(f"step 2: none (python.user_managed_dependencies): the image's own Python, {interpreter}")
        image = write_base_only(base=base, name=image_name(target), tag=target.hash[:16], interpreter=interpreter,
                                labels=labels, variables=dict(target.environment_variables),
                                layout=layout or settings.cache_dir / IMAGES_FOLDER, platform=docker.platform,
                                log=say)
    if tar is not None:
        write_tar(image, tar)
        say(f"tar {tar}")
    if engine is not None:
        from kiln.builds.engine.images import load_image

        load_image(engine, image, settings=settings, tar=tar, log=say)
    return image


def written_image(settings: Settings, name: str, lock_hash: str) -> dict[str, Any] | None:
    """The fields ``get_image_details`` adds for an image written for ``lock_hash`` (None: not written)."""
    from kiln.builds.oci.store import list_images

    reference = f"{name}:{lock_hash[:16]}"
    found = next((i for i in list_images(settings.cache_dir / IMAGES_FOLDER) if i.reference == reference), None)
    if found is None:
        return None
    data = found.to_dict()
    return {"imageExistState": "Succeeded", "digest": found.digest, "tag": lock_hash[:16], "reference": reference,
            "layout": str(settings.cache_dir / IMAGES_FOLDER), "size": found.size, "layers": data["layers"],
            "baseImage": data["base_image"],
            "interpreterSource": f"the base image's ({data['base_image']}) at {data['interpreter']}",
            "labels": data["labels"]}
