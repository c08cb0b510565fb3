"""Ray's Jobs API over HTTP, with the standard library: what the ``ray`` target needs of a cluster.

Ray's own client (``ray.job_submission.JobSubmissionClient``) imports all of Ray: 3-10 s on these
machines, for every run's supervisor. The REST API it wraps is small and documented (Ray's "Jobs REST
API"): ``POST /api/jobs/``, ``GET /api/jobs/{id}``, ``GET /api/jobs/{id}/logs``, ``POST
/api/jobs/{id}/stop``, and ``GET``/``PUT /api/packages/gcs/{name}`` for a job's working folder, sent
as a zip named by its SHA-1 (``_ray_pkg_<sha1>.zip``, as Ray's client names packages, so the same
content is uploaded once). Only the cluster's nodes need Ray (``pip install 'kiln[ray]'`` there).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from kiln.errors import KilnError

__all__ = ["TERMINAL", "JobsClient", "RayJobsError"]

#: job states that never change again
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
_TIMEOUT = 60.0
#: how long a submission waits for the head's job agent (it comes up some seconds after the dashboard)
AGENT_WAIT_SECONDS = 60.0


class RayJobsError(KilnError):
    """The cluster's Jobs API refused a request, or could not be reached."""


class JobsClient:
    """The Jobs API of the cluster whose dashboard is at ``address`` (``http://HOST:8265``)."""

    def __init__(self, address: str) -> None:
        self.address = address.rstrip("/")

    def _request(self, method: str, path: str, *, body: bytes | None = None, json_body: Any = None,
                 missing_ok: bool = False, timeout: float = _TIMEOUT) -> bytes | None:
        headers = {}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.address}{path}", data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as e:
            if e.code == 404 and missing_ok:
                return None
            text = e.read().decode("utf-8", errors="replace").strip().splitlines()
            raise RayJobsError(f"Ray cluster {self.address}: {method} {path}: HTTP {e.code}: "
                               f"{(text[-1] if text else e.reason)[:300]}") from None
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise RayJobsError(f"Ray cluster {self.address}: {method} {path}: {reason}") from None

    def version(self, *, timeout: float = _TIMEOUT) -> dict[str, Any]:
        data = self._request("GET", "/api/version", timeout=timeout)
        info: dict[str, Any] = json.loads(data or b"{}")
        return info

    def upload_folder(self, folder: Path) -> str:
        """``folder``'s files as a package of the cluster (uploaded unless it has it): its ``gcs://`` URI."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    zipped.write(path, path.relative_to(folder).as_posix())
        data = buffer.getvalue()
        name = f"_ray_pkg_{hashlib.sha1(data).hexdigest()}.zip"
        if self._request("GET", f"/api/packages/gcs/{name}", missing_ok=True) is None:
            self._request("PUT", f"/api/packages/gcs/{name}", body=data)
        return f"gcs://{name}"

    def submit_job(self, *, entrypoint: str, runtime_env: dict[str, Any] | None = None,
                   metadata: dict[str, str] | None = None) -> str:
        """Submit a job (a local ``working_dir`` in ``runtime_env`` is uploaded first); its submission id.
        Tried again for a while when the head has no job agent yet (a cluster just started)."""
        env = dict(runtime_env or {})
        working_dir = env.get("working_dir")
        if working_dir is not None and "://" not in str(working_dir):
            env["working_dir"] = self.upload_folder(Path(working_dir))
        body = {"entrypoint": entrypoint, "runtime_env": env, "metadata": dict(metadata or {})}
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while True:
            try:
                answer = json.loads(self._request("POST", "/api/jobs/", json_body=body) or b"{}")
                return str(answer["submission_id"])
            except RayJobsError as e:
                if "No available agent" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def job_info(self, job_id: str) -> dict[str, Any]:
        """The job's record: ``status``, ``message``, ``driver_exit_code``..."""
        info: dict[str, Any] = json.loads(self._request("GET", f"/api/jobs/{job_id}") or b"{}")
        return info

    def job_status(self, job_id: str) -> str:
        return str(self.job_info(job_id).get("status"))

    def job_logs(self, job_id: str) -> str:
        return str(json.loads(self._request("GET", f"/api/jobs/{job_id}/logs") or b"{}").get("logs") or "")

    def stop_job(self, job_id: str) -> bool:
        answer = json.loads(self._request("POST", f"/api/jobs/{job_id}/stop") or b"{}")
        return bool(answer.get("stopped"))
