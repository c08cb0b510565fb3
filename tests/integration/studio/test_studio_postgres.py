"""The studio over a PostgreSQL workspace: ``kiln studio`` (a real process) finds the workspace as the CLI
does and renders the main pages from the PostgreSQL store, and sees what another process changes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import kiln_cmd
from kiln import CondaDependencies, Environment, Experiment, Workspace
from kiln.builds.journal import recent_builds

pytestmark = [pytest.mark.integration]


def get(url: str) -> tuple[int, str]:
    for _ in range(400):  # until uvicorn listens
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (ConnectionRefusedError, urllib.error.URLError):
            time.sleep(0.05)
    raise AssertionError(f"nothing listens at {url}")


def test_the_main_pages_render_from_a_postgresql_workspace(kiln_home: Path, postgres_url: str) -> None:
    created = Workspace.create("pg-studio", path="ws", store=postgres_url)
    created.write_config()
    created.close()
    ws = Workspace.from_config()
    try:
        check(ws, postgres_url)
    finally:
        ws.close()


def check(ws: Workspace, postgres_url: str) -> None:
    assert json.loads((ws.path / "workspace.json").read_text())["store"] == postgres_url
    for note in ("one", "two"):
        env = Environment("pg-train")
        env.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
        env.environment_variables = {"NOTE": note}
        env.register(ws)
    ws.build_environment(Environment.get(ws, "pg-train", "1"))
    [build] = recent_builds(ws.settings.cache_dir, workspace=ws.path)
    Path("src").mkdir()
    Path("src/train.py").write_text("print('hi')\n")
    with Experiment(ws, "pg-exp").start_logging(snapshot_directory="src", outputs=False) as run:
        for step in range(5):
            run.log("pg_loss", 1.0 / (step + 1))
        run.tag("store", "postgresql")
    Path("model.pkl").write_bytes(b"m")
    ws.register_model_file("model.pkl", "pg-model", run_id=run.id)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*kiln_cmd(), "studio", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None and "'pg-studio'" in proc.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        pages = {
            "/environments?kind=mine": ["pg-train"],
            "/environments/pg-train": ["version 1", "version 2", "3.12", "NOTE"],
            "/environments/pg-train?version=1": ["Lock", "venv", build.id, "Succeeded"],
            "/environments/pg-train/diff?old=1&new=2": ["NOTE"],
            "/runs": [run.id, "pg-exp", "Completed"],
            f"/runs/{run.id}": ["pg_loss", "<svg", "postgresql", "train.py"],
            f"/builds/{build.id}": ["[done] built: ", "Succeeded"],
            "/models": ["pg-model", run.id],
            "/services": ["Services"],
            "/cache": ["Build cache", "pg-train:1"],
        }
        for url, expected in pages.items():
            status, page = get(base + url)
            assert status == 200, (url, page[-1000:])
            for text in expected:
                assert text in page, (url, text)
        status, body = get(base + "/api/environments")
        assert status == 200 and "pg-train" in [e["name"] for e in json.loads(body)["data"]["items"]]
        # the store changes under the running studio (another process, the API): the next request shows it
        third = Environment("pg-train")
        third.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
        third.environment_variables = {"NOTE": "three"}
        third.register(ws)
        status, page = get(base + "/environments/pg-train")
        assert status == 200 and "version 3" in page
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
