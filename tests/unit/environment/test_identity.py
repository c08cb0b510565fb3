from __future__ import annotations

from kiln import CondaDependencies, Environment, SparkPackage
from kiln.environment.identity import IDENTITY_FORMAT, canonical_form


def _env(name: str = "a", pip: list[str] | None = None, channels: list[str] | None = None) -> Environment:
    env = Environment(name)
    cd = CondaDependencies.create(pip_packages=pip or ["six==1.16.0", "attrs>=23"], python_version="3.11")
    for c in channels or []:
        cd.add_channel(c)
    env.python.conda_dependencies = cd
    return env


def test_golden_hash_is_stable() -> None:
    # a change to this value is a change of the canonical form: bump IDENTITY_FORMAT and say so
    env = _env()
    assert IDENTITY_FORMAT == "kiln-identity/1"
    assert env.hash == "cc48b545c1d0ff53a0a72e67be5cd809c7ded90cdf93b857d1a4c4ce02b652a7"
    assert env.hash == _env().hash


def test_name_version_description_tags_env_vars_and_credentials_do_not_count() -> None:
    a = _env("a")
    b = _env("b")
    b.version = "7"
    b.description = "other"
    b.tags = {"x": "y"}
    b.environment_variables = {"OMP_NUM_THREADS": "1"}
    b.docker.base_image_registry.username = "me"
    b.docker.base_image_registry.password = "secret"
    b.docker.shm_size = "8g"
    assert a.hash == b.hash


def test_pip_order_and_spelling_do_not_count() -> None:
    assert _env(pip=["six==1.16.0", "attrs>=23"]).hash == _env(pip=["attrs >= 23", "Six==1.16.0"]).hash


def test_channel_order_counts() -> None:
    assert _env(channels=["pytorch", "nvidia"]).hash != _env(channels=["nvidia", "pytorch"]).hash


def test_packages_python_image_dockerfile_and_spark_count() -> None:
    base = _env()
    assert _env(pip=["six==1.17.0", "attrs>=23"]).hash != base.hash
    other_python = _env()
    assert other_python.python.conda_dependencies is not None
    other_python.python.conda_dependencies.set_python_version("3.12")
    assert other_python.hash != base.hash
    image = _env()
    image.docker.base_image = "ubuntu:24.04"
    assert image.hash != base.hash
    dockerfile = _env()
    dockerfile.docker.base_image = None
    dockerfile.docker.base_dockerfile = "FROM ubuntu\nRUN echo 1\n"
    assert dockerfile.hash != base.hash
    spark = _env()
    spark.spark.packages.append(SparkPackage("com.microsoft.ml.spark", "mmlspark_2.11", "0.15"))
    assert spark.hash != base.hash


def test_dockerfile_line_endings_do_not_count() -> None:
    a, b = _env(), _env()
    a.docker.base_image = b.docker.base_image = None
    a.docker.base_dockerfile = "FROM ubuntu\nRUN echo 1\n"
    b.docker.base_dockerfile = "FROM ubuntu\r\nRUN echo 1  \r\n\r\n"
    assert a.hash == b.hash


def test_user_managed_ignores_conda_but_counts_interpreter() -> None:
    a, b = _env(pip=["six"]), _env(pip=["attrs"])
    for env in (a, b):
        env.python.user_managed_dependencies = True
        env.python.interpreter_path = "/opt/py/bin/python"
    assert a.hash == b.hash
    b.python.interpreter_path = "/usr/bin/python3"
    assert a.hash != b.hash


def test_canonical_form_shape() -> None:
    form = canonical_form(_env())
    assert form["format"] == IDENTITY_FORMAT
    assert form["python"]["pip"] == ["attrs>=23", "six==1.16.0"]
    assert form["python"]["channels"] == ["conda-forge"]
    assert form["docker"]["platform"] == "linux/amd64"
