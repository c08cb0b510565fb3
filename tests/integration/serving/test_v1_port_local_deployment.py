"""Azure ML SDK v1's local deployment flow, ported by changing the imports only.

The flow is the one of Azure's "register model and deploy locally (advanced)" notebooks: register a
model, an inference config whose source directory holds extra data that ``init()`` opens by a relative
path (``./source_directory/extradata.json``, as inside Azure's container, where the source directory
is copied to ``/var/azureml-app/<its name>/`` and the working directory is ``/var/azureml-app``), a
local deployment configuration, ``Model.deploy``, ``wait_for_deployment``, ``run``, ``reload`` after
editing ``score.py``, ``update`` with a new inference config, ``get_logs`` and ``delete``. Each cell's
behaviour is asserted. In the notebook the imports are::

    from azureml.core import Workspace, Environment
    from azureml.core.conda_dependencies import CondaDependencies
    from azureml.core.model import InferenceConfig, Model
    from azureml.core.webservice import LocalWebservice
"""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_support import PY, _shared_cache, python_for  # noqa: F401 - the module's build cache

# ---- the ported imports: only these lines differ from the notebook ----
from kiln import CondaDependencies, Environment, InferenceConfig, LocalWebservice, Model, Workspace
from kiln.errors import IgnoredSettingWarning, KilnError, NotFoundError
from kiln.serving.deploy import free_port
from kiln.serving.webservice import DeploymentFailedError

pytestmark = pytest.mark.integration

SCORE = """\
    import json
    import os

    def init():
        global model, extra
        # as in Azure's container: the working folder holds the source directory under its own name
        with open('./source_directory/extradata.json') as f:
            extra = json.load(f)
        with open(os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'model.json')) as f:
            model = json.load(f)
        print('init: loaded', len(model['weights']), 'weights')

    def run(raw_data):
        data = json.loads(raw_data)['data']
        total = sum(w * x for w, x in zip(model['weights'], data[0]))
        return {'version': VERSION, 'score': total * extra['scale'], 'cwd': os.getcwd()}
"""


def score(version: int) -> str:
    return textwrap.dedent(SCORE).replace("VERSION", str(version))


@pytest.fixture
def ws() -> Iterator[Workspace]:
    """``Workspace.from_config()``, the workspace folder inside the project folder (the current one)."""
    created = Workspace.create("mywork")
    created.write_config()
    created.close()
    workspace = Workspace.from_config()
    yield workspace
    for service in LocalWebservice.list(workspace):
        service.delete()
    workspace.close()


@pytest.fixture
def myenv() -> Environment:
    python_for(PY)
    env = Environment(name="myenv")
    env.python.conda_dependencies = CondaDependencies.create(python_version=PY)
    return env


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def test_the_local_deployment_notebook_ports_by_changing_the_imports(ws: Workspace, myenv: Environment) -> None:
    project = Path.cwd()
    # cell: a model file, registered with tags, properties and its framework
    (project / "model.json").write_text(json.dumps({"weights": [1, 2, 3, 4]}))
    model = Model.register(model_path="model.json", model_name="sklearn_regression_model",
                           tags={"area": "diabetes", "type": "regression"}, properties={"auc": "0.9"},
                           description="Ridge regression model", workspace=ws,
                           model_framework=Model.Framework.CUSTOM, model_framework_version="1.0")
    assert (model.name, model.version, model.tags["area"], model.properties) == (
        "sklearn_regression_model", 1, "diabetes", {"auc": "0.9"})
    assert (model.model_framework, model.model_framework_version) == ("Custom", "1.0")

    # cell: the source directory, with extra data next to the entry script's folder
    source = project / "source_directory"
    (source / "x" / "y").mkdir(parents=True)
    (source / "extradata.json").write_text(json.dumps({"scale": 10}))
    (source / "x" / "y" / "score.py").write_text(score(1))
    inference_config = InferenceConfig(source_directory="./source_directory", entry_script="x/y/score.py",
                                       environment=myenv)

    # cell: deploy locally and wait
    port = free_port()
    deployment_config = LocalWebservice.deploy_configuration(port=port)
    local_service = Model.deploy(ws, "test", [model], inference_config, deployment_config)
    local_service.wait_for_deployment()
    assert local_service.state == "Healthy"
    assert local_service.port == port and local_service.scoring_uri == f"http://127.0.0.1:{port}/score"

    # cell: score
    sample_input = json.dumps({"data": [[1, 2, 3, 4]]})
    first = local_service.run(sample_input)
    assert first["version"] == 1 and first["score"] == (1 + 4 + 9 + 16) * 10
    app_root = Path(first["cwd"])
    assert app_root.name == "var-azureml-app"
    assert (app_root / "source_directory" / "x" / "y" / "score.py").read_text() == score(1)

    # cell: edit score.py, reload: the new code answers as soon as reload() returns
    (source / "x" / "y" / "score.py").write_text(score(2))
    local_service.reload()
    assert local_service.run(sample_input)["version"] == 2

    # cell: update with a new inference config (another entry script): served once update() returns
    (source / "score_v3.py").write_text(score(3))
    local_service.update(inference_config=InferenceConfig(source_directory="./source_directory",
                                                          entry_script="score_v3.py", environment=myenv))
    third = local_service.run(sample_input)
    assert third["version"] == 3 and third["score"] == 300
    assert local_service.state == "Healthy"

    # cell: the logs hold what init() printed
    assert "init: loaded 4 weights" in local_service.get_logs()

    # cell: delete
    local_service.delete()
    with pytest.raises(NotFoundError):
        LocalWebservice(ws, "test")
    assert not answers(port)


def test_without_a_source_directory_only_the_entry_script_is_deployed(ws: Workspace, myenv: Environment) -> None:
    (Path.cwd() / "echo_score.py").write_text(textwrap.dedent("""\
        import os

        def init():
            pass

        def run(raw_data):
            return {'files': sorted(os.listdir('.'))}
    """))
    (Path.cwd() / "secret-notes.txt").write_text("not for the service")
    service = Model.deploy(ws, "alone", [], InferenceConfig(entry_script="echo_score.py", environment=myenv),
                           LocalWebservice.deploy_configuration())
    service.wait_for_deployment()
    assert service.run("{}") == {"files": ["echo_score.py"]}


def test_run_during_an_update_waits_for_the_new_code(ws: Workspace, myenv: Environment) -> None:
    source = Path.cwd() / "source_directory"
    source.mkdir()
    (source / "extradata.json").write_text(json.dumps({"scale": 1}))
    (Path.cwd() / "model.json").write_text(json.dumps({"weights": [1]}))
    model = Model.register(ws, "model.json", "tiny")
    (source / "score.py").write_text(score(1))
    config = InferenceConfig(entry_script="score.py", source_directory="./source_directory", environment=myenv)
    service = Model.deploy(ws, "moving", [model], config)
    service.wait_for_deployment()
    (source / "score.py").write_text(score(2))
    service.update(inference_config=config, wait=False)
    # Azure's run() waits while the service is Deploying: the answer comes from the new code
    answer = service.run(json.dumps({"data": [[5]]}))
    assert (answer["version"], answer["score"]) == (2, 5)


def test_reload_brings_a_failed_service_back_once_its_script_is_fixed(ws: Workspace, myenv: Environment) -> None:
    source = Path.cwd() / "src"
    source.mkdir()
    (source / "score.py").write_text("def init():\n    raise RuntimeError('not yet')\n\ndef run(raw_data):\n"
                                     "    return 0\n")
    service = Model.deploy(ws, "phoenix", [], InferenceConfig(entry_script="score.py", source_directory=source,
                                                                environment=myenv))
    with pytest.raises(DeploymentFailedError, match="not yet"):
        service.wait_for_deployment()
    with pytest.raises(KilnError, match="is Failed"):
        service.run("{}")
    (source / "score.py").write_text("def init():\n    pass\n\ndef run(raw_data):\n    return 'back'\n")
    service.reload()
    assert (service.state, service.run("{}")) == ("Healthy", "back")


def test_docker_settings_the_service_cannot_honour_are_said(ws: Workspace, myenv: Environment) -> None:
    (Path.cwd() / "score.py").write_text("def init():\n    pass\n\ndef run(raw_data):\n    return 1\n")
    myenv.docker.enabled = True
    myenv.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    with pytest.warns(IgnoredSettingWarning) as caught:
        service = Model.deploy(ws, "docker", [], InferenceConfig(entry_script="score.py", environment=myenv))
    assert str(caught[0].message) == (
        "service 'docker': environment myenv:1 sets docker.enabled = True, docker.base_image "
        "'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04', which Kiln ignores for now: the service runs in a "
        "local virtual environment built from the definition's Python packages, not in a container image")
    assert caught[0].filename == __file__  # pointed at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredSettingWarning)  # strict: an error, and nothing is deployed
        with pytest.raises(IgnoredSettingWarning):
            Model.deploy(ws, "docker-strict", [], InferenceConfig(entry_script="score.py", environment=myenv))
    assert [s.name for s in LocalWebservice.list(ws)] == ["docker"]
    service.wait_for_deployment()
    assert service.run("{}") == 1
