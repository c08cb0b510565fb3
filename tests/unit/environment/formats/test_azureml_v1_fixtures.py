"""The Azure ML v1 folder format against what the real SDK (azureml-core 1.61.0) wrote and read.

`written-by-sdk/` holds folders the SDK saved: Kiln must read their meaning and write them back byte
for byte. `load-cases/` holds edge cases with what the SDK did (`RESULTS-by-sdk.txt`): Kiln must give
the same meaning or a `FormatError` naming the file and the field. No SDK is needed here; the
integration suite (`tests/integration/compat/`) runs the SDK itself.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from kiln.environment.conda import CondaDependencies
from kiln.environment.environment import Environment, EnvironmentReference
from kiln.environment.sections import DEFAULT_CPU_IMAGE, ContainerRegistry, DockerBuildContext, SparkPackage
from kiln.errors import FormatError

V1 = Path(__file__).parents[3] / "fixtures" / "azureml-v1"
WRITTEN = V1 / "written-by-sdk"
LOAD_CASES = V1 / "load-cases"
JSON_FILE = "azureml_environment.json"
CONDA_FILE = "conda_dependencies.yml"
DOCKERFILE = "BaseDockerfile"
SDK_DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20251130.v1"


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def load_env(folder: Path) -> Environment:
    env = Environment.load_from_directory(folder)
    assert isinstance(env, Environment), f"{folder.name}: expected an Environment, got {env!r}"
    return env


def meaning(env: Environment) -> dict[str, Any]:
    """Every field a user of the SDK sees, in plain data."""
    cd = env.python.conda_dependencies
    d = env.docker
    bc = d.build_context
    reg = d.base_image_registry
    return {
        "name": env.name,
        "version": env.version,
        "environment_variables": env.environment_variables,
        "user_managed": env.python.user_managed_dependencies,
        "interpreter_path": env.python.interpreter_path,
        "python_version": None if cd is None else cd.get_python_version(),
        "channels": None if cd is None else cd.conda_channels,
        "conda_packages": None if cd is None else cd.conda_packages,
        "pip_packages": None if cd is None else cd.pip_packages,
        "pip_options": None if cd is None else cd.pip_options,
        "enabled": d.enabled,
        "base_image": d.base_image,
        "base_dockerfile": d.base_dockerfile,
        "build_context": None if bc is None else (bc.location_type, bc.location, bc.dockerfile_path),
        "shared_volumes": d.shared_volumes,
        "shm_size": d.shm_size,
        "arguments": d.arguments,
        "registry": (reg.address, reg.username, reg.password, reg.registry_identity),
        "platform": d.platform,
        "spark_repositories": env.spark.repositories,
        "spark_packages": [str(p) for p in env.spark.packages],
        "spark_precache": env.spark.precache_packages,
        "databricks": env.databricks,
        "r": env.r,
        "inferencing_stack_version": env.inferencing_stack_version,
        "asset_id": env.asset_id,
    }


# What the SDK's default Environment holds; each case below says where it differs.
SDK_DEFAULTS: dict[str, Any] = {
    "version": None,
    "environment_variables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
    "user_managed": False,
    "interpreter_path": "python",
    "python_version": "3.8.13",
    "channels": ["anaconda", "conda-forge"],
    "conda_packages": ["python=3.8.13"],
    "pip_packages": ["azureml-defaults"],
    "pip_options": [],
    "enabled": False,
    "base_image": SDK_DEFAULT_IMAGE,
    "base_dockerfile": None,
    "build_context": None,
    "shared_volumes": True,
    "shm_size": "2g",
    "arguments": [],
    "registry": (None, None, None, None),
    "platform": {"os": "Linux", "architecture": "amd64"},
    "spark_repositories": [],
    "spark_packages": [],
    "spark_precache": True,
    "databricks": {"mavenLibraries": [], "pypiLibraries": [], "rcranLibraries": [], "jarLibraries": [],
                   "eggLibraries": []},
    "r": None,
    "inferencing_stack_version": None,
    "asset_id": None,
}
NO_CONDA = {"python_version": None, "channels": None, "conda_packages": None, "pip_packages": None,
            "pip_options": None}

WRITTEN_CASES: dict[str, dict[str, Any]] = {
    "plain": {"name": "myenv"},
    "condapip_envvars_image": {
        "name": "myenv2",
        "version": "3",
        "environment_variables": {"MY_VAR": "1", "OTHER": "x y"},
        "python_version": "3.9",
        "channels": ["anaconda", "conda-forge", "pytorch"],
        "conda_packages": ["python=3.9", "numpy=1.21", "libgcc", "pytorch"],
        "pip_packages": ["scikit-learn==1.0.2", "pandas[performance]>=1.3", "azureml-defaults"],
        "pip_options": ["--find-links https://pypi.python.org/simple/index.html",
                        "--extra-index-url https://pypi.python.org/simple"],
        "base_image": "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04",
        "registry": ("myregistry.azurecr.io", "user", "secret", None),
        "inferencing_stack_version": "latest",
    },
    "dockerfile": {
        "name": "myenv3",
        "base_image": None,
        "base_dockerfile": "FROM ubuntu:22.04\nRUN echo 'hello'\n",
    },
    "usermanaged": {
        "name": "usermanaged",
        "user_managed": True,
        "interpreter_path": "/opt/miniconda/envs/myenv/bin/python",
    },
    "buildcontext": {
        **NO_CONDA,
        "name": "bc",
        "environment_variables": {},
        "base_image": None,
        "build_context": ("git", "https://github.com/x/y.git#main:ctx", "docker/Dockerfile"),
        "shm_size": None,
    },
    "from_dockerfile_nodeps": {
        "name": "fromdf",
        "user_managed": True,
        "base_image": None,
        "base_dockerfile": "FROM python:3.11-slim\nRUN pip install numpy\n",
    },
    "from_docker_image_nodeps": {
        "name": "fromimg",
        "user_managed": True,
        "base_image": "python:3.11",
    },
}


def test_every_sdk_folder_has_expectations() -> None:
    assert sorted(p.name for p in WRITTEN.iterdir() if p.is_dir()) == sorted(WRITTEN_CASES)


# --- folders the SDK wrote --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(WRITTEN_CASES))
def test_sdk_folder_loads_with_its_meaning(case: str) -> None:
    env = load_env(WRITTEN / case)
    assert meaning(env) == {**SDK_DEFAULTS, **WRITTEN_CASES[case]}


def test_sdk_conda_file_keeps_name_and_order() -> None:
    cd = load_env(WRITTEN / "condapip_envvars_image").python.conda_dependencies
    assert cd is not None
    assert cd.name == "project_environment"
    assert cd.as_dict() == {
        "name": "project_environment",
        "dependencies": ["python=3.9", {"pip": ["--find-links https://pypi.python.org/simple/index.html",
                                                "--extra-index-url https://pypi.python.org/simple",
                                                "scikit-learn==1.0.2", "pandas[performance]>=1.3",
                                                "azureml-defaults"]},
                         "numpy=1.21", "libgcc", "pytorch"],
        "channels": ["anaconda", "conda-forge", "pytorch"],
    }


@pytest.mark.parametrize("case", sorted(WRITTEN_CASES))
def test_sdk_folder_saves_back_byte_identical(case: str, tmp_path: Path) -> None:
    env = load_env(WRITTEN / case)
    env.save_to_directory(tmp_path / "out", include_secrets=True)
    original = files_of(WRITTEN / case)
    assert files_of(tmp_path / "out") == original
    # the SDK's own quirks that the comparison above relies on
    assert not original[JSON_FILE].endswith(b"\n")
    if CONDA_FILE in original:
        assert b"# Conda environment specification. The dependencies defined in this file will\r\n" in original[
            CONDA_FILE]


@pytest.mark.parametrize("case", sorted(set(WRITTEN_CASES) - {"condapip_envvars_image"}))
def test_sdk_folder_without_secrets_saves_back_identical_by_default(case: str, tmp_path: Path) -> None:
    load_env(WRITTEN / case).save_to_directory(tmp_path / "out")
    assert files_of(tmp_path / "out") == files_of(WRITTEN / case)


def test_literal_registry_password_is_dropped_by_default(tmp_path: Path) -> None:
    folder = WRITTEN / "condapip_envvars_image"
    env = load_env(folder)
    env.save_to_directory(tmp_path / "out")

    saved = files_of(tmp_path / "out")
    original = files_of(folder)
    assert sorted(saved) == sorted(original)
    assert saved[CONDA_FILE] == original[CONDA_FILE]
    # exactly one change: the password, written as null
    assert original[JSON_FILE].count(b'"password": "secret"') == 1
    assert saved[JSON_FILE] == original[JSON_FILE].replace(b'"password": "secret"', b'"password": null')
    assert json.loads(saved[JSON_FILE])["docker"]["baseImageRegistry"] == {
        "address": "myregistry.azurecr.io", "username": "user", "password": None, "registryIdentity": None}
    assert not any(b"secret" in data for data in saved.values())
    # the object in memory keeps what the user gave it
    assert env.docker.base_image_registry.password == "secret"

    reloaded = load_env(tmp_path / "out")
    assert meaning(reloaded) == {**meaning(env), "registry": ("myregistry.azurecr.io", "user", None, None)}


def test_literal_password_saved_with_include_secrets_loads_back(tmp_path: Path) -> None:
    load_env(WRITTEN / "condapip_envvars_image").save_to_directory(tmp_path / "out", include_secrets=True)
    reg = load_env(tmp_path / "out").docker.base_image_registry
    assert (reg.address, reg.username, reg.password) == ("myregistry.azurecr.io", "user", "secret")


def test_save_over_an_sdk_folder_needs_overwrite(tmp_path: Path) -> None:
    folder = tmp_path / "dockerfile"
    shutil.copytree(WRITTEN / "dockerfile", folder)
    before = files_of(folder)
    env = load_env(folder)
    with pytest.raises(FormatError, match="already exists") as info:
        env.save_to_directory(folder)
    assert info.value.file.startswith(str(folder))
    assert files_of(folder) == before
    env.save_to_directory(folder, overwrite=True)
    assert files_of(folder) == before


# --- Kiln's own folders: save -> load -> save is byte-stable ----------------------------------------------------


def env_everything() -> Environment:
    env = Environment("kiln-everything")
    env.version = "7"
    env.environment_variables = {"MODE": "prod", "GREETING": "héllo wörld ☕", "EMPTY": ""}
    cd = env.python.conda_dependencies
    assert cd is not None
    cd.set_python_version("3.11")
    cd.add_channel("pytorch")
    cd.add_conda_package("numpy=1.26")
    cd.add_conda_package("libgcc")
    cd.set_pip_option("--index-url https://pypi.org/simple")
    cd.set_pip_option("--extra-index-url https://download.pytorch.org/whl/cpu")
    cd.add_pip_package("scikit-learn==1.4.2")
    cd.add_pip_package("pandas[performance]>=2.0")
    env.docker.base_image = "ghcr.io/example/base:1.0"
    env.docker.base_image_registry = ContainerRegistry("ghcr.io", "ci-bot", "${REG_PW}")
    env.docker.enabled = True
    env.docker.shared_volumes = False
    env.docker.shm_size = "512m"
    env.docker.arguments = ["--cpus", "2"]
    env.docker.platform = {"os": "Linux", "architecture": "arm64"}
    env.spark.repositories = ["https://repo1.maven.org/maven2"]
    env.spark.packages = [SparkPackage("com.microsoft.azure", "azure-storage", "2.0.0"),
                          SparkPackage("org.apache.hadoop", "hadoop-azure", "2.7.0")]
    env.spark.precache_packages = False
    env.r = {"rVersion": "4.0", "userManaged": False,
             "cranPackages": [{"name": "ggplot2", "version": "3.3", "repository": None}],
             "githubPackages": [{"repository": "r-lib/ellipsis", "authToken": None}]}
    env.databricks = {"mavenLibraries": [{"coordinates": "g:a:1", "repo": "", "exclusions": []}],
                      "pypiLibraries": [{"package": "azureml-core", "repo": None}],
                      "rcranLibraries": [], "jarLibraries": ["dbfs:/x.jar"], "eggLibraries": []}
    env.inferencing_stack_version = "latest"
    return env


def env_dockerfile() -> Environment:
    env = Environment("kiln-dockerfile")
    env.docker.base_image = None
    # CRLF lines and no final newline must survive as they are
    env.docker.base_dockerfile = "FROM python:3.11-slim\r\n# café ☕\r\nRUN echo 'ünïcödé'"
    env.environment_variables = {"LANGUAGE": "français"}
    return env


def env_build_context_git() -> Environment:
    env = Environment("kiln-buildctx")
    env.docker.base_image = None
    env.docker.build_context = DockerBuildContext("https://github.com/x/y.git#main:ctx", "git", "docker/Dockerfile")
    env.python.conda_dependencies = None
    env.python.user_managed_dependencies = True
    return env


def env_build_context_local(tmp_path: Path) -> Environment:
    env = Environment("kiln-buildctx-local")
    env.docker.base_image = None
    (tmp_path / "ctx").mkdir()
    env.docker.build_context = DockerBuildContext.from_local_directory(path=tmp_path / "ctx",
                                                                       dockerfile_path="Dockerfile.gpu")
    return env


def env_user_managed() -> Environment:
    env = Environment("kiln-usermanaged")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "/opt/conda/envs/myenv/bin/python"
    env.python.conda_dependencies = None
    env.docker.shm_size = None
    return env


def env_non_ascii_conda() -> Environment:
    env = Environment("kiln-conda-text")
    env.python.conda_dependencies = CondaDependencies.from_text(
        "# numpy pour l'été ☕\r\nname: projet-été\ndependencies:\n- python=3.11\n\n- pip:\n  # ütf\n  - numpy\n"
        "variables:\n  GREETING: héllo\nchannels:\n- conda-forge\n")
    return env


def env_literal_password() -> Environment:
    env = Environment("kiln-literal-pw")
    env.docker.base_image_registry = ContainerRegistry("r.example.org", "me", "hunter2")
    return env


KILN_ENVS = {
    "default": lambda tmp: Environment("kiln-default"),
    "everything": lambda tmp: env_everything(),
    "dockerfile": lambda tmp: env_dockerfile(),
    "build_context_git": lambda tmp: env_build_context_git(),
    "build_context_local": env_build_context_local,
    "user_managed": lambda tmp: env_user_managed(),
    "non_ascii_conda": lambda tmp: env_non_ascii_conda(),
    "literal_password": lambda tmp: env_literal_password(),
}


@pytest.mark.parametrize("kind", sorted(KILN_ENVS))
def test_kiln_save_load_save_is_byte_stable(kind: str, tmp_path: Path) -> None:
    env = KILN_ENVS[kind](tmp_path)
    env.save_to_directory(tmp_path / "first")
    first = files_of(tmp_path / "first")

    loaded = load_env(tmp_path / "first")
    loaded.save_to_directory(tmp_path / "second")
    assert files_of(tmp_path / "second") == first
    # and the meaning survived, secrets aside
    expected = meaning(env)
    reg = env.docker.base_image_registry
    if kind == "literal_password":
        expected["registry"] = (reg.address, reg.username, None, None)
    assert meaning(loaded) == expected


def test_kiln_folder_files_and_encoding(tmp_path: Path) -> None:
    env_everything().save_to_directory(tmp_path / "everything")
    saved = files_of(tmp_path / "everything")
    assert sorted(saved) == [JSON_FILE, CONDA_FILE]
    text = saved[JSON_FILE]
    assert text.isascii() and not text.endswith(b"\n")
    assert b'"GREETING": "h\\u00e9llo w\\u00f6rld \\u2615"' in text
    data = json.loads(text)
    assert list(data) == ["name", "version", "environmentVariables", "python", "docker", "spark", "databricks", "r",
                          "inferencingStackVersion", "assetId"]
    assert "baseDockerfile" in data["docker"] and data["docker"]["baseDockerfile"] is None
    assert data["docker"]["baseImageRegistry"]["password"] == "${REG_PW}"
    assert data["spark"]["packages"][1] == {"group": "org.apache.hadoop", "artifact": "hadoop-azure",
                                            "version": "2.7.0"}
    assert json.dumps(data, indent=4).encode() == text

    env_dockerfile().save_to_directory(tmp_path / "dockerfile")
    saved = files_of(tmp_path / "dockerfile")
    assert sorted(saved) == [DOCKERFILE, JSON_FILE, CONDA_FILE]
    assert saved[DOCKERFILE] == "FROM python:3.11-slim\r\n# café ☕\r\nRUN echo 'ünïcödé'".encode()
    # as the SDK: with a Dockerfile the JSON has no baseDockerfile key at all
    assert "baseDockerfile" not in json.loads(saved[JSON_FILE])["docker"]

    env_non_ascii_conda().save_to_directory(tmp_path / "conda")
    conda = (tmp_path / "conda" / CONDA_FILE).read_bytes()
    assert conda.startswith("# numpy pour l'été ☕\r\nname: projet-été\n".encode())
    assert "GREETING: héllo".encode() in conda


def test_saving_without_a_dockerfile_removes_a_stale_one(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    env_dockerfile().save_to_directory(folder)
    env = load_env(folder)
    env.docker.base_dockerfile = None
    env.docker.base_image = "python:3.11"
    env.save_to_directory(folder, overwrite=True)
    assert sorted(files_of(folder)) == [JSON_FILE, CONDA_FILE]
    assert load_env(folder).docker.base_image == "python:3.11"


def test_kiln_default_env_is_kilns_not_the_sdks(tmp_path: Path) -> None:
    Environment("kiln-default").save_to_directory(tmp_path / "out")
    env = load_env(tmp_path / "out")
    assert env.docker.base_image == DEFAULT_CPU_IMAGE
    assert env.environment_variables == {}
    assert env.python.conda_dependencies is not None
    assert env.python.conda_dependencies.conda_channels == ["conda-forge"]
    assert env.python.conda_dependencies.pip_packages == []


# --- edge cases fed to the SDK's load_from_directory ------------------------------------------------------------


def sdk_results() -> dict[str, tuple[str, Any]]:
    """`RESULTS-by-sdk.txt`: case -> ("Environment" | "EnvironmentReference", JSON data) or ("EXC", text)."""
    text = (LOAD_CASES / "RESULTS-by-sdk.txt").read_text(encoding="utf-8")
    results: dict[str, tuple[str, Any]] = {}
    for block in re.split(r"^===== ", text, flags=re.M)[1:]:
        case, _, body = block.partition("\n")
        lines = [line for line in body.splitlines() if not line.startswith("LOG ")]
        if lines[0].startswith("EXC "):
            results[case] = ("EXC", lines[0][4:])
            continue
        kind = lines[0].removeprefix("type ")
        rest = "\n".join(lines[1:])
        data, _ = json.JSONDecoder().raw_decode(rest)
        results[case] = (kind, data)
    return results


SDK_RESULTS = sdk_results()

# Cases where Kiln gives what the SDK gives.
SAME_MEANING = ("inline_conda_in_json", "name_and_python", "name_version", "only_name", "r_section", "spark",
                "unknown_fields")
# Cases where Kiln stops: (file at fault, field at fault, words the message must hold).
ERRORS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "bad_json": (JSON_FILE, None, ("not valid JSON", "line 1, column 2")),
    # the SDK reads the string "false" as True
    "bool_coercion": (JSON_FILE, "python.userManagedDependencies", ("'false'", "expected true or false")),
    "buildctx_bad_enum": (JSON_FILE, "docker.buildContext.locationType", ("'foo'", "git", "storageAccount")),
    "conda_bad_key": (CONDA_FILE, "foo", ("unknown key 'foo'",)),
    # the SDK crashes with AttributeError on these two
    "dockerfile_only_name": (JSON_FILE, None, ("only name/version", DOCKERFILE)),
    "with_conda_only_name": (JSON_FILE, None, ("only name/version", CONDA_FILE)),
    # the SDK silently drops the base image
    "dockerfile_plus_image": (JSON_FILE, "docker.baseImage", ("docker.baseImage and BaseDockerfile",
                                                              "exclude each other")),
    # the SDK returns a reference with name None
    "empty_obj": (JSON_FILE, "name", ("None",)),
    "name_null": (JSON_FILE, "name", ("None",)),
    "name_int": (JSON_FILE, "name", ("expected a string", "5")),
    # the SDK ignores both keys; Kiln names the first it checks
    "snake_case_keys": (JSON_FILE, "environment_variables", ("did you mean 'environmentVariables'",)),
}
# Cases the SDK could not load that Kiln loads.
KILN_ONLY = ("null_sections",)


def test_every_load_case_has_an_expectation() -> None:
    folders = sorted(p.name for p in LOAD_CASES.iterdir() if p.is_dir())
    assert sorted((*SAME_MEANING, *ERRORS, *KILN_ONLY)) == folders
    # every folder was fed to the SDK (empty_dir too, which git can't hold: see test_empty_folder)
    assert sorted(SDK_RESULTS) == sorted([*folders, "empty_dir"])


@pytest.mark.parametrize("case", SAME_MEANING)
def test_load_case_has_the_sdks_meaning(case: str) -> None:
    kind, sdk = SDK_RESULTS[case]
    got = Environment.load_from_directory(LOAD_CASES / case)
    assert type(got).__name__ == kind
    if isinstance(got, EnvironmentReference):
        assert (got.name, got.version) == (sdk["name"], sdk["version"])
    else:
        data = got.to_dict()
        # Kiln keeps the R section as the data it read; the SDK fills in its defaults (None / False)
        assert_same_r(data.pop("r"), sdk.pop("r"))
        assert data == sdk


def assert_same_r(kiln: dict[str, Any] | None, sdk: dict[str, Any] | None) -> None:
    if kiln is None or sdk is None:
        assert kiln is sdk
        return
    assert {k: sdk[k] for k in kiln} == kiln
    assert all(sdk[k] in (None, False) for k in set(sdk) - set(kiln))


def test_load_case_values() -> None:
    ref = Environment.load_from_directory(LOAD_CASES / "name_version")
    assert isinstance(ref, EnvironmentReference)
    assert (ref.name, ref.version) == ("x", "1")
    ref = Environment.load_from_directory(LOAD_CASES / "only_name")
    assert isinstance(ref, EnvironmentReference)
    assert (ref.name, ref.version) == ("x", None)

    cd = load_env(LOAD_CASES / "inline_conda_in_json").python.conda_dependencies
    assert cd is not None
    assert (cd.name, cd.conda_packages, cd.pip_packages, cd.get_python_version()) == ("n", ["python=3.7"], ["a"], "3.7")

    assert load_env(LOAD_CASES / "name_and_python").python.user_managed_dependencies is True

    env = load_env(LOAD_CASES / "spark")
    assert env.spark.repositories == ["r1"]
    assert env.spark.packages == [SparkPackage("g", "a", "1")]
    assert env.spark.precache_packages is False

    env = load_env(LOAD_CASES / "r_section")
    assert env.r == {"rVersion": "4.0", "cranPackages": [{"name": "ggplot2", "version": "3.3", "repository": None}]}

    env = load_env(LOAD_CASES / "unknown_fields")
    assert env.docker.base_image == "ubuntu"
    assert "fooBar" not in env.to_dict() and "weird" not in env.to_dict()["docker"]


def test_null_sections_load_with_defaults(tmp_path: Path) -> None:
    assert SDK_RESULTS["null_sections"][0] == "EXC"  # the SDK crashes: AttributeError on None
    env = load_env(LOAD_CASES / "null_sections")
    assert env.name == "x"
    assert env.python.user_managed_dependencies is False
    assert env.python.interpreter_path == "python"
    assert env.python.conda_dependencies is None
    assert env.docker.base_image is None
    assert env.docker.base_dockerfile is None
    assert env.docker.build_context is None
    assert env.docker.shm_size is None
    assert env.docker.platform == {"os": "Linux", "architecture": "amd64"}
    # null means the same as an empty section
    (tmp_path / JSON_FILE).write_text('{"name": "x", "python": {}, "docker": {}}', encoding="utf-8")
    assert env.to_dict() == load_env(tmp_path).to_dict()


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_load_case_is_a_clear_error(case: str) -> None:
    file, field, words = ERRORS[case]
    with pytest.raises(FormatError) as info:
        Environment.load_from_directory(LOAD_CASES / case)
    err = info.value
    assert err.file == str(LOAD_CASES / case / file)
    assert err.field == field
    message = str(err)
    assert message.startswith(str(LOAD_CASES / case / file) + ": ")
    if field is not None:
        assert f": {field}: " in message
    for word in words:
        assert word in message


def test_snake_case_key_in_docker_suggests_camel_case(tmp_path: Path) -> None:
    (tmp_path / JSON_FILE).write_text('{"name": "x", "docker": {"base_image": "ubuntu"}}', encoding="utf-8")
    with pytest.raises(FormatError) as info:
        Environment.load_from_directory(tmp_path)
    assert info.value.field == "docker.base_image"
    assert "did you mean 'baseImage'?" in str(info.value)


def test_empty_folder(tmp_path: Path) -> None:
    assert SDK_RESULTS["empty_dir"][0] == "EXC"  # FileNotFoundError in the SDK
    with pytest.raises(FormatError) as info:
        Environment.load_from_directory(tmp_path)
    assert info.value.file == str(tmp_path / JSON_FILE)
    assert "file not found" in str(info.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as info:
        Environment.load_from_directory(tmp_path / "nope")
    assert info.value.file == str(tmp_path / "nope")
    assert "not a folder" in str(info.value)


def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / JSON_FILE).write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(FormatError, match="not a folder"):
        Environment.load_from_directory(tmp_path / JSON_FILE)


def test_one_line_dockerfile_is_text_whatever_the_current_folder_holds(tmp_path: Path) -> None:
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / JSON_FILE).write_text('{"name": "x", "python": {"userManagedDependencies": true}}', encoding="utf-8")
    (folder / DOCKERFILE).write_bytes(b"FROM ubuntu")  # one line, no newline: valid, as written by hand
    Path("FROM ubuntu").write_text("FROM evil\n", encoding="utf-8")  # the autouse fixture's temp folder
    assert load_env(folder).docker.base_dockerfile == "FROM ubuntu"


def test_reference_with_a_boolean_version_is_an_error(tmp_path: Path) -> None:
    (tmp_path / JSON_FILE).write_text('{"name": "x", "version": true}', encoding="utf-8")
    with pytest.raises(FormatError) as info:
        Environment.load_from_directory(tmp_path)
    assert info.value.field == "version"


def test_environment_with_a_boolean_version_is_an_error(tmp_path: Path) -> None:
    (tmp_path / JSON_FILE).write_text('{"name": "x", "version": true, "python": {}}', encoding="utf-8")
    with pytest.raises(FormatError) as info:
        Environment.load_from_directory(tmp_path)
    assert info.value.field == "version"
