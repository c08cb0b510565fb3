"""``AMLResponse``: a raw HTTP response from ``run()`` (status, headers, body), as in Azure ML."""

import json


class AMLResponse(object):
    def __init__(self, message, status_code=200, json_str=False, headers=None):
        if json_str and not isinstance(message, str):
            message = json.dumps(message)
        self._body = message if isinstance(message, (str, bytes)) else json.dumps(message)
        self.status_code = int(status_code)
        self.headers = dict(headers or {})
        if json_str and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "application/json"

    def get_data(self, as_text=False):
        body = self._body
        if as_text and isinstance(body, bytes):
            return body.decode("utf-8", "replace")
        return body
