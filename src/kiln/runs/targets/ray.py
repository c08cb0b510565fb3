"""The ``ray`` target: a run is a job of a Ray cluster, submitted through Ray's Jobs API.

The run ships its lock and its snapshot, not a built environment: the job (``kiln.runs.targets.ray_job``,
run with the cluster's Python, where Kiln is installed) builds the environment from the lock on the
node (a cache hit from the second run of the same lock on) and runs the script with that environment's
interpreter, so the user's environment needs no Ray. The submitting side needs no Ray either: it speaks
the Jobs API over HTTP (``ray_client``); the cluster's Python needs Kiln and Ray (``pip install 'kiln[ray]'``).

The job's log is read every ``POLL_SECONDS`` and appended to ``plan.log``, but for the job's own lines
(``ray_job.marker``), which are taken out of it: the metrics the script logs (appended to the run's
``metrics.jsonl`` as they come) and the result (exit code, ``./outputs`` and the run's folder), unpacked
into the run.
``cancel`` is Ray's ``stop_job`` (SIGTERM to the job's processes, SIGKILL after ``STOP_WAIT_SECONDS``).
``plan.state`` holds the cluster's address and the job's id, so any process can stop an orphan.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiln._tree import copy_tree
from kiln.runs.targets.interface import ComputeTarget, RunHandle, RunPlan
from kiln.runs.targets.logfile import read_log
from kiln.runs.targets.ray_client import TERMINAL, JobsClient, RayJobsError
from kiln.runs.targets.ray_job import JOB_FILE, WORK_TAR, extract, marker, start_marker
from kiln.settings import ENV_RUN_DIR

__all__ = ["NODE_HINT", "POLL_SECONDS", "RayHandle", "RayTarget"]

#: what a job that never reached Kiln's program most likely lacks
NODE_HINT = "does the cluster's Python have Kiln? pip install 'kiln[ray]' where the cluster runs"
POLL_SECONDS = 0.2
#: how long a stopped job's processes have between Ray's SIGTERM and its SIGKILL (the local target's grace)
STOP_WAIT_SECONDS = 5
_END_WAIT = 120.0
_PROBE_TIMEOUT = 5.0


class RayTarget(ComputeTarget):
    """A Ray cluster at ``address`` (its dashboard's URL, ``http://HOST:8265``), attached as ``name``."""

    builds_elsewhere = True
    remote = True

    def __init__(self, *, name: str = "ray", address: str) -> None:
        self.name = name
        self.address = address.rstrip("/")

    def cannot_run(self, plan: RunPlan) -> str | None:
        try:
            if not Path(plan.workdir).is_dir():
                return f"the run's folder {plan.workdir} is not there"
            if plan.environment_spec is None:
                # an environment used as it is (user-managed): its interpreter must be there on the nodes too
                python = Path(plan.python)
                if not plan.python or not python.is_absolute() or not python.is_file():
                    return f"the environment's interpreter {plan.python!r} is not there (or can't be run)"
        except (OSError, TypeError, ValueError) as e:
            return f"the run can't start here: {e}"
        try:
            JobsClient(self.address).version(timeout=_PROBE_TIMEOUT)
        except RayJobsError as e:
            return f"{e}: is its head running?"
        return None

    def start(self, *, plan: RunPlan) -> RayHandle:
        nonce = secrets.token_hex(8)
        client = JobsClient(self.address)
        with tempfile.TemporaryDirectory(prefix="kiln-ray-job-", dir=plan.run_dir) as folder:
            job = Path(folder)
            _write_job(job, plan, nonce)
            # STOP_WAIT: the job supervisor's grace between SIGTERM and SIGKILL (it reads its own variables)
            job_id = client.submit_job(entrypoint="python -m kiln.runs.targets.ray_job",
                                       runtime_env={"working_dir": str(job),
                                                    "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_SECONDS)}},
                                       metadata={"kiln_run_id": plan.run_id})
        plan.state.write_text(json.dumps({"address": self.address, "job": job_id}) + "\n")
        return RayHandle(client, job_id, plan, nonce)

    def stop_orphan(self, *, state: Path) -> None:
        try:
            data = json.loads(state.read_text())
            address, job_id = str(data["address"]), str(data["job"])
        except (OSError, ValueError, TypeError, KeyError):
            return
        with contextlib.suppress(RayJobsError):  # a cluster gone, a job ended: nothing left to stop
            JobsClient(address).stop_job(job_id)


def _write_job(job: Path, plan: RunPlan, nonce: str) -> None:
    """``kiln-job.json`` and ``work.tar`` (the run's folder as ``work/``, Kiln's in-run module as ``kiln-path/``)."""
    variables = dict(plan.variables)
    variables.pop(ENV_RUN_DIR, None)  # the node's own folder; PYTHONPATH without this machine's kiln-path
    if plan.kiln_path is not None and "PYTHONPATH" in variables:
        kept = [p for p in variables["PYTHONPATH"].split(os.pathsep) if p and p != str(plan.kiln_path)]
        if kept:
            variables["PYTHONPATH"] = os.pathsep.join(kept)
        else:
            del variables["PYTHONPATH"]
    spec = {"kiln": 1, "nonce": nonce, "run_id": plan.run_id, "script": plan.script,
            "arguments": list(plan.arguments), "command": list(plan.command) if plan.command else None,
            "variables": variables, "python": plan.python, "collect_outputs": plan.outputs is not None,
            "environment": None if plan.environment_spec is None else json.loads(plan.environment_spec)}
    (job / JOB_FILE).write_text(json.dumps(spec), encoding="utf-8")
    with tarfile.open(job / WORK_TAR, "w") as tar:
        # links are stored as links; the node keeps only those that stay inside (ray_job.safe_members)
        tar.add(plan.workdir, arcname="work")
        if plan.kiln_path is not None and Path(plan.kiln_path).is_dir():
            tar.add(plan.kiln_path, arcname="kiln-path")


class RayHandle(RunHandle):
    """A submitted job; a thread follows its log and status until it ends."""

    def __init__(self, client: JobsClient, job_id: str, plan: RunPlan, nonce: str) -> None:
        self.client = client
        self.job_id = job_id
        self.plan = plan
        self.nonce = nonce
        self._canceled = False
        self._code: int | None = None
        self._ended = threading.Event()
        self._seen = 0  # characters of the job's log already looked at
        self._started = False
        self._pending = ""  # log text that may be the start of the result line
        self._result: str | None = None
        self._thread = threading.Thread(target=self._follow, name=f"kiln-ray-{job_id}", daemon=True)
        self._thread.start()

    @property
    def canceled(self) -> bool:
        return self._canceled

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._ended.wait(timeout):
            return None
        return self._code

    def alive(self) -> bool:
        return not self._ended.is_set()

    def cancel(self) -> None:
        if self._ended.is_set():
            return
        self._canceled = True
        with contextlib.suppress(Exception):  # ended meanwhile: the follower sees it
            self.client.stop_job(self.job_id)
        self._ended.wait(STOP_WAIT_SECONDS + _END_WAIT)

    def logs(self, *, follow: bool = False) -> Iterator[str]:
        return read_log(self.plan.log, alive=self.alive, follow=follow, poll=POLL_SECONDS)

    # ---- the follower thread -------------------------------------------------------------------

    def _follow(self) -> None:
        code: int | None = None
        try:
            while True:
                terminal = self._status_is_terminal()
                self._read_log()
                if terminal:
                    break
                time.sleep(POLL_SECONDS)
            code = self._finish()
        except Exception as e:  # the cluster went away: the run fails with that, never hangs
            self._say(f"lost the Ray job {self.job_id}: {type(e).__name__}: {e}")
            code = 1
        finally:
            self._code = code if code is not None else 1
            self._ended.set()

    def _status_is_terminal(self) -> bool:
        return self.client.job_status(self.job_id) in TERMINAL

    def _read_log(self) -> None:
        text = self.client.job_logs(self.job_id)
        new, self._seen = text[self._seen:], len(text)
        if not new or self._result is not None:
            return
        if not self._started:
            start = start_marker(self.nonce)
            self._pending += new
            at = self._pending.find(start)
            if at < 0:
                return
            self._started = True
            new, self._pending = self._pending[at + len(start):], ""
        text = self._pending + new
        prefix = marker(self.nonce)
        while self._result is None:
            at = text.find(prefix)
            if at < 0:
                break
            self._append(text[:at])
            end = text.find("\n", at)
            if end < 0:  # the rest of the line comes with the next read
                self._pending = text[at:]
                return
            kind, _, payload = text[at + len(prefix):end].partition(" ")
            if kind == "metrics":
                self._metric(payload)
            elif kind == "result":
                self._result = payload
            text = text[end + 1:]
        if self._result is not None:
            self._pending = ""
            return
        # keep back what could be the beginning of a marker
        keep = next((n for n in range(min(len(prefix), len(text)), 0, -1) if prefix.startswith(text[-n:])), 0)
        self._append(text[:len(text) - keep])
        self._pending = text[len(text) - keep:]

    def _metric(self, line: str) -> None:
        with open(self.plan.run_dir / "metrics.jsonl", "a", encoding="utf-8") as metrics:
            metrics.write(line + "\n")

    def _append(self, text: str) -> None:
        if text:
            with open(self.plan.log, "a", encoding="utf-8") as log:
                log.write(text)

    def _say(self, message: str) -> None:
        with open(self.plan.log, "a", encoding="utf-8") as log:
            log.write(f"[kiln] {message}\n")

    def _finish(self) -> int:
        """The exit code, once the job has ended: from its result line, or from its status without one."""
        result: dict[str, Any] = {}
        if self._result is not None:
            try:
                result = json.loads(self._result)
            except ValueError:
                self._say("the job's result line was cut: outputs and metrics are lost")
        else:
            self._append(self._pending)
        archive = result.get("archive")
        if archive:
            try:
                self._unpack(base64.b64decode(archive))
            except (binascii.Error, OSError, tarfile.TarError) as e:
                self._say(f"outputs: could not unpack what the node sent ({e})")
        code = result.get("exit")
        if isinstance(code, int):
            return code
        info = self.client.job_info(self.job_id)
        if self._canceled or info.get("status") == "STOPPED":
            return -15  # stopped by Ray's SIGTERM before the script had an exit code of its own
        message = result.get("error") or (info.get("message") or "no exit code came back").splitlines()[0]
        hint = "" if self._started else f" ({NODE_HINT})"
        self._say(f"the Ray job {self.job_id} ended without the script's exit code: {message}{hint}")
        driver = info.get("driver_exit_code")
        return driver if isinstance(driver, int) and driver != 0 else 1

    def _unpack(self, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="kiln-ray-result-", dir=self.plan.run_dir) as folder:
            into = Path(folder)
            extract(data, into)
            outputs = into / "outputs"
            if self.plan.outputs is not None and outputs.is_dir():
                tree = copy_tree(outputs, self.plan.outputs)
                if tree.skipped:
                    self._say(f"outputs: left out {tree.describe_skipped()}")
            run = into / "run"
            if not run.is_dir():
                return
            for sub in ("files", "children"):
                if (run / sub).is_dir():
                    copy_tree(run / sub, self.plan.run_dir / sub)
