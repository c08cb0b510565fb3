"""The Docker-API engine client against a real ``podman system service`` and registry (the session's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_support import ContainerEngine
from kiln.builds.engine import CONTAINERS_CONF, Engine, EngineError, registries_conf
from kiln.builds.engine.client import split_reference
from kiln.errors import NotFoundError
from kiln.settings import Settings

pytestmark = pytest.mark.integration


def test_the_shipped_containers_conf_names_runc_and_limits_that_work_here() -> None:
    text = CONTAINERS_CONF.read_text(encoding="utf-8")
    assert 'runtime = "runc"' in text and "nproc=32768:32768" in text


def test_a_registries_conf_marks_local_registries_insecure() -> None:
    text = registries_conf(["127.0.0.1:5000", "127.0.0.1:5000", "localhost:1"])
    assert text.count("[[registry]]") == 2 and 'location = "127.0.0.1:5000"\ninsecure = true' in text


def test_references_split_into_repository_and_tag() -> None:
    assert split_reference("127.0.0.1:5000/kiln/a:1") == ("127.0.0.1:5000/kiln/a", "1")
    assert split_reference("127.0.0.1:5000/kiln/a") == ("127.0.0.1:5000/kiln/a", "latest")
    assert split_reference("a@sha256:00") == ("a", "sha256:00")


def test_no_engine_says_how_to_start_one(tmp_path: Path) -> None:
    reason = Engine(f"unix://{tmp_path}/nothing.sock").cannot_connect()
    assert reason is not None and f"{tmp_path}/nothing.sock" in reason and "podman system service" in reason
    with pytest.raises(EngineError, match="podman system service"):
        Engine(f"unix://{tmp_path}/nothing.sock").images()


def test_settings_name_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///a.sock")
    monkeypatch.delenv("KILN_DOCKER_HOST", raising=False)
    assert Engine.from_settings(Settings.from_env()).url == "unix:///a.sock"
    monkeypatch.setenv("KILN_DOCKER_HOST", "unix:///b.sock")
    assert Engine.from_settings(Settings.from_env()).url == "unix:///b.sock"


def test_builds_a_dockerfile_over_the_base_runs_it_and_pushes_it(engine_env: ContainerEngine, tmp_path: Path) -> None:
    with engine_env.engine() as engine:
        _build_run_push(engine, engine_env, tmp_path)


def _build_run_push(engine: Engine, engine_env: ContainerEngine, tmp_path: Path) -> None:
    assert engine.cannot_connect() is None
    assert engine.has(engine_env.base_image)
    context = tmp_path / "context"
    context.mkdir()
    (context / "greeting.txt").write_text("hello from the context\n")
    (context / "Dockerfile").write_text(f"FROM {engine_env.base_image}\nCOPY greeting.txt /greeting.txt\n"
                                        "RUN mkdir /made && cp /greeting.txt /made/copy.txt\n")
    lines: list[str] = []
    built = engine.build(context, tag="kiln-test/engine:1", labels={"io.kiln.test": "yes"}, log=lines.append)
    assert any(t.endswith("kiln-test/engine:1") for t in built.tags) and built.labels["io.kiln.test"] == "yes"
    assert any("RUN mkdir" in line for line in lines)
    out = engine.client.containers.run("kiln-test/engine:1", ["python3", "-c", "print(open('/made/copy.txt').read())"],
                                       remove=True, network_mode="none")
    assert out.decode().strip() == "hello from the context"
    target = f"{engine_env.registry_address}/kiln-test/engine:1"
    engine.tag("kiln-test/engine:1", target)
    pushed = engine.push(target)
    assert pushed.digest is not None and pushed.digest.startswith("sha256:")
    assert pushed.digest[7:] in {d[7:] for d in engine_env.registry_blobs()}  # the manifest is in the registry
    engine.remove(target)
    engine.remove("kiln-test/engine:1")
    assert not engine.has("kiln-test/engine:1")
    with pytest.raises(NotFoundError, match="kiln-test/engine:1"):
        engine.image("kiln-test/engine:1")


def test_a_failing_dockerfile_step_is_an_engine_error_naming_it(engine_env: ContainerEngine, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {engine_env.base_image}\nRUN exit 3\n")
    with pytest.raises(EngineError, match=r"exit 3|exit status 3"), engine_env.engine() as engine:
        engine.build(tmp_path, tag="kiln-test/broken:1")


def test_pulling_what_the_registry_lacks_fails_with_the_name(engine_env: ContainerEngine) -> None:
    with pytest.raises((EngineError, NotFoundError), match="nothing-here"), engine_env.engine() as engine:
        engine.pull(f"{engine_env.registry_address}/kiln-test/nothing-here:1")

