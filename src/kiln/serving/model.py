"""``Model``: registered model files (a file or a folder), content-addressed and versioned, as in Azure ML.

Registering the same files (with the same tags, properties, description and framework) again returns the
latest version; anything else makes the next version. A folder is taken by Kiln's one copy rule
(``kiln._tree``: links inside kept, links outside never read, workspaces, caches and environments left
out). Tags and the description can be changed afterwards, properties only added to (as a run's);
the files never change. ``Model.get_model_path`` works inside an entry script too.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import DefinitionError, NotFoundError
from kiln.settings import ENV_MODEL_DIR

if TYPE_CHECKING:
    from kiln.workspace.store import ModelRecord
    from kiln.workspace.workspace import Workspace

__all__ = ["ENV_MODEL_DIR", "Model"]

log = logging.getLogger(__name__)

#: set for entry scripts (as Azure ML's does; Kiln's own name is kiln.settings.ENV_MODEL_DIR)
AZUREML_MODEL_DIR = "AZUREML_MODEL_DIR"


class Model:
    """A registered model version: ``Model(ws, name, version=None)`` gets one (the latest by default)."""

    class Framework:
        """Azure ML's framework names for ``model_framework`` (kept with the model; Kiln deploys every model
        with an entry script, there is no no-code deployment)."""

        CUSTOM = "Custom"
        TENSORFLOW = "TensorFlow"
        SCIKITLEARN = "ScikitLearn"
        ONNX = "Onnx"
        TFKERAS = "TfKeras"

    def __init__(self, workspace: Workspace, name: str | None = None, id: str | None = None,
                 tags: Iterable[Any] | None = None, properties: Iterable[Any] | None = None,
                 version: int | str | None = None, run_id: str | None = None, *,
                 _record: ModelRecord | None = None) -> None:
        if isinstance(id, int) or (isinstance(id, str) and id.isdigit()):
            # Model(ws, name, 2): Kiln's earlier positional version (Azure ML's third argument is the id)
            id, version = None, id
        if id is not None:  # Azure ML's "name:version" ids
            name, _, v = id.partition(":")
            version = v or None
        if _record is None:
            if not name:
                raise DefinitionError("Model: give a name (or id='name:version')")
            number = None if version is None else _version(version)
            if tags or properties or run_id:  # Azure ML's filters: the newest version that matches them
                found = [m._record for m in Model.list(workspace, name, tags=tags, properties=properties,
                                                       run_id=run_id) if number is None or m.version == number]
                _record = found[-1] if found else None
            else:
                _record = workspace.store.get_model(name=name, version=number)
            if _record is None:
                known = sorted({r.name for r in workspace.store.list_models()})
                what = f"model {name!r}" + (f" version {version}" if version is not None else "")
                if tags or properties or run_id:
                    what += " with the tags, properties and run given"
                raise NotFoundError(f"no {what} in workspace {workspace.name!r} (models: {', '.join(known) or 'none'})")
        self.workspace = workspace
        self._load(_record)

    def _load(self, record: ModelRecord) -> None:
        self._record = record
        self.name = record.name
        self.version = record.version
        self.tags: dict[str, str] = json.loads(record.tags)
        self.properties: dict[str, str] = json.loads(record.properties or "{}")
        self.description = record.description
        self.run_id = record.run_id
        self.created_time = record.created_at
        self.model_framework = record.framework
        self.model_framework_version = record.framework_version

    @property
    def experiment_name(self) -> str | None:
        """The experiment of the run the model was registered from (None for a model registered from a file)."""
        if self.run_id is None:
            return None
        run = self.workspace.store.get_run(self.run_id)
        return None if run is None else run.experiment

    @property
    def url(self) -> str:
        """Where the model lives: ``kiln://<workspace>/models/<name>/<version>/<file or folder>`` (Azure ML's
        is an ``aml://`` storage address); ``download`` writes its files."""
        return f"kiln://{self.workspace.name}/models/{self.name}/{self.version}/{self.path}"

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def path(self) -> str:
        """The registered file or folder's name (what ``download`` writes, and the entry script finds)."""
        return self._record.path

    @property
    def manifest(self) -> str:
        return self._record.manifest

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version})"

    def serialize(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "version": self.version, "path": self.path, "tags": self.tags,
                "properties": self.properties, "description": self.description, "runId": self.run_id,
                "experimentName": self.experiment_name, "createdTime": self.created_time,
                "modelFramework": self.model_framework, "modelFrameworkVersion": self.model_framework_version,
                "url": self.url, "manifest": self.manifest}

    # ---- tags, properties, description ---------------------------------------------------------------

    def _store(self, **fields: str | None) -> None:
        record = self.workspace.store.update_model(name=self.name, version=self.version, **fields)
        if record is None:
            raise NotFoundError(f"model {self.id} was deleted from workspace {self.workspace.name!r}")
        self._load(record)

    def add_tags(self, tags: dict[str, Any]) -> None:
        """Add (or change) tags."""
        self._store(tags=_json({**self.tags, **_strings(tags, "tags")}))

    def remove_tags(self, tags: Iterable[str] | str) -> None:
        """Remove the tags with these keys (keys it doesn't have are left alone)."""
        keys = {tags} if isinstance(tags, str) else set(tags)
        self._store(tags=_json({k: v for k, v in self.tags.items() if k not in keys}))

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties. A property, once set, is not changed (as a run's): setting it again to another value
        is an error."""
        new = _strings(properties, "properties")
        for key, value in new.items():
            if key in self.properties and self.properties[key] != value:
                raise DefinitionError(f"model {self.id}: property {key!r} is {self.properties[key][:200]!r} already; "
                                      "properties can be added, not changed (use tags for what changes)")
        self._store(properties=_json({**self.properties, **new}))

    def update(self, tags: dict[str, Any] | None = None, description: str | None = None, **kwargs: Any) -> None:
        """Replace the tags and/or the description (Azure ML's other arguments, datasets and resource
        configuration, are accepted and not used)."""
        del kwargs
        self._store(tags=None if tags is None else _json(_strings(tags, "tags")), description=description)

    def delete(self) -> None:
        """Remove this model version from the workspace (a service that deploys it must be deleted or updated
        first). Its files stay in the blob store while anything else refers to them."""
        using = [r.name for r in self.workspace.store.list_services()
                 if self.id in json.loads(r.config).get("deployment", {}).get("models", [])]
        if using:
            raise DefinitionError(f"model {self.id} is deployed by service(s) {', '.join(using)}: delete them or "
                                  "update them with other models first")
        if not self.workspace.store.delete_model(name=self.name, version=self.version):
            raise NotFoundError(f"model {self.id} was deleted from workspace {self.workspace.name!r}")

    # ---- registry --------------------------------------------------------------------------------

    @staticmethod
    def register(workspace: Workspace, model_path: str | os.PathLike[str], model_name: str,
                 tags: dict[str, Any] | None = None, properties: dict[str, Any] | None = None,
                 description: str | None = None, datasets: Any = None, model_framework: str | None = None,
                 model_framework_version: str | None = None, *, run_id: str | None = None,
                 **kwargs: Any) -> Model:
        """Register a file or a folder as the next version of ``model_name``. ``tags``, ``properties``,
        ``model_framework`` and ``model_framework_version`` are kept with it."""
        from kiln._tree import scan_tree
        from kiln.environment.names import check_name

        del datasets, kwargs  # Azure ML's datasets, sample inputs, resource configuration: not used locally
        check_name(model_name, "model name")
        source = Path(model_path)
        if not source.exists():
            raise DefinitionError(f"model_path {str(model_path)!r} does not exist")
        blobs = workspace.blobs
        if source.is_dir():
            tree = scan_tree(source)
            if tree.skipped:
                log.warning("model %s: the folder %s leaves out %s", model_name, source, tree.describe_skipped())
            if not tree.files and not tree.links:
                raise DefinitionError(f"model_path {str(model_path)!r} is an empty folder")
            # paths keep the folder's name, as for a file
            manifest = blobs.put_tree(source.parent, [source / rel for rel in tree.files],
                                      [(f"{source.name}/{rel}", link) for rel, link in tree.links])
        else:
            manifest = blobs.put_tree(source.parent, [source])
        record, _ = workspace.store.register_model(
            name=model_name, manifest=manifest.digest, path=source.name, run_id=run_id,
            tags=_json(_strings(tags, "tags")), description=description,
            properties=_json(_strings(properties, "properties")),
            framework=None if model_framework is None else str(model_framework),
            framework_version=None if model_framework_version is None else str(model_framework_version))
        return Model(workspace, _record=record)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None, tags: Iterable[Any] | None = None,
             properties: Iterable[Any] | None = None, run_id: str | None = None, latest: bool = False,
             **kwargs: Any) -> builtins.list[Model]:
        """Model versions (of ``name``), oldest first; ``tags``/``properties`` filter as Azure ML's: a list of
        keys the model has, or of ``[key, value]`` pairs; ``latest``: only each name's newest version."""
        del kwargs  # Azure ML's dataset_id, expand, page_count, model_framework: not used locally
        records = workspace.store.list_models(name=name)
        if latest:
            newest: dict[str, ModelRecord] = {}
            for r in records:
                newest[r.name] = r
            records = list(newest.values())
        models = [Model(workspace, _record=r) for r in records]
        return [m for m in models if (run_id is None or m.run_id == run_id) and _matches(m.tags, tags)
                and _matches(m.properties, properties)]

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str:
        """Write the model's files into ``target_dir``; return the path of the file or folder written."""
        target = Path(target_dir)
        dest = target / self.path
        if dest.exists():
            if not exist_ok:
                raise DefinitionError(f"{dest} already exists (exist_ok=True to replace it)")
            shutil.rmtree(dest) if dest.is_dir() and not dest.is_symlink() else dest.unlink()
        target.mkdir(parents=True, exist_ok=True)
        self.workspace.blobs.materialize(self.manifest, target)
        return str(dest)

    # ---- deployment ---------------------------------------------------------------------------------

    @staticmethod
    def deploy(workspace: Workspace, name: str, models: builtins.list[Model], inference_config: Any,
               deployment_config: Any = None, deployment_target: Any = None, overwrite: bool = True,
               show_output: bool = False) -> Any:
        """Deploy ``models`` with ``inference_config`` as the local web service ``name`` (or update it).
        Returns the service at once; ``service.wait_for_deployment()`` waits until it serves."""
        import sys

        from kiln.serving.deploy import deploy
        from kiln.serving.webservice import LocalWebservice

        del deployment_target
        progress = (lambda phase, message: sys.stdout.write(f"[kiln] {message}\n")) if show_output else None
        deploy(workspace, name, models, inference_config, deployment_config, settings=workspace.settings,
               overwrite=overwrite, progress=progress)
        return LocalWebservice(workspace, name)

    # ---- inside an entry script -------------------------------------------------------------------

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        """Inside a deployment: the path of a deployed model's file or folder, as Azure ML gives it."""
        from kiln.serving.shim.kiln_model_path import get_model_path

        try:
            return str(get_model_path(model_name, version))
        except LookupError as e:
            raise NotFoundError(str(e)) from None


def _version(version: int | str) -> int:
    text = str(version).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:  # "٢".isdigit()
        raise NotFoundError(f"{str(version)[:40]!r} is not a model version (1, 2, 3...)")
    return int(text)


def _strings(values: dict[str, Any] | None, what: str) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise DefinitionError(f"model {what}: expected a dict of strings, got {type(values).__name__} "
                              f"{str(values)[:200]!r}")
    return {str(k): str(v) for k, v in values.items()}


def _json(values: dict[str, str]) -> str:
    return json.dumps(values, sort_keys=True)


def _matches(have: dict[str, str], wanted: Iterable[Any] | None) -> bool:
    for item in wanted or ():
        if isinstance(item, str):
            if item not in have:
                return False
        else:
            key, value = item
            if have.get(str(key)) != str(value):
                return False
    return True
