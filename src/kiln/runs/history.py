"""What a ``Run`` records besides its status, from any process: metrics, images, files, properties, its
display name, and reading its logs. A base of ``kiln.runs.run.Run``, kept apart to keep that module short.

Writes go through ``kiln.run`` (the module scripts use), to the same files: a metric logged from a
notebook and one logged by the script are the same kind of line in the run's ``metrics.jsonl``.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.errors import KilnError, NotFoundError
from kiln.runs.layout import RunLayout
from kiln.settings import studio_page

if TYPE_CHECKING:
    from kiln.run import Run as Writer

__all__ = ["RunHistory", "RunHistoryError", "studio_url"]

def studio_url(run_id: str) -> str:
    return studio_page(f"runs/{run_id}")


class RunHistoryError(KilnError):
    """A log or file call a run refused (a property set already, a file uploaded already, no image given)."""


class RunHistory:
    id: str
    _layout: RunLayout

    def _writer(self) -> Writer:
        from kiln.run import Run as Writer

        self._layout.root.mkdir(parents=True, exist_ok=True)
        return Writer(self.id, str(self._layout.root), getattr(getattr(self, "experiment", None), "name", None))

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._writer(), method)(*args, **kwargs)
        except ValueError as e:  # kiln.run's refusals (it knows no KilnError: it runs inside scripts)
            raise RunHistoryError(f"run {self.id}: {e}") from None

    # ---- metrics -----------------------------------------------------------------------------

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a value; logged again under the same name, it becomes a series."""
        self._call("log", name, value, description, step)

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        self._call("log_list", name, value, description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._call("log_row", name, description, **kwargs)

    def log_table(self, name: str, value: dict[str, Any], description: str = "") -> None:
        self._call("log_table", name, value, description)

    def log_image(self, name: str, path: str | os.PathLike[str] | None = None, plot: Any = None,
                  description: str = "") -> str:
        """Store an image (a file, or a matplotlib figure / ``pyplot`` as PNG) in the run's ``images/``; its
        file name is the metric's value."""
        return str(self._call("log_image", name, None if path is None else str(path), plot, description))

    def flush(self, timeout_seconds: int = 300) -> None:
        """Every log call is written when it returns: nothing waits."""

    # ---- properties and the display name -----------------------------------------------------

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties; unlike tags, a property can't change once set (a new value raises)."""
        self._call("add_properties", properties)

    def get_properties(self) -> dict[str, Any]:
        from kiln.runs.metrics import read_properties

        return read_properties(self._layout.metrics)

    @property
    def properties(self) -> dict[str, Any]:
        return self.get_properties()

    @property
    def display_name(self) -> str:
        """The name shown for the run (its id until set; a child run's ``name``)."""
        from kiln.runs.metrics import read_display_name

        return read_display_name(self._layout.metrics) or self._default_display_name()

    @display_name.setter
    def display_name(self, value: str) -> None:
        self._writer()._write({"kind": "display_name", "value": str(value)})

    def _default_display_name(self) -> str:
        return self.id

    def get_portal_url(self) -> str:
        """The run's page in Kiln's studio, ``http://127.0.0.1:8790/runs/<id>`` (``kiln studio`` serves it)."""
        return studio_url(self.id)

    # ---- files -------------------------------------------------------------------------------

    def upload_file(self, name: str, path_or_stream: Any) -> str:
        """Store a file (a path or a binary stream) with the run under ``name`` (a file name is stored once)."""
        if not hasattr(path_or_stream, "read") and not Path(str(path_or_stream)).is_file():
            raise NotFoundError(f"upload_file({name!r}): {str(path_or_stream)!r} is not a file")
        return str(self._call("upload_file", name, path_or_stream))

    def upload_files(self, names: builtins.list[str], paths: builtins.list[str]) -> builtins.list[str]:
        return [self.upload_file(n, p) for n, p in zip(names, paths, strict=True)]

    def upload_folder(self, name: str, path: str | os.PathLike[str]) -> builtins.list[str]:
        """Store every file of the folder ``path`` as ``name/<relative path>`` (links inside are left out)."""
        if not Path(path).is_dir():
            raise NotFoundError(f"upload_folder({name!r}): {str(path)!r} is not a folder")
        return [str(n) for n in self._call("upload_folder", name, str(path))]

    # ---- logs --------------------------------------------------------------------------------

    def _log_files(self) -> dict[str, Path]:
        logs = self._layout.logs
        if not logs.is_dir():
            return {}
        return {f"logs/{p.relative_to(logs).as_posix()}": p for p in sorted(logs.rglob("*")) if p.is_file()}

    def get_all_logs(self, destination: str | os.PathLike[str] | None = None) -> builtins.list[str]:
        """Copy the run's log files to ``destination`` (default: a folder named as the run); their paths."""
        from kiln._tree import copy_file_no_follow

        target = Path(destination) if destination is not None else Path(self.id)
        out = []
        for name, source in self._log_files().items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            copy_file_no_follow(source, path)
            out.append(str(path))
        return out
