"""A corpus of malformed definitions, each registered through the real ``kiln`` command.

Every case must fail the same way: exit code 1, nothing on stdout, exactly one line on stderr
(``kiln: error: ...``) naming the file and the field or value at fault, no traceback, and the
workspace exactly as it was (same registry file bytes and mtime, same rows, same listing).
The inputs are written into the test's temp folder; the workspace is a copy of one made once
per module with the real CLI (two environments, one of them with two versions).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import kiln_cmd

pytestmark = pytest.mark.integration

V1_JSON = "azureml_environment.json"
V1_CONDA = "conda_dependencies.yml"
GOOD_CONDA = "name: ok\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy==2.1.0\n"
LONG_NAME = "a" * 300


@dataclass(frozen=True)
class Case:
    """One malformed input: ``files`` (relative path -> text or bytes) written under the case's
    folder, ``target`` passed to ``-d``, ``name`` to ``-n``; every string of ``expect`` must be in
    the error line (the file, then the field or the value). ``bug`` marks a known Kiln bug."""

    id: str
    files: dict[str, str | bytes]
    target: str
    expect: tuple[str, ...]
    name: str | None = None
    bug: str | None = None


def _v1(id: str, data: str | bytes, expect: tuple[str, ...], *, bug: str | None = None,
        **extra: str | bytes) -> Case:
    files: dict[str, str | bytes] = {f"envdir/{V1_JSON}": data}
    files.update({f"envdir/{k}": v for k, v in extra.items()})
    return Case(id, files, "envdir", expect, bug=bug)


def _v2(id: str, text: str, expect: tuple[str, ...], *, bug: str | None = None, **extra: str | bytes) -> Case:
    return Case(id, {"env.yml": text, **extra}, "env.yml", expect, bug=bug)


def _conda(id: str, text: str | bytes, expect: tuple[str, ...], *, bug: str | None = None,
           **extra: str | bytes) -> Case:
    return Case(id, {"environment.yml": text, **extra}, "environment.yml", expect, bug=bug)


def _req(id: str, text: str | bytes, expect: tuple[str, ...], *, bug: str | None = None,
         **extra: str | bytes) -> Case:
    return Case(id, {"requirements.txt": text, **extra}, "requirements.txt", expect, name="reqs", bug=bug)


NAME_IN_FILE_BUG = ("src/kiln/environment/serialize.py environment_from_dict and formats/detect.py load_any (conda): "
                    "an invalid name read from the file raises check_name's DefinitionError without the file")
CURATED_IN_FILE_BUG = ("a 'Kiln-' name read from a file is refused only in Workspace.register_environment_ex, "
                       "whose message does not name the file")
IPV6_URL_BUG = ("environment/pip_requirements.py _check_url, pip_options.py _check_option_value: "
                "urllib.parse.urlsplit raises ValueError('Invalid IPv6 URL') for 'https://[::1/...', not caught: "
                "exit 2, 'kiln: internal error'")
EMPTY_NAME_BUG = ("formats/detect.py load_any: `-n ''` is treated as 'no name given' (`name or conda.name`, "
                  "`if name:`): registers under the file's name, exit 0")

CASES: list[Case] = [
    # ---- Azure ML v1 folders ------------------------------------------------------------------
    _v1("v1-bad-json", '{"name": "x", "python": {', (V1_JSON, "not valid JSON", "line 1")),
    _v1("v1-not-utf8", b'{"name": "\xff\xfe"}', (V1_JSON, "not UTF-8")),
    _v1("v1-json-array", '["name", "x"]', (V1_JSON, "expected a JSON object", "list")),
    _v1("v1-name-wrong-type", '{"name": 5, "python": {}}', (V1_JSON, "name", "got 5")),
    _v1("v1-envvars-wrong-type", '{"name": "x", "environmentVariables": {"A": 1}}',
        (V1_JSON, "environmentVariables.A", "got 1")),
    _v1("v1-arguments-wrong-type", '{"name": "x", "docker": {"arguments": "--gpus all"}}',
        (V1_JSON, "docker.arguments", "'--gpus all'")),
    _v1("v1-string-boolean", '{"name": "x", "python": {"userManagedDependencies": "false"}}',
        (V1_JSON, "python.userManagedDependencies", "'false'")),
    _v1("v1-string-boolean-docker", '{"name": "x", "python": {}, "docker": {"enabled": "true"}}',
        (V1_JSON, "docker.enabled", "'true'")),
    _v1("v1-snake-case-docker", '{"name": "x", "docker": {"base_image": "ubuntu"}}',
        (V1_JSON, "docker.base_image", "baseImage")),
    _v1("v1-snake-case-top", '{"name": "x", "environment_variables": {"A": "b"}}',
        (V1_JSON, "environment_variables", "environmentVariables")),
    _v1("v1-bad-enum", '{"name": "x", "docker": {"buildContext": {"locationType": "foo", "location": "l"}}}',
        (V1_JSON, "docker.buildContext.locationType", "'foo'")),
    _v1("v1-image-plus-dockerfile", '{"name": "x", "docker": {"baseImage": "ubuntu:22.04"}}',
        (V1_JSON, "docker.baseImage", "BaseDockerfile", "exclude"), BaseDockerfile="FROM ubuntu:22.04\n"),
    _v1("v1-bad-shm-size", '{"name": "x", "python": {}, "docker": {"shmSize": "lots"}}',
        (V1_JSON, "docker.shmSize", "'lots'")),
    _v1("v1-spark-packages", '{"name": "x", "spark": {"packages": [{"group": "g"}]}}',
        (V1_JSON, "spark.packages[0]")),
    _v1("v1-reference-only", '{"name": "x", "version": "1"}', (V1_JSON, "'x'", "defines nothing")),
    _v1("v1-empty-dockerfile", '{"name": "x", "python": {"userManagedDependencies": true}}',
        ("BaseDockerfile", "is empty"), BaseDockerfile="  \n"),
    _v1("v1-conda-unknown-key", '{"name": "x", "python": {}}', (V1_CONDA, "'foo'"),
        **{V1_CONDA: "name: foo\nfoo: bar\ndependencies:\n  - python=3.10\n"}),
    _v1("v1-conda-bad-spec", '{"name": "x", "python": {}}', (V1_CONDA, "dependencies[1]", "numpy=>1.2"),
        **{V1_CONDA: "name: foo\ndependencies:\n  - python=3.10\n  - numpy=>1.2\n"}),
    _v1("v1-conda-invalid-yaml", '{"name": "x", "python": {}}', (V1_CONDA, "not valid YAML", "line 4"),
        **{V1_CONDA: "name: foo\ndependencies:\n  - [python=3.10\n"}),
    _v1("v1-inline-conda-bad-pip", '{"name": "x", "python": {"condaDependencies": '
        '{"dependencies": ["python=3.10", {"pip": ["numpy>=>1"]}]}}}',
        (V1_JSON, "python.condaDependencies", "dependencies[1].pip[0]", "'numpy>=>1'")),
    # ---- Azure ML v2 YAML ---------------------------------------------------------------------
    _v2("v2-unknown-key", "name: unk\nimage: ubuntu:22.04\nfoo: bar\n", ("env.yml", "foo", "unknown field")),
    _v2("v2-conda-keys-top-level", "name: bad\nimage: ubuntu:22.04\nchannels: [conda-forge]\n",
        ("env.yml", "'channels'", "conda_file")),
    _v2("v2-missing-image-and-build", "name: x\nconda_file:\n  dependencies: [python=3.11]\n",
        ("env.yml", "image", "'build'", "required")),
    _v2("v2-image-and-build", "name: x\nimage: ubuntu:22.04\nbuild:\n  path: ctx\n",
        ("env.yml", "build", "exclude")),
    _v2("v2-build-unknown-key", "name: x\nbuild:\n  path: ctx\n  context: ctx\n", ("env.yml", "build.context")),
    _v2("v2-bad-os-type", "name: x\nimage: ubuntu:22.04\nos_type: macos\n", ("env.yml", "os_type", "'macos'")),
    _v2("v2-bad-inference-route", "name: x\nimage: ubuntu:22.04\ninference_config:\n  scoring_route:\n"
        "    port: http\n    path: /score\n", ("env.yml", "inference_config.scoring_route", "'http'")),
    _v2("v2-unknown-inference-route", "name: x\nimage: ubuntu:22.04\ninference_config:\n  health_route:\n"
        "    port: 5001\n    path: /\n", ("env.yml", "inference_config.health_route")),
    _v2("v2-conda-file-missing", "name: x\nimage: ubuntu:22.04\nconda_file: missing-conda.yml\n",
        ("missing-conda.yml", "file not found")),
    _v2("v2-conda-file-bad-spec", "name: x\nimage: ubuntu:22.04\nconda_file: conda.yml\n",
        ("conda.yml", "dependencies[1]", "numpy=>1.2"),
        **{"conda.yml": "dependencies:\n  - python=3.11\n  - numpy=>1.2\n"}),
    _v2("v2-conda-file-wrong-type", "name: x\nimage: ubuntu:22.04\nconda_file: [a, b]\n",
        ("env.yml", "conda_file", "['a', 'b']")),
    _v2("v2-invalid-yaml", "name: x\nimage: [ubuntu\n", ("env.yml", "not valid YAML")),
    _v2("v2-tags-wrong-type", "name: x\nimage: ubuntu:22.04\ntags: [a, b]\n", ("env.yml", "tags", "['a', 'b']")),
    # ---- conda environment.yml ----------------------------------------------------------------
    _conda("conda-unknown-key", "name: x\nfoo: 1\ndependencies:\n  - python=3.11\n",
           ("environment.yml", "'foo'", "unknown key")),
    _conda("conda-bad-match-spec", "name: x\ndependencies:\n  - python=3.11\n  - numpy=>1.2\n",
           ("environment.yml", "dependencies[1]", "'numpy=>1.2'", "conda match spec")),
    _conda("conda-nested-non-pip", "name: x\ndependencies:\n  - python=3.11\n  - conda:\n    - numpy\n",
           ("environment.yml", "dependencies[1]", "'conda'")),
    _conda("conda-two-pip-lists", "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy\n"
           "  - pip:\n    - scipy\n", ("environment.yml", "dependencies[2]", "second 'pip' list")),
    _conda("conda-dependencies-not-a-list", "name: x\ndependencies: numpy\n",
           ("environment.yml", "dependencies", "'numpy'")),
    _conda("conda-empty-dependencies", "name: x\nchannels: [conda-forge]\ndependencies: []\n",
           ("environment.yml", "dependencies", "empty")),
    _conda("conda-pip-not-a-list", "name: x\ndependencies:\n  - python=3.11\n  - pip: numpy\n",
           ("environment.yml", "dependencies[1].pip", "'numpy'")),
    _conda("conda-bad-pip-requirement", "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy>=>1\n",
           ("environment.yml", "dependencies[1].pip[0]", "'numpy>=>1'", "pip requirement")),
    _conda("conda-bad-pip-option", "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - --index-url ftp://x\n",
           ("environment.yml", "dependencies[1].pip[0]", "ftp://x")),
    _conda("conda-unparsable-url", "name: x\ndependencies:\n  - python=3.11\n  - pip:\n"
           "    - pkg @ https://[::1/pkg-1.0.tar.gz\n",
           ("environment.yml", "dependencies[1].pip[0]", "https://[::1/pkg")),
    _conda("conda-missing-r-include", "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - -r missing-reqs.txt\n",
           ("environment.yml", "missing-reqs.txt", "not found")),
    _conda("conda-include-bad-requirement", "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - -r extra.txt\n",
           ("extra.txt", "line 2", "numpy>=>1"), **{"extra.txt": "scipy\nnumpy>=>1\n"}),
    _conda("conda-binary-junk", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", ("environment.yml", "UTF-8")),
    _conda("conda-nul-bytes", "name: x\ndependencies:\n  - python=3.11\x00\x00\n", ("environment.yml", "binary")),
    _conda("conda-invalid-yaml", "name: x\ndependencies:\n  - python=3.11\n - numpy\n",
           ("environment.yml", "not valid YAML", "line 4")),
    _conda("conda-bad-channel", "name: x\nchannels:\n  - conda forge\ndependencies:\n  - python=3.11\n",
           ("environment.yml", "channels[0]", "'conda forge'")),
    _conda("conda-variables-not-a-mapping", "name: x\ndependencies:\n  - python=3.11\nvariables: [A, B]\n",
           ("environment.yml", "variables", "['A', 'B']")),
    _conda("conda-dependency-wrong-type", "name: x\ndependencies:\n  - python=3.11\n  - 42\n",
           ("environment.yml", "dependencies[1]", "42")),
    # ---- pip requirements.txt -----------------------------------------------------------------
    _req("req-bad-specifier", "scipy\nnumpy>=>1.2\n", ("requirements.txt", "line 2", "'numpy>=>1.2'")),
    _req("req-bad-option", "--frobnicate yes\nnumpy\n", ("requirements.txt", "line 1", "--frobnicate")),
    _req("req-option-missing-value", "numpy\n--index-url\n", ("requirements.txt", "line 2", "--index-url")),
    _req("req-missing-include", "numpy\n-r missing-other.txt\n", ("requirements.txt", "line 2", "missing-other.txt",
                                                                   "not found")),
    _req("req-include-cycle", "numpy\n-r other.txt\n", ("other.txt", "include cycle", "requirements.txt"),
         **{"other.txt": "scipy\n-r requirements.txt\n"}),
    _req("req-unparsable-url", "numpy\nhttps://[::1/pkg-1.0-py3-none-any.whl\n",
         ("requirements.txt", "line 2", "https://[::1/pkg")),
    _req("req-unparsable-index-url", "--extra-index-url https://[::1/simple\nnumpy\n",
         ("requirements.txt", "line 1", "https://[::1/simple")),
    _req("req-url-without-name", "https://example.com/download/latest\n",
         ("requirements.txt", "line 1", "https://example.com/download/latest")),
    _req("req-unsupported-url-scheme", "pkg @ ftp://example.com/pkg-1.0.tar.gz\n",
         ("requirements.txt", "line 1", "ftp://example.com/pkg-1.0.tar.gz")),
    _req("req-per-requirement-option", "numpy==2.1.0 --global-option=x\n",
         ("requirements.txt", "line 1", "--global-option")),
    _req("req-bad-hash", "numpy==2.1.0 --hash=sha256:abc\n", ("requirements.txt", "line 1", "sha256")),
    _req("req-conflicting-index-url", "-i https://a.example/simple\nnumpy\n--index-url https://b.example/simple\n",
         ("requirements.txt", "line 3", "https://b.example/simple")),
    _req("req-binary-junk", b"numpy\n\x00\x01\x02\x03junk\n", ("requirements.txt", "line 2", "binary")),
    _req("req-not-utf8", b"numpy\n\xff\xfe\n", ("requirements.txt", "not UTF-8", "byte 6")),
    _req("req-json-document", '{"numpy": "2.1.0"}\n', ("requirements.txt", "line 1", "JSON document")),
    Case("req-without-name", {"requirements.txt": "numpy\n"}, "requirements.txt", ("requirements.txt", "--name")),
    # ---- invalid names ------------------------------------------------------------------------
    Case("name-dotdot-option", {"environment.yml": GOOD_CONDA}, "environment.yml", ("environment name", "'../x'"),
         name="../x"),
    Case("name-slash-option", {"environment.yml": GOOD_CONDA}, "environment.yml", ("environment name", "'a/b'"),
         name="a/b"),
    Case("name-empty-option", {"environment.yml": GOOD_CONDA}, "environment.yml", ("environment name", "empty"),
         name=""),
    Case("name-too-long-option", {"environment.yml": GOOD_CONDA}, "environment.yml",
         ("environment name", "300 characters"), name=LONG_NAME),
    Case("name-curated-prefix-option", {"environment.yml": GOOD_CONDA}, "environment.yml",
         ("environment name", "'Kiln-foo'", "reserved"), name="Kiln-foo"),
    Case("name-curated-prefix-option-lowercase", {"requirements.txt": "numpy\n"}, "requirements.txt",
         ("environment name", "'kiln-foo'", "reserved"), name="kiln-foo"),
    _v2("name-slash-in-v2", "name: a/b\nimage: ubuntu:22.04\n", ("env.yml", "name", "'a/b'")),
    _v2("name-too-long-in-v2", f"name: {LONG_NAME}\nimage: ubuntu:22.04\n", ("env.yml", "name", "300 characters")),
    _v2("name-empty-in-v2", "name: ''\nimage: ubuntu:22.04\n", ("env.yml", "name", "''")),
    _conda("name-dotdot-in-conda", "name: ../x\ndependencies:\n  - python=3.11\n",
           ("environment.yml", "name", "'../x'")),
    _v1("name-slash-in-v1", '{"name": "a/b", "python": {}}', (V1_JSON, "name", "'a/b'")),
    _v1("name-empty-in-v1", '{"name": "", "python": {}}', (V1_JSON, "name", "empty")),
    _conda("name-curated-prefix-in-conda", "name: Kiln-foo\ndependencies:\n  - python=3.11\n",
           ("environment.yml", "'Kiln-foo'", "reserved")),
    _v1("name-curated-prefix-in-v1", '{"name": "Kiln-foo", "python": {}}', (V1_JSON, "'Kiln-foo'", "reserved"),),
    _v2("name-curated-prefix-in-v2", "name: Kiln-foo\nimage: ubuntu:22.04\n", ("env.yml", "'Kiln-foo'", "reserved"),),
]


def _params() -> list[object]:
    return [pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else [])
            for case in CASES]


# ---- the workspace ------------------------------------------------------------------------------


def _kiln(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kiln_cmd(), *args], capture_output=True, text=True, env={**os.environ, **env}, cwd=cwd,
                          timeout=300, check=False)


@dataclass(frozen=True)
class Template:
    path: Path
    listing: str  # `kiln -o json env list` of the workspace


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A workspace made once with the real CLI: `base` with versions 1 and 2, `other` with version 1."""
    root = tmp_path_factory.mktemp("template")
    env = {"KILN_HOME": str(root / "home"), "KILN_CACHE_DIR": str(root / "home" / "cache"), "KILN_WORKSPACE": ""}
    ws = root / "ws"
    steps: list[tuple[str, ...]] = [("workspace", "create", "corpus", "-d", str(ws), "--no-config")]
    (root / "base.yml").write_text(GOOD_CONDA.replace("name: ok", "name: base"), encoding="utf-8")
    steps.append(("-w", str(ws), "env", "register", "-d", "base.yml"))
    (root / "base2.yml").write_text(GOOD_CONDA.replace("name: ok", "name: base").replace("2.1.0", "2.2.0"),
                                    encoding="utf-8")
    steps.append(("-w", str(ws), "env", "register", "-d", "base2.yml"))
    (root / "requirements.txt").write_text("requests==2.32.3\n", encoding="utf-8")
    steps.append(("-w", str(ws), "env", "register", "-d", "requirements.txt", "-n", "other"))
    for step in steps:
        proc = _kiln(*step, env=env, cwd=root)
        assert proc.returncode == 0, (step, proc.stderr)
    proc = _kiln("-w", str(ws), "-o", "json", "env", "list", env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr
    names = [e["name"] for e in json.loads(proc.stdout)["data"]]
    assert "base" in names and "other" in names
    return Template(ws, proc.stdout)


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the workspace folder (registry.sqlite and any -wal/-shm): content hash and mtime."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir()) if p.is_file()}


def _rows(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        query = "SELECT name, version, hash, definition FROM environments ORDER BY name, version"
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))


# ---- the test -----------------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_format() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30
    for prefix in ("v1-", "v2-", "conda-", "req-", "name-"):
        assert sum(i.startswith(prefix) for i in ids) >= 5, prefix


@pytest.mark.parametrize("case", _params())
def test_malformed_input_is_refused_with_one_line(case: Case, template: Template, tmp_path: Path, run_kiln,
                                                  kiln_home: Path) -> None:  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    shutil.copytree(template.path, ws)
    inputs = tmp_path / "inputs"
    _write(inputs, case.files)
    rows_before = _rows(ws / "registry.sqlite")
    files_before = _files(ws)
    inputs_before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}

    args = ["env", "register", "-d", case.target, *([] if case.name is None else ["-n", case.name])]
    code, out, err = run_kiln(*args, cwd=inputs, env={"KILN_WORKSPACE": str(ws)})

    assert code == 1, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("kiln: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    line = err.rstrip("\n")
    for expected in case.expect:
        assert expected in line, f"{expected!r} not in {line!r}"

    # nothing written: not the workspace, not the inputs, no default workspace under KILN_HOME
    assert _files(ws) == files_before
    assert _rows(ws / "registry.sqlite") == rows_before
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == inputs_before
    assert not (kiln_home / "workspace").exists()
    code, listing, err = run_kiln("-o", "json", "env", "list", env={"KILN_WORKSPACE": str(ws)})
    assert (code, err) == (0, "")
    assert listing == template.listing
