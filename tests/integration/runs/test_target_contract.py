"""The contract every compute target keeps, run against each registered target with real processes.

A target gets a ``RunPlan`` (here with this interpreter: no environment to build) and returns a handle;
what the supervisor relies on is checked through the plan's files and the handle only. A target that
can't run on this machine (``cannot_run`` gives a reason) is skipped with that reason. The ``container``
target runs the plans in the session's base image (its Python), through the session's podman service.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln._process import alive, start_time
from kiln.runs.targets import ComputeTarget, RunHandle, RunPlan, get_target, target_names

pytestmark = pytest.mark.integration

MakePlan = Callable[..., RunPlan]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


#: the built-in targets, and the kinds a workspace attaches (each against a real one: a Ray head of this session)
TARGETS = (*target_names(), "ray")


@pytest.fixture(params=TARGETS)
def target_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_plan(tmp_path: Path, target_kind: str, request: pytest.FixtureRequest) -> MakePlan:
    """A plan of ``script`` (its text), run in a folder of its own, with ``./outputs`` collected."""
    count = 0
    where: dict[str, Any] = {}
    if target_kind == "container":  # the engine starts only when a container test runs
        engine = request.getfixturevalue("container_engine")
        where = {"image": engine.base_image, "engine": engine.engine_url, "python": "/usr/local/bin/python3"}

    def make(script: str, *, arguments: tuple[str, ...] = (), variables: dict[str, str] | None = None,
             collect: bool = True, **fields: Any) -> RunPlan:
        nonlocal count
        count += 1
        run_dir = tmp_path / f"run{count}"
        work = run_dir / "work"
        work.mkdir(parents=True)
        (run_dir / "files" / "logs").mkdir(parents=True)
        (work / "train.py").write_text(textwrap.dedent(script), encoding="utf-8")
        ours = {"PYTHONUNBUFFERED": "1", **(variables or {})}
        values: dict[str, Any] = {
            "run_id": f"contract_{count}", "script": "train.py", "arguments": arguments, "workdir": work,
            "python": sys.executable, "environ": {**os.environ, **ours}, "variables": ours, "run_dir": run_dir,
            "log": run_dir / "files" / "logs" / "output.log",
            "outputs": run_dir / "files" / "outputs" if collect else None, "state": run_dir / "script.pid",
            **where}
        values.update(fields)
        return RunPlan(**values)

    return make


def fresh(target: ComputeTarget) -> ComputeTarget:
    """Another instance of ``target``, as another process makes it (the registry, or the attached record)."""
    if target.name in target_names():
        return get_target(target.name)
    from kiln.runs.targets.ray import RayTarget

    assert isinstance(target, RayTarget)
    return RayTarget(name=target.name, address=target.address)


@pytest.fixture
def target(target_kind: str, make_plan: MakePlan, request: pytest.FixtureRequest) -> ComputeTarget:
    if target_kind == "ray":
        import importlib.util

        from kiln.runs.targets.ray import RayTarget

        if importlib.util.find_spec("ray") is None:  # the head's own Ray: a dev extra
            pytest.skip("ray: Ray is not installed here (pip install 'kiln[ray]')")
        target: ComputeTarget = RayTarget(name="ray-contract", address=request.getfixturevalue("ray_head").address)
    else:
        target = get_target(target_kind)
    reason = target.cannot_run(make_plan("pass\n"))
    if reason is not None:
        pytest.skip(f"{target.name}: {reason}")
    return target


@pytest.fixture
def start(target: ComputeTarget) -> Iterator[Callable[[RunPlan], RunHandle]]:
    """``target.start``; whatever still runs at the end of the test is canceled."""
    handles: list[RunHandle] = []

    def start(plan: RunPlan) -> RunHandle:
        handles.append(target.start(plan=plan))
        return handles[-1]

    yield start
    for handle in handles:
        handle.cancel()
        handle.wait()


def log_of(plan: RunPlan) -> str:
    return plan.log.read_text(encoding="utf-8", errors="replace") if plan.log.exists() else ""


# ---- exit codes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "code"), [("pass\n", 0), ("import sys\nsys.exit(3)\n", 3),
                                               ("raise SystemExit('bad')\n", 1),
                                               ("import os\nos.kill(os.getpid(), 9)\n", -9)])
def test_the_exit_code_comes_back(start: Callable[[RunPlan], RunHandle], make_plan: MakePlan, script: str,
                                  code: int) -> None:
    handle = start(make_plan(script))
    assert handle.wait() == code
    assert handle.wait(timeout=0) == code  # asked again, the same
    assert handle.alive() is False and handle.canceled is False


def test_wait_with_a_timeout_returns_none_while_the_script_runs(start: Callable[[RunPlan], RunHandle],
                                                                make_plan: MakePlan) -> None:
    handle = start(make_plan("import time\ntime.sleep(300)\n"))
    assert handle.wait(timeout=0.1) is None
    assert handle.alive() is True


def test_alive_is_false_after_the_script_exits_even_before_wait(start: Callable[[RunPlan], RunHandle],
                                                                make_plan: MakePlan) -> None:
    plan = make_plan("print('done', flush=True)\n")
    handle = start(plan)
    wait_for(lambda: not handle.alive(), "the script to end")
    assert handle.wait() == 0


# ---- output -------------------------------------------------------------------------------------------------


def test_stdout_and_stderr_reach_the_log_in_order(start: Callable[[RunPlan], RunHandle], make_plan: MakePlan) -> None:
    script = """\
        import sys
        for i in range(5):
            print("out", i, flush=True)
            print("err", i, file=sys.stderr, flush=True)
        sys.stdout.write("last line without a newline")
    """
    plan = make_plan(script)
    plan.log.write_text("[kiln] written before the start\n")  # the supervisor's own lines are kept
    handle = start(plan)
    assert handle.wait() == 0
    expected = "[kiln] written before the start\n" + "".join(f"out {i}\nerr {i}\n" for i in range(5)) + \
        "last line without a newline"
    assert log_of(plan) == expected
    assert "".join(handle.logs()) == expected
    assert list(handle.logs())[-2:] == ["err 4\n", "last line without a newline"]


def test_logs_follow_the_script_until_it_ends(start: Callable[[RunPlan], RunHandle], make_plan: MakePlan) -> None:
    script = """\
        import time
        for i in range(20):
            print("step", i, flush=True)
            time.sleep(0.01)
    """
    handle = start(make_plan(script))
    lines = list(handle.logs(follow=True))
    assert lines == [f"step {i}\n" for i in range(20)]
    assert handle.alive() is False


def test_the_script_gets_its_arguments_folder_and_variables(target: ComputeTarget,
                                                            start: Callable[[RunPlan], RunHandle],
                                                            make_plan: MakePlan) -> None:
    script = """\
        import json, os, sys
        print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "var": os.environ.get("KILN_CONTRACT_VAR"),
                          "python": sys.executable, "files": sorted(os.listdir("."))}))
    """
    arguments = ("--alpha", "0.5", "two words", "", "$HOME", "ünï")
    plan = make_plan(script, arguments=arguments, variables={"KILN_CONTRACT_VAR": "a value; with $pecial"})
    handle = start(plan)
    assert handle.wait() == 0
    seen = json.loads(log_of(plan))
    assert seen["argv"] == list(arguments)
    assert seen["files"] == ["train.py"]
    if target.remote:  # a copy of the run's folder, on a node
        assert Path(seen["cwd"]).resolve() != plan.workdir.resolve()
    else:
        assert Path(seen["cwd"]).resolve() == plan.workdir.resolve()
    assert seen["var"] == "a value; with $pecial"


# ---- outputs ------------------------------------------------------------------------------------------------

WRITES_OUTPUTS = """\
import os
os.makedirs("outputs/sub", exist_ok=True)
open("outputs/model.txt", "w").write("weights")
open("outputs/sub/more.txt", "w").write("more")
open("not_an_output.txt", "w").write("x")
"""


def test_outputs_are_collected_when_the_script_ends(start: Callable[[RunPlan], RunHandle],
                                                    make_plan: MakePlan) -> None:
    plan = make_plan(WRITES_OUTPUTS)
    handle = start(plan)
    assert handle.wait() == 0
    assert plan.outputs is not None
    collected = sorted(p.relative_to(plan.outputs).as_posix() for p in plan.outputs.rglob("*") if p.is_file())
    assert collected == ["model.txt", "sub/more.txt"]
    assert (plan.outputs / "model.txt").read_text() == "weights"


def test_outputs_of_a_failing_script_are_collected_too(start: Callable[[RunPlan], RunHandle],
                                                       make_plan: MakePlan) -> None:
    plan = make_plan(WRITES_OUTPUTS + "raise SystemExit(2)\n")
    assert start(plan).wait() == 2
    assert plan.outputs is not None and (plan.outputs / "model.txt").read_text() == "weights"


def test_without_an_outputs_folder_nothing_is_collected(start: Callable[[RunPlan], RunHandle],
                                                        make_plan: MakePlan) -> None:
    plan = make_plan(WRITES_OUTPUTS, collect=False)
    assert start(plan).wait() == 0
    assert not (plan.run_dir / "files" / "outputs").exists()


# ---- cancel, and a supervisor that died ------------------------------------------------------------------------

SPAWNS_A_CHILD = """\
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("pids", os.getpid(), child.pid, flush=True)
    time.sleep(300)
"""


def started_pids(plan: RunPlan) -> list[tuple[int, str | None]]:
    """The script's pid and its child's (with their start times), once it has printed them."""
    wait_for(lambda: "pids " in log_of(plan), "the script to start its child")
    line = next(line for line in log_of(plan).splitlines() if line.startswith("pids "))
    pids = [int(p) for p in line.split()[1:]]
    return [(pid, start_time(pid)) for pid in pids]


def test_cancel_stops_the_script_and_its_children(start: Callable[[RunPlan], RunHandle],
                                                  make_plan: MakePlan) -> None:
    plan = make_plan(SPAWNS_A_CHILD)
    handle = start(plan)
    pids = started_pids(plan)
    assert all(alive(pid, started) for pid, started in pids)
    handle.cancel()
    code = handle.wait()
    assert code is not None and code < 0  # ended by a signal
    assert handle.canceled is True and handle.alive() is False
    wait_for(lambda: not any(alive(pid, started) for pid, started in pids), "the script's children to end")
    handle.cancel()  # again: nothing happens
    assert handle.wait() == code


def test_cancel_after_the_end_changes_nothing(start: Callable[[RunPlan], RunHandle], make_plan: MakePlan) -> None:
    handle = start(make_plan("import sys\nsys.exit(4)\n"))
    wait_for(lambda: not handle.alive(), "the script to end")
    handle.cancel()
    assert handle.wait() == 4
    assert handle.canceled is False


def test_a_canceled_script_still_has_its_outputs_collected(start: Callable[[RunPlan], RunHandle],
                                                           make_plan: MakePlan) -> None:
    plan = make_plan(WRITES_OUTPUTS + "print('written', flush=True)\nimport time\ntime.sleep(300)\n")
    handle = start(plan)
    wait_for(lambda: "written" in log_of(plan), "the outputs to be written")
    handle.cancel()
    assert plan.outputs is not None and (plan.outputs / "model.txt").read_text() == "weights"


def test_an_orphaned_script_is_stopped_from_another_process(target: ComputeTarget,
                                                            start: Callable[[RunPlan], RunHandle],
                                                            make_plan: MakePlan) -> None:
    """The supervisor died: whoever sees it (a fresh target, from the registry) ends what it started."""
    plan = make_plan(SPAWNS_A_CHILD)
    handle = start(plan)
    pids = started_pids(plan)
    assert plan.state.exists()
    fresh(target).stop_orphan(state=plan.state)
    assert handle.wait(timeout=30) is not None
    wait_for(lambda: not any(alive(pid, started) for pid, started in pids), "the orphaned script to end")


def test_stop_orphan_without_a_state_file_does_nothing(target: ComputeTarget, tmp_path: Path) -> None:
    folder = tmp_path / "states"
    folder.mkdir()
    target.stop_orphan(state=folder / "never-written")
    (folder / "garbage").write_text("not a state\n")
    target.stop_orphan(state=folder / "garbage")
    assert sorted(p.name for p in folder.iterdir()) == ["garbage"]


# ---- cannot_run -----------------------------------------------------------------------------------------------


def test_cannot_run_a_good_plan_is_none(target: ComputeTarget, make_plan: MakePlan) -> None:
    assert target.cannot_run(make_plan("pass\n")) is None


@pytest.mark.parametrize("broken", [
    {"python": "/nonexistent/bin/python"}, {"python": ""}, {"python": "python\0"},
    {"workdir": Path("/nonexistent/folder")},
])
def test_cannot_run_a_broken_plan_gives_a_reason_and_never_raises(target: ComputeTarget, make_plan: MakePlan,
                                                                 broken: dict[str, Any]) -> None:
    reason = target.cannot_run(make_plan("pass\n", **broken))
    assert isinstance(reason, str) and reason
