"""Images on a base pulled through a real engine (``podman system service``) from a real registry, loaded
into the engine and run there; the registry's credentials stay references; a platform mismatch is said."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from engine_support import ContainerEngine
from kiln import Environment, Workspace
from kiln.builds.engine import Engine
from kiln.builds.oci.build import build_image
from kiln.errors import KilnError
from kiln.settings import Settings

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py

SECRET = "s3cret-Registry-Passw0rd"


def test_the_default_base_comes_through_the_engine_and_the_image_runs_there(
        make_env: Callable[..., Environment], workspace: Workspace, engine_env: ContainerEngine,
        tmp_path: Path) -> None:
    env = make_env("on-engine", "six==1.16.0", variables={"GREETING": "hi from the engine"})
    logs: list[str] = []
    with Engine(engine_env.engine_url) as engine:
        image = build_image(env, workspace, settings=Settings.from_env(), engine=engine,
                            progress=lambda stage, line: logs.append(line))
        # Kiln's default base image (python:3.12-slim-bookworm): the session's local one, under the environment
        assert image.base_image == engine_env.base_image and len(image.base_layers) == 1
        assert [x.title for x in image.layers] == ["environment", "six 1.16.0"]
        assert any("loaded" in line for line in logs)
        code = "import os, sys, six; print(sys.prefix, six.__version__, os.environ['GREETING'])"
        out = engine.client.containers.run(image.reference, ["python", "-c", code], remove=True, network_mode="none")
        assert out.decode().strip() == "/kiln/env 1.16.0 hi from the engine"
        # the base is kept in Kiln's cache: the next image reads it there, and is the same, bit for bit
        again = build_image(env, workspace, settings=Settings.from_env(), engine=engine, layout=tmp_path / "again",
                            progress=lambda stage, line: logs.append(line))
        assert again.digest == image.digest
        assert any("from Kiln's cache" in line for line in logs) and any("has " + image.reference in line
                                                                           for line in logs)


def test_a_base_from_a_registry_with_credentials_as_references_leaves_no_secret(
        make_env: Callable[..., Environment], workspace: Workspace, engine_env: ContainerEngine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_TEST_REGISTRY_PASSWORD", SECRET)
    env = make_env("on-registry", "six==1.16.0")
    env.docker.base_image = "library/python:3.12-slim-bookworm"
    env.docker.base_image_registry.address = engine_env.registry_address
    env.docker.base_image_registry.username = "kiln"
    env.docker.base_image_registry.password = "${KILN_TEST_REGISTRY_PASSWORD}"
    with Engine(engine_env.engine_url) as engine:
        engine.remove(engine_env.registry_base_image)  # so that it is pulled from the registry
        image = build_image(env, workspace, settings=Settings.from_env(), engine=engine, tar=tmp_path / "image.tar")
        assert engine.has(engine_env.registry_base_image)
    assert image.base_image == engine_env.registry_base_image
    assert SECRET.encode() not in (tmp_path / "image.tar").read_bytes()
    for path in Settings.from_env().cache_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert SECRET.encode() not in path.read_bytes(), path
    monkeypatch.delenv("KILN_TEST_REGISTRY_PASSWORD")
    with Engine(engine_env.engine_url) as engine, pytest.raises(KilnError, match="KILN_TEST_REGISTRY_PASSWORD"):
        engine.remove(engine_env.registry_base_image)
        try:
            build_image(env, workspace, settings=Settings.from_env(), engine=engine)
        finally:
            engine.pull(engine_env.registry_base_image)


def test_a_base_of_another_platform_is_refused(make_env: Callable[..., Environment], workspace: Workspace,
                                               engine_env: ContainerEngine) -> None:
    env = make_env("arm", "six==1.16.0")
    env.docker.platform = {"os": "Linux", "architecture": "arm64"}
    with Engine(engine_env.engine_url) as engine, pytest.raises(KilnError, match=r"docker\.platform.*linux/amd64"):
        build_image(env, workspace, settings=Settings.from_env(), engine=engine)
