"""Where Kiln keeps its data: one frozen ``Settings`` built at the entry point and passed down.

Precedence: explicit arguments (the CLI) > environment variables > defaults (platformdirs).
Nothing deeper in Kiln reads ``os.environ`` for paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONDA_VIA",
    "ENV_BATCHING",
    "ENV_CACHE_DIR",
    "ENV_CONDA_VIA",
    "ENV_DEBUG",
    "ENV_DOCKER_HOST",
    "ENV_EXPERIMENT",
    "ENV_HOME",
    "ENV_MODEL_DIR",
    "ENV_PYTHONS",
    "ENV_RUN_DIR",
    "ENV_RUN_ID",
    "ENV_WORKER_SHIM",
    "ENV_WORKSPACE",
    "STUDIO_PORT",
    "Settings",
    "debug_enabled",
    "studio_page",
]

# Every KILN_* environment variable Kiln reads or sets. The modules that run inside users' environments with
# the standard library only (kiln.run, kiln.serving.worker, kiln.serving.shim) can't import this one: they
# keep copies of the names they use, which a unit test compares with these.
ENV_HOME = "KILN_HOME"
ENV_CACHE_DIR = "KILN_CACHE_DIR"
ENV_WORKSPACE = "KILN_WORKSPACE"
ENV_DEBUG = "KILN_DEBUG"
ENV_CONDA_VIA = "KILN_CONDA_VIA"
#: the Docker-API engine Kiln uses (``unix:///run/podman/podman.sock``); else Docker's own ``DOCKER_HOST``
ENV_DOCKER_HOST = "KILN_DOCKER_HOST"
#: interpreters to build with, before the ones found on the machine (os.pathsep-separated)
ENV_PYTHONS = "KILN_PYTHONS"
#: set for a run's script (read by kiln.run)
ENV_RUN_ID = "KILN_RUN_ID"
ENV_RUN_DIR = "KILN_RUN_DIR"
ENV_EXPERIMENT = "KILN_EXPERIMENT"
#: set for a service's workers (read by kiln.serving.worker and its shim)
ENV_MODEL_DIR = "KILN_MODEL_DIR"
ENV_WORKER_SHIM = "KILN_WORKER_SHIM"
ENV_BATCHING = "KILN_BATCHING"
CONDA_VIA = ("auto", "conda", "pypi")
#: the port Kiln's studio serves on by default (``kiln studio``): ``Run.get_portal_url()`` and a service's
#: details point there. Here, not in kiln.runs or kiln.studio, so that serving can link without importing them.
STUDIO_PORT = 8790


def studio_page(path: str) -> str:
    """The studio's URL for a page (``runs/<id>``, ``services/<name>``) on its default address."""
    return f"http://127.0.0.1:{STUDIO_PORT}/{path.lstrip('/')}"


def debug_enabled(environ: Mapping[str, str]) -> bool:
    """``KILN_DEBUG`` is on: set to anything but empty, ``0``, ``false`` or ``no``. The one rule for it
    (``Settings.debug``, the CLI's tracebacks)."""
    return environ.get(ENV_DEBUG, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Settings:
    """Kiln's paths and switches.

    ``home`` holds the user's default workspace (``home/workspace``); ``cache_dir`` the build cache;
    ``workspace`` an explicit workspace folder (``--workspace`` / ``KILN_WORKSPACE``), if any.
    """

    home: Path
    cache_dir: Path
    workspace: Path | None = None
    debug: bool = False
    #: how conda packages are built: "conda" (py-rattler), "pypi" (their PyPI names, with uv), or "auto"
    #: (conda, and PyPI when the channels can't be reached)
    conda_via: str = "auto"
    #: the Docker-API engine (Docker or ``podman system service``): ``KILN_DOCKER_HOST``, else ``DOCKER_HOST``;
    #: None: Docker's default socket
    docker_host: str | None = None

    @property
    def default_workspace(self) -> Path:
        return self.home / "workspace"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, workspace: str | os.PathLike[str] | None = None,
                 ) -> Settings:
        env = os.environ if environ is None else environ
        if env.get(ENV_HOME):
            home = Path(env[ENV_HOME]).expanduser()
        else:
            import platformdirs

            home = Path(platformdirs.user_data_dir("kiln", appauthor=False))
        if env.get(ENV_CACHE_DIR):
            cache = Path(env[ENV_CACHE_DIR]).expanduser()
        elif env.get(ENV_HOME):
            cache = home / "cache"
        else:
            import platformdirs

            cache = Path(platformdirs.user_cache_dir("kiln", appauthor=False))
        ws = workspace if workspace is not None else env.get(ENV_WORKSPACE) or None
        conda_via = env.get(ENV_CONDA_VIA, "auto") or "auto"
        if conda_via not in CONDA_VIA:
            from kiln.errors import KilnError

            raise KilnError(f"{ENV_CONDA_VIA}={conda_via!r}: expected one of {', '.join(CONDA_VIA)}")
        return cls(
            conda_via=conda_via,
            home=home.resolve(),
            cache_dir=cache.resolve(),
            workspace=Path(ws).expanduser().resolve() if ws else None,
            debug=debug_enabled(env),
            docker_host=env.get(ENV_DOCKER_HOST) or env.get("DOCKER_HOST") or None,
        )
