"""Azure ML's two steps through a real engine: the definition's Docker steps (a Dockerfile's text, or a build
context folder) built first and cached by what they are built from, then Kiln's layers on top; a
user-managed environment is step one alone, with the image's own Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)

from engine_support import ContainerEngine
from kiln import DockerBuildContext, Environment, Workspace
from kiln.builds.backends.plan import DockerPlan
from kiln.builds.engine import Engine
from kiln.builds.engine.steps import steps_key
from kiln.builds.oci.build import build_image
from kiln.settings import Settings

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")]  # run_uv's pipe, see test_build.py


def test_dockerfile_steps_then_the_environment_layers_on_top(make_env: Callable[..., Environment],
                                                             workspace: Workspace, engine_env: ContainerEngine) -> None:
    env = make_env("stepped", "six==1.16.0")
    env.docker.base_image = None  # as in Azure ML: a Dockerfile instead of the base image
    env.docker.base_dockerfile = (f"FROM {engine_env.base_image}\nRUN mkdir -p /opt/steps && echo step-one > "
                                  "/opt/steps/marker\nENV FROM_STEPS=yes\n")
    logs: list[str] = []
    with Engine(engine_env.engine_url) as engine:
        image = build_image(env, workspace, settings=Settings.from_env(), engine=engine,
                            progress=lambda stage, line: logs.append(line))
        assert any(line.startswith("step 1: building the Docker steps") for line in logs)
        assert len(image.base_layers) == 2 and [x.title for x in image.layers] == ["environment", "six 1.16.0"]
        assert image.base_image.startswith("kiln/kiln_steps_")
        code = ("import os, six; print(open('/opt/steps/marker').read().strip(), os.environ['FROM_STEPS'], "
                "six.__version__)")
        out = engine.client.containers.run(image.reference, ["python", "-c", code], remove=True, network_mode="none")
        assert out.decode().split() == ["step-one", "yes", "1.16.0"]
        logs.clear()
        again = build_image(env, workspace, settings=Settings.from_env(), engine=engine,
                            progress=lambda stage, line: logs.append(line))
        assert again.digest == image.digest
        assert any("built before from the same Dockerfile and context" in line for line in logs)
    details = env.get_image_details(workspace)
    assert "RUN mkdir -p /opt/steps" in details.dockerfile and details.digest == image.digest
    assert details.interpreter_path == "/kiln/env/bin/python"


def test_a_build_context_folder_and_what_names_its_image(make_env: Callable[..., Environment], workspace: Workspace,
                                                         engine_env: ContainerEngine, tmp_path: Path) -> None:
    context = tmp_path / "context"
    (context / "docker").mkdir(parents=True)
    (context / "data.txt").write_text("from the context\n")
    (context / "docker" / "Base.dockerfile").write_text(f"FROM {engine_env.base_image}\nCOPY data.txt /data.txt\n")
    env = make_env("contexted", "six==1.16.0")
    env.docker.base_image = None
    env.docker.build_context = DockerBuildContext.from_local_directory(path=context,
                                                                       dockerfile_path="docker/Base.dockerfile")
    key = steps_key(DockerPlan.of(env.docker))
    with Engine(engine_env.engine_url) as engine:
        image = build_image(env, workspace, settings=Settings.from_env(), engine=engine)
        out = engine.client.containers.run(image.reference, ["python", "-c", "print(open('/data.txt').read())"],
                                           remove=True, network_mode="none")
    assert out.decode().strip() == "from the context"
    assert key is not None and image.base_image == f"kiln/kiln_steps_{key[:32]}:latest"
    (context / "data.txt").write_text("changed\n")  # a context file changes: another step-one image
    assert steps_key(DockerPlan.of(env.docker)) != key
    assert "COPY data.txt /data.txt" in env.get_image_details(workspace).dockerfile


def test_user_managed_python_is_step_one_alone(workspace: Workspace, engine_env: ContainerEngine) -> None:
    env = Environment("own-python")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "/usr/local/bin/python3.12"
    env.docker.base_image = None
    env.docker.base_dockerfile = f"FROM {engine_env.base_image}\nRUN mkdir /own && echo mine > /own/marker\n"
    env.environment_variables = {"OWN": "1"}
    with Engine(engine_env.engine_url) as engine:
        image = build_image(env, workspace, settings=Settings.from_env(), engine=engine)
        assert image.layers == [] and len(image.base_layers) == 2
        out = engine.client.containers.run(image.reference, ["/usr/local/bin/python3.12", "-c",
                                                             "import os; print(open('/own/marker').read().strip(), "
                                                             "os.environ['OWN'])"], remove=True, network_mode="none")
    assert out.decode().split() == ["mine", "1"]
    details = env.get_image_details(workspace)
    assert details.interpreter_path == "/usr/local/bin/python3.12" and details.digest == image.digest
    assert "# Step 2: none: Python is user-managed" in details.dockerfile
