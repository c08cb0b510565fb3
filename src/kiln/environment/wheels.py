"""Private wheels stored in a workspace (``Environment.add_private_pip_wheel``), as requirements.

A stored wheel lives in the workspace's artifact store at ``<blobs>/wheels/<sha256 of its bytes>/<its file
name>`` (a team's shared folder, so a teammate's build installs the same file; an older Kiln stored it at
``<workspace>/wheels/...``, still read there) and is named in a definition as a direct reference,
``name @ file:///.../wheels/<sha256>/<file>.whl``. That is the one
kind of local file a definition may hold (``checks`` refuses other local paths): its name carries the
hash of its content, so the definition's identity changes with the wheel, the lock pins it (uv hashes
it), and a wheel changed on disk no longer matches its name and is refused.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kiln.errors import DefinitionError

__all__ = ["is_stored_wheel_url", "stored_wheel_requirement", "wheel_name"]

_STORED = re.compile(r"/wheels/(?P<digest>[0-9a-f]{64})/(?P<file>[^/]+\.whl)$")


def wheel_name(file_name: str) -> str:
    """The project name of the wheel file ``file_name`` (``name-version-tags.whl``), or a ``DefinitionError``."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, _, _, _ = parse_wheel_filename(file_name)
    except InvalidWheelFilename as e:
        raise DefinitionError(f"add_private_pip_wheel: {file_name[:200]!r} is not a wheel file name ({e})") from None
    return str(name)


def stored_wheel_requirement(project: str, path: Path) -> str:
    return f"{project} @ {path.resolve().as_uri()}"


def is_stored_wheel_url(url: str) -> bool:
    """Is ``url`` a wheel stored by ``add_private_pip_wheel``, still holding the bytes its name hashes where it is
    here? A stored wheel's path that this machine doesn't have (a teammate's mount of the artifact store) is
    accepted by its form: builds find its digest in the workspace's own store (``kiln.builds.wheels``), and
    uv checks the bytes against the lock."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return False
    path = unquote(parts.path)
    match = _STORED.search(path)
    if match is None:
        return False
    if not Path(path).exists():
        return True
    if not Path(path).is_file():
        return False
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest() == match["digest"]
