"""Running uv: the binary shipped by the ``uv`` package, with Kiln's fixed settings.

uv is always run with ``--no-config`` (a user's ``uv.toml`` or ``pyproject.toml`` must not change
a build), never downloads Pythons (Kiln picks the interpreter), and its output goes to the build
log line by line as it comes.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path

from kiln.environment.secrets import mask
from kiln.errors import CommandError, KilnError

__all__ = ["UvError", "run_uv", "uv_binary", "uv_version"]

LineSink = Callable[[str], None]


#: an explanation longer than this keeps its first and last lines (the root cause of a failed sdist build is
#: usually the last line of its traceback)
_HEAD_LINES = 20
_TAIL_LINES = 60


class UvError(CommandError):
    """uv failed; the message is uv's own explanation (the resolver's, the installer's), whole: a failed
    source build's traceback ends with its root cause. Very long ones keep their head and tail."""

    def __init__(self, cmd: Sequence[str], returncode: int, output: str, what: str | None = None) -> None:
        super().__init__(cmd, returncode, output, what)
        lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
        if len(lines) > _HEAD_LINES + _TAIL_LINES:
            left_out = len(lines) - _HEAD_LINES - _TAIL_LINES
            lines = [*lines[:_HEAD_LINES], f"[... {left_out} lines of uv's output left out ...]",
                     *lines[-_TAIL_LINES:]]
        head = what or "uv"
        self.args = (f"{head}: " + "\n".join(lines) if lines else f"{head} failed with exit code {returncode}",)

    def add_note_line(self, note: str) -> None:
        """Append ``note`` to the message (what Kiln did before uv failed, e.g. a fallback it took)."""
        self.args = (f"{self.args[0]}\n{note}",)


_FIND = threading.Lock()


@cache
def uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - uv is a dependency of Kiln
        raise KilnError("the 'uv' package is not installed: pip install uv") from None
    with _FIND:  # find_uv_bin reads sysconfig, whose lazy setup is not thread-safe
        return str(find_uv_bin())


@cache
def uv_version() -> str:
    out = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip() or "uv"


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "NO_COLOR": "1"})
    for key in ("VIRTUAL_ENV", "CONDA_PREFIX", "UV_SYSTEM_PYTHON", "UV_PYTHON"):
        env.pop(key, None)  # the target is always given explicitly
    if extra:
        env.update(extra)
    return env


def run_uv(args: Sequence[str], *, what: str, cwd: Path | None = None, sink: LineSink | None = None,
           env: Mapping[str, str] | None = None) -> str:
    """Run ``uv ARGS``; stream its output (stdout and stderr, merged) to ``sink``; return it.

    A non-zero exit raises ``UvError`` whose message is uv's own error text.
    """
    cmd = [uv_binary(), *args]
    lines: list[str] = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                env=_env(env), bufsize=1, errors="replace")
    except OSError as e:
        raise UvError(cmd, -1, mask(str(e)), what) from None
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = mask(line.rstrip("\n"))  # uv expanded the ${VAR} references it was given
            lines.append(line)
            if sink is not None:
                sink(line)
        code = proc.wait()
    output = "\n".join(lines)
    if code != 0:
        raise UvError(cmd, code, _explanation(output), what)
    return output


def _explanation(output: str) -> str:
    """uv's error block (from its first ``error:`` or cross-mark line), else its whole output."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("error:", "\u00d7", "x ")):  # uv marks errors with a multiplication sign
            return "\n".join(lines[i:])
    return output
