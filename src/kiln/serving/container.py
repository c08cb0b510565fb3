"""A service deployed into a container: ``python -m kiln.serving.container SERVICE_DIR``, its host side.

Azure ML's local web service is a container; ``deploy_configuration(container=True)`` makes Kiln's one too.
The container runs the environment's image (Kiln's OCI writer's, loaded into the engine) and in it the same
scoring server as a local deployment (``kiln.serving.server --in-container``): the same front, the same
workers, the same answers. Kiln's server code (``kiln``, ``uvicorn``, ``h11``, ``click``: pure Python) is
mounted read-only from this installation, so the image holds the user's environment only; the service's
folder is mounted at its own path, so the deployment's paths (entry script, models, keys) mean the same
inside. The server's port is published on the deployment's host address (127.0.0.1 unless told otherwise).

This process is the service's process as the workspace knows it (its pid is the service's): it starts
the container, appends the container's output to ``server.log``, copies the state the server writes
(``STATE_FILE``) into the workspace's store once the port answers from this machine, and passes signals
on — SIGHUP (a new generation: rolled out inside the container without dropping requests, or a new
container when the image changed), SIGUSR1 (keys) — and SIGTERM, on which it stops and removes the container.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from kiln.serving.server import CONTAINER_PORT, STATE_FILE
from kiln.settings import ENV_HOME, ENV_WORKER_SHIM, Settings

__all__ = ["LABEL", "SERVER_PATH", "container_name", "container_spec", "main", "server_packages"]

#: the label on every service container: the service's name
LABEL = "io.kiln.service"
#: where Kiln's server code is mounted in the container
SERVER_PATH = "/kiln/server"
#: Kiln's server and what it imports, all pure Python: mounted from this installation
_PACKAGES = ("kiln", "uvicorn", "h11", "click", "typing_extensions")
_BOOT = "import sys; sys.path[:0] = [{path!r}]; from kiln.serving.server import main; sys.exit(main(sys.argv[1:]))"
_POLL = 0.1
_STOP_SECONDS = 30


def _log(message: str) -> None:
    sys.stderr.write(f"[kiln] {time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
    sys.stderr.flush()


def server_packages() -> dict[str, str]:
    """This installation's server packages (folder or module file) -> their path in the container."""
    import importlib

    out = {}
    for name in _PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue  # typing_extensions: only on older Pythons
        file = Path(str(module.__file__))
        source = file.parent if file.name == "__init__.py" else file
        out[str(source)] = f"{SERVER_PATH}/{source.name}"
    return out


def container_name(workspace: str, service: str) -> str:
    """One container per service of a workspace: the name says which (the workspace's path, hashed)."""
    return f"kiln-service-{service}-{hashlib.sha256(workspace.encode()).hexdigest()[:8]}"


def container_spec(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The keyword arguments of the Docker SDK's ``containers.create`` for the service ``config`` (its
    ``service.json``) whose folder is ``folder``."""
    box = config["container"]
    volumes = {str(folder): {"bind": str(folder), "mode": "rw"}}
    volumes.update({source: {"bind": target, "mode": "ro"} for source, target in server_packages().items()})
    host = config.get("host") or "127.0.0.1"
    return {
        "image": box["image"], "name": box["name"],
        "command": [box["deployment"]["python"], "-I", "-S", "-c", _BOOT.format(path=SERVER_PATH), str(folder),
                    "--in-container"],
        "environment": {ENV_WORKER_SHIM: f"{SERVER_PATH}/kiln/serving/shim", ENV_HOME: "/tmp/kiln-home"},
        "volumes": volumes, "ports": {f"{CONTAINER_PORT}/tcp": (host, int(config["port"]))},
        "labels": {LABEL: str(config["name"])},
        # the environment's docker.shm_size (Azure ML's default "2g"; an engine's own is only 64 MB)
        **({"shm_size": int(box["shm_size"])} if box.get("shm_size") else {}),
    }


class _Host:
    def __init__(self, folder: Path, *, settings: Settings) -> None:
        from kiln.builds.engine import Engine

        self.folder = folder
        self.settings = settings
        self.config: dict[str, Any] = json.loads((folder / "service.json").read_text())
        self.engine = Engine(self.config["container"].get("engine"))
        self.container: Any = None
        self.stopping = False
        self.reload = False
        self.keys = False
        self.mirrored: dict[str, Any] = {}

    def _store(self, **fields: Any) -> None:
        from kiln.workspace.workspace import Workspace

        with Workspace(self.config["workspace"], settings=self.settings) as ws:
            ws.store.update_service(self.config["name"], **fields)

    def _start(self) -> None:
        from docker.errors import NotFound

        client = self.engine.client
        spec = container_spec(self.config, self.folder)
        with contextlib.suppress(NotFound):  # a container left by a host side that was killed
            client.api.remove_container(spec["name"], force=True)
        with contextlib.suppress(FileNotFoundError):
            (self.folder / STATE_FILE).unlink()
        self.mirrored = {}
        self.container = client.containers.run(detach=True, **spec)
        _log(f"container {self.container.short_id} of image {spec['image']} started; port "
             f"{spec['ports'][f'{CONTAINER_PORT}/tcp'][0]}:{self.config['port']} -> {CONTAINER_PORT}")
        threading.Thread(target=self._copy_output, args=(self.container.id,), daemon=True).start()

    def _copy_output(self, container_id: str) -> None:
        """The container's output (the server's log and the entry script's prints) into ``server.log``."""
        with contextlib.suppress(Exception):
            for chunk in self.engine.client.api.logs(container_id, stream=True, follow=True):
                sys.stderr.write(chunk.decode("utf-8", "replace"))
                sys.stderr.flush()

    def _remove(self) -> None:
        if self.container is None:
            return
        with contextlib.suppress(Exception):
            self.container.stop(timeout=_STOP_SECONDS)  # the server drains the requests in flight
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        self.container = None

    def _answers(self) -> bool:
        host = self.config.get("host") or "127.0.0.1"
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.config['port']}/"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _mirror(self) -> None:
        """What the server in the container says of itself, into the store (Healthy once its port answers here)."""
        try:
            state = json.loads((self.folder / STATE_FILE).read_text())
        except (OSError, ValueError):
            return
        if state == self.mirrored:
            return
        if state.get("state") == "Healthy" and not self._answers():
            return  # published ports take a moment: ask again
        self.mirrored = state
        self._store(**{k: v for k, v in state.items() if k in ("state", "error", "generation")})

    def _ended(self) -> int:
        """The container ended by itself: the service failed (why, from the server's state when it said)."""
        try:
            code = int(self.container.wait(timeout=10)["StatusCode"])
        except Exception:
            code = -1
        self._mirror()
        state = self.mirrored
        if state.get("state") != "Failed":
            self._store(state="Failed", error=f"the service's container exited with code {code}", pid=None)
        else:
            self._store(pid=None)
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        self.container = None
        return 3

    def _rollout(self) -> None:
        config = json.loads((self.folder / "service.json").read_text())
        # /dev/shm is fixed when a container is made: a new size needs a new container, as a new image does
        same_image = all(config["container"].get(k) == self.config["container"].get(k) for k in ("image", "shm_size"))
        self.config = config
        if same_image:
            _log(f"rolling out generation {config['generation']} in the container")
            self.container.kill(signal="SIGHUP")
        else:
            _log(f"the environment's image or /dev/shm size changed ({config['container']['image']}): a new container")
            self._remove()
            self._start()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *a: setattr(self, "stopping", True))
        signal.signal(signal.SIGHUP, lambda *a: setattr(self, "reload", True))
        signal.signal(signal.SIGUSR1, lambda *a: setattr(self, "keys", True))
        try:
            self._start()
        except Exception as e:
            from kiln.environment.secrets import mask

            error = f"the container could not start: {mask(str(e))[:300]}"
            _log(error)
            self._store(state="Failed", error=error, pid=None)
            return 4
        while True:
            if self.stopping:
                _log("stopping: the container drains its requests")
                self._remove()
                return 0
            if self.reload:
                self.reload = False
                self._rollout()
            if self.keys:
                self.keys = False
                with contextlib.suppress(Exception):
                    self.container.kill(signal="SIGUSR1")
            self._mirror()
            self.container.reload()
            if self.container.status in ("exited", "dead", "stopped"):
                return self._ended()
            time.sleep(_POLL)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m kiln.serving.container SERVICE_DIR\n")
        return 2
    return _Host(Path(args[0]), settings=Settings.from_env()).run()


if __name__ == "__main__":
    sys.exit(main())
