"""A small client of a Docker-API engine: Docker itself, or ``podman system service`` (both speak the Docker
Engine API; Kiln talks to either through the ``docker`` SDK, the optional extra ``kiln[docker]``).

Kiln needs no engine to write images (``kiln.builds.oci``); it uses one for what only an engine does:
pulling a base image from a registry, building a Dockerfile (the definition's "Docker steps"), loading
the images Kiln wrote so that containers can run them, and pushing to a registry. Every call names the
engine's address in its errors; credentials are passed per call (resolved from ``${VAR}`` references by
the caller) and never kept, logged or put in a message (``mask``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.environment.secrets import mask
from kiln.errors import KilnError, NotFoundError

if TYPE_CHECKING:
    import docker

__all__ = ["API_VERSION", "DEFAULT_ENGINE_URL", "HOW_TO_START", "Engine", "EngineError", "EngineImage", "PushResult",
           "engine_for", "split_reference"]

#: Docker's own socket; podman users point DOCKER_HOST (or KILN_DOCKER_HOST) at their service's socket
DEFAULT_ENGINE_URL = "unix:///var/run/docker.sock"
#: podman 4's compatible API (Docker 20.10's): asking for it saves a round trip and works with newer Dockers too
API_VERSION = "1.41"
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
HOW_TO_START = ("start one: `podman system service --time=0 unix:///run/podman/podman.sock &` then "
          "`export DOCKER_HOST=unix:///run/podman/podman.sock` (or start Docker's daemon)")


class EngineError(KilnError):
    """The container engine can't be reached, or refused an operation."""


@dataclass(frozen=True)
class EngineImage:
    """An image the engine holds."""

    id: str
    tags: list[str]
    size: int
    labels: dict[str, str] = field(default_factory=dict)
    #: ``repository@sha256:...``: the manifest digests the image has in registries it was pushed to or pulled from
    repo_digests: list[str] = field(default_factory=list)
    #: ``os/architecture``
    platform: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tags": list(self.tags), "size": self.size, "labels": dict(self.labels),
                "repo_digests": list(self.repo_digests), "platform": self.platform}


@dataclass(frozen=True)
class PushResult:
    reference: str
    #: the manifest digest the registry has for it
    digest: str | None


def split_reference(reference: str) -> tuple[str, str]:
    """``registry:5000/a/b:tag`` -> (``registry:5000/a/b``, ``tag``); no tag: ``latest``."""
    if "@" in reference:
        repo, _, digest = reference.partition("@")
        return repo, digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, "latest"


def _image(image: Any) -> EngineImage:
    attrs = image.attrs
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or attrs.get("Labels") or {}
    platform = f"{attrs.get('Os', '')}/{attrs.get('Architecture', '')}" if attrs.get("Os") else ""
    return EngineImage(id=str(attrs.get("Id", image.id)), tags=list(attrs.get("RepoTags") or []),
                       size=int(attrs.get("Size") or 0), labels=dict(labels),
                       repo_digests=list(attrs.get("RepoDigests") or []), platform=platform)


def engine_for(settings: Any) -> Engine | None:
    """The engine the settings name (``KILN_DOCKER_HOST`` / ``DOCKER_HOST``), or None when they name none:
    Kiln then writes images without one (no base pulled, nothing loaded)."""
    url = getattr(settings, "docker_host", None)
    return Engine(url) if url else None


class Engine:
    """A Docker-API engine at ``url`` (``unix:///path/to.sock``, ``tcp://host:port``); connects on first use."""

    def __init__(self, url: str | None = None, *, timeout: float = 600) -> None:
        self.url = url or DEFAULT_ENGINE_URL
        self._timeout = timeout
        self._client: docker.DockerClient | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Engine:
        """The engine the settings name (``KILN_DOCKER_HOST``, else ``DOCKER_HOST``), else Docker's socket."""
        return cls(getattr(settings, "docker_host", None))

    # -- connection ---------------------------------------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        """The ``docker`` SDK's client (for what this class doesn't wrap: containers)."""
        if self._client is None:
            if self.url.startswith("unix://") and not Path(self.url[len("unix://"):]).exists():
                # said before connecting: the SDK leaks the socket of a failed connect
                raise EngineError(f"no container engine at {self.url} (no such socket): {HOW_TO_START}")
            try:
                import docker
            except ImportError:
                raise EngineError("the container engine needs the `docker` package: pip install 'kiln[docker]'"
                                  ) from None
            try:
                self._client = docker.DockerClient(base_url=self.url, version=API_VERSION, timeout=int(self._timeout))
            except docker.errors.DockerException as e:
                raise EngineError(f"container engine {self.url}: {_cut(mask(str(e)))}") from None
        return self._client

    def cannot_connect(self) -> str | None:
        """Why the engine can't be used (not installed, not running, not answering), or None."""
        try:
            self.client.ping()
        except EngineError as e:
            return str(e)
        except Exception as e:  # requests' and the SDK's errors alike: the engine isn't there
            reason = _cut(mask(str(e)))
            return f"no container engine answers at {self.url} ({reason}): {HOW_TO_START}"
        return None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        import docker.errors

        try:
            return fn()
        except docker.errors.ImageNotFound as e:
            raise NotFoundError(f"container engine {self.url}: {what}: {_cut(mask(_explain(e)))}") from None
        except docker.errors.DockerException as e:
            raise EngineError(f"container engine {self.url}: {what} failed: {_cut(mask(_explain(e)))}") from None
        except OSError as e:  # requests' ConnectionError is one
            raise EngineError(f"container engine {self.url}: {what} failed: {_cut(mask(str(e)))}; "
                              f"is it running? {HOW_TO_START}") from None

    # -- images -------------------------------------------------------------------------------------------------

    def images(self) -> list[EngineImage]:
        return [_image(i) for i in self._call("listing images", lambda: self.client.images.list())]

    def image(self, reference: str) -> EngineImage:
        """The image ``reference`` (a name, ``name:tag`` or id); NotFoundError if the engine has none."""
        return _image(self._call(f"image {reference}", lambda: self.client.images.get(reference)))

    def has(self, reference: str) -> bool:
        try:
            self.image(reference)
        except NotFoundError:
            return False
        return True

    def remove(self, reference: str, *, force: bool = False) -> None:
        self._call(f"removing {reference}", lambda: self.client.images.remove(reference, force=force))

    def tag(self, reference: str, target: str) -> None:
        repo, tag = split_reference(target)
        self._call(f"tagging {reference} as {target}",
                   lambda: self.client.images.get(reference).tag(repo, tag))

    def load(self, tar: Path) -> list[str]:
        """Load an image tar (``docker save`` format, as Kiln's writer makes): the references loaded."""

        def load() -> list[str]:
            with tar.open("rb") as data:
                loaded = self.client.images.load(data)
            return [t for image in loaded for t in (image.tags or [image.id])]

        return list(self._call(f"loading {tar}", load))

    def save(self, reference: str, tar: Path) -> Path:
        """Write the image ``reference`` as a ``docker save`` tar at ``tar``."""

        def save() -> None:
            with tar.open("wb") as out:
                for chunk in self.client.api.get_image(reference):
                    out.write(chunk)

        self._call(f"saving {reference}", save)
        return tar

    def pull(self, reference: str, *, auth: dict[str, str] | None = None, platform: str | None = None,
             log: Callable[[str], None] | None = None) -> EngineImage:
        """Pull ``reference``; ``auth`` (``{"username": ..., "password": ...}``) is used for this call only."""
        repo, tag = split_reference(reference)

        def pull() -> None:
            stream = self.client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=auth,
                                          platform=platform)
            _follow(stream, log)

        self._call(f"pulling {reference}", pull)
        return self.image(reference)

    def build(self, context: Path, *, tag: str, dockerfile: str | None = None,
              buildargs: dict[str, str] | None = None, platform: str | None = None,
              labels: dict[str, str] | None = None, log: Callable[[str], None] | None = None) -> EngineImage:
        """Build the Dockerfile ``dockerfile`` (a path inside ``context``; ``Dockerfile`` if None) as ``tag``."""

        def build() -> None:
            stream = self.client.api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=buildargs,
                                           platform=platform, labels=labels, rm=True, decode=True)
            _follow(stream, log)

        self._call(f"building {tag} from {context}", build)
        return self.image(tag)

    def push(self, reference: str, *, auth: dict[str, str] | None = None,
             log: Callable[[str], None] | None = None) -> PushResult:
        """Push ``reference`` (``registry/repo:tag``) to its registry; the engine sends only the layers the
        registry lacks."""
        repo, tag = split_reference(reference)
        found: list[str] = []

        def push() -> None:
            stream = self.client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth)
            for line in _follow(stream, log):
                # Docker reports the digest in an "aux" line, podman in its last status line
                aux = line.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    found.append(str(aux["Digest"]))
                m = _DIGEST.search(str(line.get("status", "")))
                if m:
                    found.append(m.group(1))

        self._call(f"pushing {reference}", push)
        return PushResult(reference=reference, digest=found[-1] if found else None)


def _cut(text: str) -> str:
    """An engine's message, cut to a few hundred characters: its start and its end (where the cause is)."""
    text = text.strip()
    return text if len(text) <= 400 else f"{text[:120]} ... {text[-280:]}"


def _explain(e: Exception) -> str:
    explanation = getattr(e, "explanation", None)
    return str(explanation or e)


def _follow(stream: Iterator[dict[str, Any]], log: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Read an engine's JSON progress stream to its end; an ``error`` line raises."""
    import docker.errors

    lines = []
    for line in stream:
        if not isinstance(line, dict):
            continue
        lines.append(line)
        if line.get("error") or line.get("errorDetail"):
            detail = line.get("error") or (line.get("errorDetail") or {}).get("message")
            raise docker.errors.APIError(str(detail))
        text = line.get("stream") or line.get("status")
        if log is not None and text and str(text).strip():
            progress = f" {line['progress']}" if line.get("progress") else ""
            log(mask(f"{line.get('id', '') + ': ' if line.get('id') else ''}{str(text).strip()}{progress}"))
    return lines
