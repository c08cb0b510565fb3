"""The conda environment file as a YAML document: read (round-trip, so that comments and bytes survive),
checked (every field, every spec, errors naming file, field and value) and written.

``CondaDependencies`` (``kiln.environment.conda``) keeps such a document; ``formats/conda_file`` reads
whole environments from conda files through it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from kiln.environment.conda_specs import parse_conda_spec
from kiln.environment.limits import check_shape, shown
from kiln.environment.pip_options import check_pip_option, is_pip_option
from kiln.environment.pip_requirements import parse_pip_requirement
from kiln.environment.variables import variable_problem
from kiln.errors import FormatError

__all__ = ["KNOWN_KEYS", "check_channel", "dump_yaml", "is_blank", "load_yaml_text", "plain", "rt_yaml",
           "validate_conda_data"]

#: the top-level keys of a conda environment file; anything else is an error, as in conda and the SDK
KNOWN_KEYS = ("name", "channels", "dependencies", "variables", "prefix")


def rt_yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    # ruamel's default width (80), as the SDK writes: an SDK file read and written back keeps its bytes
    return yaml


def is_blank(entry: str) -> bool:
    # the SDK's from_pip_requirements copies comment lines and blank lines into the pip list
    return not entry.strip() or entry.lstrip().startswith("#")


def dump_yaml(data: Mapping[str, Any]) -> str:
    stream = io.StringIO()
    rt_yaml().dump(data, stream)
    return stream.getvalue()


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    return str(value)


def load_yaml_text(text: str, source: str) -> Any:
    from kiln.environment.safe_yaml import load_yaml

    if "\x00" in text:
        raise FormatError(source, "binary content, not a conda environment file")
    data = load_yaml(text, source, round_trip=True)
    check_shape(data, source)
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        data = CommentedMap()
    if not isinstance(data, Mapping):
        raise FormatError(source, f"expected a mapping with 'dependencies', got {type(data).__name__}")
    return data


def check_channel(channel: Any, source: str, field: str = "channels") -> str:
    if not isinstance(channel, str) or not channel.strip() or any(c.isspace() for c in channel.strip()):
        raise FormatError(source, f"{channel!r} is not a valid channel (a name, URL or path)", field)
    return channel.strip()


def validate_conda_data(data: Any, source: str) -> None:
    """Check the whole structure; errors name the file, the field and the value."""
    unknown = [str(k) for k in data if str(k) not in KNOWN_KEYS]
    if unknown:
        raise FormatError(source, f"unknown key {unknown[0]!r} (a conda environment file has "
                                  f"{', '.join(KNOWN_KEYS)})", unknown[0])
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise FormatError(source, f"expected a string, got {name!r}", "name")
    channels = data.get("channels")
    if channels is not None:
        if not isinstance(channels, list):
            raise FormatError(source, f"expected a list of channels, got {channels!r}", "channels")
        for i, c in enumerate(channels):
            check_channel(c, source, f"channels[{i}]")
    variables = data.get("variables")
    if variables is not None:
        if not isinstance(variables, Mapping):
            raise FormatError(source, f"expected a mapping of names to values, got {variables!r}", "variables")
        for k, v in variables.items():
            if isinstance(v, (Mapping, list)):
                raise FormatError(source, f"{shown(k, 60)}: {shown(v, 60)} is not a NAME: value pair", "variables")
            problem = variable_problem(k, "" if v is None else str(v))
            if problem:
                raise FormatError(source, problem, f"variables.{shown(k, 60)}")
    deps = data.get("dependencies")
    if deps is None:
        return
    if not isinstance(deps, list):
        raise FormatError(source, f"expected a list, got {deps!r}", "dependencies")
    pip_sections = 0
    for i, dep in enumerate(deps):
        field = f"dependencies[{i}]"
        if isinstance(dep, Mapping):
            keys = [str(k) for k in dep]
            if keys != ["pip"]:
                raise FormatError(source, f"only a 'pip' list may be nested here, got keys {keys}", field)
            pip_sections += 1
            if pip_sections > 1:
                raise FormatError(source, "a second 'pip' list (merge them into one)", field)
            pip = dep["pip"]
            if pip is None:
                continue
            if not isinstance(pip, list):
                raise FormatError(source, f"expected a list of pip requirements, got {pip!r}", f"{field}.pip")
            for j, item in enumerate(pip):
                where = f"{source}: {field}.pip[{j}]"
                if not isinstance(item, str):
                    raise FormatError(source, f"expected a pip requirement string, got {item!r}", f"{field}.pip[{j}]")
                if is_blank(item):
                    continue
                if is_pip_option(item):
                    check_pip_option(item, where=where)
                else:
                    parse_pip_requirement(item, where=where)
        elif isinstance(dep, str):
            parse_conda_spec(dep, where=f"{source}: {field}")
        else:
            raise FormatError(source, f"expected a conda spec string or a 'pip' list, got {dep!r}", field)
