"""The Azure ML SDK v1 environment folder: ``azureml_environment.json``, ``conda_dependencies.yml``,
``BaseDockerfile``.

Written as the SDK writes it (JSON indented by 4, no trailing newline; the conda file and the
Dockerfile in files of their own), so the SDK loads Kiln's folders, and Kiln's save → load →
save is byte-stable. Where the SDK is silently wrong, Kiln stops with a clear error instead (see
the README, "Differences from Azure ML").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln._files import temp_beside
from kiln.environment.canonical import Definition, environment_to_dict
from kiln.environment.conda import CondaDependencies
from kiln.environment.limits import MAX_TEXT, check_depth, check_shape, cut, shown
from kiln.environment.textfile import read_utf8
from kiln.errors import FormatError

__all__ = ["CONDA_FILE", "DOCKERFILE", "JSON_FILE", "Folder", "load_json", "read", "save"]

JSON_FILE = "azureml_environment.json"
CONDA_FILE = "conda_dependencies.yml"
DOCKERFILE = "BaseDockerfile"
_REFERENCE_KEYS = {"name", "version"}


@dataclass(frozen=True)
class Folder:
    """What a folder holds: the JSON ``data`` (read from ``source``) with the conda file and the
    Dockerfile beside it, or, when the JSON holds only a name and a version, a ``reference``."""

    source: str
    data: Any = None
    conda: CondaDependencies | None = None
    dockerfile: str | None = None
    reference: tuple[str, str | None] | None = None


def save(env: Definition, path: Path, *, overwrite: bool = False, include_secrets: bool = False) -> None:
    """Write ``env`` into the folder ``path`` (created if missing). Existing files are replaced
    only with ``overwrite=True``; on any error nothing in the folder has changed."""
    data = environment_to_dict(env, inline_files=False, include_secrets=include_secrets)
    files = {JSON_FILE: json.dumps(data, indent=4)}  # ensure_ascii as the SDK: \u escapes
    if env.python.conda_dependencies is not None:
        files[CONDA_FILE] = env.python.conda_dependencies.serialize_to_string()
    if env.docker.base_dockerfile is not None:
        files[DOCKERFILE] = env.docker.base_dockerfile
    if path.exists() and not path.is_dir():
        raise FormatError(str(path), "exists and is not a folder")
    if not overwrite:
        existing = [n for n in (JSON_FILE, CONDA_FILE, DOCKERFILE) if (path / n).exists()]
        if existing:
            raise FormatError(str(path / existing[0]), "already exists (pass overwrite=True, or --overwrite, to "
                                                       "replace it)")
    path.mkdir(parents=True, exist_ok=True)
    # write every file beside its target first, then move them in: a failure leaves the old folder
    staged: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            tmp = temp_beside(path / name)
            staged.append((tmp, path / name))
            with open(tmp, "x", encoding="utf-8", newline="") as f:
                f.write(text)
        for tmp, target in staged:
            os.replace(tmp, target)
        for stale in {CONDA_FILE, DOCKERFILE} - set(files):
            (path / stale).unlink(missing_ok=True)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def load_json(text: str, source: str) -> Any:
    """JSON definition data: nesting bounded before parsing (``check_depth``), duplicate keys refused
    (JSON parsers keep the last one silently: a second ``python`` section would replace the first),
    every field within its size (``check_shape``)."""
    check_depth(text, source)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise FormatError(source, "appears twice in the same object (JSON keeps only the last one: remove one)",
                          cut(str(e.args[0]), 100)) from None
    except json.JSONDecodeError as e:
        raise FormatError(source, f"not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:  # check_depth bounds nesting; this is the parser's own limit, for safety
        raise FormatError(source, "nested too deeply: not an environment definition") from None
    check_shape(data, source)
    return data


def _named_conda_file(folder: Path, data: Any, source: str) -> Path | None:
    """The file ``python.condaDependenciesFile`` names, relative to the folder as the SDK reads it;
    a path leaving the folder (absolute, ``..``, a link out) is refused: a definition reads its own files."""
    python = data.get("python") if isinstance(data, dict) else None
    value = python.get("condaDependenciesFile") if isinstance(python, dict) else None
    if value is None:
        return None
    field = "python.condaDependenciesFile"
    if not isinstance(value, str) or not value.strip():
        raise FormatError(source, f"expected a file name in the folder, got {shown(value)}", field)
    target = folder / value
    root = folder.resolve()
    if Path(value).is_absolute() or not target.resolve().is_relative_to(root):
        raise FormatError(source, f"{shown(value)} is outside the environment folder: put the conda file "
                                  "in the folder", field)
    if not target.is_file():
        raise FormatError(source, f"{shown(value)}: file not found in the environment folder", field)
    return target


def read(path: Path) -> Folder:
    """Read the folder ``path``. A JSON file holding only ``name`` (and ``version``) is a reference to a
    registered environment, as in the SDK: the ``Folder`` has a ``reference`` and nothing else."""
    if not path.is_dir():
        raise FormatError(str(path), "not a folder (an Azure ML environment folder holds azureml_environment.json)")
    json_path = path / JSON_FILE
    source = str(json_path)
    if not json_path.exists():
        raise FormatError(source, "file not found: this is not an Azure ML environment folder")
    data = load_json(read_utf8(json_path), source)
    conda_path = path / CONDA_FILE
    dockerfile_path = path / DOCKERFILE
    has_conda = conda_path.is_file()
    has_dockerfile = dockerfile_path.is_file()
    if isinstance(data, dict) and set(data) <= _REFERENCE_KEYS:
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise FormatError(source, f"expected an environment name, got {name!r}", "name")
        extra = [n for n, present in ((CONDA_FILE, has_conda), (DOCKERFILE, has_dockerfile)) if present]
        if extra:
            raise FormatError(source, f"holds only name/version (a reference to a registered environment) but the "
                                      f"folder also has {extra[0]}: add a 'python' or 'docker' section to make it a "
                                      "definition, or remove the file")
        version = data.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int))):
            raise FormatError(source, f"expected a version string, got {version!r}", "version")
        return Folder(source, reference=(name, None if version is None else str(version)))
    named = _named_conda_file(path, data, source)
    if named is not None and has_conda and named.resolve() != conda_path.resolve():
        raise FormatError(source, f"names {named.name!r} but the folder also has {CONDA_FILE}: keep one",
                          "python.condaDependenciesFile")
    if named is not None:
        conda_path, has_conda = named, True
    conda = CondaDependencies(conda_dependencies_file_path=conda_path) if has_conda else None
    dockerfile = None
    if has_dockerfile:
        dockerfile = read_utf8(dockerfile_path)
        if len(dockerfile) > MAX_TEXT:
            raise FormatError(str(dockerfile_path), f"{len(dockerfile)} characters: too long for a Dockerfile "
                                                    f"(at most {MAX_TEXT})")
        if not dockerfile.strip():
            raise FormatError(str(dockerfile_path), "is empty")
    return Folder(source, data, conda, dockerfile)
