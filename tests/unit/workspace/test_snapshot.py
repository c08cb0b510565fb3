"""Snapshots of a source folder: which files (ignore files, always-ignored folders) and how they are stored
(content-addressed: an unchanged folder costs nothing the second time, and its id does not move)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kiln.workspace import snapshot as snapshot_module
from kiln.workspace.blobs import BlobStore
from kiln.workspace.snapshot import snapshot_files, take_snapshot

FILES = ("train.py", "data.csv", "keep.csv", "model.bin", "notes.md", "pkg/__init__.py", "pkg/util.py", "pkg/big.bin",
         "docs/readme.txt")


def make_tree(root: Path, names: tuple[str, ...] = FILES) -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n", encoding="utf-8")
    return root


def names(root: Path) -> tuple[list[str], str | None]:
    files, used = snapshot_files(root)
    return [p.relative_to(root).as_posix() for p in files], used


def blob_bytes(store: BlobStore) -> tuple[int, int]:
    """(number of blobs, their total size) on disk."""
    blobs = [p for p in (store.root / "sha256").rglob("*") if p.is_file()] if store.root.exists() else []
    return len(blobs), sum(p.stat().st_size for p in blobs)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_without_an_ignore_file_every_file_is_taken_in_a_stable_order(src: Path) -> None:
    assert names(src) == (sorted(FILES, key=lambda n: n.split("/")), None)


def test_kilnignore_wins_over_amlignore_and_gitignore(src: Path) -> None:
    (src / ".kilnignore").write_text("*.csv\n")
    (src / ".amlignore").write_text("*.bin\n")
    (src / ".gitignore").write_text("*.md\n")
    files, used = names(src)
    assert used == ".kilnignore"
    assert not any(n.endswith(".csv") for n in files)
    assert {"model.bin", "pkg/big.bin", "notes.md", ".amlignore", ".gitignore"} <= set(files)


def test_amlignore_wins_over_gitignore(src: Path) -> None:
    (src / ".amlignore").write_text("*.bin\n")
    (src / ".gitignore").write_text("*.md\n")
    files, used = names(src)
    assert used == ".amlignore"
    assert "model.bin" not in files and "pkg/big.bin" not in files
    assert "notes.md" in files and "data.csv" in files


def test_gitignore_is_used_when_it_is_the_only_one(src: Path) -> None:
    (src / ".gitignore").write_text("# docs are built elsewhere\ndocs/\n\n*.md\n")
    files, used = names(src)
    assert used == ".gitignore"
    assert not any(n.startswith("docs/") or n.endswith(".md") for n in files)
    assert "train.py" in files and ".gitignore" in files


def test_an_ignore_file_in_a_subfolder_is_not_read(src: Path) -> None:
    (src / "pkg" / ".gitignore").write_text("*.py\n")
    files, used = names(src)
    assert used is None
    assert "pkg/util.py" in files


def test_negation_takes_a_file_back(src: Path) -> None:
    (src / ".kilnignore").write_text("*.csv\n!keep.csv\n")
    files, _ = names(src)
    assert "keep.csv" in files and "data.csv" not in files


def test_anchored_and_folder_patterns_follow_gitignore_rules(src: Path) -> None:
    (src / "sub").mkdir()
    (src / "sub" / "model.bin").write_text("x")
    (src / ".kilnignore").write_text("/model.bin\npkg/\n")
    files, _ = names(src)
    assert "model.bin" not in files and "sub/model.bin" in files
    assert not any(n.startswith("pkg/") for n in files)


@pytest.mark.parametrize("folder", [".git", "__pycache__", "outputs", ".venv", ".kiln"])
def test_some_folders_are_always_left_out(src: Path, folder: str) -> None:
    (src / folder / "deep").mkdir(parents=True)
    (src / folder / "deep" / "file.txt").write_text("x")
    (src / folder / "top.py").write_text("x")
    (src / ".gitignore").write_text("*.md\n")  # an ignore file adds to them, it doesn't replace them
    files, _ = names(src)
    assert not any(n.startswith(folder + "/") for n in files)
    assert "train.py" in files


def test_compiled_python_and_nested_caches_are_always_left_out(src: Path) -> None:
    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "util.cpython-312.pyc").write_bytes(b"\0")
    (src / "stray.pyc").write_bytes(b"\0")
    files, _ = names(src)
    assert not any(n.endswith(".pyc") or "__pycache__" in n for n in files)


def test_links_outside_the_folder_are_never_read_and_links_inside_are_kept_as_links(
        src: Path, store: BlobStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outside = make_tree(tmp_path / "outside", ("secret.txt",))
    (src / "to_outside.txt").symlink_to(outside / "secret.txt")
    (src / "to_outside_dir").symlink_to(outside, target_is_directory=True)
    (src / "dangling").symlink_to(tmp_path / "nowhere")
    (src / "abs_inside.py").symlink_to(src / "train.py")  # absolute, but inside: kept, made relative
    (src / "pkg" / "alias").symlink_to("../docs", target_is_directory=True)
    files, _ = names(src)
    assert not any(n.startswith(("to_outside", "dangling", "abs_inside", "pkg/alias")) for n in files)
    with caplog.at_level(logging.WARNING, logger="kiln.workspace.snapshot"):
        snap = take_snapshot(src, store)
    assert dict(snap.skipped) == {"dangling": "a link to nothing", "to_outside.txt": "a link to outside the folder",
                                  "to_outside_dir": "a link to outside the folder"}
    assert "to_outside.txt (a link to outside the folder)" in caplog.text
    stored = b"".join(store.path_of(e.digest).read_bytes() for e in store.manifest(snap.id).entries)
    assert b"content of secret.txt" not in stored
    work = tmp_path / "work"
    store.materialize(snap.id, work)
    assert os.readlink(work / "abs_inside.py") == "train.py"
    assert os.readlink(work / "pkg" / "alias") == "../docs"
    assert (work / "pkg" / "alias" / "readme.txt").read_text() == "content of docs/readme.txt\n"
    assert not (work / "to_outside.txt").exists() and not (work / "dangling").is_symlink()


def test_workspaces_caches_and_environments_are_never_snapshotted_wherever_they_sit(
        src: Path, store: BlobStore) -> None:
    (src / "mywork").mkdir()
    (src / "mywork" / "workspace.json").write_text('{"format": 1, "name": "mywork", "store": "registry.sqlite"}')
    (src / "mywork" / "registry.sqlite").write_bytes(b"SQLite format 3\0")
    (src / "deep" / "home" / "cache").mkdir(parents=True)
    (src / "deep" / "home" / "cache" / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    (src / "deep" / "home" / "cache" / "big.whl").write_bytes(b"x" * 100)
    (src / "myenv" / "conda-meta").mkdir(parents=True)
    (src / "myenv" / "lib.so").write_bytes(b"elf")
    (src / "notaworkspace").mkdir()
    (src / "notaworkspace" / "workspace.json").write_text('{"some": "user data"}')
    snap = take_snapshot(src, store)
    files, _ = names(src)
    assert "notaworkspace/workspace.json" in files
    assert not any(n.startswith(("mywork", "deep", "myenv")) for n in files)
    assert dict(snap.skipped) == {"mywork/": "a Kiln workspace", "deep/home/cache/": "a cache folder",
                                  "myenv/": "a conda environment"}


def test_materializing_never_writes_through_a_link_at_the_destination(
        src: Path, store: BlobStore, tmp_path: Path) -> None:
    snap = take_snapshot(src, store)
    work = tmp_path / "dest"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    work.mkdir()
    (work / "train.py").symlink_to(victim)
    store.materialize(snap.id, work)
    assert victim.read_text() == "keep me"
    assert not (work / "train.py").is_symlink() and (work / "train.py").read_text() == "content of train.py\n"


def test_a_snapshot_counts_files_and_bytes_and_names_its_ignore_file(src: Path, store: BlobStore) -> None:
    (src / ".amlignore").write_text("docs/\n")
    snap = take_snapshot(src, store)
    files, _ = names(src)
    assert (snap.files, snap.ignore_file) == (len(files), ".amlignore")
    assert snap.size == sum((src / n).stat().st_size for n in files)
    assert snap.new_bytes > snap.size  # the files and the manifest


def test_an_unchanged_folder_stored_twice_writes_nothing_new(src: Path, store: BlobStore) -> None:
    for i in range(50):
        (src / "many" / f"f{i:02d}.txt").parent.mkdir(exist_ok=True)
        (src / "many" / f"f{i:02d}.txt").write_text(f"file {i}\n" * (i + 1))
    first = take_snapshot(src, store)
    on_disk = blob_bytes(store)
    second = take_snapshot(src, store)
    assert second.new_bytes == 0
    assert second.id == first.id
    assert blob_bytes(store) == on_disk


def test_identical_content_is_stored_once(src: Path, store: BlobStore) -> None:
    (src / "copy_of_train.py").write_text("content of train.py\n")
    take_snapshot(src, store)
    count, _ = blob_bytes(store)
    assert count == len(FILES) + 1  # one blob per distinct content (the copy adds none), plus the manifest


def test_the_snapshot_id_depends_on_content_and_paths_only(src: Path, store: BlobStore, tmp_path: Path) -> None:
    first = take_snapshot(src, store).id
    # the same files elsewhere, written later: same id
    elsewhere = make_tree(tmp_path / "elsewhere")
    os.utime(elsewhere / "train.py", (1, 1))
    assert take_snapshot(elsewhere, store).id == first
    # a changed byte, a renamed file, an executable bit: another id each
    ids = {first}
    (elsewhere / "notes.md").write_text("changed\n")
    ids.add(take_snapshot(elsewhere, store).id)
    (elsewhere / "notes.md").rename(elsewhere / "notes2.md")
    ids.add(take_snapshot(elsewhere, store).id)
    (elsewhere / "train.py").chmod(0o755)
    ids.add(take_snapshot(elsewhere, store).id)
    assert len(ids) == 4


def test_a_snapshot_materializes_to_the_same_files_and_executable_bits(src: Path, store: BlobStore,
                                                                       tmp_path: Path) -> None:
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o755)
    snap = take_snapshot(src, store)
    work = tmp_path / "work"
    store.materialize(snap.id, work)
    files, _ = names(src)
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()) == sorted(files)
    for n in files:
        assert (work / n).read_bytes() == (src / n).read_bytes()
    assert os.access(work / "run.sh", os.X_OK) and not os.access(work / "train.py", os.X_OK)
    # working copies are writable copies: the script may change them without touching the store
    (work / "train.py").write_text("changed by the script\n")
    again = tmp_path / "again"
    store.materialize(snap.id, again)
    assert (again / "train.py").read_text() == "content of train.py\n"


def test_an_empty_folder_is_an_empty_snapshot(tmp_path: Path, store: BlobStore) -> None:
    (tmp_path / "empty").mkdir()
    snap = take_snapshot(tmp_path / "empty", store)
    assert (snap.files, snap.size) == (0, 0)
    assert store.manifest(snap.id).entries == ()


def test_a_large_snapshot_is_logged_as_a_warning(src: Path, store: BlobStore, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_module, "SIZE_WARNING", 10)
    with caplog.at_level(logging.WARNING, logger="kiln.workspace.snapshot"):
        take_snapshot(src, store)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert str(src) in message and ".kilnignore" in message


def test_a_small_snapshot_logs_nothing(src: Path, store: BlobStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiln.workspace.snapshot"):
        take_snapshot(src, store)
    assert caplog.records == []


def test_removing_the_ignore_file_brings_its_files_back(src: Path) -> None:
    (src / ".kilnignore").write_text("*.csv\n")
    assert "data.csv" not in names(src)[0]
    (src / ".kilnignore").unlink()
    assert "data.csv" in names(src)[0]


@pytest.mark.parametrize("folder", ["venv", "env"])
def test_a_virtual_environment_under_any_name_is_left_out(src: Path, folder: str) -> None:
    (src / folder / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    (src / folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (src / folder / "lib" / "python3.12" / "site-packages" / "big.py").write_text("x = 1\n")
    files, _ = names(src)
    assert not any(n.startswith(folder + "/") for n in files)
