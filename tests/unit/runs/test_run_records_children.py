"""What ``kiln.run`` records beside metrics (images, properties, status requests, child runs), read back by
``kiln.runs.metrics`` and recorded in the workspace by ``kiln.runs.interactive.record_children``."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from kiln.run import OfflineRun
from kiln.run import Run as InScriptRun
from kiln.runs.interactive import record_children
from kiln.runs.metrics import read_display_name, read_metrics, read_properties, read_status
from kiln.workspace.store import RunRecord
from kiln.workspace.workspace import Workspace


class Figure:
    def savefig(self, fp: io.BufferedWriter, format: str = "png") -> None:
        fp.write(b"\x89PNG fake")


@pytest.fixture
def run(tmp_path: Path) -> InScriptRun:
    folder = tmp_path / "run"
    folder.mkdir()
    return InScriptRun("r1", str(folder), "exp")


def test_images_are_files_of_the_run_and_their_names_metrics(run: InScriptRun) -> None:
    assert run.log_image("loss curve", plot=Figure()) == "images/loss curve.png"
    assert run.log_image("loss/curve", plot=Figure()) == "images/loss_curve.png"  # no folder made of a name
    with pytest.raises(ValueError, match=r"plot= must be a matplotlib figure or matplotlib.pyplot"):
        run.log_image("x", plot=object())
    root = Path(run._dir)
    assert (root / "files" / "images" / "loss curve.png").read_bytes() == b"\x89PNG fake"
    assert read_metrics(root / "metrics.jsonl") == {"loss curve": "images/loss curve.png",
                                                    "loss/curve": "images/loss_curve.png"}


def test_properties_keep_their_first_value_and_refuse_another(run: InScriptRun) -> None:
    run.add_properties({"author": "me", "n": 1})
    run.add_properties({"author": "me"})  # the same value again: accepted, nothing new written
    with pytest.raises(ValueError, match=r"property 'author' of run r1 is 'me' already"):
        run.add_properties({"author": "you", "other": "x"})
    path = Path(run._dir) / "metrics.jsonl"
    assert read_properties(path) == {"author": "me", "n": "1"}  # the refused call wrote nothing, not even "other"
    assert read_display_name(path) is None


def test_status_requests(run: InScriptRun) -> None:
    path = Path(run._dir) / "metrics.jsonl"
    assert (run.get_status(), read_status(path)) == ("Running", None)
    run.fail(error_details=ValueError("bad rows"))
    assert (run.get_status(), read_status(path)) == ("Failed", ("Failed", "bad rows"))


def test_child_runs_are_folders_with_their_own_records(run: InScriptRun) -> None:
    children = run.create_children(tag_key="fold", tag_values=["a", "b"])
    assert [c.id for c in children] == ["r1_1", "r1_2"] and children[0].parent is run
    with children[0] as child:
        child.log("m", 1)
    assert children[0].get_status() == "Completed" and children[0].get_tags() == {"fold": "a"}
    with pytest.raises(ZeroDivisionError), children[1]:
        1 / 0  # noqa: B018
    assert children[1].get_status() == "Failed"
    assert [c.id for c in run.get_children()] == ["r1_1", "r1_2"]
    with pytest.raises(ValueError, match=r"run r1 has a child 'r1_1' already"):
        run.child_run(run_id="r1_1")


def test_offline_runs_print_and_keep_their_status(capsys: pytest.CaptureFixture[str]) -> None:
    run = OfflineRun()
    run.upload_file("a.txt", io.BytesIO(b"x"))
    run.add_properties({"k": "v"})
    run.complete()
    assert (run.get_status(), run.get_properties(), run.get_children()) == ("Completed", {"k": "v"}, [])
    assert "[offline run] file a.txt" in capsys.readouterr().out


def test_the_supervisor_records_a_scripts_children(tmp_path: Path) -> None:
    ws = Workspace.create("kids", path=tmp_path / "ws")
    parent_dir = ws.path / "runs" / "p1"
    parent_dir.mkdir(parents=True)
    ws.store.create_run(RunRecord(id="p1", experiment="e", status="Running", created_at=time.time(),
                                  definition=json.dumps({"script": "t.py"}), pid=123, pid_start="x"))
    parent = InScriptRun("p1", str(parent_dir), "e")
    done, left = parent.child_run(name="first"), parent.child_run()
    done.complete()
    grandchild = left.child_run()
    record_children(ws, "p1", "e", parent_dir / "children", final=None)
    statuses = {r.id: r.status for r in ws.store.list_runs(experiment="e")}
    assert statuses == {"p1": "Running", "p1_1": "Completed", "p1_2": "Running", "p1_2_1": "Running"}
    record = ws.store.get_run("p1_2_1")
    assert record is not None and json.loads(record.definition)["parent"] == "p1_2"
    assert json.loads(record.definition)["folder"] == "runs/p1/children/p1_2/children/p1_2_1"
    assert grandchild.id == "p1_2_1"
    record_children(ws, "p1", "e", parent_dir / "children", final=("Failed", "the script exited with code 1"))
    statuses = {r.id: r.status for r in ws.store.list_runs(experiment="e")}
    assert statuses == {"p1": "Running", "p1_1": "Completed", "p1_2": "Failed", "p1_2_1": "Failed"}
    left_record = ws.store.get_run("p1_2")
    assert left_record is not None and left_record.error == "its parent run p1 ended Failed"
    ws.close()
