"""``AMLResponse``: a raw HTTP response from ``run()`` (status, headers, body), as in Azure ML."""

import json


class AMLResponse(object):
    def __init__(self, message, status_code=200, response_headers=None, json_str=False, run_function_failed=False,
                 headers=None):
        self.headers = dict(response_headers or headers or {})
        self.status_code = int(status_code)
        self.run_function_failed = bool(run_function_failed)
        if message is None:  # as Azure ML: an empty JSON object
            message, json_str = {}, True
        if json_str:
            self._body = json.dumps(message)
            self.headers.setdefault("Content-Type", "application/json")
        else:
            self._body = message if isinstance(message, (str, bytes)) else json.dumps(message)

    def get_data(self, as_text=False):
        body = self._body
        if as_text and isinstance(body, bytes):
            return body.decode("utf-8", "replace")
        return body
