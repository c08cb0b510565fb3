"""The ``kiln`` command end to end: the real executable against a real SQLite workspace in a temp folder.

Each test runs in its own folder (the autouse fixture of ``conftest.py``) and asserts exact output
and exit codes: human text by default, the ``{"kiln": 1, "kind", "data"}`` envelope with ``-o json``,
one ``kiln: error: ...`` line on stderr and exit code 1 on failure.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONDA_V1 = """\
# A small training stack.
name: train
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip:
    - scikit-learn==1.5.2
    - numpy==2.1.0
variables:
  OMP_NUM_THREADS: "1"
"""
# version 2 of `train`: NumPy pinned to another version, requests added
CONDA_V2 = CONDA_V1.replace("    - numpy==2.1.0\n", "    - numpy==2.2.0\n    - requests==2.32.3\n")
REQUIREMENTS = "# pinned for the service\n--extra-index-url https://download.example.org/simple\nrequests==2.32.3\n" \
               "numpy>=2.0 ; python_version >= '3.10'\n"
TABLE_COLUMNS = ("VERSION", "PYTHON", "PIP", "HASH")


# ---- helpers --------------------------------------------------------------------------------------


def ok(run_kiln: Any, *args: str, **kwargs: Any) -> str:
    """Run a command that must succeed without a word on stderr; return stdout."""
    code, out, err = run_kiln(*args, **kwargs)
    assert (code, err) == (0, ""), (args, code, out, err)
    return str(out)


def envelope(run_kiln: Any, *args: str, kind: str, **kwargs: Any) -> Any:
    """Run ``kiln -o json ARGS``; check the envelope and return its data."""
    doc = json.loads(ok(run_kiln, "-o", "json", *args, **kwargs))
    assert set(doc) == {"kiln", "kind", "data"}
    assert (doc["kiln"], doc["kind"]) == (1, kind)
    return doc["data"]


def fails(run_kiln: Any, *args: str, **kwargs: Any) -> str:
    """Run a command that must fail as a user error: exit 1, nothing on stdout, one stderr line; return it."""
    code, out, err = run_kiln(*args, **kwargs)
    assert (code, out) == (1, ""), (args, code, out, err)
    assert err.startswith("kiln: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return str(err[len("kiln: error: "):-1])


def register(run_kiln: Any, *args: str, **kwargs: Any) -> Any:
    return envelope(run_kiln, "env", "register", *args, kind="env.register", **kwargs)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def table_line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


@pytest.fixture
def ws(run_kiln: Any) -> Path:
    """A workspace `proj` in ./ws, with .kiln/config.json in the current folder pointing at it."""
    ok(run_kiln, "workspace", "create", "proj", "-d", "ws")
    return Path.cwd() / "ws"


@pytest.fixture
def train(ws: Path, run_kiln: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """`train` registered twice from a conda file: versions 1 and 2 (see CONDA_V2)."""
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    first = register(run_kiln, "-d", "environment.yml")
    Path("environment.yml").write_text(CONDA_V2, encoding="utf-8")
    second = register(run_kiln, "-d", "environment.yml")
    assert (first["version"], second["version"]) == ("1", "2")
    return first, second


# ---- help -----------------------------------------------------------------------------------------

def _commands() -> dict[tuple[str, ...], str]:
    """Every command of the real CLI (groups included) and the first line of its help, found by walking the
    parser, so that a new command is covered too."""
    from kiln.cli.parser import build_parser, commands

    return {path: (parser.description or "").strip().partition("\n")[0]
            for path, parser in commands(build_parser(every=True))}


COMMANDS = _commands()
# what the help of the commands this file tests must mention, beyond its usage line and its summary
HELP_MENTIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("--workspace", "KILN_WORKSPACE", "--output", "--traceback", "--version", "env", "workspace"),
    ("env",): ("scaffold", "register", "list", "show", "download", "diff"),
    ("env", "scaffold"): ("--name", "--directory", "--overwrite"),
    ("env", "register"): ("--directory", "--name", "--format", "detected by content"),
    ("env", "list"): ("--name",),
    ("env", "show"): ("NAME[:VERSION]", "latest version by default"),
    ("env", "download"): ("--name", "--directory", "--version", "--overwrite", "--format", "azureml-v1",
                          "azureml-v2", "conda", "requirements"),
    ("env", "diff"): ("NAME:V1", "NAME:V2"),
    ("workspace",): ("create", "show"),
    ("workspace", "create"): ("--directory", "--no-config", ".kiln/config.json"),
    ("workspace", "show"): (),
}


def test_the_commands_under_test_exist() -> None:
    assert set(HELP_MENTIONS) <= set(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS), ids=[" ".join(c) or "kiln" for c in COMMANDS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command(run_kiln: Any, command: tuple[str, ...], flag: str) -> None:
    summary = COMMANDS[command]
    assert len(summary) > 15, f"{command}: no useful help text"
    out = ok(run_kiln, *command, flag, env={"COLUMNS": "200"})
    assert f"Usage: {' '.join(['kiln', *command])} [OPTIONS]" in out
    assert summary in out
    assert "Example:\n  kiln " in out
    for text in HELP_MENTIONS.get(command, ()):
        assert text in out, text
    assert list(Path.cwd().iterdir()) == []


@pytest.mark.parametrize("command", [(), ("env",), ("workspace",)], ids=["kiln", "env", "workspace"])
def test_a_noun_without_a_command_shows_help_and_exits_1(run_kiln: Any, command: tuple[str, ...]) -> None:
    code, out, _ = run_kiln(*command, env={"COLUMNS": "200"})
    assert code == 1
    assert f"Usage: kiln {' '.join(command)}".replace("  ", " ").rstrip() in out


def test_version(run_kiln: Any) -> None:
    from kiln import __version__

    assert ok(run_kiln, "--version") == f"kiln {__version__}\n"


# ---- workspaces -----------------------------------------------------------------------------------


def test_workspace_create_writes_the_folder_and_the_config(run_kiln: Any) -> None:
    here = Path.cwd()
    out = ok(run_kiln, "workspace", "create", "proj", "-d", "ws")
    assert out == f"Workspace 'proj' at {here / 'ws'}\nConfig written to {here / '.kiln' / 'config.json'}\n"
    assert json.loads((here / "ws" / "workspace.json").read_text()) == {
        "format": 1, "name": "proj", "store": "registry.sqlite"}
    assert json.loads((here / ".kiln" / "config.json").read_text()) == {"workspace": str(here / "ws"), "name": "proj"}

    assert ok(run_kiln, "workspace", "show") == (f"Workspace 'proj' at {here / 'ws'}\n  store         sqlite\n"
                                                  "  environments  0 registered\n")
    assert envelope(run_kiln, "workspace", "show", kind="workspace.show") == {
        "name": "proj", "path": str(here / "ws"), "store": "sqlite", "environments": 0}


def test_workspace_create_again_opens_it_and_json_names_the_config(run_kiln: Any, ws: Path) -> None:
    data = envelope(run_kiln, "workspace", "create", "proj", "-d", "ws", kind="workspace.create")
    assert data == {"name": "proj", "path": str(ws), "store": "sqlite", "blobs": str(ws / "blobs"),
                    "config": str(Path.cwd() / ".kiln" / "config.json"), "registry": None}
    message = fails(run_kiln, "workspace", "create", "other", "-d", "ws")
    assert message == f"{ws}: holds the workspace 'proj', not 'other'"


def test_workspace_create_creates_the_registry(run_kiln: Any) -> None:
    ok(run_kiln, "workspace", "create", "proj", "-d", "ws")
    assert (Path.cwd() / "ws" / "registry.sqlite").is_file()


def test_workspace_create_no_config(run_kiln: Any) -> None:
    out = ok(run_kiln, "workspace", "create", "solo", "--no-config")
    assert out == f"Workspace 'solo' at {Path.cwd() / 'solo'}\n"
    assert (Path.cwd() / "solo" / "workspace.json").is_file()
    assert not (Path.cwd() / ".kiln").exists()


def test_workspace_create_refuses_a_bad_name_and_writes_nothing(run_kiln: Any) -> None:
    message = fails(run_kiln, "workspace", "create", "../up")
    assert message == "workspace name: '../up' must not contain '/', '\\' or '..'"
    assert list(Path.cwd().iterdir()) == []


def test_default_workspace_under_kiln_home(run_kiln: Any, kiln_home: Path) -> None:
    out = ok(run_kiln, "workspace", "show")
    assert out == f"Workspace 'default' at {kiln_home / 'workspace'}\n  store         sqlite\n" \
                  "  environments  0 registered\n"


def test_config_is_found_from_a_subfolder(run_kiln: Any, ws: Path) -> None:
    deep = Path.cwd() / "src" / "pkg" / "deeper"
    deep.mkdir(parents=True)
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    register(run_kiln, "-d", str(Path.cwd() / "environment.yml"), cwd=deep)
    assert ok(run_kiln, "workspace", "show", cwd=deep).startswith(f"Workspace 'proj' at {ws}\n")
    listed = envelope(run_kiln, "env", "list", "--name", "train", kind="env.list")
    assert [(e["name"], e["version"]) for e in listed] == [("train", "1")]


def test_workspace_option_and_environment_variable(run_kiln: Any, ws: Path, kiln_home: Path) -> None:
    ok(run_kiln, "workspace", "create", "second", "-d", "second-ws", "--no-config")
    second = Path.cwd() / "second-ws"
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    envelope(run_kiln, "-w", str(second), "env", "register", "-d", "environment.yml", "-n", "only-in-second",
             kind="env.register")

    def where(*args: str, **kwargs: Any) -> str:
        return str(envelope(run_kiln, *args, "workspace", "show", kind="workspace.show", **kwargs)["name"])

    assert where() == "proj"  # .kiln/config.json of the current folder
    assert where("--workspace", str(second)) == "second"
    assert where("-w", str(Path.cwd() / ".kiln" / "config.json"), cwd=Path.cwd().parent) == "proj"  # a config file
    assert where(env={"KILN_WORKSPACE": str(second)}) == "second"
    assert where("-w", str(ws), env={"KILN_WORKSPACE": str(second)}) == "proj"  # the option wins
    elsewhere = Path.cwd().parent / "elsewhere"
    elsewhere.mkdir()
    assert where(cwd=elsewhere) == "default"  # no config upward: the user's default workspace
    assert where("-w", str(Path.cwd()), cwd=elsewhere) == "proj"  # a folder holding .kiln/config.json

    names = [e["name"] for e in envelope(run_kiln, "env", "list", kind="env.list")]
    assert "only-in-second" not in names
    names = [e["name"] for e in envelope(run_kiln, "env", "list", kind="env.list",
                                         env={"KILN_WORKSPACE": str(second)})]
    assert "only-in-second" in names


def test_a_workspace_option_that_is_no_workspace(run_kiln: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    message = fails(run_kiln, "-w", str(empty), "env", "list")
    assert message == f"{empty}: no Kiln workspace here (no workspace.json or .kiln/config.json)"
    assert list(empty.iterdir()) == []
    message = fails(run_kiln, "env", "list", env={"KILN_WORKSPACE": str(empty)})
    assert message.startswith(f"{empty}: no Kiln workspace here")


# ---- scaffold -------------------------------------------------------------------------------------


def test_scaffold_writes_a_v1_folder_that_registers(run_kiln: Any, ws: Path) -> None:
    out = ok(run_kiln, "env", "scaffold", "-n", "myenv", "-d", "scaf")
    assert out == ("Wrote environment 'myenv' to scaf: azureml_environment.json, conda_dependencies.yml\n"
                   "Edit the files, then: kiln env register -d scaf\n")
    folder = Path.cwd() / "scaf"
    assert sorted(p.name for p in folder.iterdir()) == ["azureml_environment.json", "conda_dependencies.yml"]
    definition = json.loads((folder / "azureml_environment.json").read_text())
    assert definition["name"] == "myenv"
    assert "- python=3.12" in (folder / "conda_dependencies.yml").read_text()

    data = register(run_kiln, "-d", "scaf")
    assert (data["name"], data["version"], data["created"], data["python"]) == ("myenv", "1", True, "3.12")


def test_scaffold_refuses_to_overwrite(run_kiln: Any, ws: Path) -> None:
    ok(run_kiln, "env", "scaffold", "-n", "myenv", "-d", "scaf")
    folder = Path.cwd() / "scaf"
    (folder / "conda_dependencies.yml").write_text("# my edits\nname: x\ndependencies:\n- python=3.10\n")
    before = snapshot(folder)

    message = fails(run_kiln, "env", "scaffold", "-n", "other", "-d", "scaf")
    assert message.startswith("scaf/azureml_environment.json: already exists")
    assert snapshot(folder) == before

    data = envelope(run_kiln, "env", "scaffold", "-n", "other", "-d", "scaf", "--overwrite", kind="env.scaffold")
    assert data == {"name": "other", "directory": str(folder),
                    "files": ["azureml_environment.json", "conda_dependencies.yml"]}
    assert json.loads((folder / "azureml_environment.json").read_text())["name"] == "other"
    assert "# my edits" not in (folder / "conda_dependencies.yml").read_text()


def test_scaffold_refusal_names_the_cli_flag(run_kiln: Any, ws: Path) -> None:
    ok(run_kiln, "env", "scaffold", "-n", "myenv", "-d", "scaf")
    assert "--overwrite" in fails(run_kiln, "env", "scaffold", "-n", "myenv", "-d", "scaf")


def test_scaffold_refuses_a_bad_name(run_kiln: Any, ws: Path) -> None:
    message = fails(run_kiln, "env", "scaffold", "-n", "a/b", "-d", "scaf")
    assert message == "environment name: 'a/b' must not contain '/', '\\' or '..'"
    assert not (Path.cwd() / "scaf").exists()


# ---- register -------------------------------------------------------------------------------------


def test_register_a_v1_folder(run_kiln: Any, ws: Path) -> None:
    shutil.copytree(FIXTURES / "azureml-v1" / "written-by-sdk" / "plain", "sdk-folder")
    out = ok(run_kiln, "env", "register", "-d", "sdk-folder")
    data = envelope(run_kiln, "env", "show", "myenv", kind="env.show")
    assert out == f"Registered myenv version 1 (hash {data['hash'][:12]})\n"
    assert (data["version"], data["python"], data["pip_packages"]) == ("1", "3.8.13", ["azureml-defaults"])
    assert data["base_image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20251130.v1"
    assert data["definition"]["environmentVariables"] == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    # the JSON file itself names the folder too
    again = register(run_kiln, "-d", "sdk-folder/azureml_environment.json")
    assert (again["version"], again["created"], again["hash"]) == ("1", False, data["hash"])


def test_register_a_v2_yaml_with_a_conda_file(run_kiln: Any, ws: Path) -> None:
    # detected by content: neither name says what the files are
    Path("model-env.yaml").write_text((FIXTURES / "azureml-v2" / "conda.yaml").read_text(), encoding="utf-8")
    text = (FIXTURES / "azureml-v2" / "env_image.yml").read_text().replace("conda_file: conda.yaml",
                                                                          "conda_file: model-env.yaml")
    Path("definition.yaml").write_text(text, encoding="utf-8")
    data = register(run_kiln, "-d", "definition.yaml")
    assert (data["name"], data["version"], data["created"], data["python"]) == ("my-env", "1", True, "3.10")
    assert data["base_image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert data["conda_packages"] == ["python=3.10", "numpy", "pip"]
    assert data["pip_packages"] == ["scikit-learn==1.3.0"]
    assert data["description"] == "Environment created from a Docker image plus Conda environment."
    definition = envelope(run_kiln, "env", "show", "my-env:1", kind="env.show")["definition"]
    assert definition["tags"] == {"owner": "me"}
    assert definition["inferenceConfig"]["scoring_route"] == {"port": 5001, "path": "/score"}


def test_register_a_conda_file(run_kiln: Any, ws: Path) -> None:
    Path("deps.yaml").write_text(CONDA_V1, encoding="utf-8")
    out = ok(run_kiln, "env", "register", "-d", "deps.yaml")
    data = envelope(run_kiln, "env", "show", "train", kind="env.show")
    assert out == f"Registered train version 1 (hash {data['hash'][:12]})\n"
    assert data["pip_packages"] == ["scikit-learn==1.5.2", "numpy==2.1.0"]
    assert data["definition"]["environmentVariables"] == {"OMP_NUM_THREADS": "1"}
    assert data["definition"]["python"]["condaDependencies"]["channels"] == ["conda-forge"]
    # -n overrides the file's name
    other = register(run_kiln, "-d", "deps.yaml", "-n", "train-copy")
    assert (other["name"], other["version"], other["created"], other["hash"]) == ("train-copy", "1", True,
                                                                                   data["hash"])


def test_register_a_requirements_file(run_kiln: Any, ws: Path) -> None:
    Path("pins").write_text(REQUIREMENTS, encoding="utf-8")  # no suffix: detected by content
    data = register(run_kiln, "-d", "pins", "-n", "service")
    assert (data["name"], data["version"], data["created"], data["python"]) == ("service", "1", True, "3.12")
    assert data["pip_packages"] == ["requests==2.32.3", "numpy>=2.0 ; python_version >= '3.10'"]
    cd = envelope(run_kiln, "env", "show", "service", kind="env.show")["definition"]["python"]["condaDependencies"]
    assert cd["dependencies"][-1] == {"pip": ["--extra-index-url https://download.example.org/simple",
                                              "requests==2.32.3", "numpy>=2.0 ; python_version >= '3.10'"]}
    assert fails(run_kiln, "env", "register", "-d", "pins") == \
        "pins: a requirements file has no environment name: give one (--name)"


@pytest.mark.parametrize(("fmt", "files", "target"), [
    ("conda", {"spec.txt": CONDA_V1}, "spec.txt"),
    ("requirements", {"reqs.yml": "numpy==2.1.0\n"}, "reqs.yml"),
], ids=["conda-named-txt", "requirements-named-yml"])
def test_register_with_an_explicit_format(run_kiln: Any, ws: Path, fmt: str, files: dict[str, str],
                                          target: str) -> None:
    for name, text in files.items():
        Path(name).write_text(text, encoding="utf-8")
    data = register(run_kiln, "-d", target, "--format", fmt, "-n", "explicit")
    assert (data["name"], data["version"]) == ("explicit", "1")


def test_register_twice_is_unchanged_and_a_change_makes_version_2(run_kiln: Any, ws: Path) -> None:
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    first = register(run_kiln, "-d", "environment.yml")
    assert (first["name"], first["version"], first["created"]) == ("train", "1", True)
    out = ok(run_kiln, "env", "register", "-d", "environment.yml")
    assert out == f"train is unchanged: version 1 (hash {first['hash'][:12]})\n"
    # pin another NumPy and add a package
    Path("environment.yml").write_text(CONDA_V2, encoding="utf-8")
    out = ok(run_kiln, "env", "register", "-d", "environment.yml")
    second = envelope(run_kiln, "env", "show", "train", kind="env.show")
    assert out == f"Registered train version 2 (hash {second['hash'][:12]})\n"
    assert second["hash"] != first["hash"]
    assert register(run_kiln, "-d", "environment.yml")["created"] is False
    # going back to the first definition is a new version too: versions only grow
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    third = register(run_kiln, "-d", "environment.yml")
    assert (third["version"], third["created"], third["hash"]) == ("3", True, first["hash"])


def test_register_refuses_the_curated_prefix(run_kiln: Any, ws: Path) -> None:
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    before = snapshot(ws)
    message = fails(run_kiln, "env", "register", "-d", "environment.yml", "-n", "Kiln-mine")
    assert message == ("environment name: 'Kiln-mine' starts with 'Kiln-', which is reserved for Kiln's curated "
                       "environments; clone it under another name: env.clone('my-env')")
    assert snapshot(ws) == before
    assert "Kiln-mine" not in [e["name"] for e in envelope(run_kiln, "env", "list", kind="env.list")]


def test_a_refused_registration_creates_no_default_workspace(run_kiln: Any, kiln_home: Path) -> None:
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    fails(run_kiln, "env", "register", "-d", "environment.yml", "-n", "Kiln-mine")
    assert not (kiln_home / "workspace").exists()


# ---- list and show ----------------------------------------------------------------------------------


def test_env_list_table(run_kiln: Any, train: tuple[dict[str, Any], dict[str, Any]]) -> None:
    listed = envelope(run_kiln, "env", "list", kind="env.list")
    names = [e["name"] for e in listed]
    curated = [n for n in names if n.startswith("Kiln-")]
    assert "Kiln-minimal-py311" in curated and len(curated) >= 3
    assert all(e["curated"] for e in listed if e["name"] in curated)
    assert names == sorted(names)
    mine = next(e for e in listed if e["name"] == "train")
    assert (mine["version"], mine["curated"], mine["python"]) == ("2", False, "3.11")

    lines = ok(run_kiln, "env", "list").splitlines()
    widths = [max(len(n) for n in [*names, "NAME"]), 7, 6, 3, 12]
    assert lines[0] == table_line(["NAME", *TABLE_COLUMNS], widths)
    assert len(lines) == 1 + len(listed)
    assert table_line(["train", "2", "3.11", "3", train[1]["hash"][:12]], widths) in lines
    minimal = next(e for e in listed if e["name"] == "Kiln-minimal-py311")
    assert table_line(["Kiln-minimal-py311", "1", "3.11", "0", minimal["hash"][:12]], widths) in lines


def test_env_list_name(run_kiln: Any, train: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = train
    assert ok(run_kiln, "env", "list", "--name", "train") == (
        "NAME   VERSION  PYTHON  PIP  HASH\n"
        f"train  1        3.11    2    {first['hash'][:12]}\n"
        f"train  2        3.11    3    {second['hash'][:12]}\n")
    listed = envelope(run_kiln, "env", "list", "-n", "train", kind="env.list")
    assert [(e["version"], e["hash"]) for e in listed] == [("1", first["hash"]), ("2", second["hash"])]
    assert fails(run_kiln, "env", "list", "--name", "nope") == "no environment 'nope' in workspace 'proj'"


def test_env_list_of_an_empty_workspace_has_the_curated_set(run_kiln: Any, ws: Path) -> None:
    listed = envelope(run_kiln, "env", "list", kind="env.list")
    assert listed and all(e["name"].startswith(("Kiln-", "AzureML-")) and e["curated"] for e in listed)
    # Azure's names are Kiln's re-creations, and say so
    assert all((e["recreation_of"] == e["name"]) == e["name"].startswith("AzureML-") for e in listed)


def test_env_show(run_kiln: Any, train: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = train
    out = ok(run_kiln, "env", "show", "train:1")
    assert out == (
        "train:1\n"
        f"  hash         {first['hash']}\n"
        "  python       3.11\n"
        "  base image   docker.io/library/python:3.12-slim-bookworm\n"
        "  env          OMP_NUM_THREADS=1\n"
        "  conda file:\n"
        "    name: train\n"
        "    channels:\n"
        "    - conda-forge\n"
        "    dependencies:\n"
        "    - python=3.11\n"
        "    - pip:\n"
        "      - scikit-learn==1.5.2\n"
        "      - numpy==2.1.0\n")
    latest = ok(run_kiln, "env", "show", "train")
    assert latest.startswith(f"train:2\n  hash         {second['hash']}\n")
    assert "      - requests==2.32.3\n" in latest
    assert ok(run_kiln, "env", "show", "train:latest") == latest


def test_env_show_json(run_kiln: Any, train: tuple[dict[str, Any], dict[str, Any]]) -> None:
    data = envelope(run_kiln, "env", "show", "train:1", kind="env.show")
    assert {k: v for k, v in data.items() if k != "definition"} == {
        "name": "train", "version": "1", "hash": train[0]["hash"], "curated": False, "python": "3.11",
        "description": None, "conda_packages": ["python=3.11"], "pip_packages": ["scikit-learn==1.5.2", "numpy==2.1.0"],
        "base_image": "docker.io/library/python:3.12-slim-bookworm", "recreation_of": None}
    definition = data["definition"]
    assert (definition["name"], definition["version"]) == ("train", "1")
    assert definition["environmentVariables"] == {"OMP_NUM_THREADS": "1"}
    assert definition["python"]["condaDependencies"] == {
        "name": "train", "channels": ["conda-forge"],
        "dependencies": ["python=3.11", {"pip": ["scikit-learn==1.5.2", "numpy==2.1.0"]}]}
    assert definition["docker"]["baseImage"] == "docker.io/library/python:3.12-slim-bookworm"


def test_env_show_curated(run_kiln: Any, ws: Path) -> None:
    data = envelope(run_kiln, "env", "show", "Kiln-minimal-py311", kind="env.show")
    assert (data["name"], data["version"], data["curated"], data["python"]) == ("Kiln-minimal-py311", "1", True,
                                                                                "3.11")
    assert ok(run_kiln, "env", "show", "Kiln-minimal-py311").startswith(
        f"Kiln-minimal-py311:1\n  hash         {data['hash']}\n")


@pytest.mark.parametrize(("ref", "message"), [
    ("nope", "no environment 'nope' in workspace 'proj'"),
    ("train:7", "environment 'train' has no version 7 (versions: 1..2)"),
    ("train:abc", "'abc' is not a version number (versions are 1, 2, 3...)"),
    ("train:0", "'0' is not a version number (versions are 1, 2, 3...)"),
])
def test_env_show_errors(run_kiln: Any, train: Any, ref: str, message: str) -> None:
    assert fails(run_kiln, "env", "show", ref) == message


# ---- download ---------------------------------------------------------------------------------------

FILES = {"azureml-v1": ["azureml_environment.json", "conda_dependencies.yml"], "azureml-v2": ["env.yml"],
         "conda": ["environment.yml"], "requirements": ["requirements.txt"]}


@pytest.mark.parametrize("fmt", list(FILES))
def test_download_and_register_again_gives_the_same_hash(run_kiln: Any, ws: Path, fmt: str) -> None:
    # A requirements file carries only pip packages and options: start from one, so that every format holds
    # the whole build (Python pin, channels and image are Kiln's defaults).
    Path("requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    source = register(run_kiln, "-d", "requirements.txt", "-n", "service")
    data = envelope(run_kiln, "env", "download", "-n", "service", "-d", "out", "--format", fmt, kind="env.download")
    assert data == {"name": "service", "version": "1", "format": fmt,
                    "files": [str(Path("out") / f) for f in FILES[fmt]]}
    assert sorted(p.name for p in Path("out").iterdir()) == FILES[fmt]

    target = "out" if fmt == "azureml-v1" else str(Path("out") / FILES[fmt][0])
    again = register(run_kiln, "-d", target, "-n", "service-again")
    assert (again["version"], again["created"], again["hash"]) == ("1", True, source["hash"])
    assert again["pip_packages"] == source["pip_packages"]


@pytest.mark.parametrize("fmt", ["azureml-v1", "azureml-v2", "conda"])
def test_download_of_a_conda_environment_round_trips(run_kiln: Any, train: Any, fmt: str) -> None:
    first, _ = train
    out = ok(run_kiln, "env", "download", "-n", "train", "-v", "1", "-d", "out", "--format", fmt)
    files = ", ".join(str(Path("out") / f) for f in FILES[fmt])
    assert out == f"Wrote train:1 ({fmt}) to {files}\n"
    target = "out" if fmt == "azureml-v1" else str(Path("out") / FILES[fmt][0])
    again = register(run_kiln, "-d", target, "-n", f"copy-{fmt}")
    assert again["hash"] == first["hash"]
    assert (again["python"], again["pip_packages"]) == ("3.11", ["scikit-learn==1.5.2", "numpy==2.1.0"])


@pytest.mark.parametrize("fmt", [
    "azureml-v1",
    "azureml-v2",
    "conda",
])
def test_download_keeps_the_environment_variables(run_kiln: Any, train: Any, fmt: str) -> None:
    ok(run_kiln, "env", "download", "-n", "train", "-d", "out", "--format", fmt)
    target = "out" if fmt == "azureml-v1" else str(Path("out") / FILES[fmt][0])
    register(run_kiln, "-d", target, "-n", "copy")
    definition = envelope(run_kiln, "env", "show", "copy", kind="env.show")["definition"]
    assert definition["environmentVariables"] == {"OMP_NUM_THREADS": "1"}
    assert "variables" not in definition["python"]["condaDependencies"]


def test_download_v1_into_the_same_name_is_unchanged(run_kiln: Any, train: Any) -> None:
    ok(run_kiln, "env", "download", "-n", "train", "-d", "out")
    again = register(run_kiln, "-d", "out")
    assert (again["name"], again["version"], again["created"]) == ("train", "2", False)


def test_download_refuses_to_overwrite_and_writes_nothing_on_error(run_kiln: Any, train: Any) -> None:
    ok(run_kiln, "env", "download", "-n", "train", "-d", "out", "--format", "conda")
    before = snapshot(Path("out"))
    assert fails(run_kiln, "env", "download", "-n", "train", "-v", "1", "-d", "out", "--format", "conda") == \
        "out/environment.yml: already exists (pass overwrite=True, or --overwrite, to replace it)"
    assert snapshot(Path("out")) == before
    ok(run_kiln, "env", "download", "-n", "train", "-v", "1", "-d", "out", "--format", "conda", "--overwrite")
    assert "numpy==2.1.0" in Path("out/environment.yml").read_text()

    assert fails(run_kiln, "env", "download", "-n", "nope", "-d", "nothing") == \
        "no environment 'nope' in workspace 'proj'"
    assert fails(run_kiln, "env", "download", "-n", "train", "-v", "9", "-d", "nothing") == \
        "environment 'train' has no version 9 (versions: 1..2)"
    assert not Path("nothing").exists()


def test_download_a_curated_environment(run_kiln: Any, ws: Path) -> None:
    ok(run_kiln, "env", "download", "-n", "Kiln-minimal-py311", "-d", "out", "--format", "conda")
    assert "- python=3.11" in Path("out/environment.yml").read_text()


# ---- diff -------------------------------------------------------------------------------------------


def test_env_diff(run_kiln: Any, train: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = train
    expected = (f"--- train:1  (hash {first['hash'][:12]})\n"
                f"+++ train:2  (hash {second['hash'][:12]})\n"
                "python.pip: ~ numpy: numpy==2.1.0 -> numpy==2.2.0\n"
                "python.pip: + requests==2.32.3\n"
                "different build: the build identity changed\n")
    assert ok(run_kiln, "env", "diff", "train:1", "train:2") == expected
    assert ok(run_kiln, "env", "diff", "train:1", "2") == expected  # just the version
    data = envelope(run_kiln, "env", "diff", "train:1", "train:2", kind="env.diff")
    assert data == {"old": "train:1", "new": "train:2", "old_hash": first["hash"], "new_hash": second["hash"],
                    "same_build": False, "changes": [
                        {"section": "python.pip", "item": "numpy", "kind": "changed", "old": "numpy==2.1.0",
                         "new": "numpy==2.2.0"},
                        {"section": "python.pip", "item": "requests==2.32.3", "kind": "added", "old": None,
                         "new": None}]}
    assert ok(run_kiln, "env", "diff", "train:1", "train:1") == (
        f"--- train:1  (hash {first['hash'][:12]})\n+++ train:1  (hash {first['hash'][:12]})\n"
        "no differences\nsame build: the changes don't change what is built\n")


def test_env_diff_of_changes_that_keep_the_build(run_kiln: Any, ws: Path) -> None:
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    first = register(run_kiln, "-d", "environment.yml")
    Path("environment.yml").write_text(CONDA_V1.replace('"1"', '"4"'), encoding="utf-8")
    second = register(run_kiln, "-d", "environment.yml")
    assert (second["version"], second["hash"]) == ("2", first["hash"])
    assert ok(run_kiln, "env", "diff", "train:1", "train:2") == (
        f"--- train:1  (hash {first['hash'][:12]})\n+++ train:2  (hash {first['hash'][:12]})\n"
        "environment_variables: ~ OMP_NUM_THREADS: 1 -> 4\n"
        "same build: the changes don't change what is built\n")


def test_env_diff_errors(run_kiln: Any, train: Any) -> None:
    assert fails(run_kiln, "env", "diff", "train:1", "train:5") == \
        "environment 'train' has no version 5 (versions: 1..2)"
    assert fails(run_kiln, "env", "diff", "nope:1", "nope:2") == "no environment 'nope' in workspace 'proj'"


# ---- errors, tracebacks and exit codes ----------------------------------------------------------------


def test_traceback_only_when_asked(run_kiln: Any, ws: Path) -> None:
    code, out, err = run_kiln("env", "show", "nope")
    assert (code, out, err) == (1, "", "kiln: error: no environment 'nope' in workspace 'proj'\n")

    code, out, err = run_kiln("--traceback", "env", "show", "nope")
    assert (code, out) == (1, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.rstrip("\n").splitlines()[-1] == \
        "kiln.errors.NotFoundError: no environment 'nope' in workspace 'proj'"

    code, _, err = run_kiln("env", "show", "nope", env={"KILN_DEBUG": "1"})
    assert code == 1
    assert "Traceback (most recent call last):" in err and "NotFoundError" in err


@pytest.mark.parametrize(("args", "message"), [
    (("env", "register"), "the following arguments are required: -d/--directory (see: kiln env register --help)"),
    (("env", "frobnicate"), "no such command 'frobnicate'"),
    (("env", "list", "--bogus"), "no such option: --bogus (see: kiln env list --help)"),
    (("-o", "yaml", "env", "list"), "--output: 'yaml' is not one of text, json"),
    (("env", "download", "-n", "x", "-d", "out", "--format", "zip"),
     "--format: 'zip' is not one of azureml-v1, azureml-v2, conda, requirements"),
    (("env", "show"), "the following arguments are required: NAME[:VERSION]"),
    (("env", "list", "-o", "yaml"), "--output: 'yaml' is not one of text, json"),  # a global option after the noun
], ids=["missing-option", "unknown-command", "unknown-option", "bad-output", "bad-format", "missing-argument",
        "global-option-after-noun"])
def test_usage_errors_exit_1(run_kiln: Any, ws: Path, args: tuple[str, ...], message: str) -> None:
    before = snapshot(Path.cwd())
    code, out, err = run_kiln(*args)
    assert (code, out) == (1, "")
    assert message in err
    assert "Traceback" not in err
    assert snapshot(Path.cwd()) == before


def test_exit_codes(run_kiln: Any, ws: Path) -> None:
    Path("environment.yml").write_text(CONDA_V1, encoding="utf-8")
    assert run_kiln("env", "register", "-d", "environment.yml")[0] == 0
    assert run_kiln("env", "register", "-d", "environment.yml")[0] == 0  # unchanged is success
    assert run_kiln("env", "show", "train")[0] == 0
    assert run_kiln("env", "register", "-d", "missing.yml")[0] == 1
    assert fails(run_kiln, "env", "register", "-d", "missing.yml") == "missing.yml: no such file or folder"
    Path("broken.yml").write_text("name: x\ndependencies:\n  - numpy=>1.2\n", encoding="utf-8")
    assert fails(run_kiln, "env", "register", "-d", "broken.yml") == \
        "broken.yml: dependencies[0]: 'numpy=>1.2' is not a valid conda match spec: unable to parse version spec: =>1.2"
    code, out, err = run_kiln("env", "register", "-d", "broken.yml", "--format", "nope")
    assert (code, out, err) == (1, "", "kiln: error: broken.yml: unknown format 'nope' (known: azureml-v1, azureml-v2, "
                                       "conda, requirements)\n")
