"""A built environment as a Jupyter kernel: a kernelspec folder whose ``kernel.json`` starts the
environment's own interpreter with ``-m ipykernel_launcher``.

Where it goes: ``<prefix>/share/jupyter/kernels/<name>`` with a prefix (as ``ipykernel install
--prefix``), else the user's Jupyter data folder (``JUPYTER_DATA_DIR``, or the platform's default, the
folder ``jupyter --data-dir`` prints), found without importing Jupyter: Kiln doesn't depend on it.
The kernel runs with the environment's variables and its virtual environment activated, as a run does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiln._files import write_text_atomic
from kiln.errors import KilnError

if TYPE_CHECKING:
    from kiln.builds.result import BuildResult

__all__ = ["KernelSpec", "MissingIpykernelError", "install_kernel", "jupyter_data_dir", "kernel_name"]


class MissingIpykernelError(KilnError):
    """The environment has no ``ipykernel``: a kernelspec pointing at it could not start."""


@dataclass(frozen=True)
class KernelSpec:
    name: str
    path: Path
    display_name: str
    python: Path


def jupyter_data_dir(environ: dict[str, str] | None = None) -> Path:
    """The user's Jupyter data folder, by Jupyter's own rules (``jupyter_core.paths.jupyter_data_dir``)."""
    env = os.environ if environ is None else environ
    if env.get("JUPYTER_DATA_DIR"):
        return Path(env["JUPYTER_DATA_DIR"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if sys.platform == "win32":
        appdata = env.get("APPDATA")
        return Path(appdata) / "jupyter" if appdata else home / ".jupyter" / "data"
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "jupyter"


def kernel_name(label: str) -> str:
    """``train:2`` → ``kiln-train-2``: Jupyter allows letters, digits, ``.``, ``_`` and ``-`` (lower case)."""
    return "kiln-" + re.sub(r"[^a-z0-9._-]+", "-", label.lower()).strip("-")


def _has_ipykernel(result: BuildResult) -> bool:
    code = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('ipykernel') else 3)"
    proc = subprocess.run([str(result.python), "-c", code], env=result.environ(), capture_output=True, check=False,
                          timeout=120)
    return proc.returncode == 0


def install_kernel(result: BuildResult, *, name: str | None = None, display_name: str | None = None,
                   prefix: Path | None = None, environ: dict[str, str] | None = None) -> KernelSpec:
    """Write the kernelspec of the built environment ``result``; return where. ``MissingIpykernelError``
    (nothing written) when the environment can't run a kernel."""
    if not _has_ipykernel(result):
        raise MissingIpykernelError(
            f"environment {result.environment} has no ipykernel, so Jupyter could not start a kernel in it: add "
            "it to the definition (cd.add_pip_package('ipykernel'), or '- ipykernel' under pip: in the conda "
            "file), register the new version and run `kiln env kernel` on it")
    kernel = name or kernel_name(result.environment)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", kernel):
        raise KilnError(f"--name {kernel!r}: a kernel name may use only letters, digits, '.', '_' and '-'")
    root = (prefix / "share" / "jupyter" if prefix is not None else jupyter_data_dir(environ)) / "kernels"
    folder = root / kernel.lower()
    shown = display_name or f"Python {result.python_version} (Kiln {result.environment})"
    variables = dict(result.environment_variables)
    if result.virtual_env is not None:  # what activating it does: the kernel's subprocesses find its tools
        variables["VIRTUAL_ENV"] = str(result.virtual_env)
        variables["PATH"] = f"{result.virtual_env / 'bin'}{os.pathsep}${{PATH}}"
    spec = {"argv": [str(result.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": shown, "language": "python", "env": variables,
            "metadata": {"kiln": {"environment": result.environment, "identity": result.identity,
                                  "lock": result.lock_hash}, "debugger": True}}
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "kernel.json", json.dumps(spec, indent=1) + "\n")
    return KernelSpec(name=kernel.lower(), path=folder, display_name=shown, python=result.python)
