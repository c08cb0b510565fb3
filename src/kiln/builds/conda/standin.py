"""When no channel serves Python: a stand-in ``python`` package for an interpreter found on this machine.

This machine (and many offline ones) reaches no public conda channel, so conda's own ``python`` can't
be installed. Kiln then places a found interpreter of the requested version instead: it writes, in a
local channel of its own (``<cache>/channels/kiln-interpreters``), an empty ``python`` package of that
exact version (build string ``kiln_0``), which lets the conda solve and the linking of ``noarch:
python`` packages go ahead; after the conda install, the prefix is made a virtual environment of the
found interpreter (``uv venv --allow-existing``). The channel comes last, so a real ``python`` from
the definition's channels always wins (strict channel priority). The build log says which happened.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from kiln.builds.interpreters import Interpreter

__all__ = ["BUILD_STRING", "conda_subdir", "standin_channel", "standin_file"]

BUILD_STRING = "kiln_0"
_SUBDIRS = {("linux", "x86_64"): "linux-64", ("linux", "aarch64"): "linux-aarch64", ("linux", "ppc64le"):
            "linux-ppc64le", ("darwin", "x86_64"): "osx-64", ("darwin", "arm64"): "osx-arm64",
            ("windows", "amd64"): "win-64"}


def conda_subdir(interpreter: Interpreter) -> str:
    return _SUBDIRS.get((interpreter.system.lower(), interpreter.machine.lower()), "linux-64")


def _package(version: str, subdir: str) -> bytes:
    # byte-for-byte the same on every machine (no timestamps): the same sha256 wherever it is written,
    # so a lock holding it installs from any Kiln cache
    index = {"name": "python", "version": version, "build": BUILD_STRING, "build_number": 0, "depends": [],
             "subdir": subdir, "arch": None, "platform": None, "license": "PSF-2.0"}
    members = {"info/index.json": json.dumps(index, indent=1), "info/paths.json": json.dumps(
        {"paths": [], "paths_version": 1}), "info/files": "",
        "info/about.json": json.dumps({"summary": "Kiln's stand-in for an interpreter found on this machine"})}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def standin_file(cache_dir: Path, interpreter: Interpreter) -> Path:
    return (cache_dir / "channels" / "kiln-interpreters" / conda_subdir(interpreter)
            / f"python-{interpreter.version}-{BUILD_STRING}.tar.bz2")


def standin_channel(cache_dir: Path, interpreter: Interpreter, index: object) -> Path:
    """The stand-in channel, with a ``python`` package for ``interpreter`` (written and indexed once).

    ``index`` is a callable taking the channel folder (the rattler child process indexes it)."""
    channel = cache_dir / "channels" / "kiln-interpreters"
    subdir = conda_subdir(interpreter)
    target = channel / subdir / f"python-{interpreter.version}-{BUILD_STRING}.tar.bz2"
    if not target.exists() or not (channel / subdir / "repodata.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        (channel / "noarch").mkdir(exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(_package(interpreter.version, subdir))
        tmp.replace(target)
        index(channel)  # type: ignore[operator]
    return channel
