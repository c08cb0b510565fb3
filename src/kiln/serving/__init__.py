"""Serving models: InferenceConfig, local web services, the scoring server and its workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

__all__ = ["DeploymentConfiguration", "InferenceConfig", "LocalWebservice", "Webservice"]

_LAZY = {
    "DeploymentConfiguration": "kiln.serving.config",
    "InferenceConfig": "kiln.serving.config",
    "LocalWebservice": "kiln.serving.webservice",
    "Webservice": "kiln.serving.webservice",
}

if TYPE_CHECKING:
    from kiln.serving.config import DeploymentConfiguration, InferenceConfig
    from kiln.serving.webservice import LocalWebservice, Webservice


__getattr__ = lazy_exports(__name__, _LAZY)
