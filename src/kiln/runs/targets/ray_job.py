"""What a Ray job of the ``ray`` target runs on the cluster: ``python -m kiln.runs.targets.ray_job``.

The job's working folder (Ray's ``runtime_env={"working_dir": ...}``) holds ``kiln-job.json`` (the run:
script, arguments, variables, the environment's definition and lock) and ``work.tar`` (the snapshot and
Kiln's in-run module). One tar rather than the folder itself: Ray applies ``.gitignore`` files to a
working folder, and the snapshot already applied the run's own ignore rules.

On the node this program:

1. extracts the tar into a folder of its own (Ray shares an unpacked working folder between jobs with
   the same content: the script must not write into it);
2. builds the environment from the shipped lock with Kiln, in a workspace of the node
   (``$KILN_HOME/ray-node``) and the node's build cache, so that the second run of a lock is a cache
   hit; it never resolves (``locked``): the node installs exactly what the submitter locked;
3. runs the script with that environment's interpreter (which needs no Ray), in the same process
   group, so that Ray's ``stop_job`` (SIGTERM to the job's processes, SIGKILL later) reaches it and
   its children;
4. sends each line the script appends to the run's ``metrics.jsonl`` as a line of its own in the log
   (live metrics), and, after the script's own output, one line with the exit code and a base64 tar of
   ``./outputs`` and the run's folder (uploaded files, child runs): the Jobs API carries only the job's
   log, so that is how they reach the submitter. The submitter (``kiln.runs.targets.ray``) takes these
   lines out of the log.

Everything before the start marker in the job's log is Ray's own text; the markers hold a nonce of the
run, so a script's output can't be mistaken for them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any

from kiln.settings import ENV_RUN_DIR

__all__ = ["JOB_FILE", "MAX_RESULT_BYTES", "WORK_TAR", "main", "marker", "result_marker", "safe_members",
           "start_marker"]

JOB_FILE = "kiln-job.json"
WORK_TAR = "work.tar"
#: what the result line may carry (base64 of a gzip tar); beyond it outputs are left out, with a message
MAX_RESULT_BYTES = 256 * 1024 * 1024
#: how often the run's new metrics lines are sent while the script runs
METRICS_EVERY = 0.25


def start_marker(nonce: str) -> str:
    return f"\x1ekiln-ray {nonce} start\n"


def marker(nonce: str) -> str:
    """What starts each of this program's own lines in the job's log: ``<marker>KIND PAYLOAD\n``, KIND
    ``metrics`` (a line of the run's ``metrics.jsonl``, sent as the script writes it) or ``result``."""
    return f"\x1ekiln-ray {nonce} "


def result_marker(nonce: str) -> str:
    return f"{marker(nonce)}result "


class _MetricsTail(threading.Thread):
    """Sends the lines the script appends to the run's ``metrics.jsonl`` into the log, as they come, so
    that the submitter sees the metrics live (``run.get_metrics()`` while the run runs)."""

    def __init__(self, job: _Job, path: Path) -> None:
        super().__init__(name="kiln-metrics-tail", daemon=True)
        self.job, self.path = job, path
        self.offset = 0
        self.pending = b""
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(METRICS_EVERY):
            self.send()

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.send()

    def send(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            if line.strip():
                self.job.write(f"{marker(self.job.nonce)}metrics ".encode() + line + b"\n")


def safe_members(archive: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """The members that stay inside ``dest``: regular files, folders, and links whose target does too
    (the same rule as ``kiln._tree``: a link that leaves the folder is not made)."""
    root = os.path.realpath(dest)
    kept = []
    for member in archive.getmembers():
        name = member.name
        if os.path.isabs(name) or ".." in Path(name).parts:
            continue
        if member.issym() or member.islnk():
            base = os.path.dirname(os.path.join(root, name)) if member.issym() else root
            target = os.path.realpath(os.path.join(base, member.linkname))
            if os.path.isabs(member.linkname) or os.path.commonpath([root, target]) != root:
                continue
        elif not (member.isfile() or member.isdir()):
            continue
        kept.append(member)
    return kept


def extract(archive_bytes: bytes | Path, dest: Path) -> None:
    """Extract a tar (a file, or bytes of a gzip tar) into ``dest`` keeping only ``safe_members``."""
    dest.mkdir(parents=True, exist_ok=True)
    source = ({"name": archive_bytes} if isinstance(archive_bytes, Path)
              else {"fileobj": io.BytesIO(archive_bytes), "mode": "r:gz"})
    with tarfile.open(**source) as archive:
        members = safe_members(archive, dest)
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, members=members, filter="data")
        else:  # Pythons before the extraction filters: the members were checked above
            archive.extractall(dest, members=members)


class _Job:
    def __init__(self, folder: Path) -> None:
        self.spec: dict[str, Any] = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
        self.folder = folder
        self.nonce = str(self.spec["nonce"])
        self.out = sys.stdout.buffer
        self.stopping = False
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """One write of this program's own (the metrics thread writes too): never split by another."""
        with self.lock:
            self.out.write(data)
            self.out.flush()

    def say(self, message: str) -> None:
        self.write(f"[kiln] {message}\n".encode())

    def on_term(self, signum: int, frame: Any) -> None:
        # Ray sends the signal to the script too: this program waits for it, then ships what it wrote
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        self.write(start_marker(self.nonce).encode())
        root = Path(tempfile.mkdtemp(prefix="kiln-ray-run-"))
        code: int | None = None
        error: str | None = None
        try:
            extract(self.folder / WORK_TAR, root)
            (root / "run").mkdir()
            code = self._script(root)
        except Exception as e:  # reported to the submitter in the result line: the run fails with it
            error = str(e) if type(e).__module__.startswith("kiln") else f"{type(e).__name__}: {e}"
            self.say(f"failed on the node: {error}")
        finally:
            archive = self._archive(root) if code is not None else b""
            shutil.rmtree(root, ignore_errors=True)
            result = {"exit": code, "error": error, "archive": base64.b64encode(archive).decode("ascii")}
            self.write(result_marker(self.nonce).encode() + json.dumps(result).encode() + b"\n")
        return 0 if code == 0 else 1

    def _environment(self) -> tuple[str, dict[str, str]]:
        """The interpreter and variables of the run's environment on this node: built from the lock."""
        shipped = self.spec.get("environment")
        if shipped is None:  # used as it is (a user-managed environment, or the contract's interpreter)
            return str(self.spec["python"]), dict(os.environ)
        from kiln.builds.builder import build_environment
        from kiln.environment.names import is_curated_name
        from kiln.environment.serialize import environment_from_dict
        from kiln.settings import Settings
        from kiln.workspace.workspace import Workspace

        settings = Settings.from_env()
        ws = Workspace.create("ray-node", path=settings.home / "ray-node", exist_ok=True, settings=settings)
        data = json.loads(shipped["definition"])
        # a curated environment's name is reserved in a workspace: the node's copy is named after it
        data["name"] = f"node-{shipped['name']}" if is_curated_name(shipped["name"]) else shipped["name"]
        env = ws.register_environment(environment_from_dict(data, f"the run's environment {shipped['name']}",
                                                            trusted=True))
        assert env.version is not None
        ws.store.add_environment_lock(name=env.name, version=int(env.version), identity=env.hash,
                                      python=shipped["python"], platform=shipped["platform"],
                                      lock_hash=shipped["lock_hash"], content=shipped["lock"])
        result = build_environment(env, ws, settings=settings, locked=True,
                                   progress=lambda phase, message: self.say(message))
        return str(result.python), result.environ()

    def _script(self, root: Path) -> int | None:
        python, environ = self._environment()
        if self.stopping:
            return None
        spec = self.spec
        environ.update(spec.get("variables") or {})
        environ[ENV_RUN_DIR] = str(root / "run")
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "kiln-path"), environ.get("PYTHONPATH"))
                                                if p)
        command = spec.get("command")
        if command:
            first, *rest = command
            cmd = [python if first in ("python", "python3") else first, *rest]
        else:
            cmd = [python, spec["script"], *spec.get("arguments", [])]
        self.out.flush()
        # the same process group as this program: Ray's stop reaches the script and its children
        tail = _MetricsTail(self, root / "run" / "metrics.jsonl")
        tail.start()
        try:
            proc = subprocess.Popen(cmd, cwd=root / "work", env=environ, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            return proc.wait()
        finally:
            tail.stop()  # the last lines too: metrics.jsonl is not in the result's archive

    def _archive(self, root: Path, *, outputs: bool = True) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            run = root / "run"
            if run.is_dir():  # the metrics went line by line already
                tar.add(run, arcname="run", filter=lambda m: None if m.name == "run/metrics.jsonl" else m)
            folder = root / "work" / "outputs"
            if outputs and self.spec.get("collect_outputs") and folder.is_dir() and not folder.is_symlink():
                tar.add(folder, arcname="outputs")
        data = buffer.getvalue()
        if len(data) * 4 // 3 <= MAX_RESULT_BYTES:
            return data
        if outputs:
            self.say(f"outputs: left out ({len(data)} bytes compressed with the run's files: more than the Ray "
                     "target carries back)")
            return self._archive(root, outputs=False)
        self.say(f"the run's files: left out ({len(data)} bytes compressed: more than the Ray target carries back)")
        return b""


def main(argv: list[str] | None = None) -> int:
    del argv
    return _Job(Path.cwd()).run()


if __name__ == "__main__":
    sys.exit(main())
