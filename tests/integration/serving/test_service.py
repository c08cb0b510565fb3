"""Local web services end to end: real entry scripts in built environments, a real server process,
real HTTP on 127.0.0.1.

One workspace and one build cache serve the module; each test deploys its own services (the
``deploy`` fixture deletes them, and checks their processes are gone). Loads are bounded in count
and time. The faults (bad bodies, dying workers, timeouts, keys, init() failing) are in
``test_service_faults.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from serving_support import *  # noqa: F403 - the shared fixtures and helpers (see serving_support)
from serving_support import (
    ECHO,
    JSON,
    PY,
    SLOW,
    Deploy,
    alive_pid,
    alive_pid_of,
    definition,
    http,
    metric,
    post,
    wait_for,
    write_source,
)

from kiln import Environment, InferenceConfig, LocalWebservice, Model, Webservice, Workspace
from kiln.errors import DefinitionError, KilnError, NotFoundError
from kiln.serving.webservice import DeploymentFailedError

pytestmark = pytest.mark.integration

# ---- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    """``weights`` versions 1 and 2 (files), ``labels`` version 1 (a file), ``encoder`` version 1 (a folder)."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for version in (1, 2):
        (root / f"v{version}").mkdir()
        (root / f"v{version}" / "model.txt").write_text(f"weights v{version}\n")
        out[f"weights:{version}"] = Model.register(ws, model_path=root / f"v{version}" / "model.txt",
                                                   model_name="weights")
    (root / "labels.json").write_text('["setosa", "versicolor"]')
    out["labels:1"] = Model.register(ws, model_path=root / "labels.json", model_name="labels")
    (root / "enc" / "sub").mkdir(parents=True)
    (root / "enc" / "vocab.txt").write_text("a b c\n")
    (root / "enc" / "sub" / "w.bin").write_bytes(b"\x00\x01")
    out["encoder:1"] = Model.register(ws, model_path=root / "enc", model_name="encoder")
    assert [m.id for m in out.values()] == ["weights:1", "weights:2", "labels:1", "encoder:1"]
    return out


MODEL_PATHS = """\
    import json, os, sys
    from azureml.core.model import Model
    import kiln

    def init():
        global WEIGHTS
        # as Azure ML's samples do: the model's file from its folder
        with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights", "2", "model.txt")) as f:
            WEIGHTS = f.read()

    def run(raw_data):
        ask = json.loads(raw_data)
        path = Model.get_model_path(ask["name"], version=ask.get("version"))
        with open(path) as f:
            content = f.read()
        return {"path": path, "kiln": kiln.Model.get_model_path(ask["name"], ask.get("version")),
                "content": content, "weights_at_init": WEIGHTS, "python": list(sys.version_info[:2])}
"""

# ---- deploy, wait, run ---------------------------------------------------------------------------------------


def test_deploy_wait_run_and_the_routes(deploy: Deploy, ws: Workspace, env: Environment, models: dict[str, Model],
                                        tmp_path: Path) -> None:
    service = deploy("echo", write_source(tmp_path / "src", ECHO), [models["weights:2"]], env, port=None)
    assert isinstance(service, LocalWebservice)
    assert service.state == "Healthy"
    assert service.scoring_uri == f"http://127.0.0.1:{service.port}/score"
    assert service.swagger_uri == f"http://127.0.0.1:{service.port}/swagger.json"
    assert (service.models, service.environment) == (["weights:2"], f"serve-plain:{env.version}")

    answer = service.run(input_data='{"data": [[5.1, 3.5, 1.4, 0.2]]}')
    gen = ws.path / "services" / "echo" / "gen-1"
    assert answer["echo"] == {"data": [[5.1, 3.5, 1.4, 0.2]]} and answer["type"] == "str"
    # one model: its own folder, holding its file, as in Azure ML (AZUREML_MODEL_DIR/<file name>)
    assert answer["model_dir"] == answer["kiln_model_dir"] == str(gen / "models" / "weights" / "2")
    assert answer["files"] == ["model.txt"]
    assert answer["cwd"] == str(gen / "var-azureml-app")  # Azure ML's /var/azureml-app, the source folder in it
    assert answer["inits"] == 1 and answer["python"] == [int(x) for x in PY.split(".")]
    assert service.run({"as": "data"})["echo"] == {"as": "data"}  # not a string: encoded as JSON

    reply = post(service, {"x": [1, 2, 3]})
    assert reply.status == 200 and reply.json()["echo"] == {"x": [1, 2, 3]}
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-ms-run-function-failed"] == "False"
    assert float(reply.headers["x-ms-run-fn-exec-ms"]) >= 0
    # GET /score is run() with the query parameters as a JSON object, as Azure ML's server does
    assert http(service.scoring_uri + "?a=1&b=x").json()["echo"] == {"a": 1, "b": "x"}

    live = http(service.scoring_uri, path="/")
    assert (live.status, live.body) == (200, b"Healthy")
    ready = http(service.scoring_uri, path="/health/ready")
    assert (ready.status, ready.body) == (200, b"Ready")
    assert http(service.swagger_uri).json()["paths"]["/score"]["post"]["operationId"] == "RunMLService"
    missing = http(service.scoring_uri, path="/nope")
    assert missing.status == 404 and "was not found on the server" in missing.json()["message"]

    assert metric(service.scoring_uri, 'kiln_requests_total{route="/score",status="200"}') == 4
    assert metric(service.scoring_uri, "kiln_score_latency_seconds_count") == 4
    assert http(service.scoring_uri, "PUT", b"{}", path="/score").status == 405
    assert metric(service.scoring_uri, "kiln_workers") == 1
    assert "init ran in" in service.get_logs() and 'run got {"as": "data"}' in service.get_logs()
    assert repr(service) == f"LocalWebservice(name='echo', state='Healthy', scoring_uri={service.scoring_uri!r})"


def test_a_port_can_be_chosen(deploy: Deploy, env: Environment, tmp_path: Path) -> None:
    from kiln.serving.deploy import free_port

    port = free_port()
    service = deploy("fixed-port", write_source(tmp_path / "src", ECHO), [], env, port=port)
    assert service.scoring_uri == f"http://127.0.0.1:{port}/score"
    assert http(service.scoring_uri, "POST", "[1]", JSON).json()["echo"] == [1]


def test_deploy_refuses_bad_names_and_unwanted_overwrites(deploy: Deploy, ws: Workspace, env: Environment,
                                                          tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", ECHO)
    config = InferenceConfig(entry_script="score.py", source_directory=source, environment=env)
    with pytest.raises(DefinitionError) as info:
        Model.deploy(ws, "Bad Name!", [], config)
    assert str(info.value) == ("service name: 'Bad Name!' may use only letters, digits, '.', '_' and '-', and must "
                               "start with a letter or digit")
    service = deploy("kept", source, [], env)
    with pytest.raises(DefinitionError) as info:
        Model.deploy(ws, "kept", [], config, overwrite=False)
    assert str(info.value) == "service 'kept' exists already (update it, or deploy with overwrite=True)"
    assert service.serialize()["generation"] == 1 and service.state == "Healthy"
    assert service.serialize()["studioUrl"] == "http://127.0.0.1:8790/services/kept"  # the studio's page for it
    assert [s.name for s in Webservice.list(ws)].count("kept") == 1


def test_several_models_are_laid_out_by_name_and_version(deploy: Deploy, ws: Workspace, env: Environment,
                                                         models: dict[str, Model], tmp_path: Path) -> None:
    chosen = [models["weights:1"], models["weights:2"], models["labels:1"]]
    service = deploy("several", write_source(tmp_path / "src", ECHO), chosen, env)
    answer = service.run({})
    root = ws.path / "services" / "several" / "gen-1" / "models"
    assert answer["model_dir"] == answer["kiln_model_dir"] == str(root)
    assert answer["files"] == ["labels/1/labels.json", "weights/1/model.txt", "weights/2/model.txt"]


def test_get_model_path_inside_an_entry_script(deploy: Deploy, env: Environment, models: dict[str, Model],
                                               tmp_path: Path) -> None:
    chosen = [models["weights:1"], models["weights:2"], models["labels:1"]]
    service = deploy("model-paths", write_source(tmp_path / "src", MODEL_PATHS), chosen, env)
    root = Path(service.run({"name": "labels"})["path"]).parents[2]
    latest = service.run({"name": "weights"})
    assert latest == {"path": str(root / "weights" / "2" / "model.txt"), "kiln": str(root / "weights" / "2" /
                                                                                     "model.txt"),
                      "content": "weights v2\n", "weights_at_init": "weights v2\n",
                      "python": [int(x) for x in PY.split(".")]}
    first = service.run({"name": "weights", "version": 1})
    assert (first["path"], first["content"]) == (str(root / "weights" / "1" / "model.txt"), "weights v1\n")
    assert service.run({"name": "labels"})["content"] == '["setosa", "versicolor"]'
    with pytest.raises(KilnError, match=r"answered 500: .*LookupError: model 'nope' is not deployed here"):
        service.run({"name": "nope"})


def test_get_model_path_with_one_model(deploy: Deploy, env: Environment, models: dict[str, Model],
                                       tmp_path: Path) -> None:
    script = """\
        import json, os
        from azureml.core.model import Model

        def init():
            pass

        def run(raw_data):
            path = Model.get_model_path("labels")
            with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "labels.json")) as f:
                by_env = f.read()
            with open(path) as f:
                return {"path": path, "same": f.read() == by_env, "labels": json.loads(by_env)}
    """
    service = deploy("one-model-path", write_source(tmp_path / "src", script), [models["labels:1"]], env)
    answer = service.run({})
    assert answer["path"].endswith("/models/labels/1/labels.json")
    assert answer["same"] is True and answer["labels"] == ["setosa", "versicolor"]


def test_a_folder_model_keeps_its_folder(deploy: Deploy, env: Environment, models: dict[str, Model],
                                         tmp_path: Path) -> None:
    service = deploy("folder-model", write_source(tmp_path / "src", ECHO), [models["encoder:1"],
                                                                           models["labels:1"]], env)
    assert service.run({})["files"] == ["encoder/1/enc/sub/w.bin", "encoder/1/enc/vocab.txt",
                                        "labels/1/labels.json"]


# ---- lifecycle -----------------------------------------------------------------------------------------------

def test_delete_drains_the_requests_in_flight(deploy: Deploy, ws: Workspace, env: Environment,
                                              tmp_path: Path) -> None:
    service = deploy("drain", write_source(tmp_path / "src", SLOW), [], env, workers=2)
    uri = service.scoring_uri
    server = alive_pid(ws, "drain")
    assert server is not None
    marker = tmp_path / "started"
    request = {"marker": str(marker), "seconds": 1.5}
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(post, service, request)
        wait_for(marker.exists, "the slow request to reach run()")
        service.delete()
        reply = slow.result(timeout=60)
    assert reply.status == 200 and reply.json()["done"] == request
    assert not alive_pid_of(server)
    with pytest.raises(ConnectionRefusedError):
        http(uri, "POST", "{}", JSON)
    with pytest.raises(NotFoundError):
        Webservice(ws, "drain")
    assert not (ws.path / "services" / "drain").exists()


VERSIONED = """\
    import json, os

    def init():
        pass

    def run(raw_data):
        return {"version": VERSION, "pid": os.getpid()}

    VERSION = %d
"""


def load(url: str, *, threads: int, seconds: float, per_thread: int, during: Callable[[], None] | None = None
         ) -> list[list[tuple[int, Any]]]:
    """``threads`` clients POSTing one after the other for about ``seconds`` (at most ``per_thread`` requests
    each), ``during()`` called meanwhile; per client, its (status, answer) in order."""
    stop = threading.Event()

    def client() -> list[tuple[int, Any]]:
        seen: list[tuple[int, Any]] = []
        while not stop.is_set() and len(seen) < per_thread:
            reply = http(url, "POST", "{}", JSON, timeout=30)
            seen.append((reply.status, reply.json() if reply.status == 200 else reply.body))
        return seen

    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client) for _ in range(threads)]
        try:
            if during is not None:
                during()
            while time.monotonic() < deadline and not all(f.done() for f in futures):
                time.sleep(0.05)
        finally:
            stop.set()
        return [f.result(timeout=60) for f in futures]


def test_update_rolls_out_without_dropping_requests(deploy: Deploy, ws: Workspace, env: Environment,
                                                    tmp_path: Path) -> None:
    service = deploy("rollout", write_source(tmp_path / "v1", VERSIONED % 1), [], env, workers=2)
    old_pids = {service.run({})["pid"] for _ in range(10)}
    v2 = InferenceConfig(entry_script="score.py", source_directory=write_source(tmp_path / "v2", VERSIONED % 2),
                         environment=env)

    def update() -> None:
        time.sleep(0.8)
        service.update(inference_config=v2)
        service.wait_for_deployment(timeout_sec=60)

    clients = load(service.scoring_uri, threads=8, seconds=3.0, per_thread=3000, during=update)
    answers = [a for client in clients for a in client]
    assert len(answers) > 8 * 10
    assert [a for a in answers if a[0] != 200] == []
    for client in clients:  # each client sees version 1 then version 2, never back
        versions = [answer["version"] for _, answer in client]
        assert versions == sorted(versions) and versions[-1] == 2
    assert {answer["version"] for _, answer in answers} == {1, 2}
    assert not {answer["pid"] for _, answer in answers if answer["version"] == 2} & old_pids
    assert service.state == "Healthy"
    assert service.serialize()["generation"] == 2
    assert (ws.path / "services" / "rollout" / "gen-2" / "var-azureml-app" / "v2" / "score.py").read_text() == \
        textwrap.dedent(VERSIONED % 2)
    assert not any(alive_pid_of(pid) for pid in old_pids)  # the old workers stopped after draining


def test_an_update_whose_init_fails_keeps_the_old_version(deploy: Deploy, env: Environment, tmp_path: Path) -> None:
    service = deploy("bad-update", write_source(tmp_path / "v1", VERSIONED % 1), [], env)
    broken = write_source(tmp_path / "v2", "def init():\n    raise RuntimeError('v2 cannot start')\n"
                                           "def run(raw_data):\n    return 2\n")
    service.update(inference_config=InferenceConfig("score.py", source_directory=broken, environment=env), wait=False)
    with pytest.raises(DeploymentFailedError, match="update failed: init\\(\\) failed: RuntimeError: v2 cannot "
                                                    "start"):
        service.wait_for_deployment(timeout_sec=60)
    assert service.run({})["version"] == 1
    assert service.state == "Healthy"


def test_reload_runs_init_again(deploy: Deploy, env: Environment, tmp_path: Path) -> None:
    inits = tmp_path / "inits.txt"
    script = f"""\
        import os

        def init():
            with open({str(inits)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")

        def run(raw_data):
            return {{"pid": os.getpid()}}
    """
    service = deploy("reload", write_source(tmp_path / "src", script), [], env)
    first = service.run({})["pid"]
    assert inits.read_text().split() == [str(first)]

    def reload() -> None:
        time.sleep(0.3)
        service.reload()
        service.wait_for_deployment(timeout_sec=60)

    clients = load(service.scoring_uri, threads=4, seconds=1.5, per_thread=1000, during=reload)
    assert all(status == 200 for client in clients for status, _ in client)
    second = service.run({})["pid"]
    assert second != first
    assert inits.read_text().split() == [str(first), str(second)]
    assert service.state == "Healthy"


# ---- other processes --------------------------------------------------------------------------------------


def kiln_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300, check=False)


def test_another_process_sees_the_service(deploy: Deploy, ws: Workspace, env: Environment, tmp_path: Path) -> None:
    service = deploy("seen", write_source(tmp_path / "src", ECHO), [], env)
    proc = kiln_python(f"""\
        import json
        from kiln import Webservice, Workspace

        ws = Workspace({str(ws.path)!r})
        service = Webservice(ws, "seen")
        print(json.dumps({{"list": sorted(s.name for s in Webservice.list(ws)), "state": service.state,
                          "uri": service.scoring_uri, "answer": service.run('{{"from": "elsewhere"}}')["echo"]}}))
    """)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert "seen" in seen["list"]
    assert seen == {"list": seen["list"], "state": "Healthy", "uri": service.scoring_uri,
                    "answer": {"from": "elsewhere"}}


def test_the_service_outlives_the_process_that_deployed_it(deploy: Deploy, ws: Workspace, env: Environment,
                                                           tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", ECHO)
    deploy.adopt("outlives")  # deleted after the test like the others
    proc = kiln_python(f"""\
        import os
        from kiln import Environment, InferenceConfig, LocalWebservice, Model, Workspace

        ws = Workspace({str(ws.path)!r})
        env = Environment.get(ws, {env.name!r}, {env.version!r})
        config = InferenceConfig(entry_script="score.py", source_directory={str(source)!r}, environment=env)
        service = Model.deploy(ws, "outlives", [], config, LocalWebservice.deploy_configuration())
        service.wait_for_deployment()
        print(os.getpid(), service.scoring_uri)
    """)
    assert proc.returncode == 0, proc.stderr
    deployer, uri = proc.stdout.split()
    assert not alive_pid_of(int(deployer))
    service = Webservice(ws, "outlives")
    assert service.state == "Healthy" and service.scoring_uri == uri
    assert service.run({"after": "exit"})["echo"] == {"after": "exit"}


def test_deploy_leaves_no_popen_to_warn_about(deploy: Deploy, env: Environment, tmp_path: Path) -> None:
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        deploy("popen", write_source(tmp_path / "src", ECHO), [], env)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# ---- environments ------------------------------------------------------------------------------------------


def test_an_environment_on_python_3_9(deploy: Deploy, ws: Workspace, models: dict[str, Model],
                                      tmp_path: Path) -> None:
    env39 = ws.register_environment(definition("serve-py39", python="3.9"))
    chosen = [models["weights:1"], models["weights:2"], models["labels:1"]]
    service = deploy("py39", write_source(tmp_path / "src", MODEL_PATHS), chosen, env39)
    answer = service.run({"name": "weights", "version": 1})
    assert answer["python"] == [3, 9]
    assert answer["content"] == "weights v1\n" and answer["weights_at_init"] == "weights v2\n"
    assert answer["path"] == answer["kiln"] and answer["path"].endswith("/models/weights/1/model.txt")
    assert post(service, '{"name": ').status == 400
    assert post(service, {"name": "nope"}).status == 500


SCHEMA = """\
    import numpy as np
    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

    def init():
        pass

    @input_schema("data", NumpyParameterType(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])))
    @output_schema(StandardPythonParameterType({"sum": [6.0, 15.0], "type": "ndarray"}))
    def run(data):
        return {"sum": data.sum(axis=1).tolist(), "type": type(data).__name__}
"""


def test_inference_schema_decorators(deploy: Deploy, ws: Workspace, tmp_path: Path) -> None:
    schema_env = ws.register_environment(definition("serve-schema", "inference-schema[numpy-support]", "numpy"))
    service = deploy("schema", write_source(tmp_path / "src", SCHEMA), [], schema_env)

    swagger = http(service.swagger_uri)
    assert swagger.status == 200
    parameter = swagger.json()["paths"]["/score"]["post"]["parameters"][0]
    assert parameter["in"] == "body"
    data = parameter["schema"]["properties"]["data"]
    assert data["type"] == "array" and data["format"] == "numpy.ndarray"
    assert parameter["schema"]["example"] == {"data": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}

    good = post(service, {"data": [[1, 2, 3], [4, 5, 6]]})
    assert (good.status, good.json()) == (200, {"sum": [6.0, 15.0], "type": "ndarray"})
    for body, headers, status, message in [
        ('{"data": [[1,2,3]]}', {"Content-Type": "text/plain"}, 415, "Expects Content-Type to be application/json"),
        ('{"x": 1}', JSON, 400, "A value is not provided for the 'data' parameter."),
        ("[1, 2, 3]", JSON, 400, "POST body should be a JSON dictionary."),
        ('{"data": ', JSON, 400, "POST body could not be decoded as JSON: Expecting value: line 1 column 10 "
                                 "(char 9)"),
        ("", JSON, 400, "POST body is empty. Expecting a JSON dictionary."),
    ]:
        reply = post(service, body, headers)
        assert (reply.status, reply.json()) == (status, {"message": message}), body
    assert service.run({"data": [[0.5, 0.5, 1]]}) == {"sum": [2.0], "type": "ndarray"}


def test_micro_batching(deploy: Deploy, env: Environment, tmp_path: Path) -> None:
    sizes = tmp_path / "batch-sizes.txt"
    script = f"""\
        import json, time

        def init():
            pass

        def run(raw_data):
            return {{"y": json.loads(raw_data)["x"] * 2, "batch": 0}}

        def run_batch(items):
            with open({str(sizes)!r}, "a") as f:
                f.write(f"{{len(items)}}\\n")
            time.sleep(0.01)
            return [{{"y": json.loads(item)["x"] * 2, "batch": len(items)}} for item in items]
    """
    service = deploy("batching", write_source(tmp_path / "src", script), [], env, batching=True, max_batch_size=8,
                     max_batch_wait_ms=10)

    def client(k: int) -> list[tuple[int, int, Any]]:
        return [(x, *astuple(post(service, {"x": x}))) for x in range(k * 1000, k * 1000 + 25)]

    def astuple(reply: Any) -> tuple[int, Any]:
        return reply.status, reply.json()

    with ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(client, range(16)) for r in rs]
    assert len(results) == 16 * 25
    assert [(x, status) for x, status, _ in results if status != 200] == []
    assert [x for x, _, answer in results if answer["y"] != 2 * x] == []
    # a request that came alone went to run() (batch 0); every other one through run_batch, with company
    batched = [answer for _, _, answer in results if answer["batch"] >= 1]
    assert all(answer["batch"] > 1 for answer in batched)
    recorded = [int(n) for n in sizes.read_text().split()]
    assert sum(recorded) == len(batched) and len(batched) > 16 * 25 // 2
    assert max(recorded) > 1 and max(recorded) <= 8
