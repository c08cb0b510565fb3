"""Kiln's scoring server against Azure ML's own, ``azmlinfsrv`` (azureml-inference-server-http 1.5.1).

The cases of ``tests/fixtures/azinf/compat_cases.json`` (recorded against azmlinfsrv; read its
"about") are replayed against both servers, each started with the same entry script and model:
azmlinfsrv from a venv of its own (uv, once per session), Kiln deployed in an environment built
from the same packages. For every case:

1. azmlinfsrv must still answer as recorded (else the comparison means nothing);
2. Kiln must answer as azmlinfsrv did: the same status code; the same body where the contract
   defines it (everything but the Swagger document, which is Kiln's own; 500 bodies compared on
   ``message``); the same Content-Type; the recorded headers (repeated header lines compared joined
   by ", ", as RFC 9110 section 5.3 has them: ``X-Custom: a`` and ``X-Custom: b`` are ``X-Custom: a, b``);

except where Kiln differs on purpose: ``ON_PURPOSE`` (per case) and ``EVERY_ANSWER`` (on all of
them), each with its reason, and each asserted so that it can't drift. Where Kiln differs without
purpose the case is a strict xfail naming the bug (``GAPS``).

Skipped (with the reason) only when the package index can't be reached.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from typing import Any

import pytest
from serving_support import *  # noqa: F403 - the shared fixtures and helpers (see serving_support)
from serving_support import definition, python_for

from conftest import FIXTURES
from kiln import InferenceConfig, LocalWebservice, Model, Workspace
from kiln.serving.deploy import free_port
from kiln.serving.webservice import DeploymentFailedError

pytestmark = pytest.mark.integration

AZINF = FIXTURES / "azinf"
DOC = json.loads((AZINF / "compat_cases.json").read_text(encoding="utf-8"))
PACKAGES = ["azureml-inference-server-http==1.5.1", "inference-schema[numpy-support]"]
#: the Python the cases were recorded with
PYTHON = "3.11"
RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR = "An unexpected internal error occurred. Check the logs for more info."
#: what uv says when it can't reach the index
OFFLINE = ("dns error", "failed to lookup address", "Could not connect", "Connection refused", "connection error",
           "network is unreachable", "tcp connect error", "operation timed out", "error sending request")


# ---- Kiln's differences on purpose ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OnPurpose:
    """What Kiln answers instead of azmlinfsrv's answer, and why."""

    status: int
    json: Any
    reason: str


MALFORMED = ("Kiln's own check (app.py, documented): a malformed JSON body with a JSON or no Content-Type is "
             "answered 400 with a JSON error; azmlinfsrv hands it to run(), which fails (500) or echoes it (200)")
ON_PURPOSE: dict[str, OnPurpose] = {
    "echo-022": OnPurpose(400, {"message": "the body is not valid JSON: Expecting value: line 1 column 7 (char 6)"},
                          MALFORMED),
    "echo-024": OnPurpose(400, {"message": "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"},
                          MALFORMED + " (an empty body is malformed JSON)"),
    "raw-038": OnPurpose(400, {"message": "the body is not valid JSON: Expecting value: line 1 column 7 (char 6)"},
                         MALFORMED),
    "raw-041": OnPurpose(400, {"message": "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"},
                         MALFORMED + " (an empty body is malformed JSON)"),
    "misc-070": OnPurpose(504, {"message": "the request took longer than the service's timeout"},
                          "issue 5, point 4: a request past the service's timeout is a 504 (the worker is replaced); "
                          "azmlinfsrv answers 500 'Scoring timeout after N ms' (SCORING_TIMEOUT_MS)"),
    "misc-071": OnPurpose(200, [1, 2], "worker.py's _default serializes numpy values (tolist()/item()); "
                                       "azmlinfsrv's json.dumps fails after run() (500)"),
}

#: differences on every answer, asserted by ``check_every_answer``
EVERY_ANSWER = {
    "Connection": "azmlinfsrv (gunicorn) closes every connection ('Connection: close'); Kiln keeps it alive",
    "x-ms-server-version": "azmlinfsrv says 'azmlinfsrv/1.5.1' (not on routing 404/405); Kiln says what it is, "
                           "'kiln-scoring/1', on every answer",
    "500 error field": "a 500 from run() carries, besides azmlinfsrv's 'message', Kiln's 'error': the exception "
                       "(type: text), never the traceback out of debug",
    "Server": "gunicorn sends 'Server: gunicorn'; Kiln's uvicorn names no server (both send Date)",
}

# ---- Kiln's differences without purpose: bugs and gaps (strict xfails) ---------------------------------------

GAPS: dict[str, str] = {
    "raw-040": ("UNDECIDED src/kiln/serving/app.py: a form-urlencoded body reaches run() as it is ('a=1&b=2'); "
                "azmlinfsrv passes '' (Flask's request.data is empty for form content types): reproduce it, or "
                "move this case to ON_PURPOSE"),
}
STARTUP_GAPS = {
    "varargs_score.py": ("UNDECIDED src/kiln/serving/worker.py: run(*args) is served; azmlinfsrv refuses to start "
                         "('run() cannot accept positional-only arguments, *args, or **kwargs.')"),
}


# ---- the two servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def azinf_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with azmlinfsrv (uv, from the package index); the test is skipped if the index is unreachable."""
    from kiln.builds.interpreters import find_interpreter
    from kiln.builds.uv import uv_binary

    python_for(PYTHON)
    venv = tmp_path_factory.mktemp("azinf") / "venv"
    uv = uv_binary()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    created = subprocess.run([uv, "venv", "-q", "--python", find_interpreter(PYTHON, default=PYTHON).path,
                              str(venv)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert created.returncode == 0, created.stderr
    installed = subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *PACKAGES],
                               capture_output=True, text=True, env=env, timeout=600, check=False)
    if installed.returncode != 0:
        output = installed.stdout + installed.stderr
        if any(sign.lower() in output.lower() for sign in OFFLINE):
            pytest.skip(f"the package index can't be reached: {output.strip().splitlines()[-1]}")
        raise AssertionError(f"uv pip install {' '.join(PACKAGES)} failed:\n{output}")
    return venv


@pytest.fixture(scope="module")
def app_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripts and a model folder (``azureml-models/mymodel/1/model.json``), as recorded."""
    root = tmp_path_factory.mktemp("approot")
    shutil.copytree(AZINF / "scripts", root / "scripts")
    model = root / "azureml-models" / "mymodel" / "1"
    model.mkdir(parents=True)
    (model / "model.json").write_text('{"dummy": true}')
    return root


class Servers:
    """Both servers of each recorded ``server`` name, started on first use, stopped at the end."""

    def __init__(self, ws: Workspace, venv: Path, root: Path, logs: Path) -> None:
        self.ws, self.venv, self.root, self.logs = ws, venv, root, logs
        self.started: dict[str, tuple[int, LocalWebservice]] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env: Any = None
        self.model: Model | None = None

    def azinf(self, script: str, env: dict[str, str]) -> int:
        port = free_port()
        with open(self.logs / f"azinf-{script}.log", "wb") as log:
            proc = subprocess.Popen([str(self.venv / "bin" / "azmlinfsrv"), "--entry_script", f"scripts/{script}",
                                     "--model_dir", str(self.root / "azureml-models" / "mymodel" / "1"), "--port",
                                     str(port)], cwd=self.root, env={**os.environ, **env}, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (self.logs / f"azinf-{script}.log").read_text()
            try:
                status, _, _ = send(port, {"method": "GET", "path": "/", "headers": {}, "body": None})
                if status == 200:
                    return port
            except OSError:
                pass
            assert time.monotonic() < deadline, "azmlinfsrv did not come up"
            time.sleep(0.1)

    def kiln(self, name: str, script: str, env: dict[str, str]) -> LocalWebservice:
        if self.env is None:
            self.env = self.ws.register_environment(definition("azinf-packages", *PACKAGES, python=PYTHON))
            self.model = Model.register(self.ws, model_path=self.root / "azureml-models" / "mymodel" / "1" /
                                        "model.json", model_name="mymodel")
        assert self.model is not None
        timeout = float(env["SCORING_TIMEOUT_MS"]) / 1000 if "SCORING_TIMEOUT_MS" in env else 60.0
        inference = InferenceConfig(entry_script=script, source_directory=self.root / "scripts", environment=self.env)
        service = Model.deploy(self.ws, f"compat-{name}", [self.model], inference,
                               LocalWebservice.deploy_configuration(timeout_seconds=timeout))
        service.wait_for_deployment(timeout_sec=600)
        return service

    def get(self, name: str) -> tuple[int, LocalWebservice]:
        if name not in self.started:
            server = DOC["servers"][name]
            self.started[name] = (self.azinf(server["script"], server["env"]),
                                  self.kiln(name, server["script"], server["env"]))
        return self.started[name]

    def stop(self) -> None:
        for _, service in self.started.values():
            service.delete()
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture(scope="module")
def servers(ws: Workspace, azinf_venv: Path, app_root: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Servers]:
    both = Servers(ws, azinf_venv, app_root, tmp_path_factory.mktemp("logs"))
    yield both
    both.stop()


# ---- requests and answers -------------------------------------------------------------------------------------


def send(port: int, case: dict[str, Any]) -> tuple[int, HTTPResponse, bytes]:
    """The case's request, as the recorder sent it: Host, Content-Length and the listed headers only."""
    conn = HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(case["method"], case["path"], skip_accept_encoding=True)
        body = base64.b64decode(case["body_base64"]) if case.get("body_base64") else (
            case["body"].encode() if case["body"] is not None else None)
        for key, value in case["headers"].items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return response.status, response, data
    finally:
        conn.close()


def as_recorded(case: dict[str, Any], response: HTTPResponse, data: bytes) -> list[str]:
    """How azmlinfsrv's answer differs from the record (the rules of compat_cases.json's "about")."""
    errors = []
    if response.status != case["expected_status"]:
        errors.append(f"status {response.status} != {case['expected_status']}")
    if "expected_body" in case and data.decode("utf-8", "replace") != case["expected_body"]:
        errors.append(f"body {data[:200]!r} != {case['expected_body'][:200]!r}")
    if "expected_json" in case:
        expected = case["expected_json"]
        if isinstance(expected, dict) and set(expected) == {"$swagger"}:
            expected = DOC["swagger"][expected["$swagger"]]
        try:
            if json.loads(data) != expected:
                errors.append(f"json {data[:200]!r} != {json.dumps(expected)[:200]}")
        except ValueError:
            errors.append(f"body not JSON: {data[:200]!r}")
    if "expected_content_type" in case and response.getheader("Content-Type") != case["expected_content_type"]:
        errors.append(f"content-type {response.getheader('Content-Type')!r} != {case['expected_content_type']!r}")
    for key, value in case.get("expected_headers", {}).items():
        got = response.msg.get_all(key) or []
        if got != (value if isinstance(value, list) else [value]):
            errors.append(f"header {key}: {got} != {value!r}")
    for key in case.get("absent_headers", []):
        if response.getheader(key) is not None:
            errors.append(f"header {key} present: {response.getheader(key)!r}")
    if response.getheader("Connection") != "close":
        errors.append("no Connection: close")
    return errors


def compared_body(case: dict[str, Any], data: bytes) -> Any:
    """The part of a body the contract defines: the text, or the JSON (a 500's ``message`` only)."""
    if "expected_json" in case:
        value = json.loads(data)
        return {"message": value.get("message")} if isinstance(value, dict) and case["expected_status"] == 500 \
            else value
    return data.decode("utf-8", "replace")


def check_every_answer(case: dict[str, Any], azinf: HTTPResponse, kiln: HTTPResponse, kiln_data: bytes) -> None:
    """The differences of ``EVERY_ANSWER``, as they are."""
    assert azinf.getheader("Connection") == "close"
    assert (kiln.getheader("Connection") or "keep-alive").lower() == "keep-alive", EVERY_ANSWER["Connection"]
    assert kiln.getheader("x-ms-server-version") == "kiln-scoring/1", EVERY_ANSWER["x-ms-server-version"]
    assert azinf.getheader("Server") == "gunicorn" and azinf.getheader("Date")
    assert kiln.getheader("Server") is None and kiln.getheader("Date"), EVERY_ANSWER["Server"]
    if kiln.status == 500 and case["path"].startswith("/score"):
        body = json.loads(kiln_data)
        assert set(body) == {"message", "error"} and body["message"] in (RUN_FAILED, INTERNAL_ERROR), \
            EVERY_ANSWER["500 error field"]
        assert body["error"].split(":")[0].isidentifier(), body


HEADERS_ON_PURPOSE = {"x-ms-server-version", "connection"}


def case_params() -> list[Any]:
    marks = {cid: pytest.mark.xfail(strict=True, reason=reason) for cid, reason in GAPS.items()}
    return [pytest.param(c, id=c["id"], marks=[marks[c["id"]]] if c["id"] in marks else []) for c in DOC["cases"]]


@pytest.mark.parametrize("case", case_params())
def test_same_answer_as_azmlinfsrv(servers: Servers, case: dict[str, Any]) -> None:
    azinf_port, service = servers.get(case["server"])
    azinf_status, azinf, azinf_data = send(azinf_port, case)
    assert as_recorded(case, azinf, azinf_data) == [], "azmlinfsrv no longer answers as recorded"
    status, kiln, data = send(service.port, case)
    check_every_answer(case, azinf, kiln, data)

    if case["id"] in ON_PURPOSE:
        different = ON_PURPOSE[case["id"]]
        assert azinf_status != different.status
        assert (status, json.loads(data)) == (different.status, different.json), different.reason
        return
    assert status == azinf_status
    if not case["path"].startswith("/swagger.json"):  # Kiln's document is its own (see test_swagger_schema)
        assert compared_body(case, data) == compared_body(case, azinf_data)
    if "expected_content_type" in case:
        assert kiln.getheader("Content-Type") == azinf.getheader("Content-Type")
    for key, value in case.get("expected_headers", {}).items():
        if key.lower() not in HEADERS_ON_PURPOSE:  # repeated lines compare as one, joined (RFC 9110, 5.3)
            assert ", ".join(kiln.msg.get_all(key) or []) == ", ".join(value if isinstance(value, list) else [value]), \
                key
    for key in case.get("absent_headers", []):
        if key.lower() not in HEADERS_ON_PURPOSE:
            assert kiln.getheader(key) is None, key


def test_the_tables_name_recorded_cases() -> None:
    ids = {c["id"] for c in DOC["cases"]}
    assert len(ids) == len(DOC["cases"]) == 79
    assert set(ON_PURPOSE) <= ids and set(GAPS) <= ids
    # a case differs on purpose or by a gap, not both: but for misc-*, where run(raw_data, request_headers)
    # fails first, hiding the difference on purpose behind it
    assert set(ON_PURPOSE) & set(GAPS) <= {c["id"] for c in DOC["cases"] if c["server"] == "misc"}


def test_swagger_carries_the_same_schemas(servers: Servers) -> None:
    _, service = servers.get("schema")
    theirs = DOC["swagger"]["swagger_schema_v2"]["definitions"]
    post = json.loads(send(service.port, {"method": "GET", "path": "/swagger.json", "headers": {},
                                          "body": None})[2])["paths"]["/score"]["post"]
    assert post["parameters"][0]["schema"] == theirs["ServiceInput"]
    assert post["responses"]["200"]["schema"] == theirs["ServiceOutput"]


def startup_params() -> list[Any]:
    return [pytest.param(s, id=s["script"], marks=[pytest.mark.xfail(strict=True, reason=STARTUP_GAPS[s["script"]])]
                         if s["script"] in STARTUP_GAPS else []) for s in DOC["startup_cases"] if s["script"]]


@pytest.mark.parametrize("startup", startup_params())
def test_scripts_that_cannot_start(servers: Servers, ws: Workspace, startup: dict[str, Any], tmp_path: Path) -> None:
    proc = subprocess.run([str(servers.venv / "bin" / "azmlinfsrv"), "--entry_script", f"scripts/{startup['script']}",
                           "--model_dir", str(servers.root / "azureml-models" / "mymodel" / "1"), "--port",
                           str(free_port())], cwd=servers.root, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == startup["expected_exit_code"]
    for text in startup["expected_output_contains"]:
        assert text in proc.stdout + proc.stderr

    name = "start-" + startup["script"].removesuffix("_score.py").replace("_", "-")
    servers.get("echo")  # the environment and the model are made with the first server
    inference = InferenceConfig(entry_script=startup["script"], source_directory=servers.root / "scripts",
                                environment=servers.env)
    service = Model.deploy(ws, name, [servers.model], inference, LocalWebservice.deploy_configuration())
    try:
        with pytest.raises(DeploymentFailedError, match="init\\(\\) failed: "):
            service.wait_for_deployment(timeout_sec=120)
        assert service.state == "Failed"
    finally:
        service.delete()
