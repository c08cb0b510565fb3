"""The studio in a real browser: Playwright driving Debian's Chromium (``make test`` installs it) through
every page and the actions, against a real uvicorn on 127.0.0.1 and a workspace filled with hostile values:
nothing of them runs, live updates arrive without reloading, screenshots are kept in the test's temp folder."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from studio_support import EVIL, filled

from kiln import Experiment, Workspace
from kiln.studio.app import create_app

__all__ = ["filled"]  # the fixture, used by name

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("module_build_cache"),
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium: `make test` installs Debian's")]


@pytest.fixture
def server(filled: tuple[Workspace, str]) -> Iterator[tuple[str, Workspace, str]]:
    ws, run_id = filled
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(ws), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", ws, run_id
    srv.should_exit = True
    thread.join(timeout=30)


def test_every_page_in_chromium(server: tuple[str, Workspace, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    base, ws, run_id = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        urls = ["/environments", "/environments?kind=mine", "/environments/train",
                "/environments/train/diff?old=1&new=2", "/environments/hostile", "/runs", f"/runs/{run_id}",
                "/models", "/services", "/cache"]
        for n, url in enumerate(urls):
            response = page.goto(base + url)
            assert response is not None and response.status == 200, url
            # the only script is the studio's own, and no hostile element exists: the values are text
            assert page.eval_on_selector_all("script", "s => s.map(x => x.src)") == [f"{base}/static/studio.js"]
            assert page.locator("img[src='x']").count() == 0
            page.screenshot(path=str(shots / f"{n:02d}-{url.strip('/').replace('/', '_')[:60] or 'home'}.png"),
                            full_page=True)
        page.goto(f"{base}/environments/hostile")
        assert EVIL in page.inner_text("main")  # shown as text, as it was written
        page.goto(f"{base}/runs/{run_id}")
        assert page.locator("svg.chart polyline").count() >= 2 and EVIL in page.inner_text("main")

        # an action: build, confirm, then the build page follows the build until it has ended
        page.goto(f"{base}/environments/hostile")
        page.click("button:text-is('Build this version')")
        page.click("#confirm")
        assert "/builds/" in page.url
        page.wait_for_selector("[data-live-build]:text-matches('Succeeded|Failed')", timeout=60_000)
        assert page.inner_text("[data-live-build]") == "Succeeded"
        page.wait_for_selector("[data-live-build-log]:text('[done]')", timeout=30_000)  # the log, as it grew
        page.screenshot(path=str(shots / "20-build.png"), full_page=True)

        # live: a running run's status changes on the open page, without a reload; then cancel one
        finishing = Experiment(ws, "live").start_logging(outputs=False)
        page.goto(f"{base}/runs?experiment=live")
        page.evaluate("window.__same_page = true")
        finishing.complete()
        page.wait_for_selector(f"[data-live-run='{finishing.id}']:text('Completed')", timeout=30_000)
        assert page.evaluate("window.__same_page") is True
        doomed = Experiment(ws, "live").start_logging(outputs=False)
        page.goto(f"{base}/runs/{doomed.id}")
        page.click("button:text-is('Cancel this run')")
        page.click("#confirm")
        page.wait_for_selector(f"[data-live-run='{doomed.id}']:text('Canceled')", timeout=30_000)
        assert doomed.get_status() == "Canceled"
        page.screenshot(path=str(shots / "21-canceled.png"), full_page=True)

        # prune the cache, confirmed
        page.goto(f"{base}/cache")
        page.click("button:text-is('Prune')")
        page.click("#confirm")
        assert page.url == f"{base}/cache"
        browser.close()
    assert dialogs == [] and errors == []
    assert len(list(shots.glob("*.png"))) == len(urls) + 2
