"""One reproducible image layer: a sorted tar of given entries, gzipped, content-addressed.

Reproducible means the bytes depend only on the entries' in-image names, contents, kinds and
executable bits: every entry has mtime ``SOURCE_DATE_EPOCH`` (0 by default), uid/gid 0 with no user or
group names, mode 0755 (directories, executables) or 0644; entries are in byte order of their names;
gzip gets mtime 0, no file name and a fixed level. The host's paths, owners and times never reach the
tar. (zlib's output for one input and level is the same across its versions in use; a different zlib
could in principle change the compressed bytes, never the layer's ``diff_id``.)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiln.errors import KilnError

__all__ = ["Entry", "Layer", "add_entry", "source_date_epoch", "write_layer"]

GZIP_LEVEL = 6
_CHUNK = 1 << 20


def source_date_epoch(environ: dict[str, str] | None = None) -> int:
    """The fixed mtime of every entry: ``SOURCE_DATE_EPOCH`` when set (the reproducible-builds convention), else 0."""
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise KilnError(f"SOURCE_DATE_EPOCH: expected a whole number of seconds, got {value[:40]!r}")
    return int(value)


@dataclass(frozen=True)
class Entry:
    """One entry of a layer: ``name`` is its path inside the image, without a leading slash."""

    name: str
    kind: str  # "dir", "file" or "symlink"
    #: the file to copy (``file``) on the host; never written into the tar
    source: Path | None = None
    #: the link's target (``symlink``)
    target: str = ""
    executable: bool = False
    #: the file's bytes, for files Kiln writes itself (``source`` is then None)
    data: bytes | None = None


@dataclass(frozen=True)
class Layer:
    """A written layer blob: ``digest`` names the gzipped bytes, ``diff_id`` the tar inside."""

    digest: str
    diff_id: str
    size: int
    #: what the layer holds, for people: ``numpy 2.1.0`` or ``environment``
    title: str


class _Hashing(io.RawIOBase):
    """Writes through to ``sink`` while hashing and counting the bytes."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.sha.update(b)
        self.size += len(b)
        self.sink.write(b)
        return len(b)


def _info(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name + ("/" if entry.kind == "dir" else ""))
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
    else:
        info.type, info.mode = tarfile.REGTYPE, 0o755 if entry.executable else 0o644
    return info


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        return len(b)


def _tar(entries: dict[str, Entry], sink: BinaryIO, mtime: int) -> str:
    """Write the tar of ``entries`` into ``sink``; return its sha256 (the layer's ``diff_id``)."""
    inner = _Hashing(sink)
    with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries, key=lambda n: n.encode()):
            add_entry(tar, entries[name], mtime)
    return f"sha256:{inner.sha.hexdigest()}"


def write_layer(entries: list[Entry], blobs: Path, *, title: str, mtime: int = 0) -> Layer:
    """Write ``entries`` as a gzipped tar into ``blobs`` (``blobs/<hex>``, named by its digest); return it.

    Entries are sorted by name; a name given twice (a parent folder named by several files) is written once.
    A layer already in ``blobs`` (found by its tar's digest, remembered in ``blobs/../../kiln-diff-ids/``) is
    not compressed again: compressing is most of an image's time, and most layers of a new image are old.
    """
    unique = {e.name: e for e in entries}
    blobs.mkdir(parents=True, exist_ok=True)
    known = blobs.parent.parent / "kiln-diff-ids"
    diff_id = _tar(unique, _Null(), mtime)  # type: ignore[arg-type]
    remembered = known / diff_id[7:]
    if remembered.is_file():
        digest, _, size = remembered.read_text(encoding="ascii").partition(" ")
        if (blobs / digest[7:]).is_file():
            return Layer(digest=digest, diff_id=diff_id, size=int(size), title=title)
    tmp = blobs / f".layer-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "wb") as raw:
            outer = _Hashing(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=outer, compresslevel=GZIP_LEVEL, mtime=0) as gz:
                written = _tar(unique, gz, mtime)  # type: ignore[arg-type]
        if written != diff_id:
            raise KilnError(f"{title}: the environment's files changed while its image layer was written")
        digest = outer.sha.hexdigest()
        final = blobs / digest
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    known.mkdir(exist_ok=True)
    note = known / f".{diff_id[7:]}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    note.write_text(f"sha256:{digest} {outer.size}", encoding="ascii")
    os.replace(note, remembered)
    return Layer(digest=f"sha256:{digest}", diff_id=diff_id, size=outer.size, title=title)


def add_entry(tar: tarfile.TarFile, entry: Entry, mtime: int) -> None:
    info = _info(entry, mtime)
    if entry.kind != "file":
        tar.addfile(info)
        return
    if entry.data is not None:
        info.size = len(entry.data)
        tar.addfile(info, io.BytesIO(entry.data))
        return
    assert entry.source is not None
    with open(entry.source, "rb") as f:
        info.size = os.fstat(f.fileno()).st_size
        tar.addfile(info, f)
