"""The studio's service pages and actions against a real local web service (a built environment, a real
server process on 127.0.0.1): state and scoring URI, the /score form with its answer and latency, reload
and delete, each confirmed and CSRF-checked."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kiln import CondaDependencies, Environment, InferenceConfig, LocalWebservice, Model, Workspace
from kiln.builds.interpreters import find_interpreter
from kiln.errors import DefinitionError
from kiln.studio.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

SCORE = textwrap.dedent("""\
    import json

    def init():
        print("<script>alert('log')</script> init done")

    def run(raw_data):
        return {"echo": json.loads(raw_data), "html": "<script>alert('answer')</script>"}
""")


@pytest.fixture
def service(kiln_home: Path) -> Iterator[tuple[Workspace, LocalWebservice]]:
    try:
        find_interpreter("3.12", default="3.12")
    except DefinitionError:
        pytest.skip("no Python 3.12 on this machine")
    ws = Workspace.create("studio-serving", path="ws")
    env = Environment("serve-plain")
    env.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
    source = Path("src")
    source.mkdir()
    (source / "score.py").write_text(SCORE)
    Path("m.txt").write_text("weights")
    model = Model.register(ws, model_path="m.txt", model_name="weights")
    svc = Model.deploy(ws, "echo", [model], InferenceConfig(entry_script="score.py", source_directory=source,
                                                            environment=env),
                       LocalWebservice.deploy_configuration(auth_enabled=True))
    svc.wait_for_deployment(timeout_sec=300)
    yield ws, svc
    for left in LocalWebservice.list(ws):
        left.delete()
    ws.close()


def test_service_pages_and_actions(service: tuple[Workspace, LocalWebservice]) -> None:
    ws, svc = service
    c = TestClient(create_app(ws), base_url="http://127.0.0.1:8790")
    listing = c.get("/services").text
    assert "echo" in listing and svc.scoring_uri in listing and "Healthy" in listing
    link = svc.serialize()["studioUrl"]  # the service's details link to this very page
    assert link == "http://127.0.0.1:8790/services/echo"
    page = c.get(link).text
    assert svc.scoring_uri in page and "init done" in page and "<script>alert" not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    csrf = token.group(1)
    answered = c.post("/services/echo/score", data={"csrf": csrf, "body": '{"data": [1, 2]}'})
    assert answered.status_code == 200
    assert re.search(r"answer in [0-9.]+ ms", answered.text)
    assert "&#34;echo&#34;: {&#34;data&#34;: [1, 2]}" in answered.text and "<script>alert" not in answered.text
    assert c.post("/services/echo/score", data={"body": "{}"}).status_code == 403  # no CSRF field
    primary, _ = svc.get_keys()
    assert primary not in page and "Reveal keys" in page
    revealed = c.post("/services/echo/keys", data={"csrf": csrf})
    assert f'<code id="primary-key">{primary}</code>' in revealed.text
    assert c.post("/services/echo/keys", data={}).status_code == 403
    ro = TestClient(create_app(ws, read_only=True), base_url="http://127.0.0.1:8790")
    ro.get("/services/echo")
    assert ro.post("/services/echo/keys", data={"csrf": ro.cookies.get("kiln_csrf")}).status_code == 403
    logs = c.get("/api/services/echo/logs").json()
    assert logs["kind"] == "service.logs" and "init done" in logs["data"]["text"]
    before = svc.serialize()["generation"]
    assert "Yes, go ahead" in c.post("/services/echo/reload", data={"csrf": csrf}).text
    c.post("/services/echo/reload", data={"csrf": csrf, "confirm": "yes"})
    svc.wait_for_deployment(timeout_sec=120)
    assert svc.serialize()["generation"] > before
    status = c.get("/api/status?services=echo").json()["data"]["services"]
    assert status == {"echo": svc.state}
    assert "Yes, go ahead" in c.post("/services/echo/delete", data={"csrf": csrf}).text
    assert [s.name for s in LocalWebservice.list(ws)] == ["echo"]
    gone = c.post("/services/echo/delete", data={"csrf": csrf, "confirm": "yes"}, follow_redirects=False)
    assert gone.status_code == 303 and LocalWebservice.list(ws) == []
    assert c.get("/api/status?services=echo").json()["data"]["services"] == {"echo": "Deleted"}
