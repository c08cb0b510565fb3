#!/usr/bin/env python
"""Ask the real Azure ML SDK v1 (azureml-core) what an environment folder means.

Usage:  python probe_load.py FOLDER

Calls ``azureml.core.Environment.load_from_directory(FOLDER)`` and prints to
stdout exactly one JSON document describing what the SDK understood.  Nothing
else is written to stdout or stderr: Python warnings are ignored, and whatever
the SDK logs (>= WARNING) or prints while importing/loading is captured and
reported in the document under "sdk_messages".

Exit codes:
  0  loaded; document describes the environment (or environment reference)
  1  the SDK refused the folder; document is {"error": {...}, ...}
  2  usage error
  3  azureml-core could not be imported

Needs only the standard library and azureml-core (tested with 1.61.0.post4).
Runs on Python 3.8+.
"""
import contextlib
import io
import json
import logging
import sys
import warnings

DOC_VERSION = 1


class _Collect(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self, level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - malformed log call in the SDK
            msg = str(record.msg)
        self.messages.append("%s %s: %s" % (record.levelname, record.name, msg))


def _enum_value(value):
    return getattr(value, "value", value)


def _conda(cd):
    if cd is None:
        return None
    return {
        "python_version": cd.get_python_version(),
        "channels": list(cd.conda_channels),
        "conda_packages": list(cd.conda_packages),
        "pip_packages": list(cd.pip_packages),
        "pip_options": list(cd.pip_options),
        # The whole conda document as plain JSON (keeps name, variables, prefix,
        # and the order of the dependencies list).
        "spec": cd.as_dict(),
    }


def _python(py):
    if py is None:
        return None
    return {
        "user_managed_dependencies": py.user_managed_dependencies,
        "interpreter_path": py.interpreter_path,
        "conda": _conda(py.conda_dependencies),
    }


def _registry(reg):
    if reg is None:
        return None
    ident = getattr(reg, "registry_identity", None)
    return {
        "address": reg.address,
        "username": reg.username,
        "password": reg.password,
        "registry_identity": None if ident is None else {
            "resource_id": ident.resource_id,
            "client_id": ident.client_id,
        },
    }


def _docker(docker):
    if docker is None:
        return None
    bc = docker.build_context
    platform = docker.platform
    return {
        "enabled": docker.enabled,
        "base_image": docker.base_image,
        "base_dockerfile": docker.base_dockerfile,
        "build_context": None if bc is None else {
            "location_type": _enum_value(bc.location_type),
            "location": bc.location,
            "dockerfile_path": bc.dockerfile_path,
        },
        "shared_volumes": docker.shared_volumes,
        "shm_size": docker.shm_size,
        "arguments": docker.arguments,
        "base_image_registry": _registry(docker.base_image_registry),
        "platform": None if platform is None else {
            "os": platform.os,
            "architecture": platform.architecture,
        },
    }


def _spark(spark):
    if spark is None:
        return None
    packages = spark.packages
    return {
        "repositories": spark.repositories,
        "packages": None if packages is None else [
            {"group": p.group, "artifact": p.artifact, "version": p.version} for p in packages
        ],
        "precache_packages": spark.precache_packages,
    }


def _describe(env, serialize):
    kind = type(env).__name__
    doc = {"type": kind, "name": env.name, "version": env.version}
    if kind == "EnvironmentReference":
        return doc
    doc.update({
        "environment_variables": env.environment_variables,
        "python": _python(env.python),
        "docker": _docker(env.docker),
        "spark": _spark(env.spark),
        "databricks": None if env.databricks is None else serialize(env.databricks),
        "r": None if env.r is None else serialize(env.r),
        "inferencing_stack_version": env.inferencing_stack_version,
        "asset_id": env.asset_id,
    })
    return doc


def _error(ex):
    message = getattr(ex, "message", None)
    if not isinstance(message, str):
        message = str(ex)
    return {"type": type(ex).__name__, "message": message}


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: probe_load.py FOLDER\n")
        return 2
    folder = argv[1]

    warnings.simplefilter("ignore")
    collector = _Collect()
    root = logging.getLogger()
    root.addHandler(collector)  # also stops logging's implicit stderr handlers
    root.setLevel(logging.WARNING)

    captured_out, captured_err = io.StringIO(), io.StringIO()
    result, code = None, 0
    with contextlib.redirect_stdout(captured_out), contextlib.redirect_stderr(captured_err):
        try:
            from azureml.core import Environment
            from azureml.core._serialization_utils import _serialize_to_dict
            try:
                from importlib.metadata import version as _dist_version
                sdk_version = _dist_version("azureml-core")
            except Exception:  # pragma: no cover
                sdk_version = None
        except Exception as ex:  # azureml-core missing or broken
            result, code = {"error": _error(ex), "stage": "import"}, 3
        if result is None:
            try:
                env = Environment.load_from_directory(folder)
                result = _describe(env, _serialize_to_dict)
            except Exception as ex:
                result, code = {"error": _error(ex), "stage": "load"}, 1
            result["sdk_version"] = sdk_version

    result["probe_doc_version"] = DOC_VERSION
    messages = list(collector.messages)
    for label, buf in (("stdout", captured_out), ("stderr", captured_err)):
        text = buf.getvalue().strip()
        if text:
            messages.append("%s: %s" % (label, text))
    result["sdk_messages"] = messages

    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=True, default=str) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
