"""Runs end to end: real scripts, in real built environments, supervised by real detached processes.

One workspace and one build cache serve the whole module (building an environment once); each test
uses its own experiment name and source folder. Tests that need a workspace of their own (the default
environment) make one, and still share the build cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import kiln_cmd
from kiln import CondaDependencies, Environment, Experiment, Model, ScriptRunConfig, Workspace
from kiln.builds import build
from kiln.builds.interpreters import find_interpreter
from kiln.errors import DefinitionError, KilnError, NotFoundError
from kiln.runs.config import HistoryConfiguration, RunConfiguration
from kiln.runs.layout import RunLayout
from kiln.runs.run import Run, RunFailedError
from kiln.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

#: Kiln's default Python (what ``default-env`` uses)
PY = "3.12"
SIX = "six==1.16.0"
FINAL = ("Completed", "Failed", "Canceled")


# ---- fixtures -------------------------------------------------------------------------------------------




@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("kiln-home"), cache_dir=shared_cache)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[Workspace]:
    workspace = Workspace.create("runs", path=tmp_path_factory.mktemp("ws"))
    yield workspace
    for experiment in Experiment.list(workspace):  # nothing of this module keeps running after it
        for run in Run.list(experiment):
            if run.status not in FINAL:
                run.cancel()
    workspace.close()


def python_for(version: str) -> str:
    try:
        return find_interpreter(version, default=version).path
    except DefinitionError:
        pytest.skip(f"no Python {version} on this machine")


def definition(name: str, *pip: str, python: str = PY, variables: dict[str, str] | None = None) -> Environment:
    python_for(python)
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(pip), python_version=python)
    env.environment_variables = dict(variables or {})
    return env


@pytest.fixture(scope="module")
def six_env(ws: Workspace, settings: Settings) -> tuple[Environment, str]:
    """``with-six`` version 1 (built; its lock hash) — version 2, with another pin, is registered after it."""
    v1 = ws.register_environment(definition("with-six", SIX, variables={"FROM_DEFINITION": "definition value",
                                                                        "OMP_NUM_THREADS": "1"}))
    result = build(v1, ws, settings=settings)
    v2 = ws.register_environment(definition("with-six", "six==1.17.0"))
    assert (v1.version, v2.version) == ("1", "2")
    assert result.lock_hash is not None
    return v1, result.lock_hash


# ---- helpers --------------------------------------------------------------------------------------------


def source(folder: Path, script: str, name: str = "train.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(script), encoding="utf-8")
    return folder


def submit(ws: Workspace, folder: Path, script: str, *, experiment: str, env: Environment | None = None,
           tags: dict[str, str] | None = None, **config: Any) -> Run:
    source(folder, script)
    return Experiment(ws, experiment).submit(ScriptRunConfig(source_directory=folder, script="train.py",
                                                             environment=env, **config), tags=tags)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def running_and_said(run: Run, text: str) -> Callable[[], bool]:
    return lambda: run.status == "Running" and text in run.get_output()


def live_members(pgid: int) -> list[int]:
    """Processes of the group ``pgid`` that still run (zombies excepted: they run nothing)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def script_pid(run: Run) -> int:
    return int(RunLayout(run.workspace.path, run.id).script_pid.read_text().split()[0])


def blob_files(ws: Workspace) -> dict[str, int]:
    root = ws.blobs.root
    return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}


# ---- metrics, outputs, files, models ---------------------------------------------------------------------

ROUND_TRIP = """\
    import os
    from kiln.run import Run

    run = Run.get_context()
    run.log("alpha", 0.5)
    for loss in (0.9, 0.4, 0.1):
        run.log("loss", loss)
    run.log_list("sizes", [1, 2, 3])
    run.log_row("scores", fold=1, f1=0.5)
    run.log_row("scores", fold=2, f1=0.75)
    run.log_table("curve", {"x": [0, 1], "y": [0.0, 1.0]})
    run.tag("stage", "trained")
    os.makedirs("outputs/folder", exist_ok=True)
    with open("outputs/model.txt", "w") as f:
        f.write("weights v1\\n")
    with open("outputs/folder/a.bin", "wb") as f:
        f.write(bytes(range(256)))
    print("trained", run.id, flush=True)
"""


def test_metrics_outputs_and_models_round_trip(ws: Workspace, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = submit(ws, tmp_path / "src", ROUND_TRIP, experiment="round-trip", tags={"team": "vision"})
    assert run.status in ("Queued", "Preparing", "Running", "Completed")
    details = run.wait_for_completion(show_output=True)
    assert details["status"] == "Completed" and details["exitCode"] == 0 and "error" not in details
    streamed = capsys.readouterr().out
    assert f"trained {run.id}\n" in streamed
    assert streamed == run.get_output()  # streamed whole, once

    assert run.get_metrics() == {"alpha": 0.5, "loss": [0.9, 0.4, 0.1], "sizes": [1, 2, 3],
                                 "scores": {"fold": [1, 2], "f1": [0.5, 0.75]},
                                 "curve": {"x": [0, 1], "y": [0.0, 1.0]}}
    assert run.get_metrics("loss") == {"loss": [0.9, 0.4, 0.1]}
    assert run.get_tags() == {"team": "vision", "stage": "trained"}
    assert details["tags"] == {"team": "vision", "stage": "trained"}
    assert run.get_file_names() == ["logs/output.log", "outputs/folder/a.bin", "outputs/model.txt"]

    target = tmp_path / "down" / "m.txt"
    assert run.download_file("outputs/model.txt", target) == str(target)
    assert target.read_text() == "weights v1\n"
    (tmp_path / "into").mkdir()
    assert run.download_file("outputs/folder/a.bin", tmp_path / "into") == str(tmp_path / "into" / "a.bin")
    assert (tmp_path / "into" / "a.bin").read_bytes() == bytes(range(256))
    assert run.download_file("logs/output.log", tmp_path / "out.log") and \
        (tmp_path / "out.log").read_text() == run.get_output()
    with pytest.raises(NotFoundError, match=r"has no file 'outputs/nope\.txt'"):
        run.download_file("outputs/nope.txt", tmp_path / "x")
    with pytest.raises(NotFoundError):
        run.download_file("../../registry.sqlite", tmp_path / "x")

    model = run.register_model("round-trip-model", "outputs/model.txt", tags={"acc": "0.9"})
    assert (model.name, model.version, model.run_id, model.path) == ("round-trip-model", 1, run.id, "model.txt")
    fetched = Model(ws, "round-trip-model")
    written = fetched.download(tmp_path / "model-dl")
    assert written == str(tmp_path / "model-dl" / "model.txt")
    assert Path(written).read_text() == "weights v1\n"
    assert run.register_model("round-trip-model", "outputs/model.txt", tags={"acc": "0.9"}).version == 1  # same files
    with pytest.raises(NotFoundError):
        run.register_model("nope", "outputs/missing.pkl")

    again = Run.get(ws, run.id)
    assert (again.id, again.experiment.name, again.status) == (run.id, "round-trip", "Completed")
    assert [r.id for r in Experiment(ws, "round-trip").get_runs()] == [run.id]
    assert [r.id for r in Run.list(Experiment(ws, "round-trip"), status="Completed")] == [run.id]
    assert Run.list(Experiment(ws, "round-trip"), status="Failed") == []


def test_a_folder_of_outputs_registered_as_a_model_downloads_as_that_folder(ws: Workspace, tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", ROUND_TRIP, experiment="folder-model")
    run.wait_for_completion()
    model = run.register_model("folder-model", "outputs/folder")
    assert model.path == "folder"
    written = Model(ws, "folder-model", 1).download(tmp_path / "dl")
    assert written == str(tmp_path / "dl" / "folder")
    assert (tmp_path / "dl" / "folder" / "a.bin").read_bytes() == bytes(range(256))


def test_submit_leaves_no_popen_to_warn_about(ws: Workspace, tmp_path: Path) -> None:
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = submit(ws, tmp_path / "src", "print('hi')\n", experiment="warnings")
        gc.collect()
    run.wait_for_completion()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_status_goes_from_queued_to_running_to_completed(ws: Workspace, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    run = submit(ws, tmp_path / "src", f"""\
        import os, time
        from kiln.run import Run
        Run.get_context().log("progress", 0.5)
        print("waiting", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
    """, experiment="statuses")
    seen = {run.status}
    wait_for(running_and_said(run, "waiting"), "the script to run")
    seen.add(run.status)
    assert run.get_metrics() == {"progress": 0.5}  # read live, while the script runs
    details = run.get_details()
    assert details["status"] == "Running" and details["startTimeUtc"] and details["endTimeUtc"] is None
    flag.touch()
    details = run.wait_for_completion()
    assert seen <= {"Queued", "Preparing", "Running"} and "Running" in seen
    assert details["status"] == "Completed" and details["endTimeUtc"] >= details["startTimeUtc"]


def test_runs_are_listed_newest_first(ws: Workspace, tmp_path: Path) -> None:
    runs = [submit(ws, tmp_path / f"src{i}", "print('hi')\n", experiment="listing") for i in range(3)]
    for run in runs:
        run.wait_for_completion()
    assert [r.id for r in Experiment(ws, "listing").get_runs()] == [r.id for r in reversed(runs)]
    assert "listing" in [e.name for e in Experiment.list(ws)]


# ---- environments ---------------------------------------------------------------------------------------


def test_without_an_environment_the_default_one_is_registered_and_used(tmp_path: Path) -> None:
    with Workspace.create("fresh", path=tmp_path / "fresh-ws") as fresh:
        with pytest.raises(NotFoundError):
            fresh.get_environment("default-env")
        script = "import sys; print('python %d.%d' % sys.version_info[:2], sys.prefix)\n"
        first = submit(fresh, tmp_path / "src", script, experiment="default")
        details = first.wait_for_completion()
        assert details["runDefinition"]["environment"] == {"name": "default-env", "version": "1"}
        assert f"python {PY} " in first.get_output()
        registered = fresh.get_environment("default-env")
        assert registered.version == "1"
        used = first.get_environment()
        assert (used.name, used.version) == ("default-env", "1")
        assert details["runDefinition"]["lockHash"]
        second = submit(fresh, tmp_path / "src", script, experiment="default")
        assert second.wait_for_completion()["runDefinition"]["environment"] == {"name": "default-env",
                                                                               "version": "1"}
        assert fresh.get_environment("default-env").version == "1"  # used again, not registered again


def test_the_run_records_the_exact_environment_version_and_lock(ws: Workspace, tmp_path: Path,
                                                                six_env: tuple[Environment, str]) -> None:
    _, lock_hash = six_env
    assert ws.get_environment("with-six").version == "2"  # the latest is another version
    run = submit(ws, tmp_path / "src", "import six; print('six', six.__version__)\n", experiment="exact-env",
                 env=ws.get_environment("with-six", "1"))
    details = run.wait_for_completion()
    assert "six 1.16.0\n" in run.get_output()
    used = run.get_environment()
    assert (used.name, used.version) == ("with-six", "1")
    assert used.python.conda_dependencies is not None
    assert SIX in used.python.conda_dependencies.pip_packages
    assert details["runDefinition"]["environment"] == {"name": "with-six", "version": "1"}
    assert details["runDefinition"]["lockHash"] == lock_hash
    assert details["runDefinition"]["lockHash"] == build(used, ws).lock_hash


def test_environment_variables_reach_the_script(ws: Workspace, tmp_path: Path,
                                                six_env: tuple[Environment, str]) -> None:
    script = """\
        import json, os, sys
        import extra_module  # found through the PYTHONPATH of the run configuration
        names = ["FROM_DEFINITION", "OMP_NUM_THREADS", "FROM_RUN_CONFIG", "KILN_RUN_ID", "KILN_EXPERIMENT",
                 "VIRTUAL_ENV"]
        print(json.dumps({n: os.environ.get(n) for n in names}))
        print(json.dumps({"executable": sys.executable, "prefix": sys.prefix}))
    """
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "extra_module.py").write_text("")
    run_config = RunConfiguration(environment_variables={"FROM_RUN_CONFIG": "run value", "OMP_NUM_THREADS": "4",
                                                         "PYTHONPATH": str(extra)})
    run = submit(ws, tmp_path / "src", script, experiment="variables", env=six_env[0], run_config=run_config)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed", run.get_output()
    printed = [json.loads(line) for line in run.get_output().splitlines() if line.startswith("{")]
    assert printed[0] == {"FROM_DEFINITION": "definition value", "OMP_NUM_THREADS": "4",
                          "FROM_RUN_CONFIG": "run value", "KILN_RUN_ID": run.id, "KILN_EXPERIMENT": "variables",
                          "VIRTUAL_ENV": printed[1]["prefix"]}
    assert printed[1]["executable"].startswith(str(Settings.from_env().cache_dir))


def test_the_in_script_module_works_on_python_39(ws: Workspace, tmp_path: Path) -> None:
    env = definition("py39", python="3.9")
    script = """\
        import sys
        import kiln.run
        from kiln.run import Run

        run = Run.get_context(allow_offline=False)
        run.log("python", "%d.%d" % sys.version_info[:2])
        run.log("value", 1.5)
        run.log_row("table", a=1)
        run.tag("where", kiln.run.__file__)
        try:
            import kiln.runs
        except ImportError:
            print("no installed kiln")
    """
    run = submit(ws, tmp_path / "src", script, experiment="py39", env=env)
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    assert run.get_metrics() == {"python": "3.9", "value": 1.5, "table": {"a": [1]}}
    assert run.get_tags()["where"] == str(RunLayout(ws.path, run.id).root / "kiln-path" / "kiln" / "run.py")
    assert "no installed kiln\n" in run.get_output()


# ---- failures ---------------------------------------------------------------------------------------------


def test_a_failing_script_fails_the_run_with_its_exit_code_and_last_lines(ws: Workspace, tmp_path: Path) -> None:
    script = """\
        import os, sys
        os.makedirs("outputs")
        with open("outputs/partial.txt", "w") as f:
            f.write("half done")
        for i in range(1, 31):
            print("line", i)
        sys.stderr.write("something broke\\n")
        sys.exit(3)
    """
    run = submit(ws, tmp_path / "src", script, experiment="failing")
    with pytest.raises(RunFailedError) as e:
        run.wait_for_completion()
    assert e.value.run.id == run.id
    assert e.value.details["status"] == "Failed"
    assert str(e.value).startswith(f"run {run.id} failed: the script exited with code 3\n")
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["exitCode"] == 3
    message = details["error"]["message"]
    assert details["error"]["exitCode"] == 3
    lines = message.splitlines()
    assert lines[0] == "the script exited with code 3"
    assert lines[1:] == [f"line {i}" for i in range(12, 31)] + ["something broke"]  # the last 20 lines
    assert "line 1\n" in run.get_output()  # the whole log is kept
    assert run.get_file_names() == ["logs/output.log", "outputs/partial.txt"]  # outputs of a failed run are kept


def test_show_output_prints_a_last_line_without_a_newline(ws: Workspace, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    script = "import sys\nprint('first')\nsys.stdout.write('no newline at the end')\n"
    run = submit(ws, tmp_path / "src", script, experiment="partial-line")
    run.wait_for_completion(show_output=True)
    assert run.get_output().endswith("first\nno newline at the end")
    assert capsys.readouterr().out == run.get_output()


def test_a_script_raising_an_exception_carries_its_traceback(ws: Workspace, tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", "def f():\n    raise ValueError('bad value 42')\nf()\n", experiment="failing")
    details = run.wait_for_completion(raise_on_error=False)
    assert (details["status"], details["exitCode"]) == ("Failed", 1)
    assert details["error"]["message"].splitlines()[-1] == "ValueError: bad value 42"
    assert "Traceback (most recent call last):" in details["error"]["message"]


def test_a_script_killed_by_a_signal_fails_with_the_signal(ws: Workspace, tmp_path: Path) -> None:
    script = "import os\nprint('about to die', flush=True)\nos.kill(os.getpid(), 9)\n"
    run = submit(ws, tmp_path / "src", script, experiment="killed")
    details = run.wait_for_completion(raise_on_error=False)
    assert (details["status"], details["exitCode"]) == ("Failed", -9)
    assert details["error"]["message"] == "the script killed by signal 9\nabout to die"
    assert "about to die\n" in run.get_output()


def test_a_script_that_runs_too_long_is_stopped_and_fails(ws: Workspace, tmp_path: Path) -> None:
    script = "import time\nprint('started', flush=True)\ntime.sleep(300)\n"
    run = submit(ws, tmp_path / "src", script, experiment="timeout", max_run_duration_seconds=1)
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    assert details["runDefinition"]["maxRunDurationSeconds"] == 1
    assert details["error"]["message"] == \
        "the script ran longer than max_run_duration_seconds (1 s) and was stopped\nstarted"
    assert details["exitCode"] == -signal.SIGTERM
    assert live_members(script_pid(run)) == []


def test_a_supervisor_failure_is_reported_with_its_error(ws: Workspace, tmp_path: Path) -> None:
    """The environment's build fails inside the supervisor (no such package): the run fails with the reason."""
    env = definition("unbuildable", "kiln-no-such-package-for-tests==0.0.1")
    run = submit(ws, tmp_path / "src", "print('never')\n", experiment="broken-env", env=env)
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Failed" and details["exitCode"] is None
    assert "kiln-no-such-package-for-tests" in details["error"]["message"]
    assert "never" not in run.get_output()
    assert f"[kiln] failed: {details['error']['message'].splitlines()[0]}" in run.get_output()


# ---- cancel ---------------------------------------------------------------------------------------------

SPAWNS_A_CHILD = """\
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("started child", child.pid, flush=True)
    time.sleep(300)
"""


def test_cancel_stops_the_script_and_its_children(ws: Workspace, tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", SPAWNS_A_CHILD, experiment="cancel")
    wait_for(running_and_said(run, "started child"), "the script to start its child")
    pgid = script_pid(run)
    assert len(live_members(pgid)) == 2
    with pytest.raises(KilnError, match=r"is still Running after 0\.2 s$"):
        run.wait_for_completion(timeout=0.2)
    run.cancel()
    details = run.wait_for_completion(timeout=60)  # a canceled run does not raise
    assert details["status"] == "Canceled" and details["error"]["message"] == "canceled"
    wait_for(lambda: live_members(pgid) == [], "the script's process group to end", timeout=10)
    assert "started child" in run.get_output()  # the log is kept
    run.cancel()  # canceling a finished run changes nothing
    assert run.status == "Canceled"


def test_cancel_kills_a_script_that_ignores_sigterm(ws: Workspace, tmp_path: Path) -> None:
    script = """\
        import signal, time
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        print("started", flush=True)
        while True:
            time.sleep(0.1)
    """
    run = submit(ws, tmp_path / "src", script, experiment="cancel")
    wait_for(running_and_said(run, "started"), "the script to start")
    pgid = script_pid(run)
    run.cancel()
    details = run.wait_for_completion(timeout=60)
    assert (details["status"], details["exitCode"]) == ("Canceled", -signal.SIGKILL)
    assert "ignoring SIGTERM" in run.get_output()
    assert live_members(pgid) == []


def test_a_killed_supervisor_leaves_a_failed_run_and_no_script(ws: Workspace, tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", SPAWNS_A_CHILD, experiment="dead-supervisor")
    wait_for(running_and_said(run, "started child"), "the script to start its child")
    pgid = script_pid(run)
    supervisor = ws.store.get_run(run.id).pid
    assert supervisor is not None and len(live_members(pgid)) == 2
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: run.status != "Running", "the run to be seen as dead", timeout=10)
    details = Run.get(ws, run.id).get_details()  # as another process would see it
    assert details["status"] == "Failed"
    assert details["error"]["message"] == (f"Kiln's process for this run (pid {supervisor}) is gone: it was killed "
                                           "or the machine restarted")
    assert details["endTimeUtc"] is not None
    wait_for(lambda: live_members(pgid) == [], "the orphaned script to be stopped", timeout=10)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Failed"


# ---- history --------------------------------------------------------------------------------------------

WRITES_HERE = """\
    import os
    print("cwd", os.getcwd())
    with open("written_by_run.txt", "w") as f:
        f.write("x")
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/result.txt", "w") as f:
        f.write("result")
"""


def test_with_snapshots_the_script_runs_in_a_copy_of_its_folder(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    run = submit(ws, src, WRITES_HERE, experiment="history")
    details = run.wait_for_completion()
    work = RunLayout(ws.path, run.id).work
    assert f"cwd {work}\n" in run.get_output()
    assert details["runDefinition"]["snapshotId"] and details["runDefinition"]["source"] == str(src)
    assert not (src / "written_by_run.txt").exists() and (work / "written_by_run.txt").exists()
    assert run.get_file_names() == ["logs/output.log", "outputs/result.txt"]


def test_without_snapshots_the_script_runs_in_its_source_folder(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    run_config = RunConfiguration(history=HistoryConfiguration(snapshot_project=False))
    run = submit(ws, src, WRITES_HERE, experiment="history", run_config=run_config)
    details = run.wait_for_completion()
    assert f"cwd {src}\n" in run.get_output()
    assert details["runDefinition"]["snapshotId"] is None
    assert (src / "written_by_run.txt").exists()
    assert not RunLayout(ws.path, run.id).work.exists()
    assert run.get_file_names() == ["logs/output.log", "outputs/result.txt"]  # outputs are still collected


def test_without_output_collection_outputs_stay_behind(ws: Workspace, tmp_path: Path) -> None:
    run_config = RunConfiguration(history=HistoryConfiguration(output_collection=False))
    run = submit(ws, tmp_path / "src", WRITES_HERE, experiment="history", run_config=run_config)
    run.wait_for_completion()
    assert run.get_file_names() == ["logs/output.log"]


def test_history_off_stores_nothing_and_collects_nothing(ws: Workspace, tmp_path: Path) -> None:
    run_config = RunConfiguration()
    run_config.history.enabled = False
    before = blob_files(ws)
    src = source(tmp_path / "src", "print('x')\n", name="new_file_for_history_off.py")
    run = submit(ws, src, WRITES_HERE, experiment="history", run_config=run_config)
    run.wait_for_completion()
    assert blob_files(ws) == before
    assert run.get_file_names() == ["logs/output.log"]
    assert (src / "outputs" / "result.txt").exists()


# ---- several runs, several processes ---------------------------------------------------------------------


def test_two_runs_at_once_complete_with_their_own_logs(ws: Workspace, tmp_path: Path) -> None:
    script = """\
        import sys, time
        from kiln.run import Run
        for i in range(40):
            print(sys.argv[1], i, flush=True)
            time.sleep(0.01)
        Run.get_context().log("who", sys.argv[1])
    """
    a = submit(ws, tmp_path / "a", script, experiment="parallel", arguments=["AAA"])
    b = submit(ws, tmp_path / "b", script, experiment="parallel", arguments=["BBB"])
    assert a.id != b.id
    wait_for(lambda: "BBB 0" in b.get_output() and "AAA 0" in a.get_output() and
             (a.status == "Running" or b.status == "Running"), "both runs to start")
    assert a.wait_for_completion()["status"] == b.wait_for_completion()["status"] == "Completed"
    for run, mine, other in ((a, "AAA", "BBB"), (b, "BBB", "AAA")):
        printed = [line for line in run.get_output().splitlines() if not line.startswith("[kiln]")]
        assert printed == [f"{mine} {i}" for i in range(40)]
        assert other not in run.get_output().replace("running train.py", "")
        assert run.get_metrics() == {"who": mine}


def test_arguments_pass_through_as_strings(ws: Workspace, tmp_path: Path) -> None:
    arguments = ["--alpha", 0.5, "--n", 3, "two words", "", "--", "-x", "ünïcödé", "$HOME", "a;b"]
    run = submit(ws, tmp_path / "src", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n",
                 experiment="arguments", arguments=arguments)
    details = run.wait_for_completion()
    expected = ["--alpha", "0.5", "--n", "3", "two words", "", "--", "-x", "ünïcödé", "$HOME", "a;b"]
    assert details["runDefinition"]["arguments"] == expected
    printed = [line for line in run.get_output().splitlines() if line.startswith("[")]
    assert json.loads(printed[-1]) == expected


def test_an_unchanged_folder_submitted_twice_stores_no_new_bytes(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "fifty"
    for i in range(50):
        path = src / f"pkg{i % 5}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {i}\n" + "# padding\n" * i)
    script = "import os\nprint('files', sum(len(f) for _, _, f in os.walk('.')))\n"
    first = submit(ws, src, script, experiment="snapshot")
    first.wait_for_completion()
    stored = blob_files(ws)
    second = submit(ws, src, script, experiment="snapshot")
    second.wait_for_completion()
    assert blob_files(ws) == stored
    d1, d2 = first.get_details()["runDefinition"], second.get_details()["runDefinition"]
    assert d1["snapshotId"] == d2["snapshotId"] is not None
    assert "files 51\n" in second.get_output()  # 50 files and the script, in the working copy
    definition_of = json.loads(ws.store.get_run(second.id).definition)
    assert definition_of["snapshot_files"] == 51


def test_a_run_is_watched_from_other_processes(ws: Workspace, tmp_path: Path,
                                              run_kiln: Callable[..., tuple[int, str, str]]) -> None:
    script = """\
        import sys, time
        for i in range(30):
            print("step", i, flush=True)
            time.sleep(0.03)
        sys.exit(3)
    """
    source(tmp_path / "src", script)
    env = {"KILN_WORKSPACE": str(ws.path)}
    code, out, err = run_kiln("run", "submit", "--detach", "--experiment", "watched", "--source-dir",
                              str(tmp_path / "src"), "train.py", env=env)
    assert (code, err) == (0, "")
    run_id = out.strip()
    assert out == run_id + "\n" and run_id.startswith("watched_")
    # a second process follows the run while it runs; a third shows it
    follower = subprocess.run([*kiln_cmd(), "run", "logs", run_id, "--follow"], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=120, check=False)
    run = Run.get(ws, run_id)
    assert follower.returncode == 3
    assert follower.stdout == run.get_output()
    assert [line for line in follower.stdout.splitlines() if line.startswith("step")] == \
        [f"step {i}" for i in range(30)]
    code, out, err = run_kiln("-o", "json", "run", "show", run_id, env=env)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["kiln"], doc["kind"]) == (1, "run.show")
    data = doc["data"]
    assert (data["runId"], data["experiment"], data["status"], data["exitCode"]) == (run_id, "watched", "Failed", 3)
    assert data["runDefinition"]["script"] == "train.py"
    assert data["files"] == ["logs/output.log"] and data["metrics"] == {}
    assert data["error"]["message"].startswith("the script exited with code 3\nstep ")


# ---- runs whose processes are gone, cancel at awkward moments ---------------------------------------------


def record(ws: Workspace, run_id: str, **fields: Any) -> None:
    from kiln.workspace.store import RunRecord

    definition_doc: dict[str, Any] = {"script": "train.py", "arguments": [], "source": "/nowhere", "snapshot": None}
    ws.store.create_run(RunRecord(id=run_id, experiment="records", status="Queued",
                                  definition=json.dumps(definition_doc), environment="default-env",
                                  environment_version=1, **fields))
    RunLayout(ws.path, run_id).logs.mkdir(parents=True)


def test_a_queued_run_whose_supervisor_never_started_fails_after_a_grace_period(ws: Workspace) -> None:
    record(ws, "records_1_never", created_at=time.time() - 120)
    record(ws, "records_2_just_now", created_at=time.time())
    assert Run.get(ws, "records_2_just_now").status == "Queued"  # it may still be starting
    details = Run.get(ws, "records_1_never").get_details()
    assert details["status"] == "Failed"
    assert details["error"]["message"] == ("Kiln's process for this run (pid None) is gone: it was killed or the "
                                           "machine restarted")


def test_a_run_is_live_while_its_recorded_process_is_the_same_one(ws: Workspace) -> None:
    from kiln._process import start_time

    stand_in = subprocess.Popen(["sleep", "300"])  # plays the supervisor
    try:
        started = start_time(stand_in.pid)
        record(ws, "records_3_alive", created_at=time.time(), pid=stand_in.pid, pid_start=started)
        record(ws, "records_4_reused", created_at=time.time(), pid=stand_in.pid, pid_start=f"{started}0")
        assert Run.get(ws, "records_3_alive").status == "Queued"
        assert Run.get(ws, "records_4_reused").status == "Failed"  # the pid now belongs to another process
        stand_in.kill()
        stand_in.wait()
        assert Run.get(ws, "records_3_alive").status == "Failed"
    finally:
        stand_in.kill()
        stand_in.wait()


def test_cancel_right_after_submit_cancels(ws: Workspace, tmp_path: Path) -> None:
    run = submit(ws, tmp_path / "src", "print('should not run')\n", experiment="cancel-now")
    run.cancel()
    details = run.wait_for_completion(timeout=60)
    assert details["status"] == "Canceled"
    assert "should not run" not in run.get_output()


def test_cancel_while_the_environment_builds(ws: Workspace, tmp_path: Path) -> None:
    env = definition("slow-build", "six==1.15.0", python="3.11")
    script = "print('script started', flush=True)\nimport time\ntime.sleep(300)\n"
    run = submit(ws, tmp_path / "src", script, experiment="cancel-build", env=env)
    wait_for(lambda: run.status == "Preparing" and "resolving" in run.get_output(), "the build to start")
    run.cancel()
    details = run.wait_for_completion(timeout=60)
    assert details["status"] == "Canceled"
    if details["error"]["message"] == "canceled while preparing":
        assert "script started" not in run.get_output()
    # the interrupted build left nothing in the way: the environment builds and runs next time
    again = submit(ws, tmp_path / "src", "import six; print('six', six.__version__)\n", experiment="cancel-build",
                   env=ws.get_environment("slow-build"))
    assert again.wait_for_completion(timeout=180)["status"] == "Completed"
    assert "six 1.15.0\n" in again.get_output()


def test_two_runs_of_an_environment_not_built_yet_share_one_build(ws: Workspace, tmp_path: Path) -> None:
    env = ws.register_environment(definition("cold-pair", "six==1.14.0", python="3.11"))
    script = "import six, sys; print('six', six.__version__, sys.executable)\n"
    runs = [submit(ws, tmp_path / f"src{i}", script, experiment="cold-pair", env=env) for i in range(2)]
    details = [r.wait_for_completion(timeout=300) for r in runs]
    assert [d["status"] for d in details] == ["Completed", "Completed"]
    executables = {r.get_output().split("six 1.14.0 ")[1].splitlines()[0] for r in runs}
    assert len(executables) == 1  # one build, used by both
    assert details[0]["runDefinition"]["lockHash"] == details[1]["runDefinition"]["lockHash"] is not None
