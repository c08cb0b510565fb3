"""``kiln studio`` for real: a uvicorn process on 127.0.0.1 serving the workspace the CLI finds, printing its
URL; a token required (generated, or a ``${VAR}`` reference) when it listens beyond loopback; the studio
imported only by this command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import kiln_cmd

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def studio(run_kiln, kiln_home: Path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    assert run_kiln("workspace", "create", "cli-studio", "-d", "ws")[0] == 0
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen([*kiln_cmd(), "studio", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **(env or {})})
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        return proc, line

    yield start
    for proc in procs:
        proc.terminate()
        proc.communicate(timeout=30)  # closes the pipes too


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    import time

    for _ in range(200):  # until uvicorn listens (it prints after binding is asked, not done)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (ConnectionRefusedError, urllib.error.URLError):
            time.sleep(0.05)
    raise AssertionError(f"nothing listens at {url}")


def test_serves_the_workspace_on_loopback(studio) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    _, line = studio("--port", str(port))
    assert line.strip().endswith(f"http://127.0.0.1:{port}/") and "'cli-studio'" in line
    status, body = get(f"http://127.0.0.1:{port}/api/environments")
    assert status == 200 and json.loads(body)["kind"] == "env.list"
    status, page = get(f"http://127.0.0.1:{port}/environments")
    assert status == 200 and "cli-studio" in page


def test_beyond_loopback_a_token_is_generated_and_required(studio) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    _, line = studio("--host", "127.0.0.2", "--port", str(port), "--read-only")
    url = line.split(" at ", 1)[1].split()[0]
    assert url.startswith(f"http://127.0.0.2:{port}/?token=") and "(read-only)" in line
    token = url.split("token=", 1)[1]
    assert get(f"http://127.0.0.2:{port}/environments")[0] == 401
    assert get(f"http://127.0.0.2:{port}/environments", {"Authorization": f"Bearer {token}"})[0] == 200


def test_a_token_by_reference(studio, run_kiln) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    secret = "s" * 24
    _, line = studio("--host", "127.0.0.2", "--port", str(port), "--token", "${STUDIO_TOKEN}",
                     env={"STUDIO_TOKEN": secret})
    assert secret not in line and "token=" not in line
    assert get(f"http://127.0.0.2:{port}/runs")[0] == 401
    assert get(f"http://127.0.0.2:{port}/runs", {"Authorization": f"Bearer {secret}"})[0] == 200
    code, _, err = run_kiln("studio", "--host", "127.0.0.2", "--token", "plain-secret-value")
    assert code == 1 and "give a reference such as '${STUDIO_TOKEN}'" in err and "plain-secret-value" not in err
    code, _, err = run_kiln("studio", "--token", "${NOT_SET_ANYWHERE}")
    assert code == 1 and "${NOT_SET_ANYWHERE} is not set" in err


def test_other_commands_do_not_import_the_studio() -> None:
    code = ("import sys; from kiln.cli.main import main; main(['env', 'list']); "
            "print(sorted(m for m in sys.modules if m.startswith(('kiln.studio', 'starlette', 'jinja2'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
