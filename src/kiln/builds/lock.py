"""Locks: the exact packages a definition resolved to, so that every later build installs the same files.

A lock document (JSON, format ``kiln-lock/1``) holds what the resolver was asked (requirements and
options, credentials masked), what it answered (every package with its exact version and artifact
hashes), and the locked requirements text that the installer consumes (``uv pip sync
--require-hashes``: pins, hashes and the index URLs, nothing to resolve). Kiln installs from that
text rather than from a PEP 751 ``pylock.toml``: uv 0.13 unpacks a fresh copy of every wheel for
each pylock install, so environments could not share files through uv's cache. The **lock
hash** covers only what decides the installed files: Python minor version, platform, and each
package's name, version and artifact hashes. Two definitions that resolve to the same packages
have the same lock hash, and so share one build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from kiln._words import count
from kiln.errors import KilnError

__all__ = ["LOCK_FORMAT", "CondaPackage", "Lock", "LockChange", "LockedPackage", "diff_locks",
           "packages_from_requirements"]

LOCK_FORMAT = "kiln-lock/1"


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    url: str | None = None
    hashes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "url": self.url, "hashes": list(self.hashes)}


@dataclass(frozen=True)
class CondaPackage:
    name: str
    version: str
    build: str
    channel: str
    subdir: str
    url: str
    sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "build": self.build, "channel": self.channel,
                "subdir": self.subdir, "url": self.url, "sha256": self.sha256}


@dataclass(frozen=True)
class Lock:
    identity: str
    python: str
    platform: str
    requirements: tuple[str, ...]
    options: tuple[str, ...]
    packages: tuple[LockedPackage, ...]
    text: str
    resolver: str
    created_at: str
    indexes: tuple[str, ...] = field(default=())
    #: conda packages (empty when the definition has none, or they went through PyPI)
    conda: tuple[CondaPackage, ...] = ()
    #: rattler's own lock file text for ``conda`` (what the installer reads back, without solving)
    conda_lock: str = ""
    conda_platform: str = ""
    #: "conda" (a channel's python), "kiln" (Kiln's stand-in for a found interpreter) or "" (no conda)
    python_source: str = ""
    #: "conda" or "pypi": how the definition's conda packages were resolved
    conda_via: str = ""
    #: why ``python`` is not Kiln's default for a definition that doesn't pin Python ("" when it is the default
    #: or the definition's own): see ``kiln.builds.builder``
    python_reason: str = ""

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @property
    def lock_hash(self) -> str:
        canon = {
            "format": LOCK_FORMAT,
            "python": self.python_minor,
            "platform": self.platform,
            "packages": sorted([p.name, p.version, sorted(p.hashes)] for p in self.packages),
        }
        if self.conda:
            canon["conda"] = sorted([c.name, c.version, c.build, c.sha256 or c.url] for c in self.conda)
        text = json.dumps(canon, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def summary(self) -> str:
        """``"12 packages"``, or ``"3 conda packages + 1 pip package"``."""
        if self.conda:
            return f"{count(len(self.conda), 'conda package')} + {count(len(self.packages), 'pip package')}"
        return count(len(self.packages), "package")

    def version_of(self, name: str) -> str | None:
        from packaging.utils import canonicalize_name

        key = canonicalize_name(name)
        return next((p.version for p in self.packages if canonicalize_name(p.name) == key), None)

    def to_json(self) -> str:
        return json.dumps({
            "format": LOCK_FORMAT, "identity": self.identity, "python": self.python, "platform": self.platform,
            "requirements": list(self.requirements), "options": list(self.options), "indexes": list(self.indexes),
            "packages": [p.to_dict() for p in self.packages], "resolver": self.resolver,
            "created_at": self.created_at, "lock_hash": self.lock_hash, "text": self.text,
            "conda": [c.to_dict() for c in self.conda], "conda_lock": self.conda_lock,
            "conda_platform": self.conda_platform, "python_source": self.python_source, "conda_via": self.conda_via,
            **({"python_reason": self.python_reason} if self.python_reason else {}),
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Lock:
        try:
            data = json.loads(text)
            if data.get("format") != LOCK_FORMAT:
                raise KilnError(f"lock format {data.get('format')!r} is not {LOCK_FORMAT!r}: upgrade Kiln")
            return cls(
                identity=data["identity"], python=data["python"], platform=data["platform"],
                requirements=tuple(data["requirements"]), options=tuple(data["options"]),
                indexes=tuple(data.get("indexes", ())),
                packages=tuple(LockedPackage(p["name"], p["version"], p.get("url"), tuple(p.get("hashes", ())))
                               for p in data["packages"]),
                text=data["text"], resolver=data["resolver"], created_at=data["created_at"],
                conda=tuple(CondaPackage(**c) for c in data.get("conda", [])), conda_lock=data.get("conda_lock", ""),
                conda_platform=data.get("conda_platform", ""), python_source=data.get("python_source", ""),
                conda_via=data.get("conda_via", ""), python_reason=data.get("python_reason", ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise KilnError(f"a stored lock is unreadable ({type(e).__name__}: {e})") from None


def packages_from_requirements(text: str) -> tuple[LockedPackage, ...]:
    """The packages of a locked requirements text (``uv pip compile --generate-hashes`` output)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("-"):
            logical.append(line)
    out = []
    for line in logical:
        words = line.split()
        hashes = tuple(sorted(w.split("=", 1)[1] for w in words if w.startswith("--hash=")))
        spec = " ".join(w for w in words if not w.startswith("--hash=")).split(";", 1)[0].strip()
        if " @ " in spec:
            name, url = (part.strip() for part in spec.split(" @ ", 1))
            out.append(LockedPackage(name=name, version="", url=url, hashes=hashes))
        elif "==" in spec:
            name, version = (part.strip() for part in spec.split("==", 1))
            out.append(LockedPackage(name=name, version=version, hashes=hashes))
        else:
            raise KilnError(f"unexpected line in a locked requirements text: {line!r}")
    return tuple(sorted(out, key=lambda x: x.name.lower()))


@dataclass(frozen=True)
class LockChange:
    name: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.old is None:
            return f"+ {self.name} {self.new}"
        if self.new is None:
            return f"- {self.name} {self.old}"
        return f"~ {self.name} {self.old} -> {self.new}"


def diff_locks(old: Lock | None, new: Lock) -> list[LockChange]:
    """Package by package: what an upgrade changed."""
    before = {p.name.lower(): p.version for p in old.packages} if old else {}
    after = {p.name.lower(): p.version for p in new.packages}
    before.update({f"conda:{c.name}": f"{c.version}={c.build}" for c in (old.conda if old else ())})
    after.update({f"conda:{c.name}": f"{c.version}={c.build}" for c in new.conda})
    names = sorted(set(before) | set(after))
    return [LockChange(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]
