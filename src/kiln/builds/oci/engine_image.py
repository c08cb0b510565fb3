"""An environment's image in the container engine, for what runs in it (container runs and deployments).

The image is the export of the environment's cached build by Kiln's OCI writer (``build_image``: only new
layers are written), on the definition's base image pulled through the engine (Kiln's default base
otherwise), named ``kiln/kiln_<definition hash>:<lock hash>``; the engine gets its tar only when it lacks
an image of that name with the same config digest, so a second run of the same lock loads nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.oci.writer import OciImage
    from kiln.builds.result import Progress
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["container_image", "image_python"]


def container_image(env: Environment, workspace: Workspace, *, settings: Settings,
                    progress: Progress | None = None) -> OciImage:
    """``env``'s image in the engine ``settings`` name, written and loaded if needed."""
    from kiln.builds.engine import Engine
    from kiln.builds.oci.build import build_image

    with Engine.from_settings(settings) as engine:
        problem = engine.cannot_connect()
        if problem is not None:
            raise KilnError(problem)
        return build_image(env, workspace, settings=settings, progress=progress, engine=engine)


def image_python(image: OciImage) -> str:
    """The interpreter a script runs with in ``image``: the environment's (``/kiln/env/bin/python``), or for a
    user-managed one the image's own (``python.interpreter_path``)."""
    from kiln.builds.image import ENV_PREFIX
    from kiln.builds.oci.writer import LABEL

    if image.labels.get(f"{LABEL}.user-managed") == "true":
        return image.interpreter
    return f"{ENV_PREFIX}/bin/python"
