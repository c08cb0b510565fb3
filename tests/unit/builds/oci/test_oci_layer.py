"""Reproducible layers: the bytes depend on names, contents, kinds and executable bits only."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from kiln.builds.oci.layer import Entry, source_date_epoch, write_layer
from kiln.errors import KilnError


def _tree(root: Path, mtime: int, text: str = "print('hi')\n") -> list[Entry]:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text(text)
    (root / "tool").write_text("#!/bin/sh\n")
    os.chmod(root / "tool", 0o700)
    for path in (root / "pkg" / "a.py", root / "tool"):
        os.utime(path, (mtime, mtime))
    return [Entry("kiln/env/pkg", "dir"), Entry("kiln/env/pkg/a.py", "file", source=root / "pkg" / "a.py"),
            Entry("kiln/env/bin/tool", "file", source=root / "tool", executable=True),
            Entry("kiln/env/bin", "dir"), Entry("kiln/env/lib64", "symlink", target="lib")]


def test_the_same_files_give_the_same_blob_whatever_their_times_and_order(tmp_path: Path) -> None:
    one = write_layer(_tree(tmp_path / "a", 1_000), tmp_path / "blobs1", title="x")
    two = write_layer(list(reversed(_tree(tmp_path / "b", 2_000_000))), tmp_path / "blobs2", title="x")
    assert one.digest == two.digest and one.diff_id == two.diff_id
    blob = (tmp_path / "blobs1" / one.digest[7:]).read_bytes()
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == one.digest
    assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == one.diff_id
    assert blob[4:8] == b"\0\0\0\0"  # gzip header's mtime


def test_a_changed_file_changes_the_blob(tmp_path: Path) -> None:
    one = write_layer(_tree(tmp_path / "a", 1), tmp_path / "blobs", title="x")
    two = write_layer(_tree(tmp_path / "b", 1, text="print('ho')\n"), tmp_path / "blobs", title="x")
    assert one.digest != two.digest
    assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == sorted([one.digest[7:], two.digest[7:]])


def test_entries_are_sorted_owned_by_root_and_dated_epoch(tmp_path: Path) -> None:
    layer = write_layer(_tree(tmp_path / "a", 12345), tmp_path / "blobs", title="x")
    with tarfile.open(tmp_path / "blobs" / layer.digest[7:]) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    modes = {m.name: m.mode for m in members}
    assert modes["kiln/env/bin/tool"] == 0o755 and modes["kiln/env/pkg/a.py"] == 0o644
    assert not any(str(tmp_path) in m.name or str(tmp_path) in m.linkname for m in members)


def test_source_date_epoch_sets_the_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_date_epoch() == 1700000000
    layer = write_layer(_tree(tmp_path / "a", 1), tmp_path / "blobs", title="x", mtime=source_date_epoch())
    with tarfile.open(tmp_path / "blobs" / layer.digest[7:]) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(KilnError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch()


def test_a_layer_already_written_is_not_compressed_again(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    first = write_layer(_tree(tmp_path / "a", 1), blobs, title="x")
    blob = blobs / first.digest[7:]
    os.utime(blob, (5, 5))
    again = write_layer(_tree(tmp_path / "b", 2), blobs, title="x")
    assert again == first and blob.stat().st_mtime == 5  # found by its tar's digest: not written again
    blob.unlink()  # a remembered layer whose blob is gone is written again
    assert write_layer(_tree(tmp_path / "c", 3), blobs, title="x") == first and blob.is_file()
