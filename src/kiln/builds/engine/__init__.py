"""A Docker-API engine (Docker, or ``podman system service``) for what needs one: pulling base images,
building Dockerfiles, loading Kiln's image tars, pushing to a registry (see ``kiln.builds.engine.client``)."""

from __future__ import annotations

from kiln.builds.engine.client import DEFAULT_ENGINE_URL, Engine, EngineError, EngineImage, engine_for
from kiln.builds.engine.conf import CONTAINERS_CONF, registries_conf

__all__ = ["CONTAINERS_CONF", "DEFAULT_ENGINE_URL", "Engine", "EngineError", "EngineImage", "engine_for",
           "registries_conf"]
