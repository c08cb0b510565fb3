"""Building environments: interpreters, locks, backends and the build cache.

The entry points here take an ``Environment``, register it when needed (curated ones excepted),
and hand it to the builder with the user's ``Settings``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.builds.handle import BuildHandle
    from kiln.builds.image import ImageDetails
    from kiln.builds.result import BuildResult, Progress
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["build", "build_image_details", "build_in_background", "get_image_details", "registered"]


def registered(env: Environment, workspace: Workspace) -> Environment:
    """``env`` as a registered version (registering it if it isn't; curated ones are already)."""
    from kiln.environment.names import is_curated_name

    if is_curated_name(env.name):
        return workspace.get_environment(env.name, env.version)
    if env.version is not None and workspace.is_registered_as(env, env.version):
        return env  # an older version stays that version: building it must not register it again
    return workspace.register_environment(env)


def build(env: Environment, workspace: Workspace, *, settings: Settings | None = None, upgrade: bool = False,
          locked: bool = False, progress: Progress | None = None) -> BuildResult:
    from kiln.builds.builder import build_environment

    return build_environment(registered(env, workspace), workspace, settings=settings or workspace.settings,
                             upgrade=upgrade, locked=locked, progress=progress)


def build_in_background(env: Environment, workspace: Workspace, *, settings: Settings | None = None,
                        upgrade: bool = False) -> BuildHandle:
    from kiln.builds.handle import BuildHandle

    return BuildHandle(registered(env, workspace), workspace, settings=settings or workspace.settings,
                       upgrade=upgrade)


def get_image_details(env: Environment, workspace: Workspace, *, settings: Settings | None = None) -> ImageDetails:
    from kiln.builds.image import image_details
    from kiln.builds.locking import lock_environment
    from kiln.builds.uv import uv_version

    target = registered(env, workspace)
    settings = settings or workspace.settings
    if target.python.user_managed_dependencies:
        from kiln.builds.oci.build import written_image

        details = image_details(target, None, None, uv_version())
        written = written_image(settings, details.image, target.hash)  # tagged by the definition: no lock
        if written is not None:
            details.update(written)
        if workspace.container_registry is not None:
            details["registry"] = workspace.container_registry["address"]
        return details
    interpreter, lock, _, _ = lock_environment(target, workspace, settings=settings)
    details = image_details(target, lock, interpreter, uv_version())
    from kiln.builds.oci.build import written_image

    written = written_image(settings, details.image, lock.lock_hash)
    if written is not None:  # what was really built: its digest and layers
        details.update(written)
    registry = workspace.container_registry
    if registry is not None:  # where pushes go (Azure's: the workspace's container registry)
        details["registry"] = registry["address"]
    return details


def build_image_details(env: Environment, workspace: Workspace, *, settings: Settings | None = None,
                        progress: Progress | None = None, push: bool = False) -> ImageDetails:
    """``build_local(useDocker=True)``: build ``env``, write its OCI image into Kiln's cache, return its details.
    ``push`` (``pushImageToWorkspaceAcr=True``): also push it to the workspace's registry, through the engine."""
    import os

    from kiln.builds.engine import engine_for
    from kiln.builds.oci.build import build_image

    settings = settings or workspace.settings
    registry = workspace.container_registry
    if push and registry is None:
        from kiln.errors import WorkspaceError

        raise WorkspaceError(f"{workspace.path}: pushImageToWorkspaceAcr=True, but the workspace has no registry: "
                             "`kiln workspace create NAME --registry HOST:PORT` or ws.set_container_registry(...)")
    engine = engine_for(settings)  # the one DOCKER_HOST / KILN_DOCKER_HOST names: the base from it, loaded into it
    if push:
        from kiln.builds.engine import Engine, EngineError

        engine = engine or Engine(None)  # else Docker's own socket
        reason = engine.cannot_connect()
        if reason is not None:
            raise EngineError(f"pushImageToWorkspaceAcr=True: {reason}")
    pushed = None
    try:
        image = build_image(env, workspace, settings=settings, progress=progress, engine=engine)
        if push and engine is not None and registry is not None:
            from kiln.builds.engine.images import push_image, workspace_registry_auth

            say = (lambda line: progress("push", line)) if progress else None
            pushed = push_image(engine, image, registry["address"], settings=settings,
                                auth=workspace_registry_auth(registry, os.environ), log=say)
    finally:
        if engine is not None:
            engine.close()
    details = get_image_details(env, workspace, settings=settings)
    if pushed is not None:
        details.update({"registryImage": pushed.reference, "registryDigest": pushed.digest})
    return details
