"""``kiln model`` and ``kiln service`` end to end: the real command, exact output and exit codes.

Each test has its own workspace (the default one under its own ``KILN_HOME``); the build cache is
shared by the module. Services a test deploys are deleted after it (and checked gone).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving_support import *  # noqa: F403 - the shared fixtures and helpers (see serving_support)
from serving_support import http

from kiln._process import alive
from kiln.serving.deploy import free_port

pytestmark = pytest.mark.integration

RunKiln = Callable[..., tuple[int, str, str]]

SCORE = """\
    import json, os

    def init():
        global WEIGHTS
        with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")) as f:
            WEIGHTS = f.read().strip()
        print("init loaded", WEIGHTS, flush=True)

    def run(raw_data):
        data = json.loads(raw_data)
        if data == "fail":
            raise ValueError("bad input")
        return {"weights": WEIGHTS, "got": data}
"""
ENV_YML = """\
    name: serve-cli
    dependencies:
      - python=3.12
"""


@pytest.fixture
def project(run_kiln: RunKiln) -> Path:
    """The current folder: ``score.py``, ``model.txt`` and ``env.yml``; the environment registered."""
    here = Path.cwd()
    (here / "score.py").write_text(textwrap.dedent(SCORE))
    (here / "model.txt").write_text("weights v1\n")
    (here / "env.yml").write_text(textwrap.dedent(ENV_YML))
    code, out, err = run_kiln("env", "register", "-d", "env.yml")
    assert code == 0, err
    assert out.startswith("Registered serve-cli version 1 ")
    return here


@pytest.fixture(autouse=True)
def _no_service_left(kiln_home: Path) -> Iterator[None]:
    """Whatever a test leaves deployed in its workspace is deleted, and its process must be gone."""
    yield
    from kiln import LocalWebservice
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

    if not Settings.from_env().default_workspace.exists():
        return
    with Workspace.from_config(settings=Settings.from_env()) as ws:
        records = {r.name: r for r in ws.store.list_services()}
        for service in LocalWebservice.list(ws):
            service.delete()
        assert not [n for n, r in records.items() if r.pid is not None and alive(r.pid, r.pid_start)]


def table(*rows: list[str]) -> str:
    """The plain table the CLI prints when not on a terminal."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows)


def one_error(code: int, out: str, err: str) -> str:
    """The one ``kiln: error:`` line of a failed command (exit 1, nothing on stdout), its last line of stderr."""
    assert code == 1, (out, err)
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("kiln: error: ")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    return errors[0]


# ---- kiln model --------------------------------------------------------------------------------------------


def test_model_register_list_download(run_kiln: RunKiln, project: Path) -> None:
    assert run_kiln("model", "register", "model.txt", "--name", "iris", "--tag", "stage=dev") == (
        0, "Registered model iris version 1\n", "")
    assert run_kiln("model", "register", "model.txt", "--name", "iris", "--tag", "stage=dev") == (
        0, "Registered model iris version 1\n", "")  # the same files and tags: the same version
    (project / "model.txt").write_text("weights v2\n")
    assert run_kiln("model", "register", "model.txt", "-n", "iris")[1] == "Registered model iris version 2\n"
    (project / "enc" / "sub").mkdir(parents=True)
    (project / "enc" / "vocab.txt").write_text("a b\n")
    (project / "enc" / "sub" / "w.bin").write_bytes(b"\x00")
    assert run_kiln("model", "register", "enc", "-n", "encoder")[1] == "Registered model encoder version 1\n"

    assert run_kiln("model", "list") == (0, table(["NAME", "VERSION", "FILE", "RUN", "TAGS"],
                                                  ["encoder", "1", "enc", "-", ""],
                                                  ["iris", "1", "model.txt", "-", "stage=dev"],
                                                  ["iris", "2", "model.txt", "-", ""]), "")
    assert run_kiln("model", "list", "--name", "encoder")[1] == table(["NAME", "VERSION", "FILE", "RUN", "TAGS"],
                                                                      ["encoder", "1", "enc", "-", ""])
    code, out, _ = run_kiln("-o", "json", "model", "list", "-n", "iris")
    listed = json.loads(out)
    assert code == 0 and listed["kind"] == "model.list"
    assert [(m["id"], m["tags"]) for m in listed["data"]] == [("iris:1", {"stage": "dev"}), ("iris:2", {})]

    down = project / "down"
    assert run_kiln("model", "download", "iris:1", "-d", str(down)) == (0, f"{down / 'model.txt'}\n", "")
    assert (down / "model.txt").read_text() == "weights v1\n"
    error = one_error(*run_kiln("model", "download", "iris", "-d", str(down)))
    assert error == f"kiln: error: {down / 'model.txt'} already exists (exist_ok=True to replace it)"
    assert run_kiln("model", "download", "iris", "-d", str(down), "--overwrite")[0] == 0
    assert (down / "model.txt").read_text() == "weights v2\n"
    assert run_kiln("model", "download", "encoder", "-d", str(down)) == (0, f"{down / 'enc'}\n", "")
    assert (down / "enc" / "vocab.txt").read_text() == "a b\n" and (down / "enc" / "sub" / "w.bin").exists()

    assert one_error(*run_kiln("model", "download", "nope")) == \
        "kiln: error: no model 'nope' in workspace 'default' (models: encoder, iris)"
    assert one_error(*run_kiln("model", "download", "iris:7")).startswith("kiln: error: no model 'iris' version 7")
    assert one_error(*run_kiln("model", "register", "missing.pkl", "-n", "x")) == \
        "kiln: error: model_path 'missing.pkl' does not exist"


# ---- kiln service -----------------------------------------------------------------------------------------


def test_service_deploy_list_show_call_logs_reload_delete(run_kiln: RunKiln, project: Path) -> None:
    assert run_kiln("model", "register", "model.txt", "--name", "iris")[0] == 0
    port = free_port()
    uri = f"http://127.0.0.1:{port}/score"
    code, out, err = run_kiln("service", "deploy", "--model", "iris", "--entry-script", "score.py", "--env",
                              "serve-cli", "--port", str(port))
    assert (code, out) == (0, f"iris: Healthy at {uri}\n"), err

    assert run_kiln("service", "list") == (0, table(["NAME", "STATE", "SCORING URI", "MODELS", "ENVIRONMENT"],
                                                    ["iris", "Healthy", uri, "iris:1", "serve-cli:1"]), "")
    assert run_kiln("service", "show", "iris") == (0, textwrap.dedent(f"""\
        iris  Healthy
          scoring uri  {uri}
          models       iris:1
          environment  serve-cli:1
          entry script score.py
          workers      1
          auth         off
          generation   1
    """), "")
    code, out, _ = run_kiln("-o", "json", "service", "show", "iris")
    shown = json.loads(out)
    assert (code, shown["kiln"], shown["kind"]) == (0, 1, "service.show")
    assert {k: shown["data"][k] for k in ("name", "state", "scoringUri", "port", "models", "environment")} == {
        "name": "iris", "state": "Healthy", "scoringUri": uri, "port": port, "models": ["iris:1"],
        "environment": "serve-cli:1"}

    assert run_kiln("service", "call", "iris", "--data", '{"data": [1, 2]}') == (
        0, '{"weights": "weights v1", "got": {"data": [1, 2]}}\n', "")
    (project / "request.json").write_text('{"from": "a file"}')
    assert run_kiln("service", "call", "iris", "--data", "@request.json")[1] == \
        '{"weights": "weights v1", "got": {"from": "a file"}}\n'
    assert http(uri, "POST", "[3]", {"Content-Type": "application/json"}).json() == {"weights": "weights v1",
                                                                                      "got": [3]}
    error = one_error(*run_kiln("service", "call", "iris", "--data", '"fail"'))
    assert error == ('kiln: error: service \'iris\' answered 500: {"message": "An unexpected error occurred in scoring '
                     'script. Check the logs for more info.", "error": "ValueError: bad input"}')

    code, out, _ = run_kiln("service", "logs", "iris")
    assert code == 0
    assert re.search(r"^\[kiln\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d serving on " + re.escape(uri) + "$", out, re.M)
    assert out.count("init loaded weights v1\n") == 1
    assert run_kiln("service", "logs", "iris", "--lines", "1")[1].count("\n") == 1

    assert run_kiln("service", "reload", "iris") == (0, "iris: Healthy\n", "")
    assert run_kiln("service", "logs", "iris")[1].count("init loaded weights v1\n") == 2  # init() ran again
    assert "generation   2" in run_kiln("service", "show", "iris")[1]  # on a fresh copy of the source
    assert run_kiln("service", "call", "iris", "--data", "1")[1] == '{"weights": "weights v1", "got": 1}\n'

    # deploying again under the same name updates the service: a new generation, the new model
    (project / "model.txt").write_text("weights v2\n")
    assert run_kiln("model", "register", "model.txt", "--name", "iris")[1] == "Registered model iris version 2\n"
    code, out, err = run_kiln("service", "deploy", "-m", "iris:2", "--entry-script", "score.py", "-e", "serve-cli:1")
    assert (code, out) == (0, f"iris: Healthy at {uri}\n"), err
    assert "generation   3" in run_kiln("service", "show", "iris")[1]
    assert run_kiln("service", "call", "iris", "--data", "2")[1] == '{"weights": "weights v2", "got": 2}\n'

    assert run_kiln("service", "delete", "iris") == (0, "iris: deleted\n", "")
    assert run_kiln("service", "list") == (0, "NAME  STATE  SCORING URI  MODELS  ENVIRONMENT\n", "")
    with pytest.raises(ConnectionRefusedError):
        http(uri)
    assert one_error(*run_kiln("service", "show", "iris")) == \
        "kiln: error: no service 'iris' in workspace 'default' (services: none)"


def test_service_keys(run_kiln: RunKiln, project: Path) -> None:
    assert run_kiln("model", "register", "model.txt", "--name", "iris")[0] == 0
    code, _, err = run_kiln("service", "deploy", "-m", "iris", "--entry-script", "score.py", "-e", "serve-cli",
                            "--name", "guarded", "--auth")
    assert code == 0, err
    code, out, _ = run_kiln("service", "keys", "guarded")
    match = re.fullmatch(r"primary    (\S+)\nsecondary  (\S+)\n", out)
    assert code == 0 and match, out
    primary, secondary = match.groups()
    uri = json.loads(run_kiln("-o", "json", "service", "show", "guarded")[1])["data"]["scoringUri"]

    def status(key: str | None) -> int:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        return http(uri, "POST", "1", headers).status

    assert (status(None), status("wrong"), status(primary), status(secondary)) == (401, 401, 200, 200)
    assert run_kiln("service", "call", "guarded", "--data", "5")[1] == '{"weights": "weights v1", "got": 5}\n'

    code, out, _ = run_kiln("service", "keys", "guarded", "--regen", "primary")
    regenerated = re.fullmatch(r"primary    (\S+)\nsecondary  (\S+)\n", out)
    assert code == 0 and regenerated, out
    new_primary, same_secondary = regenerated.groups()
    assert new_primary != primary and same_secondary == secondary
    assert (status(primary), status(new_primary), status(secondary)) == (401, 200, 200)
    assert one_error(*run_kiln("service", "keys", "guarded", "--regen", "tertiary")) == \
        "kiln: error: regen_key: key must be 'Primary' or 'Secondary', not 'tertiary'"


def test_service_errors(run_kiln: RunKiln, project: Path) -> None:
    assert run_kiln("model", "register", "model.txt", "--name", "iris")[0] == 0
    deploy = ("service", "deploy", "--entry-script", "score.py", "--env", "serve-cli")
    code, out, err = run_kiln(*deploy, "--model", "nope")
    assert one_error(code, out, err) == "kiln: error: no model 'nope' in workspace 'default' (models: iris)"
    assert err.count("\n") == 1
    code, out, err = run_kiln("service", "deploy", "--model", "iris", "--entry-script", "missing.py")
    assert one_error(code, out, err) == \
        f"kiln: error: InferenceConfig: entry_script 'missing.py' not found in {project.resolve()}"
    assert err.count("\n") == 1
    assert one_error(*run_kiln("service", "deploy", "--model", "iris", "--entry-script", "score.py", "--env",
                               "no-such-env")) == "kiln: error: no environment 'no-such-env' in workspace 'default'"
    assert one_error(*run_kiln("service", "deploy", "--entry-script", "score.py")) == \
        "kiln: error: Invalid value for --name: give --name (or at least one --model) (see: kiln service deploy --help)"

    (project / "bad").mkdir()
    (project / "bad" / "score.py").write_text("def init():\n    raise RuntimeError('init exploded')\n"
                                              "def run(raw_data):\n    return raw_data\n")
    code, out, err = run_kiln(*deploy, "--model", "iris", "--name", "broken", "--source-dir", "bad")
    assert one_error(code, out, err) == (
        "kiln: error: service 'broken' deployment failed: init() failed: RuntimeError: init exploded (the whole "
        "story: service.get_logs(), kiln service logs broken)")
    code, out, _ = run_kiln("service", "logs", "broken")
    assert code == 0 and "Traceback (most recent call last):" in out and "RuntimeError: init exploded" in out
    assert run_kiln("service", "list")[1].splitlines()[1].split()[:2] == ["broken", "Failed"]
    assert "  error        init() failed: RuntimeError: init exploded\n" in run_kiln("service", "show", "broken")[1]
    assert run_kiln("service", "reload", "broken")[0] == 1
    assert one_error(*run_kiln("service", "keys", "broken")) == (
        "kiln: error: service 'broken' has no keys: auth is off (to turn it on, deploy it again with --auth: "
        "kiln service deploy --name broken ... --auth)")
    assert run_kiln("service", "delete", "broken") == (0, "broken: deleted\n", "")

    for command in (("show", "ghost"), ("logs", "ghost"), ("call", "ghost", "--data", "{}"), ("keys", "ghost"),
                    ("reload", "ghost"), ("delete", "ghost")):
        assert one_error(*run_kiln("service", *command)) == \
            "kiln: error: no service 'ghost' in workspace 'default' (services: none)", command
