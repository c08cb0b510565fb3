"""Cache garbage collection: sizes, and which entries ``prune`` removes in which order.

Entries are made the way the builder makes them (``stage`` under the key's lock, then ``publish``)
with a payload of known size instead of an environment; their last use is set on the cache's
``used/<key>`` marker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds.cache import BuildCache, disk_usage
from kiln.builds.gc import parse_size, prune, referenced_lock_hashes
from kiln.errors import KilnError

KIB = 1024


@pytest.mark.parametrize(("text", "size"), [
    ("1024", 1024), ("0", 0), ("10b", 10), ("500M", 500 * 1024**2), ("2GiB", 2 * 1024**3), ("1.5g", 1536 * 1024**2),
    (" 10 kb ", 10 * 1024), ("3KiB", 3 * 1024), ("1T", 1024**4), ("2mb", 2 * 1024**2),
])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "abc", "10X", "-1", "1.5.2G", "G"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(KilnError) as e:
        parse_size(text)
    assert str(e.value) == f"--max-size: {text!r} is not a size like 500M, 2G or 1024"


@pytest.fixture
def cache(tmp_path: Path) -> BuildCache:
    return BuildCache(tmp_path / "cache")


def add_entry(cache: BuildCache, key: str, *, lock_hash: str, kib: int, last_used: float) -> int:
    """Publish an entry holding ``kib`` KiB of data, last used at ``last_used``; return its size on disk."""
    with cache.locked(key):
        stage = cache.stage(key)
        (stage / "env").mkdir()
        (stage / "env" / "payload").write_bytes(os.urandom(kib * KIB))
        entry = cache.publish(stage, key, {"lock_hash": lock_hash, "label": f"env-{key}:1"})
    os.utime(cache.root / "used" / key, (last_used, last_used))
    return disk_usage([entry.path])


@pytest.fixture
def four(cache: BuildCache) -> dict[str, int]:
    """Four entries: ``old``, ``mid``, ``new`` unreferenced (oldest first), ``ref`` referenced (the oldest of all)."""
    now = time.time()
    return {
        "ref": add_entry(cache, "ref", lock_hash="L-ref", kib=64, last_used=now - 4000),
        "old": add_entry(cache, "old", lock_hash="L-old", kib=64, last_used=now - 3000),
        "mid": add_entry(cache, "mid", lock_hash="L-mid", kib=64, last_used=now - 2000),
        "new": add_entry(cache, "new", lock_hash="L-new", kib=64, last_used=now - 1000),
    }


def keys(cache: BuildCache) -> list[str]:
    return sorted(e.key for e in cache.entries())


def test_prune_removes_every_unreferenced_entry_least_recently_used_first(cache: BuildCache,
                                                                           four: dict[str, int]) -> None:
    result = prune(cache, references={"L-ref"})
    assert [e.key for e in result.removed] == ["old", "mid", "new"]
    assert [e.key for e in result.kept] == ["ref"]
    assert keys(cache) == ["ref"]
    assert result.freed == four["old"] + four["mid"] + four["new"]
    assert (result.size_before, result.size_after) == (sum(four.values()), four["ref"])
    assert list((cache.root / "tmp").iterdir()) == []  # removed entries leave nothing behind
    assert sorted(p.name for p in (cache.root / "used").iterdir()) == ["ref"]


def test_prune_stops_at_max_size(cache: BuildCache, four: dict[str, int]) -> None:
    limit = sum(four.values()) - four["old"] - four["mid"] // 2  # removing `old` is not enough; `mid` is
    result = prune(cache, references={"L-ref"}, max_size=limit)
    assert [e.key for e in result.removed] == ["old", "mid"]
    assert keys(cache) == ["new", "ref"]
    assert result.size_after == four["ref"] + four["new"] <= limit


def test_prune_under_max_size_removes_nothing(cache: BuildCache, four: dict[str, int]) -> None:
    result = prune(cache, references=set(), max_size=sum(four.values()))
    assert result.removed == []
    assert keys(cache) == ["mid", "new", "old", "ref"]


def test_prune_never_removes_a_referenced_entry(cache: BuildCache, four: dict[str, int]) -> None:
    result = prune(cache, references={"L-ref", "L-mid"}, max_size=0)
    assert [e.key for e in result.removed] == ["old", "new"]
    assert keys(cache) == ["mid", "ref"]
    assert result.size_after == four["ref"] + four["mid"] > 0


def test_a_recent_use_moves_an_entry_to_the_back(cache: BuildCache, four: dict[str, int]) -> None:
    cache.touch("old")
    result = prune(cache, references={"L-ref"}, max_size=sum(four.values()) - 1)
    assert [e.key for e in result.removed] == ["mid"]
    assert keys(cache) == ["new", "old", "ref"]


def test_dry_run_reports_the_same_and_removes_nothing(cache: BuildCache, four: dict[str, int]) -> None:
    limit = four["ref"] + four["new"]
    dry = prune(cache, references={"L-ref"}, max_size=limit, dry_run=True)
    assert dry.dry_run is True
    assert [e.key for e in dry.removed] == ["old", "mid"]
    assert dry.freed == four["old"] + four["mid"]
    assert keys(cache) == ["mid", "new", "old", "ref"]
    assert all(cache.lookup(k) is not None and (cache.bucket / k / "env" / "payload").is_file() for k in four)
    real = prune(cache, references={"L-ref"}, max_size=limit)
    assert ([e.key for e in real.removed], real.freed) == (["old", "mid"], dry.freed)
    assert keys(cache) == ["new", "ref"]


def test_prune_of_an_empty_cache(cache: BuildCache) -> None:
    result = prune(cache, references=set())
    assert (result.removed, result.kept, result.freed, result.size_before) == ([], [], 0, 0)


def test_referenced_lock_hashes_reads_the_workspaces_that_still_exist(tmp_path: Path) -> None:
    ws = Workspace.create("gc", path=tmp_path / "ws")
    env = Environment("gc-env")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.16.0"], python_version="3.11")
    registered = ws.register_environment(env)
    assert registered.version == "1"
    for lock_hash in ("L-1", "L-2"):
        ws.store.add_environment_lock(name="gc-env", version=1, identity=registered.hash, python="3.11",
                                      platform="linux-x86_64", lock_hash=lock_hash, content="{}")
    ws.close()
    assert referenced_lock_hashes([ws.path, tmp_path / "deleted-workspace"]) == {"L-1", "L-2"}
    assert referenced_lock_hashes([tmp_path / "deleted-workspace"]) == set()
