"""The blob store's writes: complete files under their digest, never replacing one that is there."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from kiln.workspace.blobs import BlobStore


def test_a_blob_already_there_is_never_replaced(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"model weights"
    digest = hashlib.sha256(data).hexdigest()
    target = store.path_of(digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    inode = target.stat().st_ino

    assert store.put_bytes(data) == (digest, False)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    assert store.put_file(source) == (digest, len(data), False)

    assert target.stat().st_ino == inode  # the very same file: not renamed over
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp file left


def test_a_new_blob_is_complete_read_only_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    source = tmp_path / "data.txt"
    source.write_bytes(b"x" * 100_000)

    digest, size, written = store.put_file(source)

    assert (size, written) == (100_000, True)
    target = store.path_of(digest)
    assert target.read_bytes() == source.read_bytes()
    assert not os.access(target, os.W_OK) or os.geteuid() == 0
    assert target.stat().st_mode & 0o222 == 0
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_blob_stored_by_another_machine_meanwhile_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # another writer on the shared folder stores the same content between this writer's check and its publish
    import kiln.workspace.blobs as blobs

    store = BlobStore(tmp_path / "blobs")
    data = b"snapshot manifest"
    target = store.path_of(hashlib.sha256(data).hexdigest())
    real_temp_beside = blobs.temp_beside
    planted: list[int] = []

    def racing_temp_beside(path: Path) -> Path:
        path.write_bytes(data)
        planted.append(path.stat().st_ino)
        return real_temp_beside(path)

    monkeypatch.setattr(blobs, "temp_beside", racing_temp_beside)

    digest, written = store.put_bytes(data)

    assert digest == hashlib.sha256(data).hexdigest()
    assert written is False  # this writer put nothing under the digest: the other one did
    assert target.stat().st_ino == planted[0]  # the other writer's file, not replaced
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_a_named_file_is_the_blob_under_its_name_and_never_replaced(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path / "blobs")
    source = tmp_path / "pkg-1.0-py3-none-any.whl"
    source.write_bytes(b"wheel bytes")
    digest, named = store.put_named(source, "wheels")
    assert digest == hashlib.sha256(b"wheel bytes").hexdigest()
    assert named == tmp_path / "blobs" / "wheels" / digest / source.name
    assert named.read_bytes() == b"wheel bytes" and store.has(digest)
    assert named.stat().st_ino == store.path_of(digest).stat().st_ino  # linked: stored once
    assert named.stat().st_mode & 0o222 == 0
    inode = named.stat().st_ino
    assert store.put_named(source, "wheels") == (digest, named) and named.stat().st_ino == inode

    # a file system without hard links: a read-only copy, published without a temp file left behind
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"other wheel")

    def no_links(*args: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    _, named2 = store.put_named(other, "wheels")
    assert named2.read_bytes() == b"other wheel" and named2.stat().st_mode & 0o222 == 0
    assert [p.name for p in named2.parent.iterdir()] == [other.name]


def test_machines_naming_the_same_wheel_at_once_all_get_it_whole(tmp_path: Path) -> None:
    import subprocess
    import sys

    source = tmp_path / "pkg-1.0-py3-none-any.whl"
    source.write_bytes(os.urandom(3_000_000))
    script = ("import sys; from pathlib import Path; from kiln.workspace.blobs import BlobStore; "
              "print(BlobStore(Path(sys.argv[1])).put_named(Path(sys.argv[2]), 'wheels')[1])")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "shared"), str(source)],
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]
    paths = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    (named,) = paths
    assert Path(named).read_bytes() == source.read_bytes()
    assert [p.name for p in Path(named).parent.iterdir()] == [source.name]  # no temp file left
    blob_folder = BlobStore(tmp_path / "shared").path_of(hashlib.sha256(source.read_bytes()).hexdigest()).parent
    assert len(list(blob_folder.iterdir())) == 1
