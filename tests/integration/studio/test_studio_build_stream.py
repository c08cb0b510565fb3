"""Builds started outside the studio (``kiln env build`` in another process, ``ws.build_environment``) are
followed in the studio: listed on their environment's page, their log streaming into the build page while
they run, in Chromium as in the JSON."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx2
import pytest
from starlette.testclient import TestClient
from studio_support import BASE, serving

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds.cache import BuildCache
from kiln.builds.journal import recent_builds
from kiln.builds.keys import resolve_key
from kiln.builds.locking import interpreter_for
from kiln.studio.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.integration]


def workspace(name: str) -> tuple[Workspace, Environment]:
    Workspace.create("stream-ws", path="ws").write_config()
    ws = Workspace.from_config()
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
    return ws, env.register(ws)


def test_a_build_of_the_api_is_listed_with_its_log_and_a_cache_hit_is_not(kiln_home: Path) -> None:
    ws, env = workspace("listed")
    ws.build_environment(env)
    ws.build_environment(env)  # a cache hit: nothing to follow, no record
    [record] = recent_builds(ws.settings.cache_dir, workspace=ws.path)
    c = TestClient(create_app(ws), base_url=BASE)
    page = c.get("/environments/listed").text
    assert f'href="/builds/{record.id}"' in page and "Succeeded" in page
    got = c.get(f"/api/builds/{record.id}").json()
    assert (got["kind"], got["data"]["status"], got["data"]["environment"]) == ("studio.build", "Succeeded", "listed:1")
    assert "[lock] lock " in got["data"]["log"] and "[done] built: " in got["data"]["log"]
    assert "# kiln build of listed:1" in got["data"]["log"]  # the build log's own lines, not only the progress
    assert c.get(f"/builds/{record.id}").status_code == 200
    assert c.get("/api/builds/nope").status_code == 404
    other = Workspace.create("other-ws", path="other")  # same cache, another workspace: not its build
    assert c.get(f"/api/builds/{record.id}").status_code == 200
    assert TestClient(create_app(other), base_url=BASE).get(f"/api/builds/{record.id}").status_code == 404
    other.close()
    ws.close()


def build_links(page: str) -> list[str]:
    return re.findall(r'href="/builds/([^"]+)"', page)


def test_a_build_started_in_the_studio_is_one_row_on_its_environment_page(kiln_home: Path) -> None:
    ws, env = workspace("once")
    cache = BuildCache(ws.settings.cache_dir)
    with serving(create_app(ws)) as base, httpx2.Client(base_url=base, timeout=30) as c:
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/environments/once").text)
        assert token is not None
        form = {"csrf": token.group(1), "confirm": "yes"}
        # another builder holds the resolver lock: the studio's build waits, running and recorded, until let go
        with cache.locked(resolve_key(env, interpreter_for(env, ws.settings, ws))):
            started = c.post("/environments/once/1/build", data=form, headers={"origin": base})
            assert (started.status_code, started.headers["location"]) == (303, "/builds/1")
            deadline = time.monotonic() + 60
            while not any("another process" in r.log() for r in recent_builds(cache.root)):
                assert time.monotonic() < deadline, c.get("/api/builds/1").text
                time.sleep(0.05)
            [record] = recent_builds(cache.root, workspace=ws.path)
            page = c.get("/environments/once").text
            assert build_links(page) == [record.id]  # the journal's row only, not the studio's own as well
            assert page.count("data-live-build=") == 1
            assert c.get("/api/builds/1").json()["data"]["status"] == "Running"  # its page still streams it
            assert "[wait] another process" in c.get(f"/api/builds/{record.id}").json()["data"]["log"]
        deadline = time.monotonic() + 120
        while c.get("/api/builds/1").json()["data"]["status"] == "Running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.get("/api/builds/1").json()["data"]["status"] == "Succeeded"
        assert build_links(c.get("/environments/once").text) == [record.id]
        got = c.get(f"/api/builds/{record.id}").json()["data"]
        assert got["status"] == "Succeeded" and "[done] built: " in got["log"]
        # a second build is a cache hit: nothing recorded in the journal, so the studio's own row is its one row
        assert c.post("/environments/once/1/build", data=form, headers={"origin": base}).status_code == 303
        deadline = time.monotonic() + 60
        while c.get("/api/builds/2").json()["data"]["status"] == "Running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sorted(build_links(c.get("/environments/once").text)) == sorted(["2", record.id])
    ws.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium: `make test` installs Debian's")
def test_a_cli_build_in_another_process_streams_into_the_open_build_page(kiln_home: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from conftest import kiln_cmd

    ws, env = workspace("streamed")
    cache = BuildCache(ws.settings.cache_dir)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    with serving(create_app(ws)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        # another builder holds this definition's resolver lock: the CLI's build waits, running, until it is let go
        with cache.locked(resolve_key(env, interpreter_for(env, ws.settings, ws))):
            proc = subprocess.Popen([*kiln_cmd(), "env", "build", "streamed:1"], cwd=Path.cwd(),
                                    env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                deadline = time.monotonic() + 60
                while not any("another process" in r.log() for r in recent_builds(cache.root)):
                    assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
                    time.sleep(0.05)
                [record] = recent_builds(cache.root, workspace=ws.path)
                page.goto(f"{base}/environments/streamed")
                assert page.inner_text(f"[data-live-build='{record.id}']") == "Running"
                page.click(f"a[href='/builds/{record.id}']")
                log = page.locator(f"[data-live-build-log='{record.id}']")
                assert "[wait] another process is building this environment" in log.inner_text()
                assert "[done]" not in log.inner_text()
                page.screenshot(path=str(shots / "build-waiting.png"), full_page=True)
                page.evaluate("window.__same_page = true")
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        assert proc.wait(timeout=120) == 0, proc.communicate()[0]
        # the page, never reloaded, has the rest of the log and the final status
        page.wait_for_selector(f"[data-live-build-log='{record.id}']:text('[done] built: ')", timeout=30_000)
        page.wait_for_selector(f"[data-live-build='{record.id}']:text('Succeeded')", timeout=30_000)
        assert page.evaluate("window.__same_page") is True
        assert "# kiln build of streamed:1" in log.inner_text()
        page.screenshot(path=str(shots / "build-done.png"), full_page=True)
        browser.close()
    assert errors == []
    assert proc.stdout is not None
    proc.stdout.close()
    ws.close()
