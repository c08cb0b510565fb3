"""The build cache: entries are published by one rename, one builder per key at a time, and a build
that dies leaves nothing published (its leftovers go with the next build of the key)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiln.builds.cache import ENTRY_FILE, BuildCache


@pytest.fixture
def cache(tmp_path: Path) -> BuildCache:
    return BuildCache(tmp_path / "cache")


def staged(cache: BuildCache, key: str, payload: str = "x") -> Path:
    stage = cache.stage(key)
    (stage / "env" / "bin").mkdir(parents=True)
    (stage / "env" / "bin" / "python").write_text(payload)
    return stage


def test_publish_renames_the_staged_folder_into_place(cache: BuildCache) -> None:
    with cache.locked("k1"):
        stage = staged(cache, "k1")
        inode = os.stat(stage).st_ino
        entry = cache.publish(stage, "k1", {"backend": "venv"})
    assert not stage.exists()
    assert entry.path == cache.bucket / "k1" and os.stat(entry.path).st_ino == inode  # moved, not copied
    assert entry.python.read_text() == "x"
    assert json.loads((entry.path / ENTRY_FILE).read_text())["backend"] == "venv"
    assert cache.lookup("k1") == entry and [e.key for e in cache.entries()] == ["k1"]
    assert (cache.root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_an_entry_is_never_replaced(cache: BuildCache) -> None:
    with cache.locked("k1"):
        cache.publish(staged(cache, "k1", "first"), "k1", {})
        second = staged(cache, "k1", "second")
        with pytest.raises(OSError):
            cache.publish(second, "k1", {})
    assert (cache.bucket / "k1" / "env" / "bin" / "python").read_text() == "first"


def test_a_staged_folder_is_not_an_entry(cache: BuildCache) -> None:
    with cache.locked("k1"):
        staged(cache, "k1")
    assert cache.lookup("k1") is None and cache.entries() == []


def test_a_killed_build_leaves_nothing_published_and_its_leftovers_go_with_the_next(cache: BuildCache) -> None:
    code = ("import os, sys; from pathlib import Path; from kiln.builds.cache import BuildCache\n"
            "cache = BuildCache(Path(sys.argv[1]))\n"
            "with cache.locked('k1'):\n"
            "    stage = cache.stage('k1'); (stage / 'half').write_text('x'); print(stage, flush=True)\n"
            "    os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(cache.root)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == -9
    left = Path(proc.stdout.strip())
    assert left.is_dir() and cache.lookup("k1") is None and cache.entries() == []
    with cache.locked("k1"):  # the kernel released the dead builder's lock
        fresh = cache.stage("k1")
    assert not left.exists() and fresh.is_dir()


def test_discard_removes_a_staged_folder(cache: BuildCache) -> None:
    with cache.locked("k1"):
        stage = staged(cache, "k1")
        cache.discard(stage)
    assert not stage.exists() and cache.entries() == []


def test_one_builder_per_key_the_others_wait(cache: BuildCache) -> None:
    waited = threading.Event()
    order: list[str] = []
    with cache.locked("k1"):
        # another key is free: its lock is taken at once
        with open(cache.root / "locks" / "k2.lock", "a+") as other:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other, fcntl.LOCK_UN)

        def second() -> None:
            with cache.locked("k1", on_wait=waited.set):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        assert waited.wait(30)  # it found the key taken
        order.append("first")
    thread.join(30)
    assert order == ["first", "second"]


def test_remove_takes_an_entry_out_of_sight_first(cache: BuildCache) -> None:
    with cache.locked("k1"):
        cache.publish(staged(cache, "k1"), "k1", {})
    cache.remove("k1")
    assert cache.lookup("k1") is None and not (cache.root / "used" / "k1").exists()
    assert list((cache.root / "tmp").iterdir()) == []
