"""Where a deployed model is, as Azure ML's ``Model.get_model_path`` answers inside a deployment."""

import os

ENV_MODEL_DIR = "KILN_MODEL_DIR"
AZUREML_MODEL_DIR = "AZUREML_MODEL_DIR"


def get_model_path(model_name, version=None):
    root = os.environ.get(ENV_MODEL_DIR) or os.environ.get(AZUREML_MODEL_DIR)
    if not root:
        raise LookupError("get_model_path works inside a deployment (KILN_MODEL_DIR / AZUREML_MODEL_DIR is not set)")
    # one model: the root is the model's own folder (<name>/<version>), holding its file or folder
    parts = os.path.normpath(root).split(os.sep)
    single = len(parts) >= 2 and parts[-2] == model_name and parts[-1].isdigit()
    if single and (version is None or parts[-1] == str(version)):
        entries = os.listdir(root)
        return os.path.join(root, entries[0]) if len(entries) == 1 else root
    # several models: <root>/<name>/<version>/<file or folder>
    folder = os.path.join(root, model_name)
    if os.path.isdir(folder):
        versions = sorted((v for v in os.listdir(folder) if v.isdigit()), key=int)
        if version is not None:
            versions = [str(version)] if str(version) in versions else []
        if versions:
            chosen = os.path.join(folder, versions[-1])
            entries = os.listdir(chosen)
            return os.path.join(chosen, entries[0]) if len(entries) == 1 else chosen
    raise LookupError("model {!r} is not deployed here ({})".format(model_name, root))
