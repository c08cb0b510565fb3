"""Kiln: local-first software environments for machine learning.

The public API keeps Azure ML SDK v1's names, so code ports by changing imports::

    from kiln import Workspace, Environment, CondaDependencies
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

__version__ = "0.1.0"
#: Azure ML SDK v1 spells it ``azureml.core.VERSION``
VERSION = __version__

__all__ = [
    "VERSION",
    "ComputeTarget",
    "CondaDependencies",
    "ContainerRegistry",
    "DockerBuildContext",
    "Environment",
    "EnvironmentReference",
    "Experiment",
    "InferenceConfig",
    "KilnError",
    "LocalWebservice",
    "Model",
    "RayCompute",
    "Run",
    "RunConfiguration",
    "ScriptRunConfig",
    "SparkPackage",
    "Webservice",
    "Workspace",
    "__version__",
]

# Imported on first use, so that `import kiln` (and the CLI) start fast.
_LAZY = {
    "CondaDependencies": "kiln.environment.conda",
    "ContainerRegistry": "kiln.environment.sections",
    "DockerBuildContext": "kiln.environment.sections",
    "SparkPackage": "kiln.environment.sections",
    "Environment": "kiln.environment.environment",
    "EnvironmentReference": "kiln.environment.environment",
    "KilnError": "kiln.errors",
    "Workspace": "kiln.sdk.workspace",
    "ComputeTarget": "kiln.sdk.compute",
    "RayCompute": "kiln.sdk.compute",
    "Experiment": "kiln.runs.experiment",
    "Run": "kiln.runs.run",
    "RunConfiguration": "kiln.runs.config",
    "ScriptRunConfig": "kiln.runs.config",
    "Model": "kiln.serving.model",
    "InferenceConfig": "kiln.serving.config",
    "LocalWebservice": "kiln.serving.webservice",
    "Webservice": "kiln.serving.webservice",
}

if TYPE_CHECKING:
    from kiln.environment.conda import CondaDependencies
    from kiln.environment.environment import Environment, EnvironmentReference
    from kiln.environment.sections import ContainerRegistry, DockerBuildContext, SparkPackage
    from kiln.errors import KilnError
    from kiln.runs.config import RunConfiguration, ScriptRunConfig
    from kiln.runs.experiment import Experiment
    from kiln.runs.run import Run
    from kiln.sdk.compute import ComputeTarget, RayCompute
    from kiln.sdk.workspace import Workspace
    from kiln.serving.config import InferenceConfig
    from kiln.serving.model import Model
    from kiln.serving.webservice import LocalWebservice, Webservice


__getattr__ = lazy_exports(__name__, _LAZY)

def __dir__() -> list[str]:
    return sorted(__all__)
