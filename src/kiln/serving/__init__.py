"""Serving models: InferenceConfig, local web services, the scoring server and its workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiln.serving' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
