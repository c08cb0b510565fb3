"""``env.build(ws)``: a build running in the background, watched through a handle (Azure ML's
``ImageBuildDetails``)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.result import BuildResult
    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["BuildHandle"]


class BuildHandle:
    """A build under way. ``status`` is ``Running``, ``Succeeded`` or ``Failed``."""

    def __init__(self, env: Environment, workspace: Workspace, *, settings: Settings, upgrade: bool = False) -> None:
        self.environment = env
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._result: BuildResult | None = None
        self._error: BaseException | None = None
        self._done = False
        self._journal_id: str | None = None
        self._thread = threading.Thread(target=self._run, args=(workspace, settings, upgrade),
                                        name=f"kiln-build-{env.name}", daemon=True)
        self._thread.start()

    def _say(self, phase: str, message: str) -> None:
        with self._cond:
            self._lines.append(f"[{phase}] {message}")
            self._cond.notify_all()

    def _recorded(self, journal_id: str) -> None:
        with self._cond:
            self._journal_id = journal_id

    def _run(self, workspace: Workspace, settings: Settings, upgrade: bool) -> None:
        from kiln.builds.builder import build_environment
        from kiln.builds.journal import watched
        from kiln.workspace.workspace import Workspace

        # SQLite connections belong to a thread: open the workspace again here
        ws = Workspace(workspace.path)
        try:
            with watched(self._recorded):
                result = build_environment(self.environment, ws, settings=settings, upgrade=upgrade,
                                           progress=self._say)
            with self._cond:
                self._result = result
        except BaseException as e:
            with self._cond:
                self._error = e
                self._lines.append(f"[failed] {e}")
        finally:
            ws.close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    @property
    def status(self) -> str:
        with self._cond:
            if not self._done:
                return "Running"
            return "Failed" if self._error is not None else "Succeeded"

    @property
    def journal_id(self) -> str | None:
        """The id of this build's record in the cache's journal (``kiln.builds.journal``), known before the record
        is written; None while the cache is being looked up, and for a cache hit (nothing built, nothing recorded)."""
        with self._cond:
            return self._journal_id

    def get_log(self) -> str:
        """Progress lines so far, then (once built) the build log itself."""
        with self._cond:
            lines = list(self._lines)
            result = self._result
        text = "\n".join(lines)
        if result is not None and result.log_path is not None:
            text += "\n" + result.get_log()
        return text

    def wait_for_completion(self, show_output: bool = False) -> BuildResult:
        """Wait for the build; print progress with ``show_output``. Raises the build's error."""
        shown = 0
        with self._cond:
            while True:
                if show_output:
                    for line in self._lines[shown:]:
                        sys.stdout.write(line + "\n")
                    shown = len(self._lines)
                    sys.stdout.flush()
                if self._done:
                    break
                self._cond.wait(timeout=1.0)
            if self._error is not None:
                if isinstance(self._error, KilnError):
                    raise self._error
                raise KilnError(f"build of {self.environment.name} failed: {self._error}") from self._error
            assert self._result is not None
            return self._result

    @property
    def result(self) -> BuildResult | None:
        return self._result
