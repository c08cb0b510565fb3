"""Shared by the serving integration tests: a module's build cache and workspace, services that are
deleted after each test, plain HTTP on 127.0.0.1, entry scripts written on the fly.

A module rather than a ``conftest.py`` (other test modules import the root ``conftest`` by name);
test modules take the fixtures with ``from serving_support import *``.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kiln import CondaDependencies, Environment, InferenceConfig, LocalWebservice, Model, Workspace
from kiln._process import alive
from kiln.errors import DefinitionError, NotFoundError

__all__ = ["ECHO", "JSON", "PY", "RUN_FAILED", "SLOW", "Deploy", "Reply", "_shared_cache", "alive_pid", "alive_pid_of",
           "definition", "deploy", "env", "http", "metric", "post", "python_for", "refused", "wait_for",
           "write_source", "ws"]

#: Kiln's default Python
PY = "3.12"
RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _shared_cache(module_build_cache: Path) -> None:
    """Every test of a module builds into (and takes builds from) the module's cache (see conftest)."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The module's workspace. At the end no service of it may still run (each test deletes its own)."""
    workspace = Workspace.create("serving", path=tmp_path_factory.mktemp("ws"))
    yield workspace
    leftovers = []
    for service in LocalWebservice.list(workspace):
        record = workspace.store.get_service(service.name)
        if record is not None and record.pid is not None and alive(record.pid, record.pid_start):
            leftovers.append(service.name)
        service.delete()
    workspace.close()
    assert not leftovers, f"services still running after their tests: {leftovers}"


@pytest.fixture(scope="module")
def env(ws: Workspace) -> Environment:
    """No packages, Kiln's default Python: builds in a blink."""
    return ws.register_environment(definition("serve-plain"))


def python_for(version: str) -> None:
    from kiln.builds.interpreters import find_interpreter

    try:
        find_interpreter(version, default=version)
    except DefinitionError:
        pytest.skip(f"no Python {version} on this machine")


def definition(name: str, *pip: str, python: str = PY) -> Environment:
    python_for(python)
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(pip), python_version=python)
    return env


def write_source(folder: Path, script: str, name: str = "score.py", **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(script), encoding="utf-8")
    for file, text in files.items():
        (folder / file).write_text(text, encoding="utf-8")
    return folder


def alive_pid(ws: Workspace, name: str) -> int | None:
    record = ws.store.get_service(name)
    if record is None or record.pid is None or not alive(record.pid, record.pid_start):
        return None
    return record.pid


class Deploy:
    """``deploy(name, source, models=(), env=None, script="score.py", wait=True, **deployment_config)``: a
    service of the module's workspace. ``deploy.adopt(name)``: a service deployed some other way, to clean up
    the same. After the test every one is deleted, and its process must be gone."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.names: list[str] = []

    def adopt(self, name: str) -> None:
        self.names.append(name)

    def __call__(self, name: str, source: Path, models: Any = (), env: Environment | None = None,
                 script: str = "score.py", wait: bool = True, **config: Any) -> LocalWebservice:
        self.adopt(name)
        inference = InferenceConfig(entry_script=script, source_directory=source, environment=env)
        service = Model.deploy(self.ws, name, list(models), inference,
                               LocalWebservice.deploy_configuration(**config))
        if wait:
            service.wait_for_deployment(timeout_sec=300)
        return service

    def clean_up(self) -> None:
        left = []
        for name in self.names:
            record = self.ws.store.get_service(name)
            if record is None:
                continue
            try:
                LocalWebservice(self.ws, name).delete()
            except NotFoundError:
                continue
            if record.pid is not None and alive(record.pid, record.pid_start):
                left.append(name)
        assert not left, f"service processes outlived delete(): {left}"


@pytest.fixture
def deploy(ws: Workspace) -> Iterator[Deploy]:
    deployer = Deploy(ws)
    yield deployer
    deployer.clean_up()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, method: str = "GET", body: bytes | str | None = None, headers: dict[str, str] | None = None,
         path: str | None = None, timeout: float = 60.0) -> Reply:
    """One request on a connection of its own, to 127.0.0.1 only. ``path`` replaces the URL's path."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    target = path if path is not None else (parts.path + (f"?{parts.query}" if parts.query else ""))
    data = body.encode() if isinstance(body, str) else body
    conn = HTTPConnection("127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(method, target, body=data, headers=headers or {})
        response = conn.getresponse()
        payload = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        conn.close()


def metric(url: str, name: str) -> float:
    text = http(url, path="/metrics").body.decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics:\n{text}"
    return float(match.group(1))


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def post(service: LocalWebservice, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return http(service.scoring_uri, "POST", data, JSON if headers is None else headers, **kw)


def alive_pid_of(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie runs nothing)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def refused(url: str) -> bool:
    """Whether the port of ``url`` (on 127.0.0.1) refuses connections: nothing listens there any more."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0])), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# ---- entry scripts more than one module uses ---------------------------------------------------------------

ECHO = """\
    import json, os, sys

    INITS = []

    def init():
        INITS.append(os.getpid())
        print("init ran in", os.getpid(), flush=True)

    def run(raw_data):
        data = json.loads(raw_data)
        root = os.environ["AZUREML_MODEL_DIR"]
        files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
        print("run got", raw_data, flush=True)
        return {"echo": data, "type": type(raw_data).__name__, "pid": os.getpid(), "inits": len(INITS),
                "model_dir": root, "kiln_model_dir": os.environ.get("KILN_MODEL_DIR"), "files": files,
                "cwd": os.getcwd(), "python": list(sys.version_info[:2])}
"""

SLOW = """\
    import json, os, time

    def init():
        pass

    def run(raw_data):
        data = json.loads(raw_data)
        if data.get("marker"):
            open(data["marker"], "w").close()
            time.sleep(data["seconds"])
        return {"done": data, "pid": os.getpid()}
"""
