"""Splitting a built environment into layers: one per installed distribution, from its ``RECORD``.

The environment is a published build of the ``venv`` backend (made ``--relocatable``, so its scripts
name no path). Inside the image it lives at ``ENV_PREFIX``; what no distribution's ``RECORD`` claims
(``pyvenv.cfg``, ``bin/python``, the activation scripts, every folder) is the ``environment`` layer.
Two things of the host are rewritten there, so that no host path reaches the image: ``bin/python*``
point at the image's interpreter, and ``pyvenv.cfg``'s ``home`` is that interpreter's folder (its
``uv = <version>`` line is dropped: the tool's version must not change the image). Bytecode
(``__pycache__``) is left out: it appears when the environment runs, so it would make the image depend on
what ran; Python writes it in the container when needed.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kiln.builds.oci.layer import Entry
from kiln.errors import KilnError

__all__ = ["MAX_PACKAGE_LAYERS", "SMALL", "Group", "group_small", "split_environment"]

#: above this many distributions, small ones share layers (engines cap an image's layers: Docker at ~125)
MAX_PACKAGE_LAYERS = 100
#: a distribution under this many bytes is "small"
SMALL = 1 << 20


@dataclass(frozen=True)
class Group:
    """What goes into one layer: ``title`` is ``name version`` of a distribution, or ``environment``."""

    title: str
    entries: list[Entry]


def _dist_title(dist_info: Path) -> str:
    stem = dist_info.name[: -len(".dist-info")]
    name, _, version = stem.partition("-")
    return f"{name.lower().replace('_', '-')} {version}"


def _parents(name: str) -> list[Entry]:
    parts = PurePosixPath(name).parents
    return [Entry(str(p), "dir") for p in parts if str(p) not in (".", "/")]


def _entry(path: Path, name: str, env: Path) -> Entry:
    if path.is_symlink():
        target = os.readlink(path)
        if os.path.isabs(target):
            raise KilnError(f"{path}: a link to {target[:200]} outside the environment can't go into an image")
        return Entry(name, "symlink", target=target)
    if path.is_dir():
        return Entry(name, "dir")
    return Entry(name, "file", source=path, executable=os.access(path, os.X_OK))


def _record(dist_info: Path, env: Path) -> list[Path]:
    """The files of ``dist_info``'s RECORD that exist inside ``env`` (RECORD paths are relative to site-packages)."""
    record = dist_info / "RECORD"
    try:
        text = record.read_text(encoding="utf-8")
    except OSError as e:
        raise KilnError(f"{record}: can't read it ({e.strerror})") from None
    site = dist_info.parent
    out = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0]:
            continue
        path = Path(os.path.normpath(site / row[0]))
        if "__pycache__" in path.parts:
            continue  # bytecode appears when the environment runs: it would make the layer depend on that
        if path.is_relative_to(env) and (path.is_file() or path.is_symlink()):
            out.append(path)
    return out


def split_environment(env: Path, *, prefix: str, interpreter: str) -> list[Group]:
    """``env``'s files in groups, one per distribution (sorted by title), the ``environment`` group first.

    ``prefix`` is the environment's folder in the image (``/kiln/env``); ``interpreter`` the image's Python
    (``/usr/local/bin/python3.12``), which ``bin/python`` will point at.
    """
    root = prefix.strip("/")
    claimed: set[Path] = set()
    groups: list[Group] = []
    for dist_info in sorted(env.glob("lib/python*/site-packages/*.dist-info")):
        files = _record(dist_info, env)
        claimed.update(files)
        entries: list[Entry] = []
        for path in files:
            name = f"{root}/{path.relative_to(env).as_posix()}"
            entries += [*_parents(name), _entry(path, name, env)]
        groups.append(Group(_dist_title(dist_info), entries))
    groups.sort(key=lambda g: g.title)
    # a package's folders go with its files: in the base layer they would change it with every package
    owned = {parent for path in claimed for parent in path.parents if parent.is_relative_to(env)}
    skeleton = {parent for site in env.glob("lib/python*/site-packages") for parent in [site, *site.parents]}
    base: list[Entry] = [*_parents(f"{root}/x")]
    for folder, dirs, names in os.walk(env):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        # bytecode and uv's own lock file appear when the environment is used: not part of what was built
        names = [n for n in names if not n.endswith(".pyc") and not (folder == str(env) and n == ".lock")]
        here = Path(folder)
        for item in [*dirs, *names]:
            path = here / item
            if path in claimed or (path in owned and path not in skeleton):
                continue
            name = f"{root}/{path.relative_to(env).as_posix()}"
            rel = path.relative_to(env).as_posix()
            if rel.startswith("bin/python") and path.is_symlink():
                base.append(Entry(name, "symlink", target=interpreter))
            elif rel == "pyvenv.cfg":
                base.append(Entry(name, "file", data=_pyvenv_cfg(path, interpreter)))
            else:
                base.append(_entry(path, name, env))
    return [Group("environment", base), *groups]


def _pyvenv_cfg(path: Path, interpreter: str) -> bytes:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "uv":
            continue
        if key == "home":
            line = f"home = {PurePosixPath(interpreter).parent}"
        lines.append(line)
    return ("\n".join(lines) + "\n").encode()


def _bytes(group: Group) -> int:
    return sum(len(e.data) if e.data is not None else (e.source.stat().st_size if e.source is not None else 0)
               for e in group.entries)


def group_small(groups: list[Group], *, limit: int = MAX_PACKAGE_LAYERS, small: int = SMALL) -> list[Group]:
    """``groups`` (the ``environment`` group first) with at most about ``limit`` package layers: when there are
    more, the small distributions share one layer per first letter of their name, so adding a small
    package changes one shared layer, and a large one only its own."""
    head, packages = groups[:1], groups[1:]
    if len(packages) <= limit:
        return groups
    own: list[Group] = []
    shared: dict[str, list[Group]] = {}
    for group in packages:
        if _bytes(group) >= small:
            own.append(group)
        else:
            letter = group.title[:1] if group.title[:1].isalpha() else "0"
            shared.setdefault(letter, []).append(group)
    merged = [Group(f"{letter}*: " + ", ".join(g.title for g in sorted(members, key=lambda g: g.title)),
                    [e for g in members for e in g.entries])
              for letter, members in shared.items()]
    return [*head, *sorted([*own, *merged], key=lambda g: g.title)]
