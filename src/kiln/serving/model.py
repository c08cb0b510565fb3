"""``Model``: registered model files (a file or a folder), content-addressed and versioned, as in Azure ML.

Registering the same files (with the same tags and description) again returns the latest version;
anything else makes the next version. ``Model.get_model_path`` works inside an entry script too.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import DefinitionError, NotFoundError
from kiln.settings import ENV_MODEL_DIR

if TYPE_CHECKING:
    from kiln.workspace.store import ModelRecord
    from kiln.workspace.workspace import Workspace

__all__ = ["ENV_MODEL_DIR", "Model"]

#: set for entry scripts (as Azure ML's does; Kiln's own name is kiln.settings.ENV_MODEL_DIR)
AZUREML_MODEL_DIR = "AZUREML_MODEL_DIR"


class Model:
    """A registered model version: ``Model(ws, name, version=None)`` gets one (the latest by default)."""

    def __init__(self, workspace: Workspace, name: str | None = None, version: int | str | None = None, *,
                 id: str | None = None, _record: ModelRecord | None = None) -> None:
        if id is not None:  # Azure ML's "name:version" ids
            name, _, v = id.partition(":")
            version = v or None
        if _record is None:
            if not name:
                raise DefinitionError("Model: give a name (or id='name:version')")
            number = None if version is None else _version(version)
            _record = workspace.store.get_model(name=name, version=number)
            if _record is None:
                known = sorted({r.name for r in workspace.store.list_models()})
                what = f"model {name!r}" + (f" version {version}" if version is not None else "")
                raise NotFoundError(f"no {what} in workspace {workspace.name!r} (models: {', '.join(known) or 'none'})")
        self.workspace = workspace
        self._record = _record
        self.name = _record.name
        self.version = _record.version
        self.tags: dict[str, str] = json.loads(_record.tags)
        self.description = _record.description
        self.run_id = _record.run_id
        self.created_time = _record.created_at

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
                "description": self.description, "runId": self.run_id, "createdTime": self.created_time,
                "manifest": self.manifest}

    # ---- registry --------------------------------------------------------------------------------

    @staticmethod
    def register(workspace: Workspace, model_path: str | os.PathLike[str], model_name: str,
                 tags: dict[str, str] | None = None, description: str | None = None, *,
                 run_id: str | None = None, **kwargs: Any) -> Model:
        """Register a file or a folder as the next version of ``model_name``."""
        from kiln.environment.names import check_name

        del kwargs  # Azure ML's other arguments (model_framework, datasets, ...) are accepted and not used
        check_name(model_name, "model name")
        source = Path(model_path)
        if not source.exists():
            raise DefinitionError(f"model_path {str(model_path)!r} does not exist")
        blobs = workspace.blobs
        if source.is_dir():
            files = [p for p in sorted(source.rglob("*")) if p.is_file()]
            if not files:
                raise DefinitionError(f"model_path {str(model_path)!r} is an empty folder")
            manifest = blobs.put_tree(source.parent, files)  # paths keep the folder's name, as for a file
        else:
            manifest = blobs.put_tree(source.parent, [source])
        record, _ = workspace.store.register_model(
            name=model_name, manifest=manifest.digest, path=source.name, run_id=run_id,
            tags=json.dumps(dict(tags or {}), sort_keys=True), description=description)
        return Model(workspace, _record=record)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None, latest: bool = False) -> builtins.list[Model]:
        records = workspace.store.list_models(name=name)
        if latest:
            newest: dict[str, ModelRecord] = {}
            for r in records:
                newest[r.name] = r
            records = list(newest.values())
        return [Model(workspace, _record=r) for r in records]

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
