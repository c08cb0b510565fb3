"""``LocalWebservice`` / ``Webservice``: a deployed model service, found by name from any process.

States, as in Azure ML: Transitioning (deploying or rolling out), Healthy, Unhealthy (its process
is gone), Failed (``init()`` failed, or the port was taken: see ``get_logs()``).
"""

from __future__ import annotations

import builtins
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError, NotFoundError
from kiln.settings import studio_page

if TYPE_CHECKING:
    from kiln.serving.config import DeploymentConfiguration, InferenceConfig
    from kiln.serving.deploy import DeployableModel
    from kiln.workspace.store import ServiceRecord
    from kiln.workspace.workspace import Workspace

__all__ = ["DeploymentFailedError", "LocalWebservice", "Webservice"]


class DeploymentFailedError(KilnError):
    """The service did not become healthy; the message carries the reason (e.g. ``init()``'s error)."""


class Webservice:
    """A deployed service: ``Webservice(ws, name)``; ``Webservice.list(ws)``."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        if workspace.store.get_service(name) is None:
            known = ", ".join(r.name for r in workspace.store.list_services()) or "none"
            raise NotFoundError(f"no service {name!r} in workspace {workspace.name!r} (services: {known})")

    # ---- construction ------------------------------------------------------------------------------

    @staticmethod
    def deploy_configuration(port: int | None = None, **kwargs: Any) -> DeploymentConfiguration:
        """``LocalWebservice.deploy_configuration(port=6789, workers=2, auth_enabled=True, ...)``."""
        from kiln.serving.config import DeploymentConfiguration

        known = set(DeploymentConfiguration.__dataclass_fields__) - {"extra"}
        extra = {k: v for k, v in kwargs.items() if k not in known}
        return DeploymentConfiguration(port=port, extra=extra, **{k: v for k, v in kwargs.items() if k in known})

    @staticmethod
    def list(workspace: Workspace) -> builtins.list[Webservice]:
        return [LocalWebservice(workspace, r.name) for r in workspace.store.list_services()]

    def __repr__(self) -> str:
        return f"LocalWebservice(name={self.name!r}, state={self.state!r}, scoring_uri={self.scoring_uri!r})"

    # ---- state ---------------------------------------------------------------------------------------

    def _record(self) -> ServiceRecord:
        record = self.workspace.store.get_service(self.name)
        if record is None:
            raise NotFoundError(f"service {self.name!r} was deleted")
        return record

    def _config(self) -> dict[str, Any]:
        return dict(json.loads(self._record().config))

    @property
    def state(self) -> str:
        from kiln._process import alive

        record = self._record()
        if record.state in ("Healthy", "Transitioning") and not alive(record.pid, record.pid_start):
            if record.state == "Transitioning" and record.pid is None:
                return "Transitioning"
            self.workspace.store.update_service(self.name, state="Unhealthy",
                                                error=record.error or "the service process is gone")
            return "Unhealthy"
        return record.state

    @property
    def error(self) -> str | None:
        return self._record().error

    #: Azure ML's ``compute_type`` of a local service
    compute_type = "Local"

    @property
    def created_time(self) -> float:
        return self._record().created_at

    @property
    def updated_time(self) -> float:
        return self._record().updated_at

    @property
    def port(self) -> int:
        return self._record().port

    @property
    def scoring_uri(self) -> str:
        config = self._config()
        host = config.get("host", "127.0.0.1")
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{config['port']}/score"

    @property
    def swagger_uri(self) -> str:
        return self.scoring_uri.rsplit("/", 1)[0] + "/swagger.json"

    @property
    def models(self) -> builtins.list[str]:
        return list(self._config()["deployment"]["models"])

    @property
    def environment(self) -> str:
        return str(self._config()["deployment"]["environment"])

    def serialize(self) -> dict[str, Any]:
        config = self._config()
        record = self._record()
        return {"name": self.name, "state": self.state, "scoringUri": self.scoring_uri, "port": record.port,
                "generation": record.generation, "models": config["deployment"]["models"],
                "environment": config["deployment"]["environment"], "entryScript":
                config["deployment"]["entry_script_name"], "workers": config.get("workers"),
                "authEnabled": bool(config.get("auth_enabled")), "error": record.error, "pid": record.pid,
                "container": None if not config.get("container") else
                {"image": config["container"]["image"], "name": config["container"]["name"]},
                # the studio's page for it, as Azure ML's details carry the portal link
                "studioUrl": studio_page(f"services/{urllib.parse.quote(self.name)}")}

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float = 300.0) -> None:
        """Wait until the latest deployment serves (Healthy) or failed (raises with the reason)."""
        import sys

        want = int(self._config()["generation"])
        end = time.monotonic() + timeout_sec
        shown = 0
        while True:
            record = self._record()
            state = self.state
            if show_output:
                shown = self._print_log(shown, sys.stdout)
            if state == "Healthy" and record.generation >= want and record.error is None:
                return
            if state in ("Failed", "Unhealthy") or (state == "Healthy" and record.error):
                raise DeploymentFailedError(f"service {self.name!r} deployment failed: {record.error or state} "
                                            f"(the whole story: service.get_logs(), kiln service logs {self.name})")
            if time.monotonic() > end:
                raise DeploymentFailedError(f"service {self.name!r} is still {state} after {timeout_sec} s")
            time.sleep(0.05)

    def _print_log(self, offset: int, out: Any) -> int:
        from kiln.serving.deploy import service_dir

        try:
            data = (service_dir(self.workspace, self.name) / "server.log").read_bytes()[offset:]
        except FileNotFoundError:
            return offset
        end = data.rfind(b"\n") + 1
        if end:
            out.write(data[:end].decode("utf-8", "replace"))
            out.flush()
        return offset + end

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.get_logs().splitlines()[-lines:])

    def get_logs(self, num_lines: int = 5000) -> str:
        """The service's log: the server's own lines, and everything the entry script printed."""
        from kiln.serving.deploy import service_dir

        try:
            text = (service_dir(self.workspace, self.name) / "server.log").read_text(encoding="utf-8",
                                                                                       errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-num_lines:])

    # ---- scoring ---------------------------------------------------------------------------------------

    def _settle(self, timeout: float = 300.0) -> None:
        """Wait while the service is Transitioning (as Azure ML's ``run`` waits while Deploying); refuse a
        service that does not serve."""
        end = time.monotonic() + timeout
        state = self.state
        while state == "Transitioning" and time.monotonic() < end:
            time.sleep(0.05)
            state = self.state
        if state in ("Failed", "Unhealthy"):
            raise KilnError(f"service {self.name!r} is {state}: {self.error or 'it does not serve'} "
                            f"(the whole story: service.get_logs(), kiln service logs {self.name})")

    def run(self, input_data: Any) -> Any:
        """POST ``input_data`` (a JSON string, or data to encode) to the scoring URI; the decoded answer."""
        self._settle()
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": "application/json"}
        config = self._config()
        if config.get("auth_enabled"):
            headers["Authorization"] = f"Bearer {self.get_keys()[0]}"
        request = urllib.request.Request(self.scoring_uri, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=float(config.get("timeout_seconds", 60)) + 5) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            raise KilnError(f"service {self.name!r} answered {e.code}: {e.read().decode('utf-8', 'replace')}") from None
        except urllib.error.URLError as e:
            raise KilnError(f"service {self.name!r} at {self.scoring_uri} can't be reached: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # the connection dropped mid-answer
            raise KilnError(f"service {self.name!r} at {self.scoring_uri} failed to answer: "
                            f"{type(e).__name__}: {e}") from None
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode("utf-8", "replace")

    # ---- keys -------------------------------------------------------------------------------------------

    def get_keys(self) -> tuple[str, str]:
        from kiln.serving.deploy import service_dir

        if not self._config().get("auth_enabled"):
            raise KilnError(f"service {self.name!r} has no keys: deploy it with auth_enabled=True")
        keys = json.loads((service_dir(self.workspace, self.name) / "keys.json").read_text())
        return keys["primary"], keys["secondary"]

    def regen_key(self, key: str) -> None:
        """Make a new ``"Primary"`` or ``"Secondary"`` key; the service takes it at once."""
        import os
        import signal

        from kiln.serving.deploy import service_dir, write_keys

        which = key.lower()
        if which not in ("primary", "secondary"):
            raise KilnError(f"regen_key: key must be 'Primary' or 'Secondary', not {key!r}")
        self.get_keys()
        write_keys(service_dir(self.workspace, self.name), regenerate=which)
        record = self._record()
        if record.pid is not None:
            os.kill(record.pid, signal.SIGUSR1)  # keys only: the workers go on
            time.sleep(0.1)

    # ---- lifecycle --------------------------------------------------------------------------------------

    def update(self, models: Sequence[DeployableModel] | None = None, image_config: Any = None,
               deployment_config: DeploymentConfiguration | None = None, wait: bool = True,
               inference_config: InferenceConfig | None = None, **kwargs: Any) -> None:
        """Roll out a new deployment (entry script, environment, models): requests keep being answered.
        What is not given stays as deployed now. With ``wait`` (the default) it returns once the new
        deployment serves, and raises if it failed (the previous one then keeps serving)."""
        from kiln.serving.config import InferenceConfig
        from kiln.serving.deploy import deploy

        del image_config, kwargs  # Azure ML's image_config: images are not built locally
        if isinstance(models, InferenceConfig):  # Kiln's earlier update(inference_config) took it first
            inference_config, models = models, None
        if inference_config is None:
            inference_config = self._inference_config()
        deploy(self.workspace, self.name, models, inference_config, deployment_config,
               settings=self.workspace.settings)
        if wait:
            self.wait_for_deployment()

    def _inference_config(self) -> InferenceConfig:
        """The inference config the service runs now, read back from its deployment (its source is read again)."""
        from kiln.environment.environment import Environment
        from kiln.serving.config import InferenceConfig

        d = self._config()["deployment"]
        name, _, version = d["environment"].rpartition(":")
        source = d.get("source_directory")
        script = d["entry_script_name"] if source is not None else d.get("entry_script_file", d["entry_script_name"])
        return InferenceConfig(entry_script=script, source_directory=source,
                               environment=Environment.get(self.workspace, name, version))

    def reload(self, wait: bool = True) -> None:
        """Copy the source directory (or the entry script) again and restart the workers on it: ``init()``
        runs again, the environment stays the same (a new one is ``update``). Requests keep being answered by the
        current workers until the new ones are ready. With ``wait`` (the default) it returns once the new
        code serves."""
        self.update(wait=wait)

    def update_deployment_state(self, must_exist: bool = False) -> None:
        """Read the service's state again (Azure ML's in-place refresh). The properties of this object always
        read the workspace, so this only checks the service still exists (``must_exist``: raise if not)."""
        if self.workspace.store.get_service(self.name) is None:
            if must_exist:
                raise NotFoundError(f"service {self.name!r} was deleted")
            return
        self.state  # noqa: B018 - reading the state notices a service process that is gone

    def delete(self) -> None:
        """Stop the service (in-flight requests finish) and remove it."""
        import shutil

        from kiln.serving.deploy import remove_container, service_dir, stop_server

        record = self._record()
        stop_server(record)
        remove_container(json.loads(record.config))  # a container its host side could not stop (killed)
        self.workspace.store.delete_service(self.name)
        shutil.rmtree(service_dir(self.workspace, self.name), ignore_errors=True)


class LocalWebservice(Webservice):
    """Azure ML's name for a service deployed on this machine."""
