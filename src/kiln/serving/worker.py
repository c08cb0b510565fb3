"""A scoring worker: runs a user's ``score.py`` (``init()`` once, ``run(raw_data)`` per request).

This file runs inside the user's environment, with its interpreter: standard library only, any
Python from 3.6 on (no annotations, no dataclasses). The server starts it as
``python worker.py ENTRY_SCRIPT`` and speaks a small framed protocol over its stdin/stdout; the
user's own prints go to stderr (the service log), never into the protocol.

The protocol (frames, message kinds) is ``protocol.py``, beside this file.

A worker handles one message at a time; a message may carry several requests (the server sends
what queued up while the worker was busy): ``run()`` is still called once per request, unless the
script defines ``run_batch(list_of_raw_data)`` and the service enables batching (then a message of one
request still goes to ``run()`` when the script has one: batching on costs a lone request nothing).
"""

import importlib.util
import json
import os
import sys
import traceback
from time import perf_counter


def _protocol_beside():
    """Run as a script in the user's environment, where Kiln is not installed: the protocol is the file beside
    this one, loaded under a name of its own. Python put this folder first on sys.path: it comes off, so that
    Kiln's modules (config.py, model.py, protocol.py...) can't shadow what the user's script imports."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]
    spec = importlib.util.spec_from_file_location("kiln_worker_protocol", os.path.join(here, "protocol.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __package__:  # imported as kiln.serving.worker (Kiln's tests)
    from kiln.serving import protocol
else:
    protocol = _protocol_beside()

__all__ = ["Settings", "main"]

# ---- the worker ------------------------------------------------------------------------------------

def _load(entry_script):
    folder = os.path.dirname(os.path.abspath(entry_script))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(entry_script))[0]
    spec = importlib.util.spec_from_file_location(name, entry_script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _error(exc, debug):
    # into the service log, as Azure ML's server does: the answer says "Check the logs"
    sys.stderr.write("run() failed:\n" + traceback.format_exc())
    sys.stderr.flush()
    return json.dumps({"error": "{}: {}".format(type(exc).__name__, exc) if str(exc) else type(exc).__name__,
                       "traceback": traceback.format_exc() if debug else ""}).encode("utf-8")


def _raw_response(value):
    """An AMLResponse (or any object shaped like a Flask/werkzeug response)."""
    status = getattr(value, "status_code", None)
    data = getattr(value, "get_data", None)
    if status is None or not callable(data):
        return None
    body = data()
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    headers = {}
    for key, val in getattr(value, "headers", {}).items():
        headers[str(key)] = str(val)
    return json.dumps({"status": int(status), "headers": headers, "body": body}).encode("utf-8")


def _encode(value):
    raw = _raw_response(value)
    if raw is not None:
        return protocol.RAW_HTTP, raw
    if value is None:  # as Azure ML's server: None is answered {}
        return protocol.OK, b"{}"
    return protocol.OK, json.dumps(value, default=_default).encode("utf-8")


class _Request(object):
    """What a ``@rawhttp`` run() gets: the parts of a Flask request scripts use."""

    def __init__(self, envelope):
        self.method = envelope["method"]
        self.path = envelope["path"]
        self.args = envelope.get("args") or {}
        self.headers = envelope.get("headers") or {}
        self._body = envelope.get("body", "").encode("latin-1")
        self.content_type = self.headers.get("Content-Type") or self.headers.get("content-type")

    def get_data(self, as_text=False, cache=True, parse_form_data=False):
        return self._body.decode("utf-8", "replace") if as_text else self._body

    @property
    def data(self):
        return self._body

    def get_json(self, force=False, silent=False):
        try:
            return json.loads(self._body)
        except ValueError:
            if silent:
                return None
            raise


def _takes_headers(run):
    """Does ``run`` take Azure ML's ``request_headers`` argument?"""
    try:
        import inspect

        return "request_headers" in inspect.signature(run).parameters
    except (TypeError, ValueError):
        return False


def _missing(kwargs, params):
    for name in params or []:
        if name not in kwargs:
            return name
    return None


def _default(value):
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError("run() returned {!r}, which is not JSON serializable".format(type(value).__name__))


def _swagger(module):
    """The inference-schema Swagger document, when the script's run() is decorated with its schemas."""
    run = getattr(module, "run", None)
    try:
        from inference_schema.schema_util import get_input_schema, get_output_schema, is_schema_decorated
    except ImportError:
        return None
    try:
        if not is_schema_decorated(run):
            return None
        schema = get_input_schema(run)
        return {"input": schema, "output": get_output_schema(run),
                "params": list((schema or {}).get("properties", {}).keys())}
    except Exception:  # an odd schema must not stop the service
        return None


class Settings(object):
    """What the server tells the worker (its command line and environment), read once, in ``main``."""

    def __init__(self, entry_script, shim=None, debug=False, batching=False):
        self.entry_script = entry_script
        self.shim = shim
        self.debug = debug
        self.batching = batching

    @classmethod
    def from_env(cls, args, environ):
        return cls(args[0], shim=environ.get(protocol.ENV_WORKER_SHIM) or None,
                   debug=environ.get(protocol.ENV_DEBUG, "") not in ("", "0"),
                   batching=environ.get(protocol.ENV_BATCHING, "") not in ("", "0"))


def _batch_results(run_batch, bodies, debug):
    """One result per body from one ``run_batch`` call; raises what run_batch raised."""
    values = list(run_batch(bodies))
    if len(values) != len(bodies):
        exc = ValueError("run_batch() returned {} results for {} requests".format(len(values), len(bodies)))
        return [(protocol.ERROR, _error(exc, debug))] * len(bodies)
    results = []
    for value in values:
        try:
            results.append(_encode(value))
        except Exception as exc:  # run_batch() worked; this answer can't be sent (not JSON): this request fails
            results.append((protocol.UNENCODABLE, _error(exc, debug)))
    return results


def _run_batch(run_batch, bodies, debug):
    """``run_batch`` on the whole batch; when it raises, on each request alone, so that the one request that
    makes it fail fails, not the strangers batched with it (each caller gets its own answer or its own error)."""
    try:
        return _batch_results(run_batch, bodies, debug)
    except Exception as exc:
        if len(bodies) == 1:
            return [(protocol.ERROR, _error(exc, debug))]
        sys.stderr.write("run_batch() failed on a batch of {} ({}): running each request alone\n".format(
            len(bodies), type(exc).__name__))
        sys.stderr.flush()
    results = []
    for body in bodies:
        try:
            results.extend(_batch_results(run_batch, [body], debug))
        except Exception as exc:
            results.append((protocol.ERROR, _error(exc, debug)))
    return results


def _send(stream, kind, info):
    protocol.write_all(stream, protocol.frame(kind + json.dumps(info).encode("utf-8")))


def main(argv=None):
    settings = Settings.from_env(sys.argv[1:] if argv is None else argv, os.environ)
    entry_script = settings.entry_script
    debug = settings.debug
    if settings.shim:  # last on the path: azureml.* stand-ins for scripts written for Azure ML (installed packages win)
        sys.path.append(settings.shim)
    # the protocol gets private copies of fd 0 and 1; the user's prints go to stderr (the service log)
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        module = _load(entry_script)
        init = getattr(module, "init", None)
        if callable(init):
            init()
        run = getattr(module, "run", None)
        run_batch = getattr(module, "run_batch", None)
        if not callable(run) and not callable(run_batch):
            raise AttributeError("{} defines no run(raw_data) function".format(entry_script))
    except BaseException as exc:
        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()
        _send(proto_out, protocol.INIT_FAILED, {"error": "{}: {}".format(type(exc).__name__, exc),
                                                 "traceback": traceback.format_exc()})
        return 3
    use_batch = settings.batching and callable(run_batch)
    swagger = _swagger(module)
    params = swagger.pop("params") if swagger else None
    rawhttp = bool(getattr(run, "_kiln_rawhttp", False))
    headers_param = _takes_headers(run)
    _send(proto_out, protocol.HELLO, {"swagger": swagger, "batch": use_batch, "rawhttp": rawhttp, "params": params,
                                      "headers": headers_param})
    while True:
        payload = protocol.read_frame(proto_in)
        if payload is None:
            return 0
        started = perf_counter()
        bodies = [b.decode("utf-8", "replace") for b in protocol.unpack_requests(payload)]
        results = []
        if use_batch and (len(bodies) > 1 or not callable(run)):  # a lone request goes to run(): no batch, no cost
            results = _run_batch(run_batch, bodies, debug)
        else:
            for body in bodies:
                try:
                    if params is not None:  # inference-schema: the JSON object's keys are run()'s arguments
                        kwargs = json.loads(body)
                        missing = _missing(kwargs, params)
                        if missing is not None:
                            message = "A value is not provided for the '{}' parameter.".format(missing)
                            results.append((protocol.RAW_HTTP, json.dumps({"status": 400, "headers": {
                                "Content-Type": "application/json"}, "body": json.dumps({"message": message})})
                                .encode("utf-8")))
                            continue
                        value = run(**{k: v for k, v in kwargs.items() if k in params})
                    elif rawhttp:
                        value = run(_Request(json.loads(body)))
                    elif headers_param:  # run(raw_data, request_headers): the server sent both
                        envelope = json.loads(body)
                        value = run(envelope["body"], request_headers=envelope["headers"])
                    else:
                        value = run(body)
                except Exception as exc:  # the request fails, the worker lives on
                    results.append((protocol.ERROR, _error(exc, debug)))
                    continue
                try:
                    results.append(_encode(value))
                except Exception as exc:  # run() worked; its answer can't be sent (not JSON)
                    results.append((protocol.UNENCODABLE, _error(exc, debug)))
        protocol.write_all(proto_out, protocol.pack_results(results, seconds=perf_counter() - started))


if __name__ == "__main__":
    sys.exit(main())
