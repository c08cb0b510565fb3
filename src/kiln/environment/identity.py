"""The build identity of a definition: a content hash over what determines its build.

Canonical form, version ``kiln-identity/1`` (a change to it is a format change and bumps the
version). A JSON object, keys sorted, no spaces, UTF-8, hashed with SHA-256:

    {"format": "kiln-identity/1",
     "docker": {"base_image": str|null,            # as written
                "base_dockerfile": str|null,       # line endings normalized to \\n, trailing blanks stripped
                "build_context": {"location_type", "location", "dockerfile_path"}|null,
                "platform": "<os>/<architecture>" lowercased},
     "python": {"user_managed": bool,
                "interpreter_path": str|null,      # only when user-managed
                "channels": [str, ...],            # order kept: it is priority
                "conda": [str, ...],               # normalized match specs, sorted (python=X.Y is here)
                "pip": [str, ...],                 # normalized requirements, sorted
                "pip_options": [str, ...]},        # whitespace-normalized, sorted
     "spark": {"repositories": [str, ...] sorted, "packages": ["group:artifact:version", ...] sorted}}

Not part of it: name, version, description, tags, environment variables, shm size, arguments,
registry credentials, the conda file's name/prefix/comments. A user-managed environment's
packages are not installed by Kiln, so its conda list does not count either.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kiln.environment import conda_specs, pip_requirements
from kiln.environment.canonical import Definition

__all__ = ["IDENTITY_FORMAT", "canonical_form", "identity_hash"]

IDENTITY_FORMAT = "kiln-identity/1"


def canonical_form(env: Definition) -> dict[str, Any]:
    docker = env.docker
    bc = docker.build_context
    python: dict[str, Any] = {"user_managed": env.python.user_managed_dependencies,
                              "interpreter_path": None, "channels": [], "conda": [], "pip": [], "pip_options": []}
    if env.python.user_managed_dependencies:
        python["interpreter_path"] = env.python.interpreter_path
    elif env.python.conda_dependencies is not None:
        cd = env.python.conda_dependencies
        python["channels"] = cd.conda_channels
        python["conda"] = sorted(conda_specs.normalize_conda_spec(s) for s in cd.conda_packages)
        python["pip"] = sorted(pip_requirements.normalize_pip_requirement(s) for s in cd.pip_packages)
        python["pip_options"] = sorted(" ".join(o.split()) for o in cd.pip_options)
    dockerfile = docker.base_dockerfile
    if dockerfile is not None:
        dockerfile = "\n".join(line.rstrip() for line in dockerfile.replace("\r\n", "\n").split("\n")).strip() + "\n"
    return {
        "format": IDENTITY_FORMAT,
        "docker": {
            "base_image": docker.base_image,
            "base_dockerfile": dockerfile,
            "build_context": None if bc is None else {
                "location_type": bc.location_type, "location": bc.location, "dockerfile_path": bc.dockerfile_path},
            "platform": f"{docker.platform.get('os', 'Linux')}/{docker.platform.get('architecture', 'amd64')}".lower(),
        },
        "python": python,
        "spark": {
            "repositories": sorted(env.spark.repositories),
            "packages": sorted(str(p) for p in env.spark.packages),
        },
    }


def identity_hash(env: Definition) -> str:
    """SHA-256 hex digest of the canonical form."""
    text = json.dumps(canonical_form(env), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
