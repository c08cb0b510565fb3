"""Make a small local conda channel: ``python conda_channel.py CHANNEL < packages.json``.

Run as a script, never imported by the test process: py-rattler 0.26 to 0.28 can crash at interpreter
exit after its work is done, so this process leaves with ``os._exit`` once the channel is written.

``packages.json`` is a list of packages, each::

    {"name": "datapkg", "version": "1.0", "build": "0", "noarch": "generic" | "python" | null,
     "depends": ["..."], "files": {"share/datapkg/data.txt": "text", ...},
     "executable": ["bin/tool"],                  # files made executable
     "entry_points": ["tool = module:main"],      # noarch: python console scripts (info/link.json)
     "placeholder": "/some/build/prefix"}         # files holding this text get it replaced by the prefix

``py-rattler-build``'s ``assemble_package`` makes each package (``.conda``; ``.tar.bz2`` when its
``info/`` needs more than the assembler writes, added to the archive afterwards: ``info/link.json``
for entry points, and prefix placeholders in ``info/paths.json`` — the assembler's own detection
looks for the random staging folder it copies the files into, which no file can hold in advance),
then ``rattler.index.index_fs`` indexes the whole channel (without ``target_platform``, which would
skip ``noarch``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

SUBDIR = "linux-64"


def _patch(archive: Path, package: dict[str, Any]) -> None:
    """Add entry points and prefix placeholders to the ``info/`` of a ``.tar.bz2`` package."""
    with tarfile.open(archive, "r:bz2") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]
    placeholder = package.get("placeholder")
    out: list[tuple[tarfile.TarInfo, bytes]] = []
    for member, data in members:
        if member.name == "info/paths.json":
            paths = json.loads(data)
            for entry in paths["paths"]:
                if placeholder and placeholder in package["files"].get(entry["_path"], ""):
                    entry["prefix_placeholder"] = placeholder
                    entry["file_mode"] = "text"
            data = json.dumps(paths, indent=2).encode()
        out.append((member, data))
    if package.get("entry_points"):
        link = {"noarch": {"type": "python", "entry_points": package["entry_points"]}, "package_metadata_version": 1}
        info = tarfile.TarInfo("info/link.json")
        out.append((info, json.dumps(link).encode()))
    with tarfile.open(archive, "w:bz2") as tar:
        for member, data in out:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


def build(channel: Path, package: dict[str, Any]) -> Path:
    from rattler_build import ArchiveType, assemble_package

    noarch = package.get("noarch")
    subdir = "noarch" if noarch else SUBDIR
    (channel / subdir).mkdir(parents=True, exist_ok=True)
    patched = bool(package.get("entry_points") or package.get("placeholder"))
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        for rel, text in package["files"].items():
            path = files / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel in package.get("executable", []):
                path.chmod(0o755)
        output = assemble_package(package["name"], package["version"], subdir, package.get("build", "0"),
                                  channel / subdir, files_dir=files, depends=package.get("depends", []),
                                  noarch=noarch, archive_type=ArchiveType.TarBz2 if patched else ArchiveType.Conda,
                                  detect_prefix=False, compression_level=1)
    archive = Path(output.path)
    if patched:
        _patch(archive, package)
    return archive


def main() -> None:
    code = 0
    try:
        channel = Path(sys.argv[1])
        (channel / "noarch").mkdir(parents=True, exist_ok=True)
        (channel / SUBDIR).mkdir(parents=True, exist_ok=True)
        made = [str(build(channel, p)) for p in json.loads(sys.stdin.read())]
        from rattler import index

        asyncio.run(index.index_fs(channel, force=True))
        sys.stdout.write(json.dumps(made))
    except Exception as e:  # reported to the test, which shows it
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip the interpreter's teardown: see the module docstring


if __name__ == "__main__":
    main()
