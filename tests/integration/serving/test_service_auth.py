"""Key auth on a local web service: which routes need the key and which header forms are taken.

With ``auth_enabled=True`` what reaches ``run()`` or describes the service (``/score``, ``/swagger.json``,
``/metrics``) needs ``Authorization: Bearer <key>`` (Azure ML's one form); the probes (``/``,
``/health/ready``) and a CORS preflight answer without a key, as probes and browsers can't send one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_support import *  # noqa: F403 - the shared fixtures and helpers (see serving_support)
from serving_support import ECHO, JSON, Deploy, http, post, write_source

from kiln import Environment, LocalWebservice

pytestmark = pytest.mark.integration

FORM = "the Authorization header is not of the form 'Bearer <key>': send Authorization: Bearer <key>"


@pytest.fixture
def service(deploy: Deploy, env: Environment, tmp_path: Path) -> LocalWebservice:
    return deploy("auth-edges", write_source(tmp_path / "src", ECHO), [], env, auth_enabled=True)


def test_routes_that_need_the_key(service: LocalWebservice) -> None:
    primary, _ = service.get_keys()
    bearer = {"Authorization": f"Bearer {primary}"}
    for path in ("/score", "/swagger.json", "/metrics"):
        refused = http(service.scoring_uri, path=path)
        assert refused.status == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["message"] == "missing key: send the header Authorization: Bearer <key>"
        assert http(service.scoring_uri, path=path, headers=bearer).status == 200, path
    swagger = http(service.scoring_uri, path="/swagger.json", headers=bearer).json()
    assert swagger["swagger"] == "2.0"
    assert "kiln_requests_total" in http(service.scoring_uri, path="/metrics", headers=bearer).body.decode()


def test_probes_and_the_preflight_need_no_key(service: LocalWebservice) -> None:
    assert http(service.scoring_uri, path="/").status == 200
    assert http(service.scoring_uri, path="/health/ready").status == 200
    assert http(service.scoring_uri, "OPTIONS").status == 200  # a CORS preflight never reaches run()


@pytest.mark.parametrize("header", [
    "{key}",  # a bare key: Azure ML's services take only the Bearer form
    "Basic {key}",
    "Token {key}",
    "Bearer",
    "Bearer ",
    "{key} Bearer",
])
def test_only_the_bearer_form_is_taken(service: LocalWebservice, header: str) -> None:
    primary, _ = service.get_keys()
    reply = post(service, {"x": 1}, {**JSON, "Authorization": header.format(key=primary)})
    assert reply.status == 401
    assert reply.json()["message"] == FORM
    assert primary not in reply.body.decode()  # never echoed


def test_the_bearer_form_is_case_insensitive_and_the_key_exact(service: LocalWebservice) -> None:
    primary, secondary = service.get_keys()
    assert post(service, {"x": 1}, {**JSON, "Authorization": f"bearer {primary}"}).status == 200
    assert post(service, {"x": 1}, {**JSON, "Authorization": f"BEARER {secondary}"}).status == 200
    wrong = post(service, {"x": 1}, {**JSON, "Authorization": f"Bearer {primary[:-1]}"})
    assert wrong.status == 401
    assert wrong.json()["message"].startswith("wrong key: ")
    assert primary[:-1] not in wrong.body.decode()
