"""The quickstart's entry script: Azure ML's init()/run() contract, unchanged."""

import json
import os
import pickle

model = None


def init():
    global model
    # AZUREML_MODEL_DIR is the deployed model's folder, as in Azure ML
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as f:
        model = pickle.load(f)


def run(raw_data):
    data = json.loads(raw_data)["data"]
    names = ["setosa", "versicolor", "virginica"]
    return {"predictions": [names[i] for i in model.predict(data)]}
