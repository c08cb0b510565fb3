"""An environment definition as plain data, in the layout of ``azureml_environment.json``.

One mapping serves the Azure ML v1 folder format and Kiln's registry (which stores the same
dict with the conda dependencies and the Dockerfile inline). Reading is strict where the SDK
is silently wrong (a string "false" for a boolean, snake_case keys it ignores) and lenient where
the SDK is lenient on purpose (unknown keys are ignored, null sections mean defaults).

This module sits *under* ``Environment``: it works on anything with an environment's fields (the
``Definition`` protocol) and never constructs one, so the class can call it for ``to_dict`` and
``from_dict`` without an import loop. Constructing is the class's job (``Environment._from_data``:
``name_of`` first, then the class, then ``read_into``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

from kiln.environment.conda import CondaDependencies
from kiln.environment.secrets import is_reference
from kiln.environment.sections import (
    BUILD_CONTEXT_LOCATION_TYPES,
    ContainerRegistry,
    DockerBuildContext,
    DockerSection,
    PythonSection,
    SparkPackage,
    SparkSection,
)
from kiln.errors import DefinitionError, FormatError

__all__ = ["Definition", "environment_to_dict", "name_of", "read_into"]

_DATABRICKS_KEYS = ("mavenLibraries", "pypiLibraries", "rcranLibraries", "jarLibraries", "eggLibraries")


class Definition(Protocol):
    """The fields of an environment definition (``kiln.Environment`` has them): what is read and written."""

    name: str
    version: str | None
    environment_variables: dict[str, str]
    python: PythonSection
    docker: DockerSection
    spark: SparkSection
    r: dict[str, Any] | None
    databricks: dict[str, Any]
    inferencing_stack_version: str | None
    asset_id: str | None
    description: str | None
    tags: dict[str, str]
    inference_config: dict[str, Any] | None


def environment_to_dict(env: Definition, *, inline_files: bool = True, include_secrets: bool = False,
                        include_version: bool = True) -> dict[str, Any]:
    """The definition as JSON-ready data, keys in the order the Azure ML SDK writes them.

    ``inline_files=False`` leaves out the conda dependencies and the Dockerfile text (the v1
    folder writes them to their own files); ``include_secrets`` keeps a literal registry password
    (otherwise only a ``${VAR}`` reference survives).
    """
    python: dict[str, Any] = {
        "userManagedDependencies": env.python.user_managed_dependencies,
        "interpreterPath": env.python.interpreter_path,
        "condaDependenciesFile": env.python.conda_dependencies_file,
        "baseCondaEnvironment": env.python.base_conda_environment,
    }
    if inline_files and env.python.conda_dependencies is not None:
        python["condaDependencies"] = env.python.conda_dependencies.as_dict()
    docker = env.docker
    reg = docker.base_image_registry
    password = reg.password
    if password is not None and not include_secrets and not is_reference(password):
        password = None
    docker_dict: dict[str, Any] = {"enabled": docker.enabled, "baseImage": docker.base_image}
    if docker.gpu_support:  # written only when set: every other definition keeps its text (and registry version)
        docker_dict["gpuSupport"] = True
    if inline_files or docker.base_dockerfile is None:
        docker_dict["baseDockerfile"] = docker.base_dockerfile
    bc = docker.build_context
    docker_dict.update({
        "buildContext": None if bc is None else {
            "locationType": bc.location_type, "location": bc.location, "dockerfilePath": bc.dockerfile_path},
        "sharedVolumes": docker.shared_volumes,
        "shmSize": docker.shm_size,
        "arguments": list(docker.arguments),
        "baseImageRegistry": {"address": reg.address, "username": reg.username, "password": password,
                              "registryIdentity": reg.registry_identity},
        "platform": dict(docker.platform),
    })
    out: dict[str, Any] = {"name": env.name}
    if include_version:
        out["version"] = env.version
    out.update({
        "environmentVariables": dict(env.environment_variables),
        "python": python,
        "docker": docker_dict,
        "spark": {
            "repositories": list(env.spark.repositories),
            "packages": [{"group": p.group, "artifact": p.artifact, "version": p.version} for p in env.spark.packages],
            "precachePackages": env.spark.precache_packages,
        },
        "databricks": _copy(env.databricks),
        "r": _copy(env.r),
        "inferencingStackVersion": env.inferencing_stack_version,
        "assetId": env.asset_id,
    })
    if env.description is not None:
        out["description"] = env.description
    if env.tags:
        out["tags"] = dict(env.tags)
    if env.inference_config:
        out["inferenceConfig"] = _copy(env.inference_config)
    return out



def name_of(data: Any, source: str) -> str:
    """The environment name in ``azureml_environment.json`` data, after checking the data is an object
    (``FormatError`` naming ``source`` otherwise). Whether the name is valid is the class's check."""
    r = _Reader(source)
    if not isinstance(data, Mapping):
        raise FormatError(source, f"expected a JSON object, got {type(data).__name__}")
    name = data.get("name")
    if name is None:
        raise FormatError(source, "missing: every environment has a name", "name")
    if not isinstance(name, str):
        raise FormatError(source, f"expected a string, got {name!r}", "name")
    r.no_snake(data, "", ("environmentVariables", "inferencingStackVersion", "assetId"))
    return name


def read_into(env: Definition, data: Mapping[str, Any], source: str, *, conda: CondaDependencies | None = None,
              dockerfile: str | None = None, trusted: bool = False) -> None:
    """Fill ``env`` (fresh, without defaults, named by ``name_of``) from ``azureml_environment.json`` data.

    ``conda`` / ``dockerfile`` come from the folder's own files and win over inline values (as in
    the SDK). Errors name ``source``, the field and the value. ``trusted`` skips re-validating
    package specs of data Kiln validated itself (the registry's records).
    """
    r = _Reader(source)
    version = data.get("version")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise FormatError(source, f"expected a version string like \"1\", got {version!r}", "version")
        env.version = str(version)
    env.environment_variables = r.str_map(data, "environmentVariables")
    env.inferencing_stack_version = r.opt_str(data, "inferencingStackVersion", "inferencingStackVersion")
    env.asset_id = r.opt_str(data, "assetId", "assetId")
    env.description = r.opt_str(data, "description", "description")
    env.tags = r.str_map(data, "tags")
    inference = data.get("inferenceConfig")
    if inference is not None and not isinstance(inference, Mapping):
        raise FormatError(source, f"expected an object or null, got {inference!r}", "inferenceConfig")
    env.inference_config = _copy(inference)

    python = r.section(data, "python")
    r.no_snake(python, "python.", ("userManagedDependencies", "interpreterPath", "condaDependencies",
                                   "condaDependenciesFile", "baseCondaEnvironment"))
    env.python.user_managed_dependencies = r.bool(python, "userManagedDependencies", "python.userManagedDependencies",
                                                  False)
    env.python.interpreter_path = r.opt_str(python, "interpreterPath", "python.interpreterPath") or "python"
    env.python.base_conda_environment = r.opt_str(python, "baseCondaEnvironment", "python.baseCondaEnvironment")
    # the file's name only: its content is the inline condaDependencies (or the folder's conda file)
    env.python._conda_file = r.opt_str(python, "condaDependenciesFile", "python.condaDependenciesFile")
    if conda is None and python.get("condaDependencies") is not None:
        inline = python["condaDependencies"]
        if not isinstance(inline, Mapping):
            raise FormatError(source, f"expected an object, got {inline!r}", "python.condaDependencies")
        where = f"{source}: python.condaDependencies"
        conda = (CondaDependencies._adopt(inline, where) if trusted and type(inline) is dict
                 else CondaDependencies.from_dict(inline, source=where))
    env.python.conda_dependencies = conda

    docker = r.section(data, "docker")
    r.no_snake(docker, "docker.", ("baseImage", "baseDockerfile", "buildContext", "sharedVolumes", "shmSize",
                                   "baseImageRegistry", "gpuSupport"))
    d = env.docker
    base_image = r.opt_str(docker, "baseImage", "docker.baseImage")
    inline_dockerfile = r.opt_str(docker, "baseDockerfile", "docker.baseDockerfile")
    dockerfile = dockerfile if dockerfile is not None else inline_dockerfile
    build_context = _build_context(r, docker.get("buildContext"))
    given = [k for k, v in (("docker.baseImage", base_image), ("BaseDockerfile", dockerfile),
                            ("docker.buildContext", build_context)) if v is not None]
    if len(given) > 1:
        raise FormatError(source, f"{' and '.join(given)} are both set, but they exclude each other "
                                  "(keep one)", given[0])
    d.base_image = base_image
    try:
        d.set_dockerfile_text(dockerfile)
    except DefinitionError as e:
        raise FormatError(source, str(e), "docker.baseDockerfile") from None
    d.build_context = build_context
    d.enabled = r.bool(docker, "enabled", "docker.enabled", False)
    d.gpu_support = r.bool(docker, "gpuSupport", "docker.gpuSupport", False)
    d.shared_volumes = r.bool(docker, "sharedVolumes", "docker.sharedVolumes", True)
    shm = r.opt_str(docker, "shmSize", "docker.shmSize")
    try:
        d.shm_size = shm
    except DefinitionError as e:
        raise FormatError(source, str(e), "docker.shmSize") from None
    d.arguments = r.str_list(docker, "arguments", "docker.arguments")
    reg = r.section(docker, "baseImageRegistry", "docker.baseImageRegistry")
    d.base_image_registry = ContainerRegistry(
        address=r.opt_str(reg, "address", "docker.baseImageRegistry.address"),
        username=r.opt_str(reg, "username", "docker.baseImageRegistry.username"),
        password=r.opt_str(reg, "password", "docker.baseImageRegistry.password"),
        registry_identity=_copy(reg.get("registryIdentity")),
    )
    platform = r.section(docker, "platform", "docker.platform")
    d.platform = {"os": r.opt_str(platform, "os", "docker.platform.os") or "Linux",
                  "architecture": r.opt_str(platform, "architecture", "docker.platform.architecture") or "amd64"}

    spark = r.section(data, "spark")
    env.spark.repositories = r.str_list(spark, "repositories", "spark.repositories")
    env.spark.precache_packages = r.bool(spark, "precachePackages", "spark.precachePackages", True)
    packages = spark.get("packages") or []
    if not isinstance(packages, list):
        raise FormatError(source, f"expected a list, got {packages!r}", "spark.packages")
    for i, p in enumerate(packages):
        field = f"spark.packages[{i}]"
        if not isinstance(p, Mapping) or any(not isinstance(p.get(k), str) or not p.get(k)
                                             for k in ("group", "artifact", "version")):
            raise FormatError(source, f"expected {{group, artifact, version}} strings, got {p!r}", field)
        env.spark.packages.append(SparkPackage(p["group"], p["artifact"], p["version"]))

    databricks = data.get("databricks")
    env.databricks = _copy(databricks) if databricks is not None else {k: [] for k in _DATABRICKS_KEYS}
    r_section = data.get("r")
    if r_section is not None and not isinstance(r_section, Mapping):
        raise FormatError(source, f"expected an object or null, got {r_section!r}", "r")
    env.r = _copy(r_section)




def _build_context(r: _Reader, value: Any) -> DockerBuildContext | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise FormatError(r.source, f"expected an object, got {value!r}", "docker.buildContext")
    kind = value.get("locationType", "git")
    if kind not in BUILD_CONTEXT_LOCATION_TYPES:
        raise FormatError(r.source, f"{kind!r} is not one of {', '.join(BUILD_CONTEXT_LOCATION_TYPES)}",
                          "docker.buildContext.locationType")
    location = r.opt_str(value, "location", "docker.buildContext.location")
    if not location:
        raise FormatError(r.source, "missing: a build context needs a location", "docker.buildContext.location")
    path = r.opt_str(value, "dockerfilePath", "docker.buildContext.dockerfilePath") or "Dockerfile"
    return DockerBuildContext(location=location, location_type=kind, dockerfile_path=path)


@cache
def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


class _Reader:
    """Typed field access that raises ``FormatError`` naming the source, the field and the value."""

    def __init__(self, source: str) -> None:
        self.source = source

    def section(self, data: Mapping[str, Any], key: str, field: str | None = None) -> Mapping[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise FormatError(self.source, f"expected an object or null, got {value!r}", field or key)
        return value

    def no_snake(self, data: Mapping[str, Any], prefix: str, keys: tuple[str, ...]) -> None:
        # the SDK silently ignores "base_image" and the like, losing what the user meant
        for key in keys:
            snake = _snake(key)
            if snake != key and snake in data:
                raise FormatError(self.source, f"unknown key {snake!r}: did you mean {key!r}? "
                                               "(the file format uses camelCase)", prefix + snake)

    def bool(self, data: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise FormatError(self.source, f"expected true or false, got {value!r}", field)
        return value

    def opt_str(self, data: Mapping[str, Any], key: str, field: str) -> str | None:
        value = data.get(key)
        if value is None or isinstance(value, str):
            return value
        raise FormatError(self.source, f"expected a string or null, got {value!r}", field)

    def str_list(self, data: Mapping[str, Any], key: str, field: str) -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FormatError(self.source, f"expected a list of strings, got {value!r}", field)
        return list(value)

    def str_map(self, data: Mapping[str, Any], key: str) -> dict[str, str]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise FormatError(self.source, f"expected an object of strings, got {value!r}", key)
        for k, v in value.items():
            if not isinstance(v, str):
                raise FormatError(self.source, f"expected a string value, got {v!r}", f"{key}.{k}")
        return dict(value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
