"""The service process: ``python -m kiln.serving.server SERVICE_DIR``.

Started detached by a deployment, it outlives the session that deployed it. It reads
``service.json`` (written by ``kiln.serving.deploy``), starts the worker pool (``init()`` in each
worker), then serves HTTP with uvicorn. Signals:

- SIGHUP: read ``service.json`` and ``keys.json`` again; a new deployment generation starts a new
  pool, and only once its workers are ready does traffic switch to it; the old pool drains, then
  stops. No request is dropped. A failed rollout keeps the old pool serving.
- SIGUSR1: read ``keys.json`` again (a regenerated key), without touching the workers.
- SIGTERM/SIGINT: stop taking connections, finish the requests in flight, stop the workers.

The service's state (Healthy, Failed, ...) is written to the workspace's store. With ``--in-container``
(a container deployment: ``kiln.serving.container`` starts this server in the environment's image) it is
written to ``STATE_FILE`` in the service's folder instead, which the host side copies into the store; the
workers run the image's environment and the server listens on the container's port, on every interface of
the container (the engine publishes it on 127.0.0.1 of the machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from kiln._words import count
from kiln.serving.app import ScoringApp
from kiln.serving.config import DEFAULT_MAX_PAYLOAD
from kiln.serving.http import protocol as http_protocol
from kiln.serving.pool import InitFailed, Pool, PoolSettings
from kiln.settings import ENV_BATCHING, ENV_DEBUG, ENV_MODEL_DIR, Settings

__all__ = ["CONTAINER_PORT", "STATE_FILE", "main"]

#: a container deployment's state, written by the server in the container (JSON: state, error, generation)
STATE_FILE = "container-state.json"
#: the port the server listens on inside a container (Azure ML's local service container listens on 5001 too)
CONTAINER_PORT = 5001


def _log(message: str) -> None:
    sys.stderr.write(f"[kiln] {time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
    sys.stderr.flush()


class Service:
    """The service in ``folder``; ``settings`` (Kiln's paths, for its workspace) are the process's, built once."""

    def __init__(self, folder: Path, *, settings: Settings, in_container: bool = False) -> None:
        self.folder = folder
        self.settings = settings
        self.in_container = in_container
        self.config: dict[str, Any] = json.loads((folder / "service.json").read_text())
        self.generation = int(self.config["generation"])
        self.app: ScoringApp | None = None
        self.server: Any = None
        self.reloading = asyncio.Lock()

    # ---- state in the workspace's store -----------------------------------------------------------

    def _store_update(self, **fields: Any) -> None:
        if self.in_container:  # no workspace in here: the host side reads this file
            from kiln._files import write_text_atomic

            path = self.folder / STATE_FILE
            state = json.loads(path.read_text()) if path.exists() else {}
            state.update({k: v for k, v in fields.items() if k in ("state", "error", "generation")})
            write_text_atomic(path, json.dumps(state))
            return
        from kiln.workspace.workspace import Workspace

        with Workspace(self.config["workspace"], settings=self.settings) as ws:
            ws.store.update_service(self.config["name"], **fields)

    def _keys(self) -> list[str]:
        if not self.config.get("auth_enabled"):
            return []
        data = json.loads((self.folder / "keys.json").read_text())
        return [data["primary"], data["secondary"]]

    def _pool(self, config: dict[str, Any]) -> Pool:
        d = dict(config["deployment"])
        if self.in_container:
            d.update(config["container"]["deployment"])  # the environment's interpreter in the image
        env = {**os.environ, **d["environment_variables"]}
        env.update({"AZUREML_MODEL_DIR": d["model_dir"], ENV_MODEL_DIR: d["model_dir"], "AML_APP_ROOT": d["cwd"],
                    "AZUREML_ENTRY_SCRIPT": d["entry_script"], "PYTHONUNBUFFERED": "1",
                    ENV_DEBUG: "1" if config.get("debug") else "", ENV_BATCHING: "1" if config.get("batching") else ""})
        if d.get("virtual_env"):
            env["VIRTUAL_ENV"] = d["virtual_env"]
            env["PATH"] = f"{Path(d['python']).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (d.get("pythonpath", ""), env.get("PYTHONPATH", "")) if p)
        return Pool(PoolSettings(
            python=d["python"], entry_script=Path(d["entry_script"]), cwd=Path(d["cwd"]), env=env,
            workers=int(config.get("workers", 1)), timeout=float(config.get("timeout_seconds", 60)),
            batching=bool(config.get("batching")), max_batch=int(config.get("max_batch_size", 32)),
            batch_wait=float(config.get("max_batch_wait_ms", 0)) / 1000.0, log=_log))

    async def run(self) -> int:
        import uvicorn

        pool = self._pool(self.config)
        _log(f"starting {count(pool.settings.workers, 'worker')} for {self.config['name']} "
             f"(generation {self.generation})")
        try:
            await pool.start()
        except InitFailed as e:
            _log(f"init() failed: {e}")
            self._store_update(state="Failed", error=f"init() failed: {str(e).splitlines()[0]}", pid=None)
            return 3
        self.app = ScoringApp(pool, name=self.config["name"], keys=self._keys(),
                              max_payload=int(self.config.get("max_payload_bytes", DEFAULT_MAX_PAYLOAD)),
                              debug=bool(self.config.get("debug")))
        host, port = ("0.0.0.0", CONTAINER_PORT) if self.in_container else \
            (self.config.get("host", "127.0.0.1"), int(self.config["port"]))
        config = uvicorn.Config(self.app, host=host, port=port,
                                log_level="warning", access_log=False, lifespan="off", server_header=False,
                                date_header=True, timeout_graceful_shutdown=30, backlog=2048,
                                # no X-Forwarded-* rewriting: nothing reads the client address, and the middleware
                                # is a frame per request
                                proxy_headers=False,
                                # Kiln's connection (one write per response, see kiln.serving.http); uvicorn's h11
                                # where httptools can't be imported (an image's Python without its wheel)
                                http=http_protocol() or "auto")
        self.server = uvicorn.Server(config)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        loop.add_signal_handler(signal.SIGUSR1, self.reload_keys)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        serving = asyncio.ensure_future(self.server.serve())
        while not self.server.started:
            if serving.done():
                break
            await asyncio.sleep(0.01)
        if serving.done() and not self.server.started:
            error = f"could not listen on {config.host}:{config.port}"
            _log(error)
            self._store_update(state="Failed", error=error, pid=None)
            await pool.stop()
            return 4
        self._store_update(state="Healthy", error=None, generation=self.generation)
        _log(f"serving on http://{config.host}:{config.port}/score")
        await serving
        _log("stopping: waiting for the workers")
        await self.app.pool.stop()
        return 0

    def _stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    async def reload(self) -> None:
        """Roll out what ``service.json`` now says (a new generation), or restart the workers."""
        async with self.reloading:
            assert self.app is not None
            config = json.loads((self.folder / "service.json").read_text())
            self.app.keys = [k.encode() for k in (self._keys_of(config))]
            new = self._pool(config)
            _log(f"rolling out generation {config['generation']}")
            try:
                await new.start()
            except InitFailed as e:
                _log(f"update failed, the previous deployment keeps serving: init() failed: {e}")
                self._store_update(state="Healthy", error=f"update failed: init() failed: {str(e).splitlines()[0]}")
                return
            old = self.app.pool
            self.app.pool = new
            self.config = config
            self.generation = int(config["generation"])
            self._store_update(state="Healthy", error=None, generation=self.generation)
            await old.drain()
            await old.stop()
            _log(f"generation {self.generation} serving")

    def reload_keys(self) -> None:
        """New keys (``regen_key``) take effect at once; the workers keep running."""
        if self.app is not None:
            self.app.keys = [k.encode() for k in self._keys()]
            _log("keys reloaded")

    def _keys_of(self, config: dict[str, Any]) -> list[str]:
        self.config["auth_enabled"] = config.get("auth_enabled")
        return self._keys()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], ["--in-container"]):
        sys.stderr.write("usage: python -m kiln.serving.server SERVICE_DIR [--in-container]\n")
        return 2
    service = Service(Path(args[0]), settings=Settings.from_env(), in_container=args[1:] == ["--in-container"])
    try:
        import uvloop
    except ImportError:
        return asyncio.run(service.run())
    return int(uvloop.run(service.run()))


if __name__ == "__main__":
    sys.exit(main())
