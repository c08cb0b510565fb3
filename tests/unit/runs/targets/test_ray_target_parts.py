"""The parts of the Ray target that need no cluster: its probe, the job it writes, what a node extracts."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import tarfile
from pathlib import Path

import pytest

from kiln.runs.targets.interface import RunPlan
from kiln.runs.targets.ray import RayTarget, _write_job
from kiln.runs.targets.ray_job import JOB_FILE, WORK_TAR, extract


def _plan(tmp_path: Path, **fields: object) -> RunPlan:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "train.py").write_text("print('hi')\n")
    shim = tmp_path / "kiln-path"
    (shim / "kiln").mkdir(parents=True, exist_ok=True)
    (shim / "kiln" / "run.py").write_text("# in-run module\n")
    values: dict[str, object] = {
        "run_id": "r1", "script": "train.py", "workdir": work, "python": sys.executable, "run_dir": tmp_path,
        "log": tmp_path / "output.log", "state": tmp_path / "state", "kiln_path": shim,
        "variables": {"KILN_RUN_DIR": str(tmp_path), "PYTHONPATH": f"{shim}:/opt/extra", "MINE": "1"}}
    values.update(fields)
    return RunPlan(**values)  # type: ignore[arg-type]


def test_a_cluster_that_does_not_answer_is_a_reason_not_an_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    reason = RayTarget(name="ray-dev", address=f"http://127.0.0.1:{port}").cannot_run(_plan(tmp_path))
    assert reason == (f"Ray cluster http://127.0.0.1:{port}: GET /api/version: [Errno 111] Connection refused: "
                      "is its head running?")


def test_the_job_carries_the_run_without_this_machines_paths(tmp_path: Path) -> None:
    plan = _plan(tmp_path, arguments=("--alpha", "0.5"), environment_spec=json.dumps({"name": "e", "lock": "{}"}))
    job = tmp_path / "job"
    job.mkdir()
    _write_job(job, plan, "n0nce")
    spec = json.loads((job / JOB_FILE).read_text())
    assert spec["variables"] == {"PYTHONPATH": "/opt/extra", "MINE": "1"}  # the node sets its own KILN_RUN_DIR
    assert (spec["nonce"], spec["script"], spec["arguments"]) == ("n0nce", "train.py", ["--alpha", "0.5"])
    assert spec["environment"] == {"name": "e", "lock": "{}"} and spec["collect_outputs"] is False
    with tarfile.open(job / WORK_TAR) as tar:
        assert sorted(tar.getnames()) == ["kiln-path", "kiln-path/kiln", "kiln-path/kiln/run.py", "work",
                                          "work/train.py"]


def test_a_node_extracts_only_what_stays_inside(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        def add(name: str, *, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("outputs/model.txt", data=b"weights")
        add("outputs/inside", kind=tarfile.SYMTYPE, link="model.txt")
        add("outputs/outside", kind=tarfile.SYMTYPE, link="../../../etc/passwd")
        add("outputs/absolute", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add("../escape.txt")
        add("/abs.txt")
        add("outputs/fifo", kind=tarfile.FIFOTYPE)
    into = tmp_path / "into"
    extract(buffer.getvalue(), into)
    found = sorted(p.relative_to(into).as_posix() for p in into.rglob("*"))
    assert found == ["outputs", "outputs/inside", "outputs/model.txt"]
    assert (into / "outputs" / "inside").read_text() == "weights"
    assert not (tmp_path / "escape.txt").exists()


def test_outputs_too_big_to_carry_back_are_left_out_but_the_runs_files_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from kiln.runs.targets import ray_job

    (tmp_path / JOB_FILE).write_text(json.dumps({"nonce": "n", "collect_outputs": True}))
    root = tmp_path / "root"
    (root / "run" / "files").mkdir(parents=True)
    (root / "run" / "files" / "note.txt").write_text("uploaded")
    (root / "run" / "metrics.jsonl").write_text('{"name": "m"}\n')
    (root / "work" / "outputs").mkdir(parents=True)
    (root / "work" / "outputs" / "big.bin").write_bytes(os.urandom(64 * 1024))  # random: gzip can't shrink it
    monkeypatch.setattr(ray_job, "MAX_RESULT_BYTES", 16 * 1024)

    data = ray_job._Job(tmp_path)._archive(root)
    into = tmp_path / "into"
    extract(data, into)
    assert sorted(p.relative_to(into).as_posix() for p in into.rglob("*")) == ["run", "run/files",
                                                                              "run/files/note.txt"]
    assert b"[kiln] outputs: left out (" in capsysbinary.readouterr().out
