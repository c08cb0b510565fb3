"""Azure ML SDK/CLI v2 environment YAML: ``name``, ``version``, ``description``, ``tags``, ``image``,
``conda_file`` (a path or inline), ``build`` (``path``, ``dockerfile_path``), ``os_type``,
``inference_config``. Unknown keys are errors, as in the SDK.

Meaning, as in v2: an ``image`` without ``conda_file`` (or a ``build`` context) brings its own
Python, so the environment is user-managed; with a ``conda_file`` Kiln manages Python on top.
Relative paths are relative to the YAML file. On registration Kiln assigns versions itself: a
``version`` in the file is read, but the registry numbers versions 1, 2, 3... by change.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.environment.conda import CondaDependencies
from kiln.environment.limits import check_shape, shown
from kiln.errors import DefinitionError, FormatError

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["KEYS", "dump", "load", "load_text"]

KEYS = ("$schema", "name", "version", "description", "tags", "image", "conda_file", "build", "os_type",
        "inference_config")
_CONDA_ONLY_KEYS = ("channels", "dependencies", "variables", "prefix")
_ROUTE_KEYS = ("liveness_route", "readiness_route", "scoring_route")


def load(path: Path) -> Environment:
    from kiln.environment.textfile import read_utf8

    text = read_utf8(path)
    return load_text(text, str(path), base_dir=path.parent)


def load_text(text: str, source: str, *, base_dir: Path | None = None) -> Environment:
    from kiln.environment.safe_yaml import load_yaml
    from kiln.environment.sections import DockerBuildContext
    from kiln.environment.serialize import empty_environment

    data = load_yaml(text, source)
    check_shape(data, source)
    if not isinstance(data, Mapping):
        raise FormatError(source, f"expected a mapping of environment fields, got {type(data).__name__}")
    conda_keys = [k for k in data if k in _CONDA_ONLY_KEYS]
    if conda_keys:
        raise FormatError(source, f"{conda_keys[0]!r} belongs in a conda file: this looks like a conda environment "
                                  "file, not an Azure ML v2 environment (put the conda file in 'conda_file')",
                          str(conda_keys[0]))
    for key in data:
        if key not in KEYS:
            raise FormatError(source, f"unknown field (a v2 environment has {', '.join(KEYS[1:])})", str(key))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise FormatError(source, f"expected an environment name, got {name!r}", "name")
    env = empty_environment(name, source)
    version = data.get("version")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (str, int, float)):
            raise FormatError(source, f"expected a version string, got {version!r}", "version")
        env.version = str(version)
    env.description = _opt_str(data, "description", source)
    tags = data.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise FormatError(source, f"expected a mapping, got {tags!r}", "tags")
    env.tags = {str(k): "" if v is None else str(v) for k, v in tags.items()}

    image = _opt_str(data, "image", source)
    build = data.get("build")
    if image is not None and build is not None:
        raise FormatError(source, "'image' and 'build' are both set, but they exclude each other", "build")
    if image is None and build is None:
        raise FormatError(source, "one of 'image' or 'build' is required", "image")
    try:
        if image is not None:
            env.docker.base_image = image
    except DefinitionError as e:
        raise FormatError(source, str(e), "image") from None
    if build is not None:
        if not isinstance(build, Mapping) or not isinstance(build.get("path"), str):
            raise FormatError(source, f"expected {{path, dockerfile_path}}, got {build!r}", "build")
        unknown = [k for k in build if k not in ("path", "dockerfile_path")]
        if unknown:
            raise FormatError(source, "unknown field (build has path and dockerfile_path)", f"build.{unknown[0]}")
        location = build["path"]
        if "://" not in location and base_dir is not None and not Path(location).is_absolute():
            location = str((base_dir / location).resolve())
        dockerfile_path = build.get("dockerfile_path") or "Dockerfile"
        if not isinstance(dockerfile_path, str):
            raise FormatError(source, f"expected a path, got {dockerfile_path!r}", "build.dockerfile_path")
        if "://" not in location:  # a local context: its Dockerfile must be there now, not at build time
            context = Path(location)
            if not context.is_dir():
                raise FormatError(source, f"{shown(build['path'])}: no such folder", "build.path")
            if not (context / dockerfile_path).is_file():
                raise FormatError(source, f"{shown(build['path'])} has no {shown(dockerfile_path)} (a build "
                                          "context needs a Dockerfile; set build.dockerfile_path)", "build.path")
        kind = "git" if "://" in location else "storageAccount"
        env.docker.build_context = DockerBuildContext(location=location, location_type=kind,
                                                      dockerfile_path=dockerfile_path)

    conda_file = data.get("conda_file")
    if conda_file is None:
        env.python.user_managed_dependencies = True
    elif isinstance(conda_file, str):
        from kiln.environment.formats.conda_file import read_conda_file

        path = Path(conda_file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        conda, variables = read_conda_file(path)
        env.python.conda_dependencies = conda
        env.environment_variables.update(variables)
    elif isinstance(conda_file, Mapping):
        inline = dict(conda_file)
        variables = inline.pop("variables", None) or {}
        inline.pop("prefix", None)
        env.python.conda_dependencies = CondaDependencies.from_dict(inline, source=f"{source}: conda_file")
        if not isinstance(variables, Mapping):
            raise FormatError(source, f"expected a mapping of names to values, got {variables!r}",
                              "conda_file.variables")
        env.environment_variables.update({str(k): str(v) for k, v in variables.items()})
    else:
        raise FormatError(source, f"expected a file path or an inline conda mapping, got {conda_file!r}",
                          "conda_file")

    os_type = data.get("os_type")
    if os_type is not None:
        if not isinstance(os_type, str) or os_type.lower() not in ("linux", "windows"):
            raise FormatError(source, f"expected 'linux' or 'windows', got {os_type!r}", "os_type")
        env.docker.platform = {"os": os_type.capitalize(), "architecture": "amd64"}
    env.inference_config = _inference_config(data.get("inference_config"), source)
    return env


def _opt_str(data: Mapping[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise FormatError(source, f"expected a string, got {value!r}", key)


def _inference_config(value: Any, source: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise FormatError(source, f"expected a mapping of routes, got {value!r}", "inference_config")
    out: dict[str, Any] = {}
    for key, route in value.items():
        field = f"inference_config.{key}"
        if key not in _ROUTE_KEYS:
            raise FormatError(source, f"unknown field (routes are {', '.join(_ROUTE_KEYS)})", field)
        if not isinstance(route, Mapping) or set(route) - {"port", "path"} or \
                not isinstance(route.get("path"), str) or not isinstance(route.get("port"), int) or \
                isinstance(route["port"], bool) or not 0 < route["port"] < 65536:
            raise FormatError(source, f"expected {{port: 1..65535, path: str}}, got {shown(route)}", field)
        out[str(key)] = {"port": route["port"], "path": route["path"]}
    return out


def dump(env: Environment) -> str:
    """The environment as v2 YAML text, keys sorted as the SDK dumps them. A base Dockerfile (text)
    can't be written inline in v2: use a build context for that."""
    from ruamel.yaml import YAML

    if env.docker.base_dockerfile is not None:
        raise DefinitionError(f"environment {env.name!r} has a base Dockerfile, which Azure ML v2 YAML can only "
                              "reference through a build context folder: save it as a v1 folder instead")
    data: dict[str, Any] = {"name": env.name}
    if env.python.conda_dependencies is not None and not env.python.user_managed_dependencies:
        data["conda_file"] = env.python.conda_dependencies.as_dict()
        if env.environment_variables:
            data["conda_file"]["variables"] = dict(env.environment_variables)
    if env.description is not None:
        data["description"] = env.description
    if env.docker.base_image is not None:
        data["image"] = env.docker.base_image
    bc = env.docker.build_context
    if bc is not None:
        data["build"] = {"dockerfile_path": bc.dockerfile_path, "path": bc.location}
    if env.inference_config:
        data["inference_config"] = env.inference_config
    if env.docker.platform.get("os", "Linux").lower() != "linux":
        data["os_type"] = env.docker.platform["os"].lower()
    data["tags"] = dict(env.tags)
    if env.version is not None:
        data["version"] = env.version
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump(dict(sorted(data.items())), stream)
    return stream.getvalue()
