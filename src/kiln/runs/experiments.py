"""What Kiln keeps of an experiment besides its runs: ``<workspace>/experiments/<name>.json``.

An experiment exists once it is named (``Experiment(ws, name)``, as in Azure ML, where naming one creates
it), so that ``Experiment.list`` shows an experiment before its first run. The file holds its id, tags and
archive time; it is replaced whole (write a temp file, rename), so a reader never sees half of it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln._files import write_text_atomic
from kiln.errors import WorkspaceError

__all__ = ["ExperimentInfo", "experiment_names", "read_info", "write_info"]

FOLDER = "experiments"


@dataclass
class ExperimentInfo:
    id: str
    created_at: float
    tags: dict[str, Any] = field(default_factory=dict)
    archived_at: float | None = None


def _path(workspace: Path, name: str) -> Path:
    return workspace / FOLDER / f"{name}.json"


def read_info(workspace: Path, name: str, *, create: bool = True) -> ExperimentInfo | None:
    """The experiment's record (made now, when ``create`` and there is none)."""
    path = _path(workspace, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ExperimentInfo(id=str(data["id"]), created_at=float(data["created_at"]),
                              tags=dict(data.get("tags") or {}), archived_at=data.get("archived_at"))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WorkspaceError(f"{path}: can't read the experiment's record ({e})") from e
    if not create:
        return None
    info = ExperimentInfo(id=str(uuid.uuid4()), created_at=time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # exclusive: of two processes naming a new experiment at once, one makes it, both read the same
        with open(path, "x", encoding="utf-8") as f:
            f.write(_text(info))
    except FileExistsError:
        return read_info(workspace, name, create=False)
    return info


def write_info(workspace: Path, name: str, info: ExperimentInfo) -> None:
    path = _path(workspace, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, _text(info))


def experiment_names(workspace: Path) -> set[str]:
    folder = workspace / FOLDER
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.json") if not p.name.startswith(".")}


def _text(info: ExperimentInfo) -> str:
    return json.dumps({"id": info.id, "created_at": info.created_at, "tags": info.tags,
                       "archived_at": info.archived_at}, indent=1, sort_keys=True) + "\n"
