"""Shared by the studio's integration tests: a workspace filled for real (environments with versions, a
submitted run with metrics, a table, output files and hostile values, an interactive run with an image, a
model). A module rather than a ``conftest.py``: test modules import it by name."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from kiln import CondaDependencies, Environment, Experiment, ScriptRunConfig, Workspace

__all__ = ["BASE", "EVIL", "filled", "png", "serving"]

EVIL = "<script>alert('x')</script>\"'><img src=x onerror=alert(1)>"
BASE = "http://127.0.0.1:8790"

TRAIN = f"""\
import os
from kiln import Run

run = Run.get_context()
for step in range(5):
    run.log("loss", 1.0 / (step + 1))
    run.log({EVIL!r}, step)
for i in range(3):
    run.log_row("scores", epoch=i, acc=0.5 + i / 10)
run.tag("evil", {EVIL!r})
print({EVIL!r})
print("password in a URL: https://user:hunter2secret@example.com/simple")
os.makedirs("outputs", exist_ok=True)
with open("outputs/page.html", "w") as f:
    f.write({EVIL!r})
"""


def png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"\x00\x80\x80" * 2
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def filled(kiln_home: Path) -> Iterator[tuple[Workspace, str]]:
    Workspace.create("studio-ws", path="ws").write_config()
    ws = Workspace.from_config()
    for packages in (["numpy"], ["numpy", "pandas"]):
        env = Environment("train")
        env.python.conda_dependencies = CondaDependencies.create(python_version="3.11", pip_packages=packages)
        env.environment_variables = {"NOTE": EVIL}
        env.register(ws)
    plain = Environment("plain")  # no packages: built in a blink, so the cache has a build to show
    plain.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
    ws.build_environment(plain)
    hostile = Environment("hostile")
    hostile.description = EVIL
    hostile.python.user_managed_dependencies = True
    hostile.register(ws)
    scripts = Path("scripts")
    scripts.mkdir()
    (scripts / "train.py").write_text(TRAIN)
    (scripts / "conf").mkdir()
    (scripts / "conf" / "a b.json").write_text('{"lr": 0.1}')  # a folder and a space: the snapshot's links
    run = Experiment(ws, "exp-one").submit(ScriptRunConfig(source_directory="scripts", script="train.py",
                                                           environment=hostile))
    assert run.wait_for_completion()["status"] == "Completed"
    other = Experiment(ws, "exp-two").start_logging(outputs=False)
    for step in range(4):
        other.log("loss", 2.0 - step / 4)
    Path("chart.png").write_bytes(png())
    other.log_image("picture", path="chart.png")
    other.complete()
    Path("model.pkl").write_bytes(b"model-bytes")
    ws.register_model_file("model.pkl", "forest", tags={"evil": EVIL}, run_id=run.id)
    yield ws, run.id
    ws.close()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn on 127.0.0.1 (a free port, in a thread), for the browser; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
