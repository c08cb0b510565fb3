"""The ``azureml``/``kiln`` stand-ins an entry script imports inside a deployment (``src/kiln/serving/shim``).

The shim's modules are loaded from their files under private names (nothing lands in ``sys.modules``);
what needs the shim's package names (``azureml.core.model``, the shim's own ``kiln``) runs in a
subprocess of a Python without Kiln, its path set up as the worker sets it.

Azure ML's own ``AMLResponse`` (azureml-inference-server-http 1.5.1,
``azureml_inference_server_http/api/aml_response.py``) is the reference:
``AMLResponse(message, status_code, response_headers={}, json_str=False, run_function_failed=False)``;
``json_str`` json-dumps the message and sets ``application/json``; a None message is ``{}`` as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import kiln.serving
from kiln.errors import NotFoundError

SHIM = Path(kiln.serving.__file__).with_name("shim")
#: Kiln's interpreter without Kiln's environment: no ``kiln`` importable but the shim's
BARE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
AML_SIGNATURE = "AMLResponse(message, status_code, response_headers={}, json_str=False, run_function_failed=False)"
SHIM_BUG = ("BUG src/kiln/serving/shim/azureml/contrib/services/aml_response.py:7: the shim's signature is "
            "AMLResponse(message, status_code=200, json_str=False, headers=None), Azure ML's is " + AML_SIGNATURE)


def load(relative: str) -> ModuleType:
    path = SHIM / relative
    spec = importlib.util.spec_from_file_location(f"_kiln_shim_test_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def aml_response() -> Any:
    return load("azureml/contrib/services/aml_response.py").AMLResponse


@pytest.fixture(scope="module")
def aml_request() -> ModuleType:
    return load("azureml/contrib/services/aml_request.py")


@pytest.fixture(scope="module")
def model_path() -> ModuleType:
    return load("kiln_model_path.py")


def in_worker_python(code: str, env: dict[str, str] | None = None, *, first: Path | None = None) -> Any:
    """Run ``code`` as a scoring worker would (the shim last on ``sys.path``; ``first`` before everything);
    the JSON it prints."""
    setup = f"import sys, json\nsys.path.append({str(SHIM)!r})\n"
    if first is not None:
        setup += f"sys.path.insert(0, {str(first)!r})\n"
    full_env = {k: v for k, v in os.environ.items() if k not in ("KILN_MODEL_DIR", "AZUREML_MODEL_DIR")}
    proc = subprocess.run([BARE_PYTHON, "-I", "-c", setup + textwrap.dedent(code)], capture_output=True, text=True,
                          env={**full_env, **(env or {})}, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- AMLResponse -----------------------------------------------------------------------------------------


def test_a_plain_response_carries_status_and_body(aml_response: Any) -> None:
    r = aml_response("custom failure", 503)
    assert (r.status_code, r.get_data(), r.get_data(as_text=True)) == (503, "custom failure", "custom failure")
    assert "Content-Type" not in r.headers  # the server gives it text/html, as Flask would


def test_json_str_serializes_the_message_as_json(aml_response: Any) -> None:
    r = aml_response({"ok": True, "n": [1, 2]}, 201, json_str=True)
    assert r.status_code == 201
    assert json.loads(r.get_data()) == {"ok": True, "n": [1, 2]}
    assert r.headers["Content-Type"] == "application/json"


def test_bytes_bodies_stay_bytes_and_as_text_decodes_them(aml_response: Any) -> None:
    r = aml_response(b"\x89PNG", 200)
    assert r.get_data() == b"\x89PNG"
    assert r.get_data(as_text=True) == "\ufffdPNG"


def test_headers_as_the_third_positional_argument(aml_response: Any) -> None:
    # the form Azure ML's own samples use: AMLResponse(body, 200, {"Content-Type": "image/jpeg"})
    r = aml_response("I am a teapot", 418, {"Content-Type": "text/plain", "X-Custom": "a"})
    assert (r.status_code, r.get_data(as_text=True)) == (418, "I am a teapot")
    assert r.headers.get("Content-Type") == "text/plain"
    assert r.headers.get("X-Custom") == "a"


def test_headers_by_azure_ml_keyword(aml_response: Any) -> None:
    r = aml_response("x", 200, response_headers={"X-Custom": "a"})
    assert r.headers.get("X-Custom") == "a"


def test_run_function_failed_is_accepted(aml_response: Any) -> None:
    assert aml_response("x", 200, run_function_failed=True).status_code == 200


def test_a_none_message_is_an_empty_json_object(aml_response: Any) -> None:
    r = aml_response(None, 200)
    assert (r.get_data(as_text=True), r.headers.get("Content-Type")) == ("{}", "application/json")


def test_json_str_encodes_a_string_message_too(aml_response: Any) -> None:
    assert aml_response("hello", 200, json_str=True).get_data(as_text=True) == '"hello"'


# ---- rawhttp ---------------------------------------------------------------------------------------------


def test_rawhttp_marks_run_and_returns_it(aml_request: ModuleType) -> None:
    def run(request: Any) -> Any:
        return request

    assert aml_request.rawhttp(run) is run
    assert run._kiln_rawhttp is True  # type: ignore[attr-defined]  # what the worker looks for
    assert isinstance(aml_request.AMLRequest, type)


# ---- get_model_path --------------------------------------------------------------------------------------


def files(root: Path, *paths: str) -> Path:
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text(f"# {p}\n")
    return root


@pytest.fixture
def one_model(tmp_path: Path) -> Path:
    """One model deployed: the model folder is the model's own ``<name>/<version>``, holding its file."""
    return files(tmp_path / "models", "sklearn-iris/3/model.pkl") / "sklearn-iris" / "3"


@pytest.fixture
def several_models(tmp_path: Path) -> Path:
    """Several deployed: ``<dir>/<name>/<version>/<file or folder>``; versions compare as numbers."""
    return files(tmp_path / "models", "iris/9/model.pkl", "iris/10/model.pkl", "encoder/1/enc/vocab.txt",
                 "encoder/1/enc/weights.bin")


def test_get_model_path_needs_a_deployment(model_path: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_MODEL_DIR", raising=False)
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    with pytest.raises(LookupError, match="works inside a deployment"):
        model_path.get_model_path("iris")


@pytest.mark.parametrize("variable", ["KILN_MODEL_DIR", "AZUREML_MODEL_DIR"])
def test_one_model_is_the_file_in_the_model_folder(model_path: ModuleType, one_model: Path, variable: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_MODEL_DIR", raising=False)
    monkeypatch.setenv(variable, str(one_model))
    assert model_path.get_model_path("sklearn-iris") == str(one_model / "model.pkl")
    assert model_path.get_model_path("sklearn-iris", 3) == str(one_model / "model.pkl")
    assert model_path.get_model_path("sklearn-iris", "3") == str(one_model / "model.pkl")
    for name, version in (("sklearn-iris", 2), ("other", None)):
        with pytest.raises(LookupError, match="is not deployed here"):
            model_path.get_model_path(name, version)


def test_kiln_model_dir_wins_over_azureml_model_dir(model_path: ModuleType, one_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_MODEL_DIR", str(one_model))
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "elsewhere"))
    assert model_path.get_model_path("sklearn-iris") == str(one_model / "model.pkl")


def test_several_models_by_name_and_version(model_path: ModuleType, several_models: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_MODEL_DIR", str(several_models))
    assert model_path.get_model_path("iris") == str(several_models / "iris" / "10" / "model.pkl")  # 10 > 9
    assert model_path.get_model_path("iris", 9) == str(several_models / "iris" / "9" / "model.pkl")
    assert model_path.get_model_path("encoder") == str(several_models / "encoder" / "1" / "enc")  # a folder
    for name, version in (("iris", 11), ("missing", None)):
        with pytest.raises(LookupError, match="is not deployed here"):
            model_path.get_model_path(name, version)


def test_one_model_folder_with_numbered_subfolders(model_path: ModuleType, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = files(tmp_path / "models", "tf/1/tf/1/saved_model.pb", "tf/1/tf/1/variables/v.index") / "tf" / "1"
    monkeypatch.setenv("KILN_MODEL_DIR", str(root))
    assert model_path.get_model_path("tf") == str(root / "tf")


def test_kilns_model_get_model_path_outside_a_deployment(monkeypatch: pytest.MonkeyPatch,
                                                         several_models: Path) -> None:
    from kiln import Model

    monkeypatch.delenv("KILN_MODEL_DIR", raising=False)
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    with pytest.raises(NotFoundError, match="works inside a deployment"):
        Model.get_model_path("iris")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(several_models))
    assert Model.get_model_path("iris", version=9) == str(several_models / "iris" / "9" / "model.pkl")


# ---- the shim's package names, as a worker imports them ---------------------------------------------------


def test_azureml_and_kiln_stand_ins_find_models(several_models: Path, one_model: Path) -> None:
    code = """\
        from azureml.core.model import Model as AzModel
        from azureml.contrib.services.aml_request import rawhttp, AMLRequest
        from azureml.contrib.services.aml_response import AMLResponse
        import kiln
        from kiln import Model
        print(json.dumps({"az": AzModel.get_model_path("iris"), "az9": AzModel.get_model_path("iris", version=9),
                          "kiln": Model.get_model_path("encoder"), "kiln_file": kiln.__file__,
                          "workspace_arg": AzModel.get_model_path("iris", None, object()),
                          "response": AMLResponse({"a": 1}, 200, json_str=True).get_data()}))
    """
    got = in_worker_python(code, {"AZUREML_MODEL_DIR": str(several_models)})
    assert got == {"az": str(several_models / "iris" / "10" / "model.pkl"),
                   "az9": str(several_models / "iris" / "9" / "model.pkl"),
                   "kiln": str(several_models / "encoder" / "1" / "enc"),
                   "kiln_file": str(SHIM / "kiln" / "__init__.py"),
                   "workspace_arg": str(several_models / "iris" / "10" / "model.pkl"),
                   "response": '{"a": 1}'}
    one = in_worker_python("from azureml.core.model import Model\nprint(json.dumps(Model.get_model_path("
                           "'sklearn-iris')))", {"KILN_MODEL_DIR": str(one_model)})
    assert one == str(one_model / "model.pkl")


def test_an_installed_azureml_wins_over_the_shim(tmp_path: Path) -> None:
    site = files(tmp_path / "site", "azureml/__init__.py", "azureml/core/__init__.py")
    (site / "azureml" / "core" / "model.py").write_text("class Model:\n    origin = 'installed'\n")
    got = in_worker_python("from azureml.core.model import Model\nprint(json.dumps(Model.origin))", first=site)
    assert got == "installed"
