"""``kiln.Workspace``: a workspace that can also build environments and register the models of runs.

The registry itself (``kiln.workspace.Workspace``) knows environments, runs, models and services as
records; the actions that need the builds or serving packages live here, one level up, so that
``Environment.build(ws)`` and ``Run.register_model(...)`` reach them through the workspace they
were given, never through an upward import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kiln.workspace import workspace as _registry

if TYPE_CHECKING:
    from kiln.builds.builder import BuildResult, Progress
    from kiln.builds.handle import BuildHandle
    from kiln.builds.image import ImageDetails
    from kiln.environment.environment import Environment
    from kiln.runs.experiment import Experiment
    from kiln.sdk.compute import ComputeTarget
    from kiln.serving.model import Model
    from kiln.serving.webservice import Webservice

__all__ = ["Workspace"]


class Workspace(_registry.Workspace):
    """A workspace folder (see ``kiln.workspace.workspace.Workspace``), with builds and model registration."""

    # ---- Azure ML's collections: name → object -------------------------------------------------------

    @property
    def models(self) -> dict[str, Model]:
        """Name → the latest version of each registered model."""
        from kiln.serving.model import Model

        return {m.name: m for m in sorted(Model.list(self, latest=True), key=lambda m: m.name)}

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Name → each experiment that has runs."""
        from kiln.runs.experiment import Experiment

        return {e.name: e for e in Experiment.list(self)}

    @property
    def webservices(self) -> dict[str, Webservice]:
        """Name → each deployed service."""
        from kiln.serving.webservice import Webservice

        return {w.name: w for w in Webservice.list(self)}

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        """Name → each compute target runs can use here: ``local``, ``container``, then the attached ones by name."""
        from kiln.sdk.compute import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    def build_environment(self, environment: Environment, *, upgrade: bool = False, locked: bool = False,
                          progress: Progress | None = None) -> BuildResult:
        """See ``Environment.build_local``: register ``environment`` if needed, build it, wait."""
        from kiln.builds import build

        return build(environment, self, settings=self.settings, upgrade=upgrade, locked=locked, progress=progress)

    def build_environment_in_background(self, environment: Environment, *, upgrade: bool = False) -> BuildHandle:
        """See ``Environment.build``: a handle on a build running in the background."""
        from kiln.builds import build_in_background

        return build_in_background(environment, self, settings=self.settings, upgrade=upgrade)

    def build_environment_image(self, environment: Environment, *, progress: Progress | None = None,
                                push: bool = False) -> ImageDetails:
        """See ``Environment.build_local(useDocker=True, pushImageToWorkspaceAcr=...)``: build, write the OCI image
        (and push it to the workspace's registry), return its details."""
        from kiln.builds import build_image_details

        return build_image_details(environment, self, settings=self.settings, progress=progress, push=push)

    def environment_image_details(self, environment: Environment) -> ImageDetails:
        """See ``Environment.get_image_details``."""
        from kiln.builds import get_image_details

        return get_image_details(environment, self, settings=self.settings)

    def register_model_file(self, model_path: str | os.PathLike[str], model_name: str, *,
                            tags: dict[str, str] | None = None, description: str | None = None,
                            run_id: str | None = None, **kwargs: Any) -> Model:
        """See ``Run.register_model``: register a file or folder (of a run) as a model version."""
        from kiln.serving.model import Model

        return Model.register(self, model_path, model_name, tags=tags, description=description, run_id=run_id,
                              **kwargs)
