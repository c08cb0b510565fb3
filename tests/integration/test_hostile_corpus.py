"""A corpus of hostile inputs (issue 10): pathological sizes and shapes, alias bombs, validation gaps,
local-path requirements and bad command-line values, across every format and argument.

Every case must fail the same way: exit code 1, nothing on stdout, exactly one line on stderr
(``kiln: error: ...``, at most 400 characters) naming the file and the field or value at fault, no
traceback, and nothing written (the workspace's files, hashes and mtimes, and every table's row
count, compared before and after; the inputs unchanged). Each case runs under a resource limit:
a driver process imports Kiln once and forks one child per case, which sets ``RLIMIT_AS`` (512 MB),
``RLIMIT_CPU`` (10 s) and an alarm (30 s) and runs the CLI in-process (``kiln.cli.main.main``). A case that blows a
limit dies or fails with exit 2, and the test says which.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import kiln_cmd

pytestmark = pytest.mark.integration

V1 = "azureml_environment.json"
V1_CONDA = "conda_dependencies.yml"
GOOD_CONDA = "name: ok\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip:\n    - six==1.16.0\n"
MB = 1024 * 1024
MEMORY_LIMIT = 512 * MB
CPU_SECONDS = 10
MAX_LINE = 400


@dataclass(frozen=True, repr=False)
class Case:
    """``argv`` run in the case's folder (after ``files`` are written there); every string of
    ``expect`` must be in the error line. ``absent`` paths (relative to the case folder) must not exist
    afterwards (a download's destination)."""

    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    absent: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the inputs are megabytes: a failure shows the id
        return f"Case({self.id!r})"


def _reg(id: str, files: dict[str, str | bytes], target: str, expect: tuple[str, ...], *,
         name: str | None = None) -> Case:
    argv = ("env", "register", "-d", target, *(() if name is None else ("-n", name)))
    return Case(id, argv, expect, files)


def v1(id: str, data: str | bytes, expect: tuple[str, ...], *, where: str = V1, **extra: str | bytes) -> Case:
    """``where``: the file the error names (the JSON file, or the conda file or Dockerfile beside it)."""
    files: dict[str, str | bytes] = {f"envdir/{V1}": data, **{f"envdir/{k}": v for k, v in extra.items()}}
    return _reg(id, files, "envdir", (where, *expect))


def v2(id: str, text: str | bytes, expect: tuple[str, ...], *, where: str = "env.yml", **extra: str | bytes) -> Case:
    return _reg(id, {"env.yml": text, **extra}, "env.yml", (where, *expect))


def conda(id: str, text: str | bytes, expect: tuple[str, ...], *, where: str = "environment.yml",
          **extra: str | bytes) -> Case:
    return _reg(id, {"environment.yml": text, **extra}, "environment.yml", (where, *expect))


def req(id: str, text: str | bytes, expect: tuple[str, ...], *, file: str = "requirements.txt",
        **extra: str | bytes) -> Case:
    return _reg(id, {file: text, **extra}, file, expect, name="reqs")


def cli(id: str, *argv: str, expect: tuple[str, ...], absent: tuple[str, ...] = ()) -> Case:
    return Case(id, argv, expect, absent=absent)


def bomb(levels: int, indent: str = "  ", start: str = "a") -> str:
    """A YAML alias chain: each level a list of nine aliases of the one before (9**levels strings)."""
    lines = [f"{indent}- &{start}0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"{indent}- &{start}{i} [" + ", ".join([f"*{start}{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def deep_json(n: int, inner: str = "[]") -> str:
    return "[" * n + inner + "]" * n


BIG = "x" * (MB + 1)          # a 1 MB value: over every field limit, under the file limit
HUGE = "y" * (10 * MB)        # a 10 MB value: over the file limit
SECRET_FILE_LINE = "root:x:0:0:root:/root:/bin/bash"
CONDA_HEAD = "name: c\nchannels: [conda-forge]\ndependencies:\n"
V2_HEAD = "name: v\nimage: ubuntu:22.04\n"
NINE = bomb(9)

CASES: list[Case] = [
    # ---- Azure ML v1 folders: sizes and shapes ------------------------------------------------------------------
    v1("v1-deep-brackets-100k", '{"name": "x", "r": ' + deep_json(100_000) + "}", ("nested more than 32 levels",)),
    v1("v1-deep-objects-100k", '{"name": "x", "r": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}",
       ("nested more than 32 levels",)),
    v1("v1-deep-33", '{"name": "x", "python": {}, "databricks": ' + deep_json(33) + "}", ("nested more than 32",)),
    v1("v1-deep-unclosed", '{"name": "x", "r": ' + "[" * 200_000, ("nested more than 32",)),
    v1("v1-deep-in-tags", '{"name": "x", "python": {}, "tags": {"a": ' + deep_json(50, '"v"') + "}}",
       ("nested more than 32",)),
    v1("v1-file-10mb-base-image", '{"name": "x", "python": {}, "docker": {"baseImage": "' + HUGE + '"}}',
       ("too large for a definition file",)),
    v1("v1-1mb-base-image", '{"name": "x", "python": {}, "docker": {"baseImage": "' + BIG + '"}}',
       ("docker.baseImage", "1048577 characters")),
    v1("v1-1mb-interpreter", '{"name": "x", "python": {"interpreterPath": "' + BIG + '"}}',
       ("python.interpreterPath", "characters")),
    v1("v1-1mb-description", '{"name": "x", "python": {}, "description": "' + BIG + '"}',
       ("description", "1048577 characters")),
    v1("v1-1mb-env-value", '{"name": "x", "python": {}, "environmentVariables": {"A": "' + BIG + '"}}',
       ("environmentVariables.A", "characters")),
    v1("v1-1mb-env-name", '{"name": "x", "python": {}, "environmentVariables": {"' + BIG + '": "v"}}',
       ("environmentVariables", "a key of 1048577 characters")),
    v1("v1-1mb-tag", '{"name": "x", "python": {}, "tags": {"k": "' + BIG + '"}}', ("tags.k", "characters")),
    v1("v1-1mb-registry-address", '{"name": "x", "docker": {"baseImage": "u", "baseImageRegistry": {"address": "'
       + BIG + '"}}}', ("docker.baseImageRegistry.address", "characters")),
    v1("v1-1mb-shm", '{"name": "x", "python": {}, "docker": {"shmSize": "' + BIG + '"}}',
       ("docker.shmSize", "characters")),
    v1("v1-20k-arguments", '{"name": "x", "python": {}, "docker": {"arguments": ' + json.dumps(["-v"] * 20_000)
       + "}}", ("docker.arguments", "20000 entries")),
    v1("v1-20k-env-vars", '{"name": "x", "python": {}, "environmentVariables": '
       + json.dumps({f"V{i}": "1" for i in range(20_000)}) + "}", ("environmentVariables", "20000 entries")),
    v1("v1-20k-spark-repos", '{"name": "x", "python": {}, "spark": {"repositories": ' + json.dumps(["r"] * 20_000)
       + "}}", ("spark.repositories", "20000 entries")),
    v1("v1-300k-dockerfile", '{"name": "x", "python": {"userManagedDependencies": true}}',
       ("too long for a Dockerfile",), where="BaseDockerfile", BaseDockerfile="FROM ubuntu\n" + "RUN true\n" * 40_000),
    v1("v1-dockerfile-not-utf8", '{"name": "x", "python": {"userManagedDependencies": true}}',
       ("not UTF-8",), where="BaseDockerfile", BaseDockerfile=b"FROM ubuntu\n\xff\xfe\n"),
    v1("v1-lone-surrogate", '{"name": "x", "python": {}, "environmentVariables": {"A": "\\ud800"}}',
       ("environmentVariables.A", "surrogate")),
    v1("v1-lone-surrogate-key", '{"name": "x", "python": {}, "tags": {"k": "a\\udfffb"}}', ("tags.k", "surrogate")),
    v1("v1-empty-file", "", ("not valid JSON",)),
    v1("v1-bom", "\ufeff" + '{"name": "x", "python": {}}', ("not valid JSON",)),
    v1("v1-nan-shm", '{"name": "x", "python": {}, "docker": {"shmSize": NaN}}', ("docker.shmSize", "nan")),
    v1("v1-infinity-version", '{"name": "x", "version": 1e999, "python": {}}', ("version", "inf")),
    v1("v1-trailing-garbage", '{"name": "x", "python": {}} {"name": "y"}', ("not valid JSON", "Extra data")),
    v1("v1-utf16", '{"name": "x", "python": {}}'.encode("utf-16"), ("not UTF-8",)),
    # ---- v1: duplicate keys ---------------------------------------------------------------------------------------
    v1("v1-dup-python", '{"name": "x", "python": {"userManagedDependencies": false}, "python": '
       '{"userManagedDependencies": true, "interpreterPath": "/bin/sh"}}', ("python", "appears twice")),
    v1("v1-dup-name", '{"name": "x", "name": "y", "python": {}}', ("name", "appears twice")),
    v1("v1-dup-nested", '{"name": "x", "python": {}, "docker": {"baseImage": "a", "baseImage": "b"}}',
       ("baseImage", "appears twice")),
    v1("v1-dup-env-var", '{"name": "x", "python": {}, "environmentVariables": {"A": "1", "A": "2"}}',
       ("A", "appears twice")),
    v1("v1-dup-in-r", '{"name": "x", "python": {}, "r": {"k": 1, "k": 2}}', ("k", "appears twice")),
    v1("v1-dup-docker", '{"name": "x", "python": {}, "docker": {}, "docker": {"baseImage": "evil"}}',
       ("docker", "appears twice")),
    # ---- v1: validation gaps ----------------------------------------------------------------------------------------
    v1("v1-env-var-digit", '{"name": "x", "python": {}, "environmentVariables": {"1BAD": "v"}}',
       ("'1BAD'", "not a variable name")),
    v1("v1-env-var-space", '{"name": "x", "python": {}, "environmentVariables": {"X Y": "v"}}',
       ("'X Y'", "not a variable name")),
    v1("v1-env-var-nul-name", '{"name": "x", "python": {}, "environmentVariables": {"A\\u0000B": "v"}}',
       ("not a variable name",)),
    v1("v1-env-var-nul-value", '{"name": "x", "python": {}, "environmentVariables": {"A": "v\\u0000w"}}',
       ("'A'", "NUL")),
    v1("v1-env-var-empty", '{"name": "x", "python": {}, "environmentVariables": {"": "v"}}',
       ("''", "not a variable name")),
    v1("v1-env-var-equals", '{"name": "x", "python": {}, "environmentVariables": {"A=B": "v"}}',
       ("'A=B'", "not a variable name")),
    v1("v1-env-var-dash", '{"name": "x", "python": {}, "environmentVariables": {"MY-VAR": "v"}}',
       ("'MY-VAR'", "not a variable name")),
    v1("v1-env-var-unicode", '{"name": "x", "python": {}, "environmentVariables": {"\\u00e9T\\u00c9": "v"}}',
       ("not a variable name",)),
    v1("v1-platform-plan9", '{"name": "x", "python": {}, "docker": {"platform": {"os": "Plan9", "architecture": '
       '"pdp11"}}}', ("docker.platform.os", "'Plan9'")),
    v1("v1-platform-arch", '{"name": "x", "python": {}, "docker": {"platform": {"os": "Linux", "architecture": '
       '"pdp11"}}}', ("docker.platform.architecture", "'pdp11'")),
    v1("v1-platform-os-injection", '{"name": "x", "python": {"userManagedDependencies": true}, "docker": '
       '{"platform": {"os": "linux; rm -rf /", "architecture": "amd64"}}}', ("docker.platform.os", "'linux; rm")),
    v1("v1-conda-file-outside", '{"name": "x", "python": {"condaDependenciesFile": "../outside.yml"}}',
       ("python.condaDependenciesFile", "outside the environment folder")),
    v1("v1-conda-file-absolute", '{"name": "x", "python": {"condaDependenciesFile": "/etc/passwd"}}',
       ("python.condaDependenciesFile", "outside the environment folder")),
    v1("v1-conda-file-missing", '{"name": "x", "python": {"condaDependenciesFile": "mine.yml"}}',
       ("python.condaDependenciesFile", "'mine.yml'", "not found")),
    v1("v1-conda-file-not-string", '{"name": "x", "python": {"condaDependenciesFile": 5}}',
       ("python.condaDependenciesFile", "5")),
    v1("v1-conda-file-empty", '{"name": "x", "python": {"condaDependenciesFile": ""}}',
       ("python.condaDependenciesFile", "''")),
    v1("v1-conda-file-and-default", '{"name": "x", "python": {"condaDependenciesFile": "mine.yml"}}',
       ("python.condaDependenciesFile", "keep one"), **{"mine.yml": GOOD_CONDA, V1_CONDA: GOOD_CONDA}),
    v1("v1-conda-file-dotdot-inside", '{"name": "x", "python": {"condaDependenciesFile": "sub/../../x.yml"}}',
       ("python.condaDependenciesFile", "outside")),
    v1("v1-conda-file-bad-content", '{"name": "x", "python": {"condaDependenciesFile": "mine.yml"}}',
       ("dependencies[1]", "numpy=>1"), where="mine.yml",
       **{"mine.yml": "dependencies:\n  - python=3.11\n  - numpy=>1\n"}),
    v1("v1-inline-editable", '{"name": "x", "python": {"condaDependencies": {"dependencies": ["python=3.11", '
       '{"pip": ["-e ./pkg", "six"]}]}}}', ("-e ./pkg", "editable or local-path")),
    v1("v1-inline-file-url", '{"name": "x", "python": {"condaDependencies": {"dependencies": ["python=3.11", '
       '{"pip": ["pkg @ file:///tmp/pkg-1.0.tar.gz"]}]}}}', ("file:///tmp/pkg-1.0.tar.gz", "local-path")),
    v1("v1-inline-two-pythons", '{"name": "x", "python": {"condaDependencies": {"dependencies": '
       '["python=3.10", "python=3.11"]}}}', ("'python=3.10'", "pinned twice")),
    v1("v1-inline-python-xy", '{"name": "x", "python": {"condaDependencies": {"dependencies": ["python=3.x.y"]}}}',
       ("'3.x.y'", "not a Python version")),
    # ---- v1: its conda file -----------------------------------------------------------------------------------------
    v1("v1-conda-bomb", '{"name": "x", "python": {}}', ("alias bomb",), where=V1_CONDA,
       **{V1_CONDA: "name: c\ndependencies:\n  - python=3.11\n  - pip:\n" + bomb(9, "    ")}),
    v1("v1-conda-deep", '{"name": "x", "python": {}}', ("nested more than 32",), where=V1_CONDA,
       **{V1_CONDA: "name: c\ndependencies: " + deep_json(10_000) + "\n"}),
    v1("v1-conda-dup-key", '{"name": "x", "python": {}}', ("duplicate key", "dependencies"), where=V1_CONDA,
       **{V1_CONDA: "dependencies:\n  - python=3.11\ndependencies:\n  - python=3.10\n"}),
    v1("v1-conda-two-pythons", '{"name": "x", "python": {}}', ("pinned twice",), where=V1_CONDA,
       **{V1_CONDA: "dependencies:\n  - python=3.11\n  - python>=3.8\n"}),
    v1("v1-conda-1mb-pip", '{"name": "x", "python": {}}', ("dependencies[1].pip[0]", "characters"), where=V1_CONDA,
       **{V1_CONDA: "dependencies:\n  - python=3.11\n  - pip:\n    - six" + " " * MB + "x\n"}),
    v1("v1-conda-editable", '{"name": "x", "python": {}}', ("editable or local-path",), where=V1_CONDA,
       **{V1_CONDA: "dependencies:\n  - python=3.11\n  - pip:\n    - -e .\n"}),
    v1("v1-conda-bad-variable", '{"name": "x", "python": {}}', ("'1BAD'", "not a variable name"), where=V1_CONDA,
       **{V1_CONDA: "dependencies:\n  - python=3.11\nvariables:\n  1BAD: v\n"}),
    v1("v1-conda-too-large", '{"name": "x", "python": {}}', ("too large",), where=V1_CONDA,
       **{V1_CONDA: "dependencies:\n  - python=3.11\n# " + "z" * (5 * MB) + "\n"}),
    # ---- Azure ML v2 YAML -------------------------------------------------------------------------------------------
    v2("v2-bomb-description-9", V2_HEAD + "description:\n" + NINE, ("alias bomb",)),
    v2("v2-bomb-description-6", V2_HEAD + "description:\n" + bomb(6), ("alias bomb",)),
    v2("v2-bomb-tags", V2_HEAD + "tags:\n  k:\n" + bomb(8, "    "), ("alias bomb",)),
    v2("v2-bomb-conda-inline", V2_HEAD + "conda_file:\n  dependencies:\n" + bomb(9, "    "), ("alias bomb",)),
    v2("v2-bomb-merge-keys", V2_HEAD + "x0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n" + "".join(
        f"x{i}: &m{i} [" + ", ".join([f"*m{i - 1}"] * 9) + "]\n" for i in range(1, 9)), ("alias bomb",)),
    v2("v2-bomb-as-key", V2_HEAD + "description:\n" + bomb(7) + "  - {*a6 : 1}\n", ("alias bomb",)),
    v2("v2-alias-cycle", V2_HEAD + "description: &a [*a]\n", ("cycle",)),
    v2("v2-undefined-alias", V2_HEAD + "description: *nope\n", ("not valid YAML", "undefined alias")),
    v2("v2-deep-flow-100k", V2_HEAD + "description: " + deep_json(100_000) + "\n", ("nested more than 32",)),
    v2("v2-deep-flow-unclosed", V2_HEAD + "description: " + "[" * 100_000 + "\n", ("not valid YAML",)),
    v2("v2-deep-block-40", V2_HEAD + "tags:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40))
       + "  " * 41 + "v\n", ("nested more than 32",)),
    v2("v2-deep-mapping-flow", V2_HEAD + "tags: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", ("nested more than 32",)),
    v2("v2-file-10mb-image", "name: v\nimage: " + HUGE + "\n", ("too large for a definition file",)),
    v2("v2-1mb-image", "name: v\nimage: " + BIG + "\n", ("image", "1048577 characters")),
    v2("v2-1mb-description", V2_HEAD + "description: " + BIG + "\n", ("description", "characters")),
    v2("v2-1mb-tag-key", V2_HEAD + "tags:\n  ? " + "k" * 20_000 + "\n  : v\n", ("tags", "a key of 20000 characters")),
    v2("v2-20k-tags", V2_HEAD + "tags:\n" + "".join(f"  t{i}: v\n" for i in range(20_000)), ("tags", "20000 entries")),
    v2("v2-dup-name", "name: a\nname: b\nimage: u\n", ("duplicate key", "name")),
    v2("v2-dup-image", "name: a\nimage: safe\nimage: evil\n", ("duplicate key", "image")),
    v2("v2-dup-in-tags", V2_HEAD + "tags:\n  a: 1\n  a: 2\n", ("duplicate key",)),
    v2("v2-python-object-tag", "name: a\nimage: !!python/object/apply:os.system [echo pwned]\n",
       ("not valid YAML", "constructor")),
    v2("v2-two-documents", V2_HEAD + "---\nname: b\n", ("not valid YAML", "document")),
    v2("v2-nul", V2_HEAD + "description: a\x00b\n", ("binary",)),
    v2("v2-tab-indent", "name: a\nimage: u\ntags:\n\ta: 1\n", ("not valid YAML",)),
    v2("v2-build-no-dockerfile", "name: v\nbuild:\n  path: ctx\n", ("build.path", "'ctx'", "no 'Dockerfile'"),
       **{"ctx/README": "no Dockerfile here\n"}),
    v2("v2-build-missing-folder", "name: v\nbuild:\n  path: nowhere\n", ("build.path", "'nowhere'", "no such folder")),
    v2("v2-build-path-is-file", "name: v\nbuild:\n  path: file.txt\n", ("build.path", "no such folder"),
       **{"file.txt": "x\n"}),
    v2("v2-build-wrong-dockerfile-path", "name: v\nbuild:\n  path: ctx\n  dockerfile_path: docker/Dockerfile\n",
       ("build.path", "'docker/Dockerfile'"), **{"ctx/Dockerfile": "FROM ubuntu\n"}),
    v2("v2-os-plan9", V2_HEAD + "os_type: Plan9\n", ("os_type", "'Plan9'")),
    v2("v2-route-port-overflow", V2_HEAD + "inference_config:\n  scoring_route:\n    port: 99999999999999999999999\n"
       "    path: /score\n", ("inference_config.scoring_route", "1..65535")),
    v2("v2-route-port-zero", V2_HEAD + "inference_config:\n  liveness_route:\n    port: 0\n    path: /\n",
       ("inference_config.liveness_route",)),
    v2("v2-conda-file-fifo", V2_HEAD + "conda_file: pipe.yml\n", ("not a regular file",), where="pipe.yml"),
    v2("v2-conda-file-dev-zero", V2_HEAD + "conda_file: /dev/zero\n", ("not a regular file",), where="/dev/zero"),
    v2("v2-conda-file-passwd", V2_HEAD + "conda_file: /etc/passwd\n", ("expected a mapping",), where="/etc/passwd"),
    v2("v2-conda-two-pythons", V2_HEAD + "conda_file:\n  dependencies: [python=3.10, python=3.12]\n",
       ("pinned twice",)),
    v2("v2-conda-python-xy", V2_HEAD + "conda_file:\n  dependencies: [python=3.x.y]\n", ("not a Python version",)),
    v2("v2-variable-name", V2_HEAD + "conda_file:\n  dependencies: [python=3.11]\n  variables:\n    X Y: v\n",
       ("'X Y'", "not a variable name")),
    v2("v2-variable-nul", V2_HEAD + 'conda_file:\n  dependencies: [python=3.11]\n  variables:\n    A: "x\\0y"\n',
       ("'A'", "NUL")),
    v2("v2-conda-file-editable", V2_HEAD + "conda_file:\n  dependencies:\n    - python=3.11\n    - pip: [-e ./pkg]\n",
       ("editable or local-path",)),
    v2("v2-surrogate", V2_HEAD + 'description: "\\ud800"\n', ("description", "surrogate")),
    # ---- conda files ------------------------------------------------------------------------------------------------
    conda("conda-bomb-dependencies", CONDA_HEAD + "  - python=3.11\n" + NINE, ("alias bomb",)),
    conda("conda-bomb-pip", CONDA_HEAD + "  - python=3.11\n  - pip:\n" + bomb(9, "    "), ("alias bomb",)),
    conda("conda-bomb-channels", "name: c\nchannels:\n" + NINE + "dependencies: [python=3.11]\n", ("alias bomb",)),
    conda("conda-bomb-variables", CONDA_HEAD + "  - python=3.11\nvariables:\n  A:\n" + bomb(9, "    "),
          ("alias bomb",)),
    conda("conda-bomb-name", "name:\n" + bomb(9) + "dependencies: [python=3.11]\n", ("alias bomb",)),
    conda("conda-alias-cycle", CONDA_HEAD + "  - &a [*a]\n", ("cycle",)),
    conda("conda-deep", "name: c\ndependencies: " + deep_json(100_000) + "\n", ("nested more than 32",)),
    conda("conda-deep-block", CONDA_HEAD + "".join("  " * (i + 1) + "- \n" for i in range(60)),
          ("nested more than 32",)),
    conda("conda-1mb-spec", CONDA_HEAD + "  - " + "n" * MB + "\n", ("dependencies[0]", "1048576 characters")),
    conda("conda-1mb-pip-line", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - six" + " " * MB + "x\n",
          ("dependencies[1].pip[0]", "characters")),
    conda("conda-1mb-channel", "name: c\nchannels: [" + "c" * MB + "]\ndependencies: [python=3.11]\n",
          ("channels[0]", "characters")),
    conda("conda-20k-deps", CONDA_HEAD + "".join(f"  - pkg{i}\n" for i in range(20_000)),
          ("dependencies", "20000 entries")),
    conda("conda-file-too-large", CONDA_HEAD + "  - python=3.11\n" + "# pad\n" * (MB // 6 * 5), ("too large",)),
    conda("conda-two-pythons", CONDA_HEAD + "  - python=3.10\n  - python=3.11\n", ("'python=3.10'", "pinned twice")),
    conda("conda-two-pythons-spellings", CONDA_HEAD + "  - python=3.11\n  - conda-forge::python>=3.8\n",
          ("pinned twice",)),
    conda("conda-python-xy", CONDA_HEAD + "  - python=3.x.y\n", ("'3.x.y'", "not a Python version")),
    conda("conda-python-word", CONDA_HEAD + "  - python=latest\n", ("'latest'", "not a Python version")),
    conda("conda-python-star-word", CONDA_HEAD + "  - python>=3.x\n", ("not a Python version",)),
    conda("conda-dup-dependencies", CONDA_HEAD + "  - python=3.11\ndependencies:\n  - python=3.8\n",
          ("duplicate key",)),
    conda("conda-dup-variables", CONDA_HEAD + "  - python=3.11\nvariables:\n  A: 1\n  A: 2\n", ("duplicate key",)),
    conda("conda-variable-digit", CONDA_HEAD + "  - python=3.11\nvariables:\n  1BAD: v\n",
          ("'1BAD'", "not a variable name")),
    conda("conda-variable-space", CONDA_HEAD + "  - python=3.11\nvariables:\n  'X Y': v\n",
          ("'X Y'", "not a variable name")),
    conda("conda-variable-nul", CONDA_HEAD + '  - python=3.11\nvariables:\n  A: "a\\0"\n', ("'A'", "NUL")),
    conda("conda-variable-nul-name", CONDA_HEAD + '  - python=3.11\nvariables:\n  "A\\0": v\n',
          ("not a variable name",)),
    conda("conda-editable-dot", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - -e .\n", ("editable or local-path",)),
    conda("conda-editable-dir", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - --editable ./pkg\n    - six\n",
          ("--editable", "editable or local-path")),
    conda("conda-editable-vcs", CONDA_HEAD + "  - python=3.11\n  - pip:\n"
          "    - -e git+https://github.com/u/r.git@main#egg=r\n", ("editable or local-path",)),
    conda("conda-file-url", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - pkg @ file:///tmp/pkg-1.0.tar.gz\n",
          ("file:///tmp/pkg-1.0.tar.gz", "local-path")),
    conda("conda-git-file-url", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - pkg @ git+file:///srv/repo\n",
          ("git+file:///srv/repo", "local-path")),
    conda("conda-local-wheel", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - ./dist/pkg-1.0-py3-none-any.whl\n",
          ("dependencies[1].pip[0]", "local path")),
    conda("conda-constraints-missing", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - -c constraints.txt\n    - six\n",
          ("constraints.txt", "not found")),
    conda("conda-include-passwd", CONDA_HEAD + "  - python=3.11\n  - pip:\n    - -r /etc/passwd\n",
          ("is this a requirements file",), where="/etc/passwd"),
    conda("conda-variable-empty", CONDA_HEAD + "  - python=3.11\nvariables:\n  '': v\n", ("not a variable name",)),
    conda("conda-tag-python", "name: c\ndependencies: !!python/name:os.system\n", ("dependencies", "expected a list")),
    # ---- requirements files -----------------------------------------------------------------------------------------
    req("req-1mb-line", "six" + " " * MB + "x\n", ("requirements.txt", "line 1", "1048580 characters")),
    req("req-1mb-brackets", "six" + "[" * MB + "\n", ("requirements.txt", "line 1", "characters")),
    req("req-1mb-url", "pkg @ https://user:" + "p" * MB + "@host/pkg.whl\n", ("line 1", "characters")),
    req("req-100k-line-2", "six\n" + "n" * 100_000 + "\n", ("requirements.txt", "line 2", "100000 characters")),
    req("req-1mb-continued", "six \\\n" + "".join(" \\\n" for _ in range(300_000)) + "x\n",
        ("requirements.txt", "line 1", "characters")),
    req("req-1mb-comment-spaces", "six" + " " * MB + "#c\n", ("line 1", "characters")),
    req("req-file-too-large", "six\n" + "# padding\n" * (MB // 2), ("requirements.txt", "too large")),
    req("req-editable-dot", "-e .\nsix\n", ("requirements.txt", "--editable", "editable or local-path")),
    req("req-editable-dir", "-e ./mypkg\nsix\n", ("requirements.txt", "editable or local-path"),
        **{"mypkg/setup.py": "from setuptools import setup\nsetup()\n"}),
    req("req-editable-long", "--editable=./pkg\n", ("editable or local-path",)),
    req("req-editable-file-url", "-e file:///tmp/pkg\n", ("editable or local-path",)),
    req("req-editable-vcs", "-e git+https://github.com/u/r.git#egg=r\n", ("editable or local-path",)),
    req("req-editable-extras", "-e ./pkg[dev]\n", ("editable or local-path",)),
    req("req-local-dir", "./mypkg\n", ("requirements.txt", "line 1", "local path"), **{"mypkg/setup.py": "x\n"}),
    req("req-local-wheel", "./dist/pkg-1.0-py3-none-any.whl\n", ("requirements.txt", "file:", "local-path")),
    req("req-local-sdist", "dist/pkg-1.0.tar.gz\n", ("requirements.txt", "local-path")),
    req("req-file-url-direct", "pkg @ file:///tmp/pkg-1.0.tar.gz\n", ("file:///tmp/pkg-1.0.tar.gz", "local-path")),
    req("req-file-url-bare", "file:///tmp/pkg-1.0.tar.gz\n", ("local-path",)),
    req("req-file-localhost", "pkg @ file://localhost/tmp/pkg-1.0.tar.gz\n", ("local-path",)),
    req("req-constraints-missing", "-c constraints.txt\nsix\n", ("requirements.txt", "constraints.txt", "not found")),
    req("req-constraints-malformed", "-c cons.txt\nsix\n", ("cons.txt", "line 1", "constraints file"),
        **{"cons.txt": "numpy>=>1\n"}),
    req("req-constraints-folder", "-c consdir\nsix\n", ("consdir", "is not a file"), **{"consdir/x": "y\n"}),
    req("req-constraints-passwd", "-c /etc/passwd\nsix\n", ("/etc/passwd", "is this a requirements file")),
    req("req-include-passwd", "-r /etc/passwd\n", ("/etc/passwd", "line 1", "is this a requirements file")),
    req("req-include-dev-zero", "-r /dev/zero\n", ("requirements.txt", "/dev/zero", "is not a file")),
    req("req-include-fifo", "-r pipe.txt\n", ("pipe.txt", "is not a file")),
    req("req-include-chain-40", "-r r1.txt\n", ("includes nested more than 32",),
        **{f"r{i}.txt": f"-r r{i + 1}.txt\n" for i in range(1, 41)}),
    req("req-10k-packages", "".join(f"pkg{i}\n" for i in range(10_001)), ("line 10001", "more than 10000 entries")),
    req("req-nul-in-middle", "six\nnumpy\x00\n", ("requirements.txt", "line 2", "binary")),
    req("req-utf16", "six\n".encode("utf-16"), ("requirements.txt", "not UTF-8")),
    req("req-passwd-named", SECRET_FILE_LINE + "\n", ("passwd", "line 1", "is this a requirements file"),
        file="passwd"),
    req("req-netrc-named", "machine example.com login me password hunter2\n", (".netrc", "line 1"),
        file=".netrc"),
    req("req-index-9k", "--index-url https://example.com/" + "s" * 9000 + "\nsix\n", ("line 1", "characters")),
    # ---- CLI arguments: names and versions -------------------------------------------------------------------------
    cli("ref-version-overflow", "env", "show", "base:99999999999999999999999",
        expect=("'99999999999999999999999'", "not a version number")),
    cli("ref-version-arabic-digit", "env", "show", "base:\u0662", expect=("'\u0662'", "not a version number")),
    cli("ref-version-fullwidth", "env", "show", "base:\uff11", expect=("not a version number",)),
    cli("ref-version-superscript", "env", "show", "base:\u00b2", expect=("not a version number",)),
    cli("ref-version-empty", "env", "show", "base:", expect=("'base:'", "no version after ':'")),
    cli("ref-version-zero", "env", "show", "base:0", expect=("'0'", "not a version number")),
    cli("ref-version-negative", "env", "show", "base:-1", expect=("'-1'", "not a version number")),
    cli("ref-version-float", "env", "show", "base:1.0", expect=("'1.0'", "not a version number")),
    cli("ref-version-exp", "env", "show", "base:1e3", expect=("'1e3'", "not a version number")),
    cli("ref-version-plus", "env", "show", "base:+1", expect=("'+1'", "not a version number")),
    cli("ref-no-name", "env", "show", ":1", expect=("':1'", "expected NAME or NAME:VERSION")),
    cli("ref-long-name", "env", "show", "n" * 100_000, expect=("no environment",)),
    cli("ref-long-version", "env", "show", "base:" + "9" * 100_000, expect=("not a version number",)),
    cli("ref-newline-name", "env", "show", "a\nb", expect=("no environment", "'a\\nb'")),
    cli("lock-version-overflow", "env", "lock", "base:99999999999999999999999", expect=("not a version number",)),
    cli("build-version-arabic", "env", "build", "base:\u0662", expect=("not a version number",)),
    cli("python-version-empty", "env", "python", "base:", expect=("no version after ':'",)),
    cli("diff-version-arabic", "env", "diff", "base:1", "base:\u0662", expect=("not a version number",)),
    cli("diff-bare-arabic", "env", "diff", "base:1", "\u0662", expect=("no environment",)),
    cli("download-version-overflow", "env", "download", "-n", "base", "-v", "99999999999999999999999", "-d", "out",
        expect=("not a version number",), absent=("out",)),
    cli("download-version-arabic", "env", "download", "-n", "base", "-v", "\u0663", "-d", "out",
        expect=("not a version number",), absent=("out",)),
    cli("download-bad-format", "env", "download", "-n", "base", "-d", "out", "--format", "zip",
        expect=("--format", "'zip'"), absent=("out",)),
    cli("download-empty-format", "env", "download", "-n", "base", "-d", "out", "--format", "",
        expect=("--format",), absent=("out",)),
    cli("download-long-format", "env", "download", "-n", "base", "-d", "out", "--format", "f" * 50_000,
        expect=("--format",), absent=("out",)),
    cli("model-version-overflow", "model", "download", "m:99999999999999999999999", "-d", "out",
        expect=("not a model version",), absent=("out",)),
    cli("model-version-empty", "model", "download", "m:", "-d", "out", expect=("no version after ':'",),
        absent=("out",)),
    cli("register-name-slash", "env", "register", "-d", "ok.yml", "-n", "a/b", expect=("environment name", "'a/b'")),
    cli("register-name-unicode-digit", "env", "register", "-d", "ok.yml", "-n", "\u0662",
        expect=("environment name",)),
    cli("register-name-accent", "env", "register", "-d", "ok.yml", "-n", "\u00e9t\u00e9", expect=("environment name",)),
    cli("register-name-100k", "env", "register", "-d", "ok.yml", "-n", "n" * 100_000,
        expect=("environment name", "100000 characters")),
    cli("register-name-newline", "env", "register", "-d", "ok.yml", "-n", "a\nb", expect=("environment name",)),
    cli("register-name-dot", "env", "register", "-d", "ok.yml", "-n", ".hidden", expect=("environment name",)),
    cli("register-missing-path", "env", "register", "-d", "nope.yml", expect=("nope.yml", "no such file")),
    cli("register-dev-zero", "env", "register", "-d", "/dev/zero", "-n", "z", expect=("/dev/zero", "not a regular")),
    cli("register-empty-path", "env", "register", "-d", "", "-n", "z", expect=("error",)),
    cli("register-bad-format", "env", "register", "-d", "ok.yml", "--format", "nope", expect=("nope",)),
    cli("register-long-path", "env", "register", "-d", "p" * 5000, "-n", "z", expect=("File name too long",)),
    cli("output-bad", "-o", "yaml", "env", "list", expect=("yaml",)),
]


#: named pipes, made in the case folder: a reader that opened one would wait forever
FIFOS = {"v2-conda-file-fifo": "pipe.yml", "req-include-fifo": "pipe.txt"}


def _files_for(case: Case) -> dict[str, str | bytes]:
    files = dict(case.files)
    if case.argv[:2] == ("env", "register") and "ok.yml" in case.argv:
        files["ok.yml"] = GOOD_CONDA
    return files


# ---- the driver: one process imports Kiln, forks a child per case under resource limits --------------------------

DRIVER = r'''
import gc, hashlib, io, json, os, resource, signal, sqlite3, sys, time
from pathlib import Path

import kiln.cli.main
import kiln.environment.formats.detect  # warm imports: each child starts with them loaded
import packaging.requirements, ruamel.yaml

ws = Path(os.environ["KILN_WORKSPACE"])
memory, cpu = int(sys.argv[1]), int(sys.argv[2])


def snapshot():
    # the rows first: closing the last connection folds any WAL into the database file (so a write
    # shows in its hash and mtime) and removes -wal/-shm, SQLite's own bookkeeping, left out below
    conn = sqlite3.connect(ws / "registry.sqlite")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        rows["environments:content"] = hashlib.sha256(repr(conn.execute(
            "SELECT * FROM environments ORDER BY name, version").fetchall()).encode()).hexdigest()
    finally:
        conn.close()
    files = {str(p.relative_to(ws)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
             for p in sorted(ws.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}
    return {"files": files, "rows": rows}


def _diff(before, after):
    return sorted(k for part in ("files", "rows") for k in set(before[part]) | set(after[part])
                  if before[part].get(k) != after[part].get(k))


results = []
for case in json.load(sys.stdin):
    before = snapshot()
    out_path, err_path = Path(case["dir"]) / ".out", Path(case["dir"]) / ".err"
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            signal.alarm(3 * cpu)  # a wall-clock bound too: a read that blocks (a named pipe) uses no CPU
            os.chdir(case["dir"])
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), encoding="utf-8", write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), encoding="utf-8", write_through=True)
            code = kiln.cli.main.main(case["argv"], dict(os.environ))
            gc.collect()  # close the store's connections as an exiting interpreter would
        except BaseException as e:  # noqa: BLE001 - anything here is a failure of the case
            os.write(2, f"driver: {type(e).__name__}: {e}\n".encode())
            code = 99
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    results.append({"id": case["id"], "code": code, "cpu": usage.ru_utime + usage.ru_stime,
                    "maxrss_kb": usage.ru_maxrss, "wall": wall,
                    "out": out_path.read_text(encoding="utf-8", errors="replace"),
                    "err": err_path.read_text(encoding="utf-8", errors="replace"),
                    "changed": _diff(before, snapshot())})
    out_path.unlink()
    err_path.unlink()
json.dump(results, sys.stdout)
'''


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if not p.is_fifo()}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile")
    env = {**os.environ, "KILN_HOME": str(root / "home"), "KILN_CACHE_DIR": str(root / "home" / "cache"),
           "KILN_WORKSPACE": ""}
    ws = root / "ws"

    def kiln(*args: str) -> None:
        proc = subprocess.run([*kiln_cmd(), *args], capture_output=True, text=True, env=env, cwd=root, timeout=300,
                              check=False)
        assert proc.returncode == 0, (args, proc.stderr)

    kiln("workspace", "create", "hostile", "-d", str(ws), "--no-config")
    (root / "base.yml").write_text(GOOD_CONDA.replace("name: ok", "name: base"), encoding="utf-8")
    kiln("-w", str(ws), "env", "register", "-d", "base.yml")
    env["KILN_WORKSPACE"] = str(ws)

    cases, inputs = [], {}
    for case in CASES:
        folder = root / "cases" / case.id
        folder.mkdir(parents=True)
        _write(folder, _files_for(case))
        if case.id in FIFOS:  # a reader that opens it would block forever
            os.mkfifo(folder / FIFOS[case.id])
        inputs[case.id] = _tree(folder)
        cases.append({"id": case.id, "argv": list(case.argv), "dir": str(folder)})
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(MEMORY_LIMIT), str(CPU_SECONDS)], input=json.dumps(cases),
                          capture_output=True, text=True, env=env, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = {r["id"]: r for r in json.loads(proc.stdout)}
    for case in CASES:
        folder = root / "cases" / case.id
        out[case.id]["inputs_unchanged"] = _tree(folder) == inputs[case.id]
        out[case.id]["absent_ok"] = all(not (folder / a).exists() for a in case.absent)
    return out


def test_corpus_is_large_and_covers_every_format_and_argument() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 150
    for prefix in ("v1-", "v2-", "conda-", "req-", "ref-", "download-", "register-", "model-"):
        assert sum(i.startswith(prefix) for i in ids) >= 2, prefix


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_in_one_short_line(case: Case, results: dict[str, Any]) -> None:
    r = results[case.id]
    err: str = r["err"]
    assert r["code"] == 1, (r["code"], err[:1000], f"cpu {r['cpu']:.2f} s, maxrss {r['maxrss_kb']} kB")
    assert r["out"] == ""
    assert "Traceback" not in err
    assert err.startswith("kiln: error: ") and err.endswith("\n") and err.count("\n") == 1, err[:1000]
    line = err.rstrip("\n")
    assert len(line) <= MAX_LINE, line[:1000]
    for expected in case.expect:
        assert expected in line, f"{expected!r} not in {line!r}"
    assert SECRET_FILE_LINE not in line and "hunter2" not in line  # file contents are never echoed
    assert r["changed"] == [], "the workspace changed"
    assert r["inputs_unchanged"], "the inputs changed"
    assert r["absent_ok"], f"{case.absent} written"
    assert r["cpu"] < CPU_SECONDS
