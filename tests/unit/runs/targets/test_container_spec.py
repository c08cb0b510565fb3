"""How a run becomes a container (``kiln.runs.targets.container``): no engine needed to check the mapping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiln.errors import KilnError
from kiln.runs.targets.container import LABEL, LAUNCHER, ContainerTarget, container_spec, exit_file, mounts, program
from kiln.runs.targets.interface import RunPlan


def plan(tmp_path: Path, **fields: object) -> RunPlan:
    run = tmp_path / "runs" / "r1"
    values: dict[str, object] = {
        "run_id": "r1", "script": "train.py", "arguments": ("--alpha", "0.5"), "workdir": run / "work",
        "python": "/kiln/env/bin/python", "variables": {"KILN_RUN_ID": "r1", "A": "b c"}, "run_dir": run,
        "kiln_path": run / "kiln-path", "log": run / "files" / "logs" / "output.log", "state": run / "script.pid",
        "image": "kiln/kiln_abc:0123", "engine": "unix:///tmp/podman.sock"}
    values.update(fields)
    return RunPlan(**values)  # type: ignore[arg-type]


def test_the_run_folder_is_mounted_at_its_own_path_once(tmp_path: Path) -> None:
    """Everything of a snapshot run is inside its folder: one mount, so the paths in variables mean the same."""
    p = plan(tmp_path)
    assert mounts(p) == [str(tmp_path / "runs" / "r1")]
    spec = container_spec(p)
    assert spec["volumes"] == {str(p.run_dir): {"bind": str(p.run_dir), "mode": "rw"}}
    assert spec["working_dir"] == str(p.workdir)


def test_a_source_folder_outside_the_run_is_mounted_too(tmp_path: Path) -> None:
    """``snapshot_project=False``: the script runs in the user's folder, which the container sees as well."""
    source = tmp_path / "project"
    p = plan(tmp_path, workdir=source)
    assert mounts(p) == sorted([str(source), str(p.run_dir)])


def test_a_folder_whose_name_starts_like_another_is_not_inside_it(tmp_path: Path) -> None:
    p = plan(tmp_path, workdir=tmp_path / "runs" / "r1-work")
    assert mounts(p) == [str(tmp_path / "runs" / "r1"), str(tmp_path / "runs" / "r1-work")]


def test_the_launcher_runs_the_script_with_the_images_interpreter(tmp_path: Path) -> None:
    p = plan(tmp_path)
    spec = container_spec(p)
    python, *flags = spec["command"][:4]
    assert (python, flags) == ("/kiln/env/bin/python", ["-I", "-S", "-c"])
    assert spec["command"][4:] == [LAUNCHER, str(p.log), str(exit_file(p)), str(p.workdir),
                                   "/kiln/env/bin/python", "train.py", "--alpha", "0.5"]
    assert spec["image"] == "kiln/kiln_abc:0123"
    assert spec["labels"] == {LABEL: "r1"}
    assert spec["pid_mode"] == "host"


def test_only_the_runs_own_variables_go_in_not_this_machines(tmp_path: Path) -> None:
    p = plan(tmp_path, environ={"PATH": "/host/bin", "HOME": "/root"})
    assert container_spec(p)["environment"] == {"KILN_RUN_ID": "r1", "A": "b c"}


@pytest.mark.parametrize(("command", "expected"), [
    (("python", "train.py", "--n", "2"), ["/kiln/env/bin/python", "train.py", "--n", "2"]),
    (("python3", "-c", "pass"), ["/kiln/env/bin/python", "-c", "pass"]),
    (("bash", "run.sh"), ["bash", "run.sh"]),
])
def test_a_command_runs_as_on_the_local_target(tmp_path: Path, command: tuple[str, ...], expected: list[str]) -> None:
    assert program(plan(tmp_path, command=command)) == expected


def test_a_plan_without_an_image_is_refused(tmp_path: Path) -> None:
    p = plan(tmp_path, image=None)
    with pytest.raises(KilnError, match="no image to run in"):
        container_spec(p)
    reason = ContainerTarget().cannot_run(p)
    assert reason is not None and "no image" in reason


@pytest.mark.parametrize("python", ["", "bin/python", "./python", "/kiln/env/bin/python\0", "python\0"])
def test_an_interpreter_that_is_no_absolute_path_or_command_is_refused(tmp_path: Path, python: str) -> None:
    """A user-managed environment's ``interpreter_path`` may be a command (``python``), found on the image's PATH."""
    p = plan(tmp_path, python=python)
    p.workdir.mkdir(parents=True)
    reason = ContainerTarget().cannot_run(p)
    assert reason is not None and "neither an absolute path in the image nor a command on its PATH" in reason


def test_without_an_engine_the_reason_says_how_to_start_one(tmp_path: Path) -> None:
    p = plan(tmp_path, engine=f"unix://{tmp_path}/no-such.sock")
    p.workdir.mkdir(parents=True)
    reason = ContainerTarget().cannot_run(p)
    assert reason is not None and "podman system service" in reason


def test_stop_orphan_with_no_engine_or_a_broken_state_does_nothing(tmp_path: Path) -> None:
    state = tmp_path / "script.pid"
    ContainerTarget().stop_orphan(state=state)
    for text in ("not json", "[]", '{"container": "abc", "engine": "unix:///nonexistent.sock"}'):
        state.write_text(text)
        ContainerTarget().stop_orphan(state=state)
    assert state.read_text().endswith("nonexistent.sock\"}")


def test_the_launcher_keeps_the_exact_exit_code_and_the_order_of_the_output(tmp_path: Path) -> None:
    """The launcher itself, run here: the code of a script killed by a signal is negative, as the local target's."""
    (tmp_path / "s.py").write_text("import os, sys\nprint('out', flush=True)\nprint('err', file=sys.stderr, "
                                   "flush=True)\nos.kill(os.getpid(), 9)\n")
    log, done = tmp_path / "out.log", tmp_path / "exit"
    log.write_text("before\n")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, str(log), str(done), str(tmp_path),
                           sys.executable, "s.py"], check=False)
    assert proc.returncode == 128 + 9
    assert done.read_text() == "-9"
    assert log.read_text() == "before\nout\nerr\n"


def test_the_shm_size_is_the_containers_and_unset_leaves_the_engines(tmp_path: Path) -> None:
    assert container_spec(plan(tmp_path, shm_size=2 << 30))["shm_size"] == 2 << 30
    assert "shm_size" not in container_spec(plan(tmp_path))
