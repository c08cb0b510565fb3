"""The studio against a workspace this module fills for real (environments with versions, a submitted run
with metrics, a table, an image and output files, a model): every page, the JSON envelope, the actions with
their confirmation and CSRF check, read-only and token modes, and hostile values rendered escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from studio_support import BASE, filled

from kiln import Experiment, Run, Workspace
from kiln.studio.app import create_app

__all__ = ["filled"]  # the fixture, used by name

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]


def client(ws: Workspace, **kw: object) -> TestClient:
    return TestClient(create_app(ws, **kw), base_url=BASE)  # type: ignore[arg-type]


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[-2000:]
    return found.group(1)


def assert_escaped(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "hunter2secret" not in html


def test_every_page_renders_escaped(filled: tuple[Workspace, str]) -> None:
    ws, run_id = filled
    c = client(ws)
    pages = {
        "/environments": ["train", "hostile"],
        "/environments?q=hos": ["hostile"],
        "/environments/train": ["version 1", "version 2", "numpy", "diff with 1", "azureml-v2"],
        "/environments/train?version=1": ["numpy"],
        "/environments/train/diff?old=1&new=2": ["pandas", "different build"],
        "/environments/hostile": ["&lt;script&gt;"],
        "/runs": [run_id, "exp-one", "exp-two", "Completed"],
        "/runs?experiment=exp-one": [run_id],
        "/runs?environment=hostile:1": [run_id],
        "/environments?kind=built": ["plain"],
        "/environments/plain": ["venv", "3.12"],
        f"/runs/{run_id}": ["<svg", "loss", "scores", "acc", "outputs/page.html", "hostile:1", "&lt;script&gt;"],
        "/models": ["forest", run_id],
        "/services": ["Services"],
        "/cache": ["Build cache", "Prune preview"],
    }
    for url, expected in pages.items():
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[-1500:])
        for text in expected:
            assert text in r.text, (url, text)
        assert_escaped(r.text)
        assert "script-src" not in r.text and "'self'" in r.headers["content-security-policy"]
    assert "pandas" not in c.get("/environments/train?version=1").text.split("<h2>Lock")[0]
    assert "hostile" not in c.get("/environments?q=trai").text
    assert "exp-two" not in c.get("/runs?experiment=exp-one").text.split("<table>")[1]
    assert "exp-two" not in c.get("/runs?environment=hostile").text.split("<table>")[1]
    assert "0 run(s)" in c.get("/runs?since=2999-01-01").text
    assert "train" not in c.get("/environments?kind=built").text.split("<table>")[1]  # never built
    assert "****" in c.get(f"/runs/{run_id}").text  # the credential in the log line, masked


def test_an_environment_page_shows_the_image_written_for_it(filled: tuple[Workspace, str]) -> None:
    from kiln.builds.oci.build import build_image

    ws, _ = filled
    c = client(ws)
    assert "no image written for this version" in c.get("/environments/plain").text
    image = build_image(ws.get_environment("plain"), ws, settings=ws.settings)  # what kiln image build does
    page = c.get("/environments/plain").text
    assert f'<code id="image-digest">{image.digest}</code>' in page
    assert f'<code id="image-reference">{image.name}:{image.tag}</code>' in page
    assert all(layer.digest in page and layer.title in page for layer in image.layers)
    assert "the base image&#39;s (" in page and "interpreter:" in page  # where its python comes from
    data = c.get("/api/environments/plain").json()["data"]
    assert data["image"]["digest"] == image.digest and data["image"]["tag"] == image.tag
    assert c.get("/api/environments/train").json()["data"]["image"] is None


def test_a_run_overlays_another_and_shows_its_image(filled: tuple[Workspace, str]) -> None:
    ws, run_id = filled
    c = client(ws)
    others = c.get("/api/runs?experiment=exp-two").json()["data"]["items"]
    other = others[0]["id"]
    page = c.get(f"/runs/{run_id}?compare={other}").text
    chart = page[page.index("<svg"):page.index("</svg>")]
    assert chart.count("<polyline") == 2 and run_id in chart and other in chart
    image_page = c.get(f"/runs/{other}").text
    src = re.search(r'<img alt="picture" src="([^"]+)"', image_page)
    assert src is not None
    img = c.get(src.group(1))
    assert img.headers["content-type"] == "image/png" and img.content.startswith(b"\x89PNG")
    Run.get(ws, other).tag("late-tag", "added-after-the-end")  # a finished run's page, read again once it changed
    assert "added-after-the-end" in c.get(f"/runs/{other}").text
    html_file = c.get(f"/runs/{run_id}/files/outputs/page.html")  # a run's HTML is a download, never a page
    assert html_file.headers["content-type"] == "application/octet-stream"
    assert "attachment" in html_file.headers["content-disposition"]


def test_json_endpoints_use_the_cli_envelope(filled: tuple[Workspace, str]) -> None:
    ws, run_id = filled
    c = client(ws)
    for url, kind in [("/api/environments", "env.list"), ("/api/environments/train", "env.show"),
                      ("/api/environments/train/diff?old=1&new=2", "env.diff"), ("/api/runs", "run.list"),
                      (f"/api/runs/{run_id}", "run.show"), ("/api/models", "model.list"),
                      ("/api/services", "service.list"), ("/api/cache", "cache.list")]:
        body = c.get(url).json()
        assert body["kiln"] == 1 and body["kind"] == kind, url
    run = c.get(f"/api/runs/{run_id}").json()["data"]
    assert run["series"]["loss"][0] == 1.0 and run["status"] == "Completed"
    status = c.get(f"/api/status?runs={run_id},nope").json()
    assert status["kind"] == "studio.status" and status["data"]["runs"] == {run_id: "Completed", "nope": "Unknown"}
    log = c.get(f"/api/runs/{run_id}/log?offset=0").json()["data"]
    assert "hunter2secret" not in log["text"] and "****" in log["text"]
    missing = c.get("/api/environments/nope")
    assert missing.status_code == 404 and missing.json()["kind"] == "error"
    assert c.get("/environments/nope").status_code == 404


def test_downloads(filled: tuple[Workspace, str]) -> None:
    ws, _ = filled
    c = client(ws)
    reqs = c.get("/environments/train/2/download/requirements")
    assert reqs.status_code == 200 and "pandas" in reqs.text
    v1 = c.get("/environments/train/1/download/azureml-v1")
    assert v1.content.startswith(b"PK") and "attachment" in v1.headers["content-disposition"]
    assert c.get("/environments/train/1/download/nope").status_code == 404
    model = c.get("/models/forest/1/download")
    assert model.content == b"model-bytes"


def test_a_runs_snapshot_files_are_listed_and_downloaded(filled: tuple[Workspace, str]) -> None:
    import io
    import zipfile

    ws, run_id = filled
    c = client(ws)
    page = c.get(f"/runs/{run_id}").text
    assert f'href="/runs/{run_id}/snapshot/train.py">train.py</a>' in page
    assert f'href="/runs/{run_id}/snapshot/conf/a%20b.json">conf/a b.json</a>' in page
    assert f'href="/runs/{run_id}/snapshot.zip"' in page
    one = c.get(f"/runs/{run_id}/snapshot/conf/a%20b.json")
    assert one.content == b'{"lr": 0.1}' and "attachment" in one.headers["content-disposition"]
    script = c.get(f"/runs/{run_id}/snapshot/train.py")
    assert script.content == Path("scripts/train.py").read_bytes() and "attachment" in script.headers[
        "content-disposition"]  # a script full of <script> tags is a download, never a page
    archive = zipfile.ZipFile(io.BytesIO(c.get(f"/runs/{run_id}/snapshot.zip").content))
    assert sorted(n for n in archive.namelist() if not n.endswith("/")) == ["conf/a b.json", "train.py"]
    assert archive.read("train.py") == script.content
    for wrong in ("nope.py", "conf", "..%2Ftrain.py"):  # only what the manifest lists, by its exact path
        assert c.get(f"/runs/{run_id}/snapshot/{wrong}").status_code == 404, wrong
    snapshot = c.get(f"/api/runs/{run_id}").json()["data"]["snapshot"]
    assert [f["path"] for f in snapshot["items"]] == ["conf/a b.json", "train.py"]
    interactive = Experiment(ws, "exp-two").get_runs().__next__().id  # start_logging() without a snapshot
    assert "no snapshot" in c.get(f"/runs/{interactive}").text
    assert c.get(f"/runs/{interactive}/snapshot/train.py").status_code == 404


def test_actions_confirm_then_act_and_refuse_cross_site(filled: tuple[Workspace, str]) -> None:
    ws, run_id = filled
    c = client(ws)
    token = csrf_of(c.get("/environments/train").text)
    assert c.post("/environments/train/2/build", data={}).status_code == 403  # no CSRF field
    assert c.post("/environments/train/2/build", data={"csrf": "x" * 32}).status_code == 403  # not the session's
    cross = c.post("/environments/train/2/build", data={"csrf": token}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-site" in cross.text
    fetched = c.post("/cache/prune", data={"csrf": token}, headers={"sec-fetch-site": "cross-site"})
    assert fetched.status_code == 403
    assert c.get("/environments", headers={"host": "evil.example"}).status_code == 421  # DNS rebinding
    asked = c.post("/environments/hostile/1/build", data={"csrf": token}, headers={"origin": BASE})
    assert asked.status_code == 200 and "Yes, go ahead" in asked.text  # the confirmation, nothing done yet
    done = c.post("/environments/hostile/1/build", data={"csrf": token, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/builds/1"
    build = c.get("/api/builds/1").json()["data"]
    assert build["environment"] == "hostile:1" and build["status"] in ("Running", "Succeeded")
    assert c.post("/cache/prune", data={"csrf": token, "confirm": "yes"}, follow_redirects=False).status_code == 303
    # a finished run: cancelling it changes nothing
    assert c.post(f"/runs/{run_id}/cancel", data={"csrf": token, "confirm": "yes"},
                  follow_redirects=False).status_code == 303
    assert c.get(f"/api/runs/{run_id}").json()["data"]["status"] == "Completed"


def test_cancel_a_running_run(filled: tuple[Workspace, str]) -> None:
    ws, _ = filled
    run = Experiment(ws, "live").start_logging(outputs=False)
    c = client(ws)
    page = c.get(f"/runs/{run.id}").text
    assert "Cancel this run" in page and "data-live-run" in page
    token = csrf_of(page)
    assert "Yes, go ahead" in c.post(f"/runs/{run.id}/cancel", data={"csrf": token}).text
    assert run.get_status() == "Running"
    c.post(f"/runs/{run.id}/cancel", data={"csrf": token, "confirm": "yes"})
    assert run.get_status() == "Canceled"


def test_read_only_refuses_every_action(filled: tuple[Workspace, str]) -> None:
    ws, _ = filled
    c = client(ws, read_only=True)
    page = c.get("/environments/train").text
    assert "read-only" in page and "Build this version" not in page
    token = c.cookies.get("kiln_csrf")
    r = c.post("/environments/train/2/build", data={"csrf": token, "confirm": "yes"})
    assert r.status_code == 403 and "read-only" in r.text
    assert c.post("/cache/prune", data={"csrf": token, "confirm": "yes"}).status_code == 403


def test_token_mode(filled: tuple[Workspace, str]) -> None:
    ws, _ = filled
    secret = "t" * 32
    c = client(ws, token=secret, hosts=None)
    assert c.get("/environments").status_code == 401
    assert c.get("/api/environments").status_code == 401
    assert c.get("/environments?token=wrong").status_code == 401
    assert c.get("/environments", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    first = c.get(f"/runs?token={secret}&status=Completed", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/runs?status=Completed"
    assert c.get("/runs").status_code == 200  # the cookie the redirect set
    assert secret not in c.get("/runs").text
