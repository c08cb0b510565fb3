"""Inside a Kiln deployment without Kiln installed: ``from kiln import Model`` for ``get_model_path``."""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from kiln_model_path import get_model_path as _get_model_path


class Model(object):
    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None):
        return _get_model_path(model_name, version)
