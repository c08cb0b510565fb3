"""Build plans: made from a definition, with its docker section and no secrets."""

from __future__ import annotations

from kiln import CondaDependencies, Environment
from kiln.builds.backends.plan import DockerPlan, plan_for
from kiln.builds.interpreters import Interpreter
from kiln.environment.sections import ContainerRegistry, DockerBuildContext

PYTHON = Interpreter(path="/usr/bin/python3", version="3.12.1", machine="x86_64", system="Linux")


def test_the_plan_carries_the_docker_section() -> None:
    env = Environment("img")
    env.version = "2"
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
    env.docker.base_image = "registry.example.com/base:1"
    env.docker.base_image_registry = ContainerRegistry(address="registry.example.com", username="me",
                                                       password="${REGISTRY_PASSWORD}")
    env.docker.platform = {"os": "Linux", "architecture": "ARM64"}
    env.docker.shm_size = "512m"
    env.docker.arguments = ["--cap-add", "SYS_PTRACE"]
    plan = plan_for(env, PYTHON, None)
    assert (plan.label, plan.interpreter, plan.lock, plan.user_managed) == ("img:2", PYTHON, None, False)
    docker = plan.docker
    assert (docker.base_image, docker.dockerfile, docker.build_context_location) == (
        "registry.example.com/base:1", None, None)
    assert (docker.registry.address, docker.registry.username, docker.registry.password_reference) == (
        "registry.example.com", "me", "${REGISTRY_PASSWORD}")
    assert (docker.platform, docker.shm_size, docker.arguments) == ("linux/arm64", "512m", ("--cap-add", "SYS_PTRACE"))


def test_a_literal_registry_password_stays_out_of_the_plan() -> None:
    env = Environment("img")
    env.docker.base_image_registry = ContainerRegistry(address="r.example.com", username="me", password="hunter2")
    docker = DockerPlan.of(env.docker)
    assert docker.registry.password_reference is None
    assert "hunter2" not in repr(docker)


def test_a_dockerfile_or_a_build_context() -> None:
    env = Environment("df")
    env.docker.base_image = None
    env.docker.base_dockerfile = "FROM busybox\nRUN echo hi\n"
    assert DockerPlan.of(env.docker).dockerfile == "FROM busybox\nRUN echo hi\n"
    env.docker.base_dockerfile = None
    env.docker.build_context = DockerBuildContext(location="https://example.com/repo.git",
                                                  dockerfile_path="d/Dockerfile")
    docker = DockerPlan.of(env.docker)
    assert (docker.base_image, docker.dockerfile, docker.build_context_location, docker.build_context_type,
            docker.build_context_dockerfile) == (None, None, "https://example.com/repo.git", "git", "d/Dockerfile")


def test_a_user_managed_plan() -> None:
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    plan = plan_for(env, PYTHON, None)
    assert plan.user_managed and plan.lock is None
