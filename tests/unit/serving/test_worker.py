"""``kiln.serving.worker``: one real worker process speaking the protocol (``init()``, ``run()``, failures),
under Kiln's interpreter and the oldest Python it claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiln.serving import worker
from kiln.serving.protocol import pack_requests, read_frame, unpack_results

WORKER = Path(worker.__file__)
SHIM = WORKER.with_name("shim")


# ---- a real worker process ---------------------------------------------------------------------------

SCORE = """\
    import json, os, sys
    calls = []

    def init():
        print("init says hello")
        calls.append("init")

    def run(raw_data):
        data = json.loads(raw_data)
        print("run printed", data)
        if data == "fail":
            raise ValueError("bad input")
        if data == "none":
            return None
        if data == "calls":
            return calls
        if data == "type":
            return type(raw_data).__name__
        if data == "unserializable":
            return object()
        return {"echo": data, "env": os.environ.get("AZUREML_MODEL_DIR")}
"""


class Worker:
    """``python worker.py score.py`` with the protocol on its pipes, its stderr kept."""

    def __init__(self, python: str, script: Path, *, debug: bool = False, batching: bool = False,
                 pythonpath: str | None = None) -> None:
        env = {**os.environ, "AZUREML_MODEL_DIR": "/models/m/1", "KILN_WORKER_SHIM": str(SHIM),
               "KILN_DEBUG": "1" if debug else "", "KILN_BATCHING": "1" if batching else ""}
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        self.proc = subprocess.Popen([python, "-u", str(WORKER), str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=script.parent, env=env)

    def read(self) -> bytes:
        assert self.proc.stdout is not None
        payload = read_frame(self.proc.stdout)
        assert payload is not None, self.finish()[1]
        return payload

    def call(self, *bodies: bytes) -> list[tuple[bytes, bytes]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(pack_requests(list(bodies)))
        self.proc.stdin.flush()
        return unpack_results(self.read())

    def finish(self) -> tuple[int, str]:
        """Close its stdin (the server's way to stop it): its exit code and everything it wrote to stderr."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        err = self.proc.stderr.read().decode()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, err


def write_script(folder: Path, text: str, name: str = "score.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def oldest_python() -> str:
    for version in ("3.6.15", "3.7.16"):
        candidate = Path.home() / ".pyenv" / "versions" / version / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    pytest.skip("no Python 3.6 or 3.7 on this machine")


@pytest.mark.parametrize("python", ["kiln", "oldest"])
def test_worker_runs_init_once_then_requests_in_order(tmp_path: Path, python: str) -> None:
    w = Worker(sys.executable if python == "kiln" else oldest_python(), write_script(tmp_path, SCORE))
    hello = w.read()
    assert hello[:1] == b"I"
    assert json.loads(hello[1:]) == {"swagger": None, "batch": False, "rawhttp": False, "params": None,
                                     "headers": False}

    results = w.call(b'{"a": 1}', b'"none"', b'"fail"', b'"type"', b'"calls"')
    assert [kind for kind, _ in results] == [b"O", b"O", b"E", b"O", b"O"]
    assert json.loads(results[0][1]) == {"echo": {"a": 1}, "env": "/models/m/1"}
    assert results[1][1] == b"{}"  # as Azure ML's server: None is answered {}
    assert json.loads(results[2][1]) == {"error": "ValueError: bad input", "traceback": ""}
    assert json.loads(results[3][1]) == "str"
    assert json.loads(results[4][1]) == ["init"]  # init() ran once, and the worker lives on after run() raised

    unserializable = w.call(b'"unserializable"')
    assert unserializable[0][0] == b"X"  # run() worked, its value is not JSON: Azure ML's "internal error"
    assert "not JSON serializable" in json.loads(unserializable[0][1])["error"]
    assert w.call() == []  # an empty message gets an empty answer

    code, err = w.finish()
    assert code == 0
    assert "init says hello" in err and "run printed {'a': 1}" in err  # prints go to stderr, not the protocol


def test_worker_in_debug_sends_the_traceback(tmp_path: Path) -> None:
    w = Worker(sys.executable, write_script(tmp_path, SCORE), debug=True)
    assert w.read()[:1] == b"I"
    [(kind, data)] = w.call(b'"fail"')
    info = json.loads(data)
    assert kind == b"E" and info["error"] == "ValueError: bad input"
    assert info["traceback"].startswith("Traceback (most recent call last):")
    assert 'raise ValueError("bad input")' in info["traceback"]
    assert w.finish()[0] == 0


@pytest.mark.parametrize(("script", "error"), [
    ("def init():\n    raise RuntimeError('init exploded')\ndef run(x):\n    return x\n",
     "RuntimeError: init exploded"),
    ("def init():\n    pass\n", "AttributeError: "),
    ("raise ImportError('cannot import thing')\n", "ImportError: cannot import thing"),
], ids=["init-raises", "no-run", "import-fails"])
def test_worker_reports_a_failed_start_and_exits_3(tmp_path: Path, script: str, error: str) -> None:
    w = Worker(sys.executable, write_script(tmp_path, script))
    hello = w.read()
    assert hello[:1] == b"F"
    info = json.loads(hello[1:])
    assert info["error"].startswith(error)
    assert info["traceback"].startswith("Traceback (most recent call last):")
    code, err = w.finish()
    assert code == 3
    assert error in err  # the traceback is in the service log too


BATCH = """\
    import json

    def init():
        pass

    def run(raw_data):
        return {"single": json.loads(raw_data)}

    def run_batch(items):
        return [{"batch": len(items), "item": json.loads(item)} for item in items]
"""


def test_worker_uses_run_batch_only_when_batching(tmp_path: Path) -> None:
    script = write_script(tmp_path, BATCH)
    batched = Worker(sys.executable, script, batching=True)
    assert json.loads(batched.read()[1:])["batch"] is True
    assert [json.loads(d) for _, d in batched.call(b"1", b"2", b"3")] == [
        {"batch": 3, "item": 1}, {"batch": 3, "item": 2}, {"batch": 3, "item": 3}]
    assert batched.finish()[0] == 0

    plain = Worker(sys.executable, script)
    assert json.loads(plain.read()[1:])["batch"] is False
    assert [json.loads(d) for _, d in plain.call(b"1", b"2")] == [{"single": 1}, {"single": 2}]
    assert plain.finish()[0] == 0


def test_worker_fails_every_request_of_a_batch_that_returns_too_few(tmp_path: Path) -> None:
    script = write_script(tmp_path, "def run(x):\n    return x\ndef run_batch(items):\n    return items[:1]\n")
    w = Worker(sys.executable, script, batching=True)
    assert w.read()[:1] == b"I"
    results = w.call(b"1", b"2")
    assert [kind for kind, _ in results] == [b"E", b"E"]
    assert json.loads(results[0][1])["error"] == "ValueError: run_batch() returned 1 results for 2 requests"
    assert w.finish()[0] == 0


BIG = """\
    def run(raw_data):
        if raw_data.startswith('"answer'):
            return "y" * int(raw_data[7:-1])
        return {"length": len(raw_data), "last": raw_data[-3:]}
"""


@pytest.mark.parametrize("python", ["kiln", "oldest"])
def test_worker_reads_and_writes_big_frames_whole(tmp_path: Path, python: str) -> None:
    """A pipe hands out 64 KiB at a time: a 220 KB body used to look like the end of the stream to the worker."""
    w = Worker(sys.executable if python == "kiln" else oldest_python(), write_script(tmp_path, BIG))
    assert w.read()[:1] == b"I"
    for size in (220 * 1024, 3 * 1024 * 1024 + 1):
        body = b'"' + b"a" * (size - 5) + b'xyz"'
        assert [(kind, json.loads(data)) for kind, data in w.call(body, b'"small"')] == [
            (b"O", {"length": size, "last": 'yz"'}), (b"O", {"length": 7, "last": 'll"'})]
    [(kind, data)] = w.call(b'"answer%d"' % (5 * 1024 * 1024))
    assert kind == b"O" and data == b'"' + b"y" * (5 * 1024 * 1024) + b'"'
    assert w.finish()[0] == 0


def test_kilns_modules_do_not_shadow_the_scripts_imports(tmp_path: Path) -> None:
    """The worker's folder holds protocol.py, config.py, model.py...: not on the user's path."""
    library = tmp_path / "lib"
    library.mkdir()
    (library / "protocol.py").write_text("WHO = 'the user'\n")
    (tmp_path / "src").mkdir()
    script = write_script(tmp_path / "src", "import protocol\n\ndef run(raw_data):\n    return protocol.WHO\n")
    w = Worker(sys.executable, script, pythonpath=str(library))
    assert w.read()[:1] == b"I"
    assert w.call(b"1") == [(b"O", b'"the user"')]
    assert w.finish()[0] == 0
