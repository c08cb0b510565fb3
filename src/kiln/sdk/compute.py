"""Azure ML's compute targets, attached to a workspace: ``ComputeTarget`` and ``RayCompute``.

Ported code keeps its shape (``from azureml.core.compute import ComputeTarget`` becomes
``from kiln import ComputeTarget``)::

    config = RayCompute.attach_configuration(address="http://127.0.0.1:8265")
    ray_dev = ComputeTarget.attach(ws, "ray-dev", config)
    ray_dev.wait_for_completion(show_output=True)
    ws.compute_targets["ray-dev"]; ComputeTarget(ws, "ray-dev"); ray_dev.detach()

An attached target is a record of the workspace's store (SQLite or PostgreSQL, so a team shares it):
its kind and configuration (a Ray dashboard's address), never a credential. Runs reach it by name,
``ScriptRunConfig(..., compute_target="ray-dev")``, through ``kiln.runs.targets.registry``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from kiln.errors import DefinitionError, NotFoundError
from kiln.workspace.store import ComputeRecord

if TYPE_CHECKING:
    from kiln.workspace.workspace import Workspace

__all__ = ["ComputeTarget", "ContainerCompute", "LocalCompute", "RayAttachConfiguration", "RayCompute"]

#: the built-in target every workspace has (not a record; it can't be attached or detached)
LOCAL = "local"
#: the other built-in one: runs in a container of the environment's image, through a Docker-API engine
CONTAINER = "container"
_BUILT_IN = (LOCAL, CONTAINER)
_MAX_ADDRESS = 300
#: the kind of an attached record ("ray") → its class (each subclass with a ``_kind`` adds itself)
_KINDS: dict[str, Any] = {}


@dataclass(frozen=True)
class RayAttachConfiguration:
    """What ``RayCompute.attach_configuration`` gives: a Ray cluster's dashboard address (the Jobs API)."""

    address: str
    type: ClassVar[str] = "ray"

    def config(self) -> dict[str, Any]:
        return {"address": self.address}


class ComputeTarget:
    """A compute target of a workspace: ``ComputeTarget(ws, name)`` gives the object of its kind
    (``RayCompute``, ``LocalCompute``), or raises ``NotFoundError`` naming the targets there are."""

    #: Azure ML's ``type`` of the compute ("Ray", "local")
    type: ClassVar[str] = ""

    def __new__(cls, workspace: Workspace, name: str) -> ComputeTarget:
        if cls is not ComputeTarget:
            return super().__new__(cls)
        if name == LOCAL:
            return super().__new__(LocalCompute)
        if name == CONTAINER:
            return super().__new__(ContainerCompute)
        record = _record(workspace, name)
        kind = _KINDS.get(record.type)
        if kind is None:
            raise DefinitionError(f"compute target {name!r}: attached as {record.type!r}, which this Kiln doesn't know")
        target: ComputeTarget = super().__new__(kind)
        return target

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        self._config: dict[str, Any] = {}
        self.created_on: float | None = None
        if name not in _BUILT_IN:
            record = _record(workspace, name)
            if self.type and record.type != type(self)._kind:
                raise NotFoundError(f"compute target {name!r} is a {record.type!r} target, not {self.type!r}")
            self._config = json.loads(record.config)
            self.created_on = record.created_at

    _kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._kind:
            _KINDS[cls._kind] = cls

    # ---- Azure ML's class methods --------------------------------------------------------------

    @staticmethod
    def attach(workspace: Workspace, name: str, attach_configuration: RayAttachConfiguration) -> ComputeTarget:
        """Attach the compute ``attach_configuration`` describes to ``workspace`` as ``name``; a name that
        is taken (attached already, or ``local``) is an error."""
        from kiln.environment.names import check_name

        check_name(name, "compute target name")
        if name in _BUILT_IN or name == "docker":
            raise DefinitionError(f"compute target name {name!r}: a built-in target has that name")
        if not isinstance(attach_configuration, RayAttachConfiguration):
            raise DefinitionError(f"compute target {name!r}: attach_configuration must come from "
                                  f"RayCompute.attach_configuration(address=...), got {type(attach_configuration)}")
        record = ComputeRecord(name=name, type=attach_configuration.type,
                               config=json.dumps(attach_configuration.config(), sort_keys=True), created_at=time.time())
        if not workspace.store.attach_compute(record):
            existing = workspace.store.get_compute(name)
            where = "" if existing is None else f" ({existing.type}, {json.loads(existing.config).get('address')})"
            raise DefinitionError(f"compute target {name!r} is attached to workspace {workspace.name!r} already"
                                  f"{where}: detach it first")
        return ComputeTarget(workspace, name)

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        """The built-in targets (``local``, ``container``), then every attached one, by name."""
        return [*(ComputeTarget(workspace, name) for name in _BUILT_IN),
                *(ComputeTarget(workspace, r.name) for r in workspace.store.list_computes())]

    # ---- one target ----------------------------------------------------------------------------

    def detach(self) -> None:
        """Forget this target in the workspace (runs that used it keep their records)."""
        if self.name in _BUILT_IN:
            raise DefinitionError(f"compute target {self.name!r} is built in: it can't be detached")
        if not self.workspace.store.detach_compute(self.name):
            raise NotFoundError(f"compute target {self.name!r} is not attached to workspace {self.workspace.name!r}")

    @property
    def provisioning_state(self) -> str:
        """Azure ML's state of the compute: an attached target is there once attached."""
        return "Succeeded"

    def get_status(self) -> str:
        return self.provisioning_state

    def wait_for_completion(self, show_output: bool = False, is_delete_operation: bool = False) -> None:
        """Azure waits for provisioning; attaching here is done when ``attach`` returns."""
        del show_output, is_delete_operation

    def serialize(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "provisioningState": self.provisioning_state,
                "createdOn": self.created_on, **self._config}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workspace={self.workspace.name!r}, name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and isinstance(other, ComputeTarget) and other.name == self.name
                and other.workspace.path == self.workspace.path)

    def __hash__(self) -> int:
        return hash((type(self), self.name))


class LocalCompute(ComputeTarget):
    """The built-in ``local`` target: runs on this machine (``ScriptRunConfig``'s default)."""

    type = "local"


class ContainerCompute(ComputeTarget):
    """The built-in ``container`` target (also named ``docker``): runs in a container of the environment's
    image on this machine, through a Docker-API engine (Azure ML's runs with ``docker.use_docker``)."""

    type = "docker"


class RayCompute(ComputeTarget):
    """A Ray cluster, reached through its Jobs API (the dashboard's address)."""

    type = "Ray"
    _kind = "ray"

    @staticmethod
    def attach_configuration(address: str) -> RayAttachConfiguration:
        """A Ray cluster's dashboard address, ``http://HOST:PORT`` (8265 by default): no credentials in it."""
        if not isinstance(address, str) or not address:
            raise DefinitionError(f"Ray address: expected the dashboard's URL (http://HOST:8265), got {address!r}")
        shown = address[:_MAX_ADDRESS]
        try:
            url = urllib.parse.urlsplit(address)
            port = url.port
        except ValueError as e:
            raise DefinitionError(f"Ray address {shown!r}: {e}") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise DefinitionError(f"Ray address {shown!r}: expected the dashboard's URL, http://HOST:8265")
        if url.username is not None or url.password is not None:
            from kiln.environment.secrets import mask

            raise DefinitionError(f"Ray address {mask(shown)!r}: credentials are not stored in a workspace; "
                                  "give the address without them")
        if url.query or url.fragment or url.path not in ("", "/"):
            raise DefinitionError(f"Ray address {shown!r}: expected only http://HOST:PORT")
        del port
        return RayAttachConfiguration(address=address.rstrip("/"))

    @property
    def address(self) -> str:
        return str(self._config.get("address", ""))


def _record(workspace: Workspace, name: str) -> ComputeRecord:
    record = workspace.store.get_compute(name) if isinstance(name, str) else None
    if record is None:
        known = ", ".join([*_BUILT_IN, *(r.name for r in workspace.store.list_computes())])
        raise NotFoundError(f"no compute target {name!r} in workspace {workspace.name!r} (there is {known}); "
                            "attach one with ComputeTarget.attach or `kiln compute attach`")
    return record
