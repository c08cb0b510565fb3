"""``from azureml.core.model import Model``: inside a Kiln deployment, ``Model.get_model_path`` works."""

from kiln_model_path import get_model_path as _get_model_path


class Model(object):
    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None):
        return _get_model_path(model_name, version)
