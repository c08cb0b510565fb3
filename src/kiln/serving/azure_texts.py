"""The fixed texts Azure ML's inference server answers with, word for word.

Clients and tests written against Azure ML's server (``azureml-inference-server-http``) compare these
strings, so Kiln's server gives the same ones (``tests/integration/serving/test_compat_azmlinfsrv.py``
checks them against the real server). Kiln's own answers (auth, payload limit...) are not here.
"""

from __future__ import annotations

__all__ = ["BODY_EMPTY", "BODY_NOT_DICT", "BODY_NOT_JSON", "BODY_NOT_UTF8", "CLIENT_REQUEST_ID_TOO_LONG",
           "HEAD_NOT_ALLOWED", "HEALTHY", "INTERNAL_ERROR", "NEEDS_JSON", "NOT_ALLOWED", "NOT_FOUND",
           "REQUEST_ID_TOO_LONG", "RUN_FAILED", "RUN_FAILED_HEADER", "SWAGGER_VERSION", "SWAGGER_VERSIONS"]

NOT_FOUND = ("The requested URL was not found on the server. If you entered the URL manually please check your "
             "spelling and try again.")
NOT_ALLOWED = "The method is not allowed for the requested URL."
#: HEAD /score, which Azure ML's server answers in its own words
HEAD_NOT_ALLOWED = "Method not allowed"
#: run() raised
RUN_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
#: run() worked, its answer could not be sent (not JSON)
INTERNAL_ERROR = "An unexpected internal error occurred. Check the logs for more info."
HEALTHY = b"Healthy"

#: the header on every scoring answer: did run() fail?
RUN_FAILED_HEADER = b"x-ms-run-function-failed"

REQUEST_ID_TOO_LONG = "x-request-id must not exceed 100 characters"
CLIENT_REQUEST_ID_TOO_LONG = "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"

# inference-schema scripts (run() takes the JSON object's keys as arguments)
NEEDS_JSON = "Expects Content-Type to be application/json"
BODY_EMPTY = "POST body is empty. Expecting a JSON dictionary."
BODY_NOT_JSON = "POST body could not be decoded as JSON: {error}"
BODY_NOT_DICT = "POST body should be a JSON dictionary."
BODY_NOT_UTF8 = "Input cannot be decoded as UTF-8: {error}"

SWAGGER_VERSIONS = ("2", "2.0", "3", "3.0", "3.1")
SWAGGER_VERSION = "Swagger version [{version}] is not valid. Supported versions: [2, 3, 3.1]."
