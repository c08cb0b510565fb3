"""Compute targets: where a run's script runs. ``local`` today; ``container`` and ``ray`` next.

A target is handed a ``RunPlan`` (everything decided before the script starts) by the run's
supervisor (``kiln.runs.supervisor``), starts the script and returns a ``RunHandle``; the supervisor
then waits on the handle, cancels it on ``run.cancel()`` or a timeout, and writes the run's final
status. Every target passes the shared contract suite (``tests/integration/runs/test_target_contract.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.settings import Settings
    from kiln.workspace.workspace import Workspace

__all__ = ["ComputeTarget", "RunHandle", "RunPlan"]


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """One run, as a target receives it: what to run, with what, where its output goes.

    The paths are on the machine of the supervisor. A target that runs the script elsewhere (a
    container, a Ray cluster) ships ``workdir`` and ``kiln_path`` there and brings the output and
    ``./outputs`` back to ``log`` and ``outputs``.
    """

    run_id: str
    #: the script, relative to ``workdir``, and its arguments (strings, passed as they are: no shell)
    script: str
    arguments: Sequence[str] = ()
    #: instead of the script: a command (``ScriptRunConfig(command=...)``), its words as given (no shell), run
    #: in ``workdir``; a first word ``python``/``python3`` means the environment's interpreter
    command: Sequence[str] | None = None
    #: the script's current folder: the run's working copy of its snapshot, or the source folder itself
    workdir: Path
    #: the interpreter of the run's built environment on this machine (what the local target runs)
    python: str
    #: the environment's lock (a container target builds its image from it); None for a user-managed one
    lock_hash: str | None = None
    #: for a target that ``builds_elsewhere``: the environment as its node builds it, JSON of ``name``,
    #: ``definition`` (the registered definition's text), ``lock`` (the lock document), ``lock_hash``,
    #: ``python`` and ``platform`` (what the lock was made for). None: the environment is used as it is
    #: (``python``: a user-managed one, or a build of this machine)
    environment_spec: str | None = None
    #: the script's whole environment as composed for this machine (``os.environ``, the built
    #: environment's PATH/VIRTUAL_ENV, ``variables``): what a local process gets
    environ: Mapping[str, str] = field(default_factory=dict)
    #: the variables Kiln and the user set for this run (``KILN_RUN_ID``, ``KILN_RUN_DIR``, PYTHONPATH with
    #: ``kiln_path``, the environment's and the run's variables): what a target elsewhere passes on
    variables: Mapping[str, str] = field(default_factory=dict)
    #: the folder holding the in-run module ``kiln/run.py`` (already on PYTHONPATH in ``environ``)
    kiln_path: Path | None = None
    #: the run's folder (``KILN_RUN_DIR``: metrics are appended there by the script)
    run_dir: Path
    #: the run's log: the script's stdout and stderr are appended here, in the order written
    log: Path
    #: where ``./outputs`` (relative to ``workdir``) is copied when the script ends; None: not collected
    outputs: Path | None = None
    #: a file the target may write to find the script again from another process (a pid, a container
    #: id, a job id): ``stop_orphan`` reads it when the supervisor died
    state: Path
    #: the run's time limit. The supervisor enforces it (it cancels the handle); a target may also pass it
    #: on as a hard limit of its own
    max_run_duration_seconds: float | None = None
    #: the image the script runs in, for a target that runs containers (its ``prepare`` sets it; ``python``
    #: is then the interpreter's path inside the image); None for a target that runs on this machine
    image: str | None = None
    #: the Docker-API engine holding ``image`` (``unix:///run/podman/podman.sock``), from the settings
    engine: str | None = None
    #: the size of the container's /dev/shm in bytes (``docker.shm_size``, checked at submit), for a target that
    #: runs containers; None: the engine's default
    shm_size: int | None = None


class RunHandle(ABC):
    """A started script. Only the supervisor that started it holds it (one process, one thread)."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """The script's exit code once it has ended (negative: the signal that killed it), or None if it
        still runs after ``timeout`` seconds (None: wait as long as it takes).

        When the exit code is returned the script's output is all in ``plan.log`` and its ``./outputs``
        are in ``plan.outputs`` (unless that is None): a target collects them before returning.
        Called again after the end, it returns the same code.
        """

    @abstractmethod
    def cancel(self) -> None:
        """Stop the script and everything it started (its whole process group, container or job):
        politely first (SIGTERM), then for good after a grace period (SIGKILL). Returns once it has
        stopped; ``wait()`` then gives the exit code and ``canceled`` is True. Harmless once ended."""

    @abstractmethod
    def alive(self) -> bool:
        """Whether the script still runs (False once it has exited, even before ``wait`` was called)."""

    @property
    @abstractmethod
    def canceled(self) -> bool:
        """Whether ``cancel()`` stopped the script (False if it had already ended by itself)."""

    @abstractmethod
    def logs(self, *, follow: bool = False) -> Iterator[str]:
        """The lines of the run's log (``plan.log``) so far, each with its newline (but a last partial
        line). With ``follow``, go on yielding lines as they are written, until the script has ended."""


class ComputeTarget(ABC):
    """Where scripts run. Registered by name in ``kiln.runs.targets.registry`` (``compute_target=name``).

    A target must guarantee, for every plan it accepts (``cannot_run`` gave None):

    - the script runs with ``plan.python`` (or the target's image of the environment), in
      ``plan.workdir``, with ``plan.arguments`` and the variables of ``plan.variables``;
    - everything it prints (stdout and stderr, interleaved in the order written) is appended to
      ``plan.log`` while it runs, so that ``kiln run logs --follow`` shows it live;
    - its exit code comes back from ``handle.wait()``, and its ``./outputs`` are then in ``plan.outputs``;
    - ``handle.cancel()`` stops the script and all its children;
    - the supervisor may die (killed, machine restarted): ``start`` records in ``plan.state`` what
      ``stop_orphan`` needs to end the script from another process, which Kiln calls once it has seen
      that the supervisor is gone (``Run.status`` then reports the run Failed).
    """

    #: the name users give as ``compute_target`` (``"local"``, ``"docker"``, ``"ray-dev"``)
    name: str
    #: True for a target whose nodes build the environment from its lock: the supervisor then locks it
    #: (resolving if need be) but builds nothing here, and passes ``plan.environment_spec``
    builds_elsewhere: bool = False
    #: True for a target that runs the script in a copy of ``plan.workdir`` on another machine (its
    #: current folder holds the same files, under another path)
    remote: bool = False

    @abstractmethod
    def cannot_run(self, plan: RunPlan) -> str | None:
        """Why this target can't run ``plan`` on this machine, in words for the user (with what to do:
        "Ray is not installed: pip install kiln[ray]"), or None when it can. Never raises."""

    def prepare(self, *, plan: RunPlan, workspace: Workspace, environment: tuple[str, str], settings: Settings,
                say: Callable[[str], None]) -> RunPlan:
        """Make what the target needs before ``cannot_run`` and ``start`` (an image of the run's environment,
        ``environment`` as its registered name and version), reporting progress with ``say``; return the plan
        the script runs with. The default: the plan as it is. Raises a ``KilnError`` saying why it can't."""
        del workspace, environment, settings, say
        return plan

    @abstractmethod
    def start(self, *, plan: RunPlan) -> RunHandle:
        """Start the script of ``plan`` and return at once with its handle (the script runs on)."""

    @abstractmethod
    def stop_orphan(self, *, state: Path) -> None:
        """End a script whose supervisor died, from what ``start`` wrote to ``state`` (a plan's ``state``).
        Does nothing when the file is missing or the script has already ended (it may have been replaced
        by an unrelated process with the same pid or name: check it is the same one). Never raises."""

    def __repr__(self) -> str:
        return f"<compute target {self.name!r}>"
