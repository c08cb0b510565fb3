"""``kiln run`` and ``kiln model`` end to end: the real command, real runs, exact output and exit codes.

Each test has its own workspace (the user's default one under its own ``KILN_HOME``); the build
cache is shared by the module so the default environment is built once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import kiln_cmd

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

RunKiln = Callable[..., tuple[int, str, str]]
RUN_ID = re.compile(r"^[a-z0-9_.-]+_\d+_[0-9a-f]{8}$")
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
#: runs the command after it (``python -c SIGINT_AT_DEFAULT CMD...``) with SIGINT at its default, whatever this
#: process's is (an exec keeps an ignored signal ignored, and resets a handled one to its default)
SIGINT_AT_DEFAULT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "os.execvp(sys.argv[1], sys.argv[1:])")

TRAIN = """\
    import os, sys
    from kiln.run import Run

    run = Run.get_context()
    print("hello from train.py", sys.argv[1:])
    run.log("accuracy", 0.75)
    run.tag("stage", "cli")
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as f:
        f.write("weights\\n")
"""


@pytest.fixture
def project() -> Path:
    """The current folder (the autouse fixture's temp folder), holding ``train.py``."""
    return script(Path.cwd(), TRAIN)


def script(folder: Path, text: str, name: str = "train.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def ok(run_kiln: RunKiln, *args: str, **kwargs: Any) -> str:
    code, out, err = run_kiln(*args, **kwargs)
    assert (code, err) == (0, ""), (args, code, out, err)
    return out


def envelope(run_kiln: RunKiln, *args: str, kind: str) -> Any:
    doc = json.loads(ok(run_kiln, "-o", "json", *args))
    assert set(doc) == {"kiln", "kind", "data"} and (doc["kiln"], doc["kind"]) == (1, kind)
    return doc["data"]


def fails(run_kiln: RunKiln, *args: str, **kwargs: Any) -> str:
    """A user error: exit 1, nothing on stdout, one ``kiln: error:`` line on stderr; returns the message."""
    code, out, err = run_kiln(*args, **kwargs)
    assert (code, out) == (1, ""), (args, code, out, err)
    assert err.startswith("kiln: error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    return err[len("kiln: error: "):-1]


def detach(run_kiln: RunKiln, *args: str) -> str:
    out = ok(run_kiln, "run", "submit", "--detach", *args)
    run_id = out.strip()
    assert out == run_id + "\n" and RUN_ID.match(run_id), out
    return run_id


def follow(run_kiln: RunKiln, run_id: str) -> int:
    code, _, err = run_kiln("run", "logs", run_id, "--follow")
    assert err == ""
    return code


def show(run_kiln: RunKiln, run_id: str) -> Any:
    return envelope(run_kiln, "run", "show", run_id, kind="run.show")


def log_file(run_id: str) -> str:
    return (Path(os.environ["KILN_HOME"]) / "workspace" / "runs" / run_id / "files" / "logs" / "output.log") \
        .read_text(encoding="utf-8")


def script_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("[kiln] ")]


def wait_running(run_kiln: RunKiln, run_id: str, text: str) -> None:
    deadline = time.monotonic() + 60
    while not (show(run_kiln, run_id)["status"] == "Running" and text in log_file(run_id)):
        assert time.monotonic() < deadline, f"run {run_id} did not start"
        time.sleep(0.1)


# ---- kiln run submit ------------------------------------------------------------------------------------------


def test_submit_streams_the_output_and_exits_0(run_kiln: RunKiln, project: Path) -> None:
    code, out, err = run_kiln("run", "submit", "train.py", "--", "--alpha", "0.5")
    run_id = err.removeprefix("run ").strip()
    assert (code, err) == (0, f"run {run_id}\n") and RUN_ID.match(run_id)
    assert out == log_file(run_id)
    assert script_lines(out) == ["hello from train.py ['--alpha', '0.5']"]
    assert f"[kiln] running train.py --alpha 0.5 with {os.environ['KILN_CACHE_DIR']}" in out


@pytest.mark.parametrize("exit_code", [3, 1, 255])
def test_submit_passes_the_scripts_exit_code_through(run_kiln: RunKiln, exit_code: int) -> None:
    script(Path.cwd(), f"import sys\nprint('failing')\nsys.exit({exit_code})\n", "fail.py")
    code, out, err = run_kiln("run", "submit", "fail.py")
    run_id = err.splitlines()[0].removeprefix("run ")
    assert code == exit_code
    assert script_lines(out) == ["failing"]
    assert err == f"run {run_id}\nkiln: run {run_id} failed: the script exited with code {exit_code}\n"


def test_submit_of_a_script_killed_by_a_signal_exits_1(run_kiln: RunKiln) -> None:
    script(Path.cwd(), "import os\nos.kill(os.getpid(), 9)\n", "die.py")
    code, _, err = run_kiln("run", "submit", "die.py")
    run_id = err.splitlines()[0].removeprefix("run ")
    assert (code, err) == (1, f"run {run_id}\nkiln: run {run_id} failed: the script killed by signal 9\n")


def test_submit_streams_while_the_script_runs(tmp_path: Path, project: Path) -> None:
    flag = tmp_path / "go"
    script(Path.cwd(), f"""\
        import os, time
        print("before the flag", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
        print("after the flag", flush=True)
    """, "wait.py")
    proc = subprocess.Popen([*kiln_cmd(), "run", "submit", "wait.py"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the first line arrives while the script still waits
            if line == "before the flag\n":
                break
        assert proc.poll() is None
        flag.touch()
        rest = proc.stdout.read()
        assert proc.wait(timeout=60) == 0
        assert rest == "after the flag\n"
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_an_interrupted_submit_cancels_its_run(project: Path) -> None:
    import signal

    script(Path.cwd(), "import time\nprint('started', flush=True)\ntime.sleep(300)\n", "long.py")
    # the user's `kiln` in a terminal gets Ctrl-C; pytest run as a shell's background job (`pytest ... &`) ignores
    # SIGINT, and its children would inherit that (rightly, for the CLI: a background job isn't interrupted)
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_AT_DEFAULT, *kiln_cmd(), "run", "submit", "long.py"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if line == "started\n":
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        run_id = proc.stderr.readline().removeprefix("run ").strip()
        assert proc.stderr.read() == f"kiln: run {run_id} canceled: canceled\n"
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    data = json.loads(subprocess.run([*kiln_cmd(), "-o", "json", "run", "show", run_id], capture_output=True,
                                     text=True, check=True, timeout=60).stdout)["data"]
    assert data["status"] == "Canceled"


def test_submit_prints_a_last_line_without_a_newline(run_kiln: RunKiln) -> None:
    script(Path.cwd(), "import sys\nprint('first')\nsys.stdout.write('no newline at the end')\n", "partial.py")
    code, out, _ = run_kiln("run", "submit", "partial.py")
    assert code == 0 and out.endswith("first\nno newline at the end")


def test_submit_with_options(run_kiln: RunKiln, tmp_path: Path) -> None:
    src = script(tmp_path / "elsewhere", "import os\nprint('cwd', os.getcwd())\nprint(os.environ['KILN_EXPERIMENT'])\n")
    ok(run_kiln, "run", "submit", "-s", str(src), "-d", "train.py")  # registers default-env
    code, out, err = run_kiln("run", "submit", "-x", "my-exp", "-s", str(src), "--no-snapshot", "-e", "default-env",
                              "--timeout", "60", "train.py")
    run_id = err.removeprefix("run ").strip()
    assert code == 0 and run_id.startswith("my-exp_")
    assert script_lines(out) == [f"cwd {src}", "my-exp"]
    data = show(run_kiln, run_id)
    assert data["runDefinition"]["snapshotId"] is None and data["runDefinition"]["maxRunDurationSeconds"] == 60
    assert data["runDefinition"]["environment"] == {"name": "default-env", "version": "1"}


def test_submit_with_a_timeout_fails_the_run(run_kiln: RunKiln) -> None:
    script(Path.cwd(), "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n", "slow.py")
    code, _, err = run_kiln("run", "submit", "--timeout", "0.5", "slow.py")
    run_id = err.splitlines()[0].removeprefix("run ")
    assert (code, err) == (1, f"run {run_id}\nkiln: run {run_id} failed: the script ran longer than "
                              "max_run_duration_seconds (0.5 s) and was stopped\n")


def test_submit_json(run_kiln: RunKiln, project: Path) -> None:
    data = envelope(run_kiln, "run", "submit", "train.py", kind="run.submit")
    assert data["status"] == "Completed" and data["exitCode"] == 0 and RUN_ID.match(data["runId"])
    detached = envelope(run_kiln, "run", "submit", "--detach", "train.py", kind="run.submit")
    assert set(detached) == {"id", "status"} and detached["status"] in ("Queued", "Preparing", "Running", "Completed")


def test_submit_detach_prints_the_id_and_the_run_is_followed_elsewhere(run_kiln: RunKiln, project: Path) -> None:
    run_id = detach(run_kiln, "train.py", "--", "x")
    assert follow(run_kiln, run_id) == 0
    assert ok(run_kiln, "run", "logs", run_id) == log_file(run_id)
    assert script_lines(log_file(run_id)) == ["hello from train.py ['x']"]
    script(Path.cwd(), "import sys\nsys.exit(4)\n", "four.py")
    assert follow(run_kiln, detach(run_kiln, "four.py")) == 4


def test_submit_help(run_kiln: RunKiln) -> None:
    for flag in ("--help", "-h"):
        out = ok(run_kiln, "run", "submit", flag)
        assert "Usage: kiln run submit [OPTIONS] SCRIPT [ARGS...]" in out
        for option in ("--env", "--source-dir", "--experiment", "--detach", "--no-snapshot", "--timeout", "Example:"):
            assert option in out
    assert list(Path(os.environ["KILN_HOME"]).glob("workspace/runs/*")) == []  # nothing was submitted


@pytest.mark.parametrize("args", [
    ["--env", "nope", "train.py"],
    ["--env", "default-env:7", "train.py"],
    ["missing.py"],
    ["-s", "no-such-folder", "train.py"],
    ["--timeout", "0", "train.py"],
    ["-x", "bad name!", "train.py"],
    ["../train.py"],
])
def test_submit_errors_are_one_line_and_submit_nothing(run_kiln: RunKiln, project: Path, args: list[str]) -> None:
    message = fails(run_kiln, "run", "submit", *args)
    assert message and "Traceback" not in message
    assert list(Path(os.environ["KILN_HOME"]).glob("workspace/runs/*")) == []


def test_submit_error_messages(run_kiln: RunKiln, project: Path) -> None:
    assert fails(run_kiln, "run", "submit", "--env", "nope", "train.py") == \
        "no environment 'nope' in workspace 'default'"
    assert fails(run_kiln, "run", "submit", "missing.py") == f"script 'missing.py' not found in {Path.cwd()}"


@pytest.mark.parametrize(("args", "argv"), [
    (["train.py", "--", "--env", "x", "-d"], ["--env", "x", "-d"]),
    (["train.py", "a", "--experiment", "mixed", "b"], ["a", "b"]),
    (["-x", "e", "train.py", "--", "-d"], ["-d"]),
    (["train.py", "--", "a", "--", "b"], ["a", "--", "b"]),  # only the first -- is Kiln's
])
def test_submit_passes_the_scripts_arguments(run_kiln: RunKiln, project: Path, args: list[str],
                                             argv: list[str]) -> None:
    code, out, _ = run_kiln("run", "submit", *args)
    assert code == 0 and script_lines(out) == [f"hello from train.py {argv!r}"]


@pytest.mark.parametrize(("args", "bad"), [
    (["--exp", "x", "train.py"], "--exp"),  # abbreviations are refused: a typo must not pick an option
    (["--det", "train.py"], "--det"),
    (["train.py", "-5"], "-5"),  # the script's own options (and negative numbers) go after --
])
def test_submit_refuses_unknown_options(run_kiln: RunKiln, project: Path, args: list[str], bad: str) -> None:
    message = fails(run_kiln, "run", "submit", *args)
    assert message.startswith(f"no such option: {bad}") and message.endswith("(see: kiln run submit --help)")
    assert list(Path(os.environ["KILN_HOME"]).glob("workspace/runs/*")) == []


def test_submit_shows_tracebacks_with_kiln_debug(run_kiln: RunKiln, project: Path) -> None:
    code, _, err = run_kiln("run", "submit", "missing.py", env={"KILN_DEBUG": "1"})
    assert code == 1 and "Traceback (most recent call last)" in err and "missing.py" in err


# ---- list, show, logs, cancel, download --------------------------------------------------------------------------


def test_run_list_header_and_rows(run_kiln: RunKiln, project: Path) -> None:
    header = "ID  EXPERIMENT  STATUS  ENVIRONMENT  SCRIPT  CREATED\n"
    assert ok(run_kiln, "run", "list") == header
    first = detach(run_kiln, "-x", "alpha", "train.py")
    follow(run_kiln, first)
    script(Path.cwd(), "raise SystemExit(2)\n", "bad.py")
    second = detach(run_kiln, "-x", "beta-experiment", "bad.py")
    follow(run_kiln, second)
    lines = ok(run_kiln, "run", "list").splitlines()
    widths = [len(second), len("beta-experiment"), len("Completed"), len("default-env:1"), len("train.py"), 19]
    assert lines[0] == "  ".join(h.ljust(w) for h, w in zip(
        ["ID", "EXPERIMENT", "STATUS", "ENVIRONMENT", "SCRIPT", "CREATED"], widths, strict=True)).rstrip()
    assert re.fullmatch(re.escape(f"{second}  beta-experiment  Failed     default-env:1  bad.py    ") + WHEN, lines[1])
    assert re.fullmatch(re.escape(f"{first.ljust(len(second))}  alpha            Completed  default-env:1  train.py  ")
                        + WHEN, lines[2])
    assert len(lines) == 3
    only = ok(run_kiln, "run", "list", "--experiment", "alpha").splitlines()
    assert len(only) == 2 and only[1].startswith(f"{first}  alpha       Completed  default-env:1  train.py  ")
    data = envelope(run_kiln, "run", "list", kind="run.list")
    assert [d["runId"] for d in data] == [second, first]
    assert ok(run_kiln, "run", "list", "-x", "nobody") == header


def test_run_show(run_kiln: RunKiln, project: Path) -> None:
    run_id = detach(run_kiln, "train.py", "--", "--alpha", "0.5")
    assert follow(run_kiln, run_id) == 0
    data = show(run_kiln, run_id)
    lock = data["runDefinition"]["lockHash"]
    assert lock and data["metrics"] == {"accuracy": 0.75} and data["tags"] == {"stage": "cli"}
    assert data["files"] == ["logs/output.log", "outputs/model.txt"]
    text = ok(run_kiln, "run", "show", run_id)
    pattern = "\n".join([
        re.escape(f"{run_id}  Completed"),
        "  experiment   default",
        re.escape("  script       train.py --alpha 0.5"),
        re.escape(f"  environment  default-env:1  (lock {lock[:12]})"),
        f"  created      {WHEN}", f"  started      {WHEN}", f"  ended        {WHEN}",
        "  exit code    0",
        re.escape("  metric       accuracy = 0.75"),
        "  tag          stage = cli",
        re.escape("  file         logs/output.log"),
        re.escape("  file         outputs/model.txt"),
    ]) + "\n"
    assert re.fullmatch(pattern, text), text


def test_run_show_of_a_failed_run_shows_its_error(run_kiln: RunKiln) -> None:
    script(Path.cwd(), "print('last words')\nraise SystemExit(5)\n", "bad.py")
    run_id = detach(run_kiln, "bad.py")
    assert follow(run_kiln, run_id) == 5
    lines = ok(run_kiln, "run", "show", run_id).splitlines()
    assert lines[0] == f"{run_id}  Failed"
    assert lines[-5:] == ["  exit code    5", "  error:", "    the script exited with code 5", "    last words",
                          "  file         logs/output.log"]


def test_run_commands_on_an_unknown_run(run_kiln: RunKiln) -> None:
    for command in (["show"], ["logs"], ["logs", "--follow"], ["cancel"], ["download"]):
        assert fails(run_kiln, "run", *command, "nope_1_00000000") == \
            "no run 'nope_1_00000000' in workspace 'default'"


def test_run_cancel(run_kiln: RunKiln) -> None:
    script(Path.cwd(), "import time\nprint('started', flush=True)\ntime.sleep(300)\n", "long.py")
    run_id = detach(run_kiln, "long.py")
    wait_running(run_kiln, run_id, "started")
    assert ok(run_kiln, "run", "cancel", run_id) == f"{run_id}: Running -> Canceled\n"
    assert follow(run_kiln, run_id) == 130
    data = show(run_kiln, run_id)
    assert data["status"] == "Canceled" and data["error"]["message"] == "canceled"
    assert fails(run_kiln, "run", "cancel", run_id) == f"run {run_id} is already Canceled"
    assert "started\n" in ok(run_kiln, "run", "logs", run_id)


def test_run_cancel_of_an_ended_run_says_it_has_ended(run_kiln: RunKiln) -> None:
    script(Path.cwd(), "print('done')\n", "quick.py")
    run_id = detach(run_kiln, "quick.py")
    assert follow(run_kiln, run_id) == 0
    assert fails(run_kiln, "run", "cancel", run_id) == f"run {run_id} is already Completed"
    assert show(run_kiln, run_id)["status"] == "Completed"


def test_run_download(run_kiln: RunKiln, project: Path, tmp_path: Path) -> None:
    run_id = detach(run_kiln, "train.py")
    follow(run_kiln, run_id)
    everything = tmp_path / "all"
    assert ok(run_kiln, "run", "download", run_id, "-d", str(everything)) == \
        f"{everything}/logs/output.log\n{everything}/outputs/model.txt\n"
    assert (everything / "outputs" / "model.txt").read_text() == "weights\n"
    assert (everything / "logs" / "output.log").read_text() == log_file(run_id)
    one = tmp_path / "one"
    assert ok(run_kiln, "run", "download", run_id, "outputs/model.txt", "-d", str(one)) == \
        f"{one}/outputs/model.txt\n"
    assert sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file()) == ["outputs/model.txt"]
    assert fails(run_kiln, "run", "download", run_id, "outputs/nope.txt", "-d", str(one)) == \
        f"run {run_id} has no file 'outputs/nope.txt' (files: logs/output.log, outputs/model.txt)"


# ---- kiln model ---------------------------------------------------------------------------------------------------


def test_model_register_list_download(run_kiln: RunKiln, project: Path, tmp_path: Path) -> None:
    run_id = detach(run_kiln, "train.py")
    follow(run_kiln, run_id)
    assert ok(run_kiln, "model", "register", "outputs/model.txt", "--name", "clf", "--run", run_id) == \
        "Registered model clf version 1\n"
    local = tmp_path / "local.bin"
    local.write_bytes(b"\x00local")
    assert ok(run_kiln, "model", "register", str(local), "--name", "clf", "--tag", "kind=local") == \
        "Registered model clf version 2\n"
    width = len(run_id)
    assert ok(run_kiln, "model", "list") == (
        f"NAME  VERSION  FILE       {'RUN'.ljust(width)}  TAGS\n"
        f"clf   1        model.txt  {run_id}\n"
        f"clf   2        local.bin  {'-'.ljust(width)}  kind=local\n")
    v1 = tmp_path / "v1"
    assert ok(run_kiln, "model", "download", "clf:1", "-d", str(v1)) == f"{v1}/model.txt\n"
    assert (v1 / "model.txt").read_text() == "weights\n"
    latest = tmp_path / "latest"
    assert ok(run_kiln, "model", "download", "clf", "-d", str(latest)) == f"{latest}/local.bin\n"
    assert (latest / "local.bin").read_bytes() == b"\x00local"
    assert fails(run_kiln, "model", "download", "clf:1", "-d", str(v1)) == \
        f"{v1}/model.txt already exists (exist_ok=True to replace it)"
    assert ok(run_kiln, "model", "download", "clf:1", "-d", str(v1), "--overwrite") == f"{v1}/model.txt\n"
    data = envelope(run_kiln, "model", "list", "--name", "clf", kind="model.list")
    assert [(m["version"], m["runId"]) for m in data] == [(1, run_id), (2, None)]


def test_model_errors(run_kiln: RunKiln, project: Path) -> None:
    run_id = detach(run_kiln, "train.py")
    follow(run_kiln, run_id)
    assert fails(run_kiln, "model", "register", "outputs/missing.pkl", "--name", "m", "--run", run_id) == \
        f"run {run_id} has no file or folder 'outputs/missing.pkl' (files: logs/output.log, outputs/model.txt)"
    assert fails(run_kiln, "model", "register", "nowhere.pkl", "--name", "m") == \
        "model_path 'nowhere.pkl' does not exist"
    assert fails(run_kiln, "model", "download", "nope:1") == "no model 'nope' version 1 in workspace 'default' " \
                                                             "(models: none)"
