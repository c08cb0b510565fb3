"""A content-addressed blob store (the workspace's ``blobs`` folder, or one a team shares): files by
SHA-256, folders by manifest, and files whose name matters (private wheels) also under their name.

``blobs/sha256/<2 hex>/<62 hex>`` holds each distinct content once, read-only; a folder is stored
as a manifest (a JSON blob listing relative path, digest, size and mode of each file), so storing an
unchanged folder again writes nothing new. Blobs are written to a temp name beside their final
place and then linked to it, so a crash never leaves a partial blob under a digest, and a blob that
is there already (stored meanwhile by another process or machine) is never replaced.
``wheels/<sha256>/<file>.whl`` names a stored wheel (``put_named``): uv reads a wheel's name from its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kiln._files import temp_beside
from kiln.errors import NotFoundError

__all__ = ["BlobStore", "Manifest", "ManifestEntry"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative, with "/" separators
    digest: str
    size: int
    executable: bool = False


@dataclass(frozen=True)
class Manifest:
    digest: str
    entries: tuple[ManifestEntry, ...]
    new_bytes: int = 0  # bytes this store call actually wrote (0 when everything was there already)
    #: symbolic links kept inside the folder: (path, relative target); see ``kiln._tree``
    links: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def _publish(tmp: Path, target: Path) -> bool:
    """Give the complete file ``tmp`` its digest's name, never replacing a blob already there (another
    process, or another machine on a shared folder, may have stored the same content meanwhile; its
    file may belong to another user). False when it was there. The caller removes ``tmp``."""
    try:
        os.link(tmp, target)  # atomic, and fails rather than overwrite
        return True
    except FileExistsError:
        return False
    except OSError:
        # a file system without hard links: a rename (same content under the same name, whoever wins)
        if target.is_file():
            return False
        os.replace(tmp, target)
        return True


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def put_bytes(self, data: bytes) -> tuple[str, bool]:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        if target.is_file():
            return digest, False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(target)
        try:
            tmp.write_bytes(data)
            tmp.chmod(0o444)
            return digest, _publish(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, source: Path) -> tuple[str, int, bool]:
        """Store a file: (digest, size, written?)."""
        h = hashlib.sha256()
        size = 0
        with open(source, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        digest = h.hexdigest()
        target = self.path_of(digest)
        if target.is_file():
            return digest, size, False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(target)
        try:
            shutil.copyfile(source, tmp)
            tmp.chmod(0o444)
            return digest, size, _publish(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def put_named(self, source: Path, kind: str) -> tuple[str, Path]:
        """Store the file ``source`` by content and also under its own name, ``<root>/<kind>/<digest>/<name>``
        (the blob's bytes, linked where the file system allows): for tools that read a file's name, as uv reads
        a wheel's. (digest, that path). A named file already there is never replaced."""
        digest, _, _ = self.put_file(source)
        named = self.root / kind / digest / source.name
        if named.is_file():
            return digest, named
        named.parent.mkdir(parents=True, exist_ok=True)
        blob = self.path_of(digest)
        try:
            os.link(blob, named)
        except FileExistsError:
            pass  # another process or machine named it meanwhile: the same bytes
        except OSError:  # no hard links here: a copy, published as a blob is
            tmp = temp_beside(named)
            try:
                shutil.copyfile(blob, tmp)
                tmp.chmod(0o444)
                _publish(tmp, named)
            finally:
                tmp.unlink(missing_ok=True)
        return digest, named

    def put_tree(self, root: Path, files: Iterable[Path], links: Iterable[tuple[str, str]] = ()) -> Manifest:
        """Store ``files`` (paths under ``root``), the ``links`` kept inside it (path, relative target) and
        their manifest; return it."""
        entries = []
        written = 0
        for path in sorted(files):
            digest, size, new = self.put_file(path)
            written += size if new else 0
            mode = path.stat().st_mode
            entries.append(ManifestEntry(path.relative_to(root).as_posix(), digest, size,
                                         bool(mode & stat.S_IXUSR)))
        kept = tuple(sorted((str(path), str(target)) for path, target in links))
        data: dict[str, object] = {"format": 1, "files": [[e.path, e.digest, e.size, e.executable] for e in entries]}
        if kept:  # only then: a folder without links keeps the digest it always had
            data["links"] = [list(link) for link in kept]
        doc = json.dumps(data, separators=(",", ":")).encode()
        digest, new = self.put_bytes(doc)
        return Manifest(digest, tuple(entries), written + (len(doc) if new else 0), kept)

    def manifest(self, digest: str) -> Manifest:
        path = self.path_of(digest)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(f"no stored folder {digest[:12]} in this workspace") from None
        return Manifest(digest, tuple(ManifestEntry(p, d, s, bool(x)) for p, d, s, x in data["files"]),
                        links=tuple((str(p), str(t)) for p, t in data.get("links", ())))

    def materialize(self, digest: str, target: Path, *, select: Callable[[str], bool] | None = None) -> list[Path]:
        """Write the folder ``digest`` into ``target`` (copies: whatever runs there may change its files; a
        link already at a destination is replaced, never written through)."""
        out = []
        manifest = self.manifest(digest)
        for entry in manifest.entries:
            if select is not None and not select(entry.path):
                continue
            dest = target / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink():
                dest.unlink()
            shutil.copyfile(self.path_of(entry.digest), dest)
            if entry.executable:
                dest.chmod(dest.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            out.append(dest)
        for path, link in manifest.links:
            if select is not None and not select(path):
                continue
            # a stored link stays inside the folder it was stored with, whoever wrote the manifest
            if os.path.isabs(link) or os.path.normpath(os.path.join(os.path.dirname(path), link)).startswith(".."):
                continue
            dest = target / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()
            os.symlink(link, dest)
            out.append(dest)
        return out
