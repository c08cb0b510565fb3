"""The container tools' configuration Kiln ships, found through the variables podman and buildah read
(``CONTAINERS_CONF``, ``CONTAINERS_REGISTRIES_CONF``): nothing is written under ``/etc``.

``CONTAINERS_CONF`` is a file inside Kiln's package (runc and rlimits that work on hybrid-cgroup
machines). A registries.conf names addresses, so it is written where the caller says: a registry
served over plain HTTP on 127.0.0.1 must be marked ``insecure`` for ``podman system service`` to push
to it or pull from it (the Docker API has no ``--tls-verify=false``); the service reads it when it starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CONTAINERS_CONF", "registries_conf"]

CONTAINERS_CONF = Path(__file__).resolve().with_name("containers.conf")


def registries_conf(insecure: Iterable[str]) -> str:
    """A registries.conf (v2) marking each address (``host:port``) of ``insecure`` as plain HTTP."""
    lines = ["# written by Kiln: registries reached over plain HTTP (local ones), for CONTAINERS_REGISTRIES_CONF",
             'unqualified-search-registries = ["docker.io"]', ""]
    for address in sorted(set(insecure)):
        lines += ["[[registry]]", f"location = {json.dumps(address)}", "insecure = true", ""]
    return "\n".join(lines)
