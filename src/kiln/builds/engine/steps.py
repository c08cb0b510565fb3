"""Step one of Azure ML's two: the definition's Docker steps (``docker.base_dockerfile``, or a
``docker.build_context`` folder with its Dockerfile), built through the engine.

The result is named by what it is built from, ``kiln/kiln_steps_<hash>``: the hash of the Dockerfile's
text, every file of the context (path, executable bit, content) and the platform. An engine that has an
image of that name already built it from the same inputs, so step one is skipped; a changed Dockerfile or
context file gives another name. (As with ``docker build``, what a ``RUN`` step downloads is not part of
the name: it is built again only when its inputs change, or after ``kiln image rm``/``podman rmi``.)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.backends.plan import DockerPlan
    from kiln.builds.engine.client import Engine

__all__ = ["STEPS_LABEL", "build_steps", "dockerfile_used", "steps_key"]

STEPS_LABEL = "io.kiln.steps-hash"


def _context(docker: DockerPlan) -> tuple[Path | None, str]:
    """The build context folder (None: the Dockerfile alone) and the Dockerfile's path in it."""
    if docker.build_context_location is None:
        return None, "Dockerfile"
    location = docker.build_context_location
    if docker.build_context_type == "git" or "://" in location:
        raise KilnError(f"docker.build_context.location: {location[:200]!r}: Kiln builds contexts from a local folder "
                        "(DockerBuildContext.from_local_directory); clone the repository first")
    folder = Path(location)
    if not folder.is_dir():
        raise KilnError(f"docker.build_context.location: {location[:200]!r} is not a folder")
    return folder, docker.build_context_dockerfile or "Dockerfile"


def dockerfile_used(docker: DockerPlan) -> str | None:
    """The text of the Docker steps' Dockerfile (None: the definition has no Docker steps)."""
    if docker.dockerfile is not None:
        return docker.dockerfile
    folder, name = _context(docker)
    if folder is None:
        return None
    path = folder / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise KilnError(f"docker.build_context.dockerfile_path: can't read {path} ({e.strerror or e})") from None


def steps_key(docker: DockerPlan) -> str | None:
    """The hash naming the Docker steps' image (None: no Docker steps)."""
    text = dockerfile_used(docker)
    if text is None:
        return None
    sha = hashlib.sha256()
    sha.update(f"kiln-docker-steps-v1\0{docker.platform}\0{len(text.encode())}\0".encode())
    sha.update(text.encode())
    folder, name = _context(docker)
    if folder is not None:
        sha.update(f"\0dockerfile\0{name}\0".encode())
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for file in sorted(files):
                path = Path(root) / file
                rel = path.relative_to(folder).as_posix()
                if path.is_symlink():
                    sha.update(f"\0link\0{rel}\0{os.readlink(path)}".encode())
                    continue
                content = hashlib.sha256()
                with path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        content.update(chunk)
                sha.update(f"\0file\0{rel}\0{os.access(path, os.X_OK)}\0{content.hexdigest()}".encode())
    return sha.hexdigest()


def build_steps(engine: Engine, docker: DockerPlan, *, log: Callable[[str], None] | None = None) -> str | None:
    """Build the Docker steps through ``engine`` unless it has them already; the image's reference, or None
    when the definition has no Docker steps."""
    say = log or (lambda line: None)
    key = steps_key(docker)
    if key is None:
        return None
    reference = f"kiln/kiln_steps_{key[:32]}:latest"
    if engine.has(reference):
        say(f"step 1: the Docker steps' image {reference}, built before from the same Dockerfile and context")
        return reference
    folder, name = _context(docker)
    say(f"step 1: building the Docker steps ({'the build context ' + str(folder) if folder else 'the Dockerfile'})")
    labels = {STEPS_LABEL: key}
    if folder is not None:
        engine.build(folder, tag=reference, dockerfile=name, platform=docker.platform, labels=labels, log=say)
        return reference
    with tempfile.TemporaryDirectory(prefix="kiln-steps-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(docker.dockerfile or "", encoding="utf-8")
        engine.build(Path(tmp), tag=reference, platform=docker.platform, labels=labels, log=say)
    return reference
