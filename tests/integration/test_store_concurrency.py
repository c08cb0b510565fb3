"""Several real processes registering into one SQLite store at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiln.workspace.store import SqliteStore
from kiln.workspace.store.migrations import LATEST_VERSION

pytestmark = pytest.mark.integration

# Waits for the start file so that every process hits the (possibly new) database at once, then
# registers its definitions and prints one JSON line per registration.
WORKER = """
import json, os, sys, time
from kiln.workspace.store import SqliteStore

path, go, worker, count, definition = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("start file never appeared")
    time.sleep(0.001)
store = SqliteStore(path)
for i in range(count):
    text = definition or json.dumps({"worker": worker, "i": i, "pip": ["numpy==1.26.%d" % i]})
    record, created = store.register_environment(name="shared", definition=text, hash="sha256:%d-%d" % (worker, i))
    print(json.dumps({"version": record.version, "created": created, "definition": text}), flush=True)
store.close()
"""


def _race(path: Path, *, processes: int, count: int, definition: str = "") -> list[list[dict[str, object]]]:
    go = path.parent / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(go), str(n), str(count), definition],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    time.sleep(0.5)  # let every interpreter start and reach the wait loop
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
        results.append([json.loads(line) for line in out.splitlines()])
    return results


def test_concurrent_registrations_get_distinct_consecutive_versions(tmp_path: Path) -> None:
    path = tmp_path / "kiln.db"  # new: the processes also race to create the schema

    results = _race(path, processes=6, count=15)

    assert all(len(lines) == 15 for lines in results)
    assert all(line["created"] for lines in results for line in lines)
    versions = sorted(int(str(line["version"])) for lines in results for line in lines)
    assert versions == list(range(1, 91))
    for lines in results:
        # each process registers one after the other: its own versions only go up
        own = [int(str(line["version"])) for line in lines]
        assert own == sorted(own)

    store = SqliteStore(path)
    try:
        stored = store.list_environment_versions(name="shared")
        assert store.schema_version == LATEST_VERSION
    finally:
        store.close()
    assert [r.version for r in stored] == list(range(1, 91))
    registered = sorted(str(line["definition"]) for lines in results for line in lines)
    assert sorted(r.definition for r in stored) == registered
    assert len(set(registered)) == 90
    by_version = {int(str(line["version"])): line["definition"] for lines in results for line in lines}
    assert all(by_version[r.version] == r.definition for r in stored)


def test_concurrent_identical_registrations_make_one_version(tmp_path: Path) -> None:
    path = tmp_path / "kiln.db"
    definition = json.dumps({"pip": ["numpy==1.26.4"], "python": "3.11"})

    results = _race(path, processes=6, count=5, definition=definition)

    lines = [line for lines in results for line in lines]
    assert len(lines) == 30
    assert {line["version"] for line in lines} == {1}
    assert sum(1 for line in lines if line["created"]) == 1

    store = SqliteStore(path)
    try:
        stored = store.list_environment_versions(name="shared")
    finally:
        store.close()
    assert [(r.version, r.definition) for r in stored] == [(1, definition)]
