"""The builds' live record in the cache (``kiln.builds.journal``): what another process reads while a build runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.builds import journal
from kiln.builds.journal import BuildJournal, current, read_journal, recent_builds, watched
from kiln.builds.staging import BuildLog


def test_a_build_is_running_while_recorded_then_succeeded_with_its_lines(tmp_path: Path) -> None:
    j = BuildJournal(tmp_path, label="train:1", workspace=tmp_path / "ws")
    with j.recording():
        j.progress("resolve", "resolving")
        log = BuildLog()  # made during the build: its lines are echoed to the record, masked
        log("fetching https://user:s3cretvalue@example.com/simple")
        record = read_journal(tmp_path, j.id)
        assert record is not None and record.status == "Running" and current() is j
        assert record.log() == "[resolve] resolving\nfetching https://user:****@example.com/simple\n"
    record = read_journal(tmp_path, j.id)
    assert record is not None and (record.status, record.error, record.label) == ("Succeeded", None, "train:1")
    assert record.ended is not None and current() is None
    assert record.log(offset=len("[resolve] resolving\n")) == "fetching https://user:****@example.com/simple\n"


def test_a_watcher_learns_the_id_of_a_build_recorded_in_its_thread_before_its_record_exists(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []
    j = BuildJournal(tmp_path, label="train:1", workspace=tmp_path)
    with watched(lambda build_id: seen.append((build_id, read_journal(tmp_path, build_id) is None))), j.recording():
        pass
    assert seen == [(j.id, True)]
    with BuildJournal(tmp_path, label="train:1", workspace=tmp_path).recording():  # outside: nobody is told
        pass
    assert seen == [(j.id, True)]


def test_a_failed_build_records_why_and_raises_as_before(tmp_path: Path) -> None:
    j = BuildJournal(tmp_path, label="train:1", workspace=tmp_path)
    with pytest.raises(RuntimeError, match="boom"), j.recording():
        raise RuntimeError("boom")
    record = read_journal(tmp_path, j.id)
    assert record is not None and (record.status, record.error) == ("Failed", "boom")
    assert record.log().endswith("[failed] boom\n")


def test_a_build_whose_process_died_is_failed_not_running(tmp_path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    folder = tmp_path / journal.FOLDER / "dead"
    folder.mkdir(parents=True)
    (folder / "build.json").write_text(json.dumps({"id": "dead", "label": "x:1", "workspace": "w", "started": 1.0,
                                                   "pid": int(child.stdout), "pid_started": "1", "status": None}))
    record = read_journal(tmp_path, "dead")
    assert record is not None and record.status == "Failed" and "ended without finishing" in str(record.error)


def test_ids_that_are_not_records_are_none(tmp_path: Path) -> None:
    (tmp_path / "build.json").write_text("{}")
    assert [read_journal(tmp_path, i) for i in ("", "..", "../x", "nope")] == [None, None, None, None]


def test_only_the_newest_finished_records_are_kept_and_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "KEEP", 3)
    ids = []
    for n in range(5):
        j = BuildJournal(tmp_path, label=f"e:{n % 2}", workspace=tmp_path / ("a" if n < 4 else "b"))
        j.meta["started"] = float(n)  # distinct, ordered start times
        with j.recording():
            pass
        ids.append(j.id)
    kept = [r.id for r in recent_builds(tmp_path)]
    assert kept == [ids[4], ids[3], ids[2], ids[1]]  # the 3 newest others, and the one just written
    assert [r.id for r in recent_builds(tmp_path, workspace=tmp_path / "a", label="e:1")] == [ids[3], ids[1]]
