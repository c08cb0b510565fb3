"""The snapshot browser on a snapshot of 10,000+ files (paged and filtered, in the JSON and in Chromium) and an
environment's image details section, against an image Kiln really wrote."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from studio_support import BASE, serving

from kiln import CondaDependencies, Environment, Experiment, Workspace
from kiln.studio.app import create_app
from kiln.studio.data import SNAPSHOT_PAGE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FILES = 10_050
pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, list[str]]]:
    """One workspace for the module (10,000 files take a while to write and store), with its own Kiln home."""
    root = tmp_path_factory.mktemp("big-snapshot")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KILN_HOME", str(root / "kiln-home"))
        mp.setenv("KILN_CACHE_DIR", str(root / "kiln-home" / "cache"))
        mp.delenv("KILN_WORKSPACE", raising=False)
        mp.setenv("UV_PYTHON_DOWNLOADS", "never")
        ws = Workspace.create("snap-ws", path=root / "ws")
        source = root / "source"
        names = []
        for n in range(FILES):
            name = f"pkg{n % 10}/file-{n:05d}.py"
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_text(f"VALUE = {n}\n")
            names.append(name)
        (source / "here").symlink_to("pkg0")  # a link kept inside: listed with where it points
        with Experiment(ws, "snap").start_logging(snapshot_directory=str(source), outputs=False) as run:
            pass
        yield ws, run.id, sorted([*names, "here"])
        ws.close()


def test_a_big_snapshot_is_paged_and_filtered(big_snapshot: tuple[Workspace, str, list[str]]) -> None:
    ws, run_id, paths = big_snapshot
    c = TestClient(create_app(ws), base_url=BASE)
    snap = c.get(f"/api/runs/{run_id}").json()["data"]["snapshot"]
    last = -(-len(paths) // SNAPSHOT_PAGE)
    assert (snap["file_count"], snap["total"], snap["page"], snap["pages"]) == (FILES, FILES + 1, 1, last)
    assert [i["path"] for i in snap["items"]] == paths[:SNAPSHOT_PAGE]
    third = c.get(f"/api/runs/{run_id}?files_page=3").json()["data"]["snapshot"]
    assert [i["path"] for i in third["items"]] == paths[2 * SNAPSHOT_PAGE:3 * SNAPSHOT_PAGE]
    beyond = c.get(f"/api/runs/{run_id}?files_page=9999").json()["data"]["snapshot"]  # the last page, not nothing
    assert beyond["page"] == last and [i["path"] for i in beyond["items"]] == paths[(last - 1) * SNAPSHOT_PAGE:]
    found = c.get(f"/api/runs/{run_id}?files=FILE-0999").json()["data"]["snapshot"]  # any case
    assert [i["path"] for i in found["items"]] == [p for p in paths if "file-0999" in p] and found["total"] == 10
    link = c.get(f"/api/runs/{run_id}?files=here").json()["data"]["snapshot"]["items"]
    assert link == [{"path": "here", "size": None, "executable": False, "link": "pkg0"}]
    page = c.get(f"/runs/{run_id}?files=file-0999").text
    assert page.count(f'href="/runs/{run_id}/snapshot/pkg') == 10 and "10 shown (of 10050)" in page
    assert c.get(f"/runs/{run_id}/snapshot/pkg9/file-09999.py").content == b"VALUE = 9999\n"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium: `make test` installs Debian's")
def test_snapshot_browsing_and_image_details_in_chromium(big_snapshot: tuple[Workspace, str, list[str]],
                                                         tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    ws, run_id, paths = big_snapshot
    env = Environment("imaged")
    env.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
    env.environment_variables = {"MODE": "studio"}
    image = ws.build_environment_image(env.register(ws))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    with serving(create_app(ws)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{base}/runs/{run_id}")
        rows = page.locator("table.snapshot tr td:first-child")
        assert rows.count() == SNAPSHOT_PAGE and rows.first.inner_text() == "here → pkg0" and paths[0] == "here"
        pages = page.inner_text("#snapshot-pages")
        assert f"page 1 of {-(-len(paths) // SNAPSHOT_PAGE)}" in pages
        page.click("#snapshot-pages a[rel='next']")
        assert rows.first.inner_text() == paths[SNAPSHOT_PAGE] and "page 2 of" in page.inner_text("#snapshot-pages")
        page.click("#snapshot-pages a:text-is('last')")
        assert rows.last.inner_text() == paths[-1]
        page.screenshot(path=str(shots / "snapshot-last-page.png"), full_page=True)
        page.fill("input[name='files']", "file-1000")
        page.click("button:text-is('Filter files')")
        assert [r.inner_text() for r in rows.all()] == [p for p in paths if "file-1000" in p]
        href = page.get_attribute("table.snapshot a", "href")
        assert href is not None and page.request.get(base + href).body() == b"VALUE = 10000\n"
        page.screenshot(path=str(shots / "snapshot-filtered.png"), full_page=True)

        page.goto(f"{base}/environments/imaged")
        assert page.inner_text("#image-reference") == f"{image['image']}:{image['tag']}"
        assert page.inner_text("#image-digest") == image.digest
        layers = page.locator("table.image-layers tr:has(td)")
        assert layers.count() == len(image["layers"]) > 0
        assert [layers.nth(i).locator("code").inner_text() for i in range(layers.count())] == [
            x["digest"] for x in image["layers"]]
        page.screenshot(path=str(shots / "image-details.png"), full_page=True)
        browser.close()
    assert errors == []
