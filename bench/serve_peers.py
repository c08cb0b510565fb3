"""The servers ``bench/serve.py`` compares, each wrapping the same predict: how to install, prepare and start them.

Every peer lives in its own venv, made with uv and cached under ``bench/.cache/serve/`` (gitignored; never made by
``make test``), keyed on its pinned packages. Each server gets its recommended production settings:

- azmlinfsrv 1.5.1: its own command (gunicorn, ``--worker_count N``), the entry script as Azure ML runs it.
- MLflow: ``mlflow models serve --env-manager local --workers N`` of a pyfunc "model from code" (FastAPI on
  uvicorn, as ``mlflow models build-docker`` runs it; MLServer, the other option, is deprecated), with
  uvicorn[standard] (uvloop, httptools) installed; its access log stays on (``mlflow models serve`` has no switch).
- BentoML: ``bentoml serve`` (production mode, the default since 1.2) of a ``@bentoml.service(workers=N)``, with
  uvicorn[standard]; its access log off (a documented setting; Kiln writes none); adaptive batching
  (``batchable=True, max_batch_size=32``, default ``max_latency_ms``) for the batching rows.
- Kiln: ``kiln service deploy`` of the entry script (``--batching`` for the batching rows).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["BODY", "FEATURES", "MLFLOW_BODY", "PEERS", "PREDICT", "SKLEARN", "bentoml_service", "entry_script",
           "mlflow_model", "peer_venv"]

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "serve"
SKLEARN = ["scikit-learn==1.9.1", "numpy==2.4.6"]
PEERS = {
    "azmlinfsrv": ["azureml-inference-server-http==1.5.1", *SKLEARN],
    "mlflow": ["mlflow==3.17.2", "uvicorn[standard]==0.54.0", *SKLEARN],
    "bentoml": ["bentoml==1.4.40", "uvicorn[standard]==0.54.0", *SKLEARN],
}
FEATURES = [[5.1, 3.5, 1.4, 0.2]]
BODY = json.dumps({"data": FEATURES})
MLFLOW_BODY = json.dumps({"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": FEATURES}})

#: the one predict every server wraps: rows of 4 features in, one number per row out
PREDICT = '''
import os, pickle

def load_predict(kind, model_dir):
    if kind == "trivial":  # a 4-weight linear model, pure Python
        w0, w1, w2, w3 = 0.4, -0.2, 0.7, 1.1

        def predict(rows):
            return [w0 * r[0] + w1 * r[1] + w2 * r[2] + w3 * r[3] + 0.1 for r in rows]
        return predict
    import numpy as np
    with open(os.path.join(model_dir, "model.pkl"), "rb") as f:
        forest = pickle.load(f)

    def predict(rows):
        return forest.predict(np.asarray(rows, dtype=float)).tolist()
    return predict
'''


def entry_script(kind: str) -> str:
    """The ``score.py`` for azmlinfsrv and Kiln (``run_batch`` is used by Kiln with ``--batching`` only)."""
    return PREDICT + f'''
import json
predict = None

def init():
    global predict
    predict = load_predict({kind!r}, os.environ.get("AZUREML_MODEL_DIR", ""))

def run(raw_data):
    return predict(json.loads(raw_data)["data"])

def run_batch(raws):
    rows = [json.loads(r)["data"] for r in raws]
    flat = predict([x for r in rows for x in r])
    out, i = [], 0
    for r in rows:
        out.append(flat[i:i + len(r)])
        i += len(r)
    return out
'''


def mlflow_model(kind: str, model_dir: Path) -> str:
    """A pyfunc "model from code" (MLflow's recommended way since 2.12) calling the same predict."""
    return PREDICT + f'''
import mlflow
from mlflow.pyfunc import PythonModel

class Scorer(PythonModel):
    def load_context(self, context):
        self.predict_rows = load_predict({kind!r}, {str(model_dir)!r})

    def predict(self, context, model_input, params=None):
        return self.predict_rows(model_input.values.tolist())

mlflow.models.set_model(Scorer())
'''


def bentoml_service(kind: str, model_dir: Path, *, workers: int, batching: bool) -> str:
    """A BentoML 1.4 service calling the same predict; adaptive batching when ``batching``."""
    batch = ", batchable=True, max_batch_size=32" if batching else ""
    return PREDICT + f'''
import bentoml

@bentoml.service(workers={workers}, logging={{"access": {{"enabled": False}}}})
class Scorer:
    def __init__(self):
        self.predict_rows = load_predict({kind!r}, {str(model_dir)!r})

    @bentoml.api(route="/score"{batch})
    def score(self, data: list[list[float]]) -> list:
        return self.predict_rows(data)
'''


def peer_venv(name: str, uv: str, python: str, env: dict[str, str]) -> Path:
    """The peer's venv (made once, then reused): bench/.cache/serve/NAME-HASH, HASH of its pins and Python."""
    packages = PEERS[name]
    key = hashlib.sha256(json.dumps([packages, python, sys.platform]).encode()).hexdigest()[:12]
    venv = CACHE / f"{name}-{key}"
    if (venv / ".complete").exists():
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([uv, "venv", "-q", "--python", python, str(venv)], env=env, check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *packages], env=env,
                   check=True)
    (venv / ".complete").write_text(json.dumps(packages))
    return venv
