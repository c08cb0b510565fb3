"""The ``container`` target (also ``"docker"``): the script runs in the environment's image, through a Docker-API
engine (Docker, or ``podman system service``).

``prepare`` writes the environment's image with Kiln's OCI writer (from the cached build: only new layers
are written) and loads it into the engine. ``start`` runs it with the run's folders bind-mounted at their own
paths, so that ``KILN_RUN_DIR``, ``PYTHONPATH`` and the working folder mean the same inside and out.

Inside, a small launcher (stdlib only, run by the image's interpreter) starts the script in a session of its
own with stdout and stderr on the run's log, as the local target does, forwards SIGTERM to the script's
process group, and writes the script's exact exit code (negative: the signal) next to ``plan.state``: a
container's own status can't tell ``exit(137)`` from SIGKILL.

Choices, as Azure ML makes them: the container has the engine's default network (Azure's docker runs do);
it runs as the image's user. One on purpose: it shares the machine's process namespace (``pid=host``), so the
pids a script reports are this machine's, and a run's processes can be seen and stopped as a local run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kiln._tree import copy_tree
from kiln.errors import KilnError
from kiln.runs.targets.interface import ComputeTarget, RunHandle, RunPlan
from kiln.runs.targets.logfile import read_log

if TYPE_CHECKING:
    from collections.abc import Callable

    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["GRACE_SECONDS", "LABEL", "ContainerHandle", "ContainerTarget", "container_spec", "mounts"]

#: how long a canceled script has between SIGTERM and SIGKILL
GRACE_SECONDS = 5.0
#: the label on every run container: the run's id (``kiln run`` containers can be listed by it)
LABEL = "io.kiln.run"
_FOLLOW_POLL = 0.05
_END_WAIT = 30.0

# Run by the image's interpreter with -I -S (nothing of the environment is imported): LOG EXIT_FILE WORKDIR CMD...
LAUNCHER = """\
import os, signal, subprocess, sys
log, exit_file, cwd, *cmd = sys.argv[1:]
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
proc = subprocess.Popen(cmd, cwd=cwd, stdout=fd, stderr=fd, stdin=subprocess.DEVNULL, start_new_session=True)
def forward(signum, frame):
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
code = proc.wait()
with open(exit_file + ".tmp", "w") as f:
    f.write(str(code))
os.replace(exit_file + ".tmp", exit_file)
sys.exit(code if code >= 0 else 128 - code)
"""


def exit_file(plan: RunPlan) -> Path:
    return plan.state.with_name(plan.state.name + ".exit")


def mounts(plan: RunPlan) -> list[str]:
    """The host folders the container sees at their own paths: the working folder, the run's folder, the log's,
    the state's and the in-run module's; a folder inside another is seen through it."""
    wanted = [plan.workdir, plan.run_dir, plan.log.parent, plan.state.parent]
    if plan.kiln_path is not None:
        wanted.append(plan.kiln_path)
    folders = sorted({os.path.abspath(p) for p in wanted})
    out: list[str] = []
    for folder in folders:
        if not any(folder == kept or folder.startswith(kept.rstrip("/") + "/") for kept in out):
            out.append(folder)
    return out


def program(plan: RunPlan) -> list[str]:
    """The script's command line inside the container: as the local target's (``python`` is the image's)."""
    if plan.command:
        first, *rest = plan.command
        return [plan.python if first in ("python", "python3") else first, *rest]
    return [plan.python, plan.script, *plan.arguments]


def container_spec(plan: RunPlan) -> dict[str, Any]:
    """The keyword arguments of the Docker SDK's ``containers.create`` that run ``plan`` (its ``image`` set)."""
    if plan.image is None:
        raise KilnError(f"run {plan.run_id}: no image to run in (the container target's prepare sets it)")
    workdir = os.path.abspath(plan.workdir)
    return {
        "image": plan.image,
        "command": [plan.python, "-I", "-S", "-c", LAUNCHER, os.path.abspath(plan.log), str(exit_file(plan)),
                    workdir, *program(plan)],
        "working_dir": workdir,
        "environment": dict(plan.variables),
        "volumes": {folder: {"bind": folder, "mode": "rw"} for folder in mounts(plan)},
        "labels": {LABEL: plan.run_id},
        "pid_mode": "host",
        "detach": True,
        # Azure ML's docker.shm_size (default "2g"): an engine's own default /dev/shm is only 64 MB, too small for
        # PyTorch's DataLoader workers
        **({"shm_size": plan.shm_size} if plan.shm_size else {}),
    }


def _engine(url: str | None) -> Any:
    """The Docker SDK's client of the engine at ``url`` (None: Docker's own socket)."""
    from kiln.builds.engine import Engine

    return Engine(url).client


def _engine_problem(url: str | None) -> str | None:
    from kiln.builds.engine import Engine

    return Engine(url).cannot_connect()


#: (image id, path) -> whether the path is in the image: looking costs a container's creation
_IN_IMAGE: dict[tuple[str, str], bool] = {}


def _in_image(client: Any, image: str, path: str) -> bool:
    from docker.errors import NotFound

    from kiln.builds.image import ENV_PREFIX
    from kiln.builds.oci.writer import LABEL as IMAGE_LABEL

    found = client.api.inspect_image(image)
    labels = (found.get("Config") or {}).get("Labels") or {}
    if path == f"{ENV_PREFIX}/bin/python" and f"{IMAGE_LABEL}.lock-hash" in labels:
        return True  # Kiln's writer puts the environment there: no container needed to look
    image_id = str(found["Id"])
    key = (image_id, path)
    if key not in _IN_IMAGE:
        created = client.api.create_container(image_id, command=["true"])
        try:
            client.api.get_archive(created["Id"], path)
            _IN_IMAGE[key] = True
        except NotFound:
            _IN_IMAGE[key] = False
        finally:
            client.api.remove_container(created["Id"], force=True)
    return _IN_IMAGE[key]


class ContainerTarget(ComputeTarget):
    name = "container"

    def __init__(self, *, grace_seconds: float = GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds

    def cannot_run(self, plan: RunPlan) -> str | None:
        try:
            if plan.image is None:
                return "no image to run in: the environment's image is made by the container target's prepare"
            python = str(plan.python)
            if not python or "\0" in python or ("/" in python and not PurePosixPath(python).is_absolute()):
                return (f"the environment's interpreter {python[:200]!r} is neither an absolute path in the image nor "
                        "a command on its PATH")
            if not Path(plan.workdir).is_dir():
                return f"the run's folder {plan.workdir} is not there"
            problem = _engine_problem(plan.engine)
            if problem is not None:
                return problem
            client = _engine(plan.engine)
            from docker.errors import ImageNotFound

            try:
                if "/" in python:  # a command name is looked up on the image's PATH when the container starts
                    if not _in_image(client, plan.image, python):
                        return f"the interpreter {python[:200]} is not in the image {plan.image}"
                else:
                    client.api.inspect_image(plan.image)
            except ImageNotFound:
                return f"the engine has no image {plan.image[:200]} (build it: kiln image build)"
        except Exception as e:  # never raises: the reason is the answer
            return f"the run can't start in a container here: {type(e).__name__}: {str(e)[:300]}"
        return None

    def prepare(self, *, plan: RunPlan, workspace: Workspace, environment: tuple[str, str], settings: Settings,
                say: Callable[[str], None]) -> RunPlan:
        from kiln.builds.oci.engine_image import container_image, image_python

        env = workspace.get_environment(*environment)
        image = container_image(env, workspace, settings=settings, progress=lambda phase, line: say(line))
        return replace(plan, image=image.reference, python=image_python(image), engine=settings.docker_host)

    def start(self, *, plan: RunPlan) -> ContainerHandle:
        client = _engine(plan.engine)
        spec = container_spec(plan)
        with contextlib.suppress(FileNotFoundError):
            exit_file(plan).unlink()  # a run's file: only this start writes it
        spec.pop("detach")
        container = client.containers.create(**spec)
        # who to stop if the supervisor dies: stop_orphan, called from whoever sees it dead
        plan.state.write_text(json.dumps({"engine": plan.engine, "container": container.id}) + "\n")
        container.start()
        return ContainerHandle(client, str(container.id), plan, grace_seconds=self.grace_seconds)

    def stop_orphan(self, *, state: Path) -> None:
        try:
            data = json.loads(state.read_text())
            container_id, url = str(data["container"]), data.get("engine")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return
        with contextlib.suppress(Exception):  # never raises: gone already is what was wanted
            _engine(url).api.remove_container(container_id, force=True)


class ContainerHandle(RunHandle):
    def __init__(self, client: Any, container_id: str, plan: RunPlan, *, grace_seconds: float) -> None:
        self.client = client
        self.container_id = container_id
        self.plan = plan
        self.grace_seconds = grace_seconds
        self._code: int | None = None
        self._canceled = False
        self._status: int | None = None
        self._done = threading.Event()
        threading.Thread(target=self._watch, name=f"kiln-container-{container_id[:12]}", daemon=True).start()

    def _watch(self) -> None:
        """Wait for the container's end on a connection of its own (the handle's may be busy stopping it)."""
        from docker.errors import NotFound

        client = _engine(self.plan.engine)
        try:
            while True:
                try:
                    self._status = int(client.api.wait(self.container_id, timeout=None)["StatusCode"])
                    return
                except NotFound:
                    return  # removed (stop_orphan): it has ended
                except Exception:
                    time.sleep(0.2)  # the engine hiccupped: ask again
        finally:
            self._done.set()
            with contextlib.suppress(Exception):
                client.close()

    @property
    def canceled(self) -> bool:
        return self._canceled

    def wait(self, timeout: float | None = None) -> int | None:
        if self._code is not None:
            return self._code
        if not self._done.wait(timeout):
            return None
        return self._ended()

    def cancel(self) -> None:
        """SIGTERM to the script's process group (through the launcher), SIGKILL after the grace period."""
        if self._code is not None or self._done.is_set():
            self.wait()
            return
        self._canceled = True
        with contextlib.suppress(Exception):  # stopped or removed meanwhile: it has ended
            self.client.api.stop(self.container_id, timeout=max(1, round(self.grace_seconds)))
        if not self._done.wait(_END_WAIT):
            with contextlib.suppress(Exception):
                self.client.api.kill(self.container_id)
            self._done.wait()
        self._ended()

    def alive(self) -> bool:
        return self._code is None and not self._done.is_set()

    def logs(self, *, follow: bool = False) -> Iterator[str]:
        return read_log(self.plan.log, alive=self.alive, follow=follow, poll=_FOLLOW_POLL)

    def _ended(self) -> int:
        if self._code is not None:
            return self._code
        code = self._exit_code()
        self._collect()
        with contextlib.suppress(Exception):
            self.client.api.remove_container(self.container_id, force=True)
        self._code = code
        return code

    def _exit_code(self) -> int:
        """The launcher's record of the script's code; without one (the launcher was killed, or never ran), the
        container's status, a signal's as a negative number."""
        try:
            return int(exit_file(self.plan).read_text().strip())
        except (OSError, ValueError):
            pass
        status = self._status
        if status is None or (self._canceled and status in (137, 143)):
            return -9 if status in (None, 137) else -15
        if not self._canceled:
            self._append_container_output()
        return -(status - 128) if status > 128 else status

    def _append_container_output(self) -> None:
        """What the container printed outside the script (the launcher's or the interpreter's own failure)."""
        with contextlib.suppress(Exception):
            text = self.client.api.logs(self.container_id, stdout=True, stderr=True).decode("utf-8", "replace")
            if text:
                with open(self.plan.log, "a", encoding="utf-8") as log:
                    log.write(text if text.endswith("\n") else text + "\n")

    def _collect(self) -> None:
        if self.plan.outputs is None:
            return
        outputs = Path(self.plan.workdir) / "outputs"
        if outputs.is_dir() and not outputs.is_symlink():
            # kiln._tree's rule, as on the local target: links inside ./outputs stay links, links outside are never
            # read
            tree = copy_tree(outputs, self.plan.outputs)
            if tree.skipped:
                with open(self.plan.log, "a", encoding="utf-8") as log:
                    log.write(f"[kiln] outputs: left out {tree.describe_skipped()}\n")
        elif outputs.is_symlink():
            with open(self.plan.log, "a", encoding="utf-8") as log:
                log.write("[kiln] outputs: left out ./outputs itself (a link; outputs are collected from a folder)\n")
