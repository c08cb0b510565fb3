"""What the engine is asked for, without an engine: base references, credentials from references, the name
of the Docker steps' image."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builds.backends.plan import DockerPlan, RegistryPlan
from kiln.builds.engine.base import base_reference, registry_auth
from kiln.builds.engine.steps import dockerfile_used, steps_key
from kiln.errors import DefinitionError, KilnError


def test_a_base_without_a_registry_host_is_looked_up_in_the_definitions_registry() -> None:
    registry = RegistryPlan(address="registry.example:5000")
    assert base_reference("team/base:1", registry) == "registry.example:5000/team/base:1"
    assert base_reference("other.example/team/base:1", registry) == "other.example/team/base:1"
    assert base_reference("localhost/base:1", registry) == "localhost/base:1"
    assert base_reference("team/base:1", RegistryPlan()) == "team/base:1"


def test_credentials_are_resolved_from_references_when_asked() -> None:
    registry = RegistryPlan(address="r:1", username="${USER_VAR}", password_reference="${PASS_VAR}")
    assert registry_auth(registry, {"USER_VAR": "me", "PASS_VAR": "pw"}) == {"username": "me", "password": "pw",
                                                                             "serveraddress": "r:1"}
    with pytest.raises(DefinitionError, match="PASS_VAR"):
        registry_auth(registry, {"USER_VAR": "me"})
    assert registry_auth(RegistryPlan(address="r:1", username="me"), {}) is None  # no password: anonymous


def test_the_steps_image_is_named_by_the_dockerfile_the_context_and_the_platform(tmp_path: Path) -> None:
    assert steps_key(DockerPlan()) is None
    one = steps_key(DockerPlan(dockerfile="FROM a\nRUN x\n"))
    assert one == steps_key(DockerPlan(dockerfile="FROM a\nRUN x\n"))
    assert one != steps_key(DockerPlan(dockerfile="FROM a\nRUN y\n"))
    assert one != steps_key(DockerPlan(dockerfile="FROM a\nRUN x\n", platform="linux/arm64"))
    (tmp_path / "Dockerfile").write_text("FROM a\nCOPY f /f\n")
    (tmp_path / "f").write_text("1")
    plan = DockerPlan(build_context_location=str(tmp_path), build_context_type="storageAccount",
                      build_context_dockerfile="Dockerfile")
    before = steps_key(plan)
    assert dockerfile_used(plan) == "FROM a\nCOPY f /f\n"
    (tmp_path / "f").chmod(0o755)
    assert steps_key(plan) != before  # the executable bit counts
    (tmp_path / "f").chmod(0o644)
    assert steps_key(plan) == before
    (tmp_path / "f").write_text("2")
    assert steps_key(plan) != before


def test_a_git_context_is_refused_with_what_to_do() -> None:
    plan = DockerPlan(build_context_location="https://example.com/repo.git", build_context_type="git")
    with pytest.raises(KilnError, match="clone the repository first"):
        steps_key(plan)
