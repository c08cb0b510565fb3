"""Python interpreters on this machine, and picking one for a definition's Python version.

Where Kiln looks, in order: the configured list (``KILN_PYTHONS``, paths separated by ``os.pathsep``),
pyenv's ``versions/`` folder, uv-managed Pythons, then ``python3.X``/``python3``/``python`` on PATH.
pyenv's ``shims/`` are skipped: they are scripts that pick a version by the current folder, not
interpreters. Each candidate is run once to read its real version; the answers are cached in
Kiln's cache folder by (path, mtime, size), so looking up interpreters costs almost nothing later.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from kiln.errors import DefinitionError, KilnError
from kiln.settings import ENV_PYTHONS

__all__ = ["Interpreter", "discover", "find_interpreter", "inspect_interpreter", "named_interpreter", "select",
           "version_matches"]

#: run with ``-I -S``: no ``site`` (its .pth files and a big site-packages made each probe ~0.1 s here, against
#: ~0.02 s without; every cold build and a teammate's first build paid it) and ``os.uname``, not ``platform``
#: (the same ``machine``/``system`` on POSIX, where Kiln runs, without importing it)
_PROBE = ("import json, os, sys; u = os.uname(); print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
          "'implementation': sys.implementation.name, 'machine': u.machine, 'system': u.sysname}))")
_CACHE_FORMAT = 1
_MISS = object()


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # "3.11.7"
    implementation: str = "cpython"
    machine: str = ""
    system: str = ""

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    @property
    def minor(self) -> str:
        """``"3.11"``"""
        return ".".join(self.version.split(".")[:2])

    @property
    def platform(self) -> str:
        """``linux-x86_64``: what a lock and a build are made for."""
        return f"{self.system.lower() or 'unknown'}-{self.machine.lower() or 'unknown'}"


def _candidates(environ: Mapping[str, str]) -> list[Path]:
    found: list[Path] = []
    for item in (environ.get(ENV_PYTHONS) or "").split(os.pathsep):
        if item.strip():
            found.append(Path(item.strip()).expanduser())
    pyenv_root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found += sorted((pyenv_root / "versions").glob("*/bin/python3"))
    uv_dir = Path(environ.get("UV_PYTHON_INSTALL_DIR") or
                  Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "uv" / "python")
    found += sorted(uv_dir.glob("*/bin/python3"))
    shims = (pyenv_root / "shims").resolve()
    for folder in (environ.get("PATH") or "").split(os.pathsep):
        if not folder:
            continue
        folder_path = Path(folder)
        try:
            if folder_path.resolve() == shims:
                continue
        except OSError:
            continue
        for name in ("python3", "python"):
            found.append(folder_path / name)
        found += sorted(folder_path.glob("python3.[0-9]*"))
    return found


def _guess(path: Path) -> str | None:
    """The version a candidate's path names (pyenv ``versions/3.11.7``, uv ``cpython-3.11.7-...``,
    ``python3.11``), or None when only running it can tell."""
    for part in (path.parent.parent.name, path.name):
        m = re.search(r"(?:^|cpython-|python)(\d+\.\d+(?:\.\d+)?)(?:$|[^\d.])", part)
        if m:
            return m.group(1)
    return None


def discover(*, cache_dir: Path | None = None, environ: Mapping[str, str] | None = None,
             wanted: str | None = None) -> list[Interpreter]:
    """Every distinct working interpreter found, newest version first.

    With ``wanted`` (a version spec), candidates whose path names another version are not run at all.
    Candidates not yet in the probe cache are run in parallel.
    """
    env = os.environ if environ is None else environ
    cache = _ProbeCache(cache_dir)
    seen: set[str] = set()
    todo: list[tuple[Path, Path]] = []
    for path in _candidates(env):
        if not re.fullmatch(r"python(3(\.\d+)?)?", path.name):
            continue
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if str(real) in seen or real.is_dir() or not os.access(real, os.X_OK):
            continue
        seen.add(str(real))
        guess = _guess(path) or _guess(real)
        if wanted is not None and guess is not None and not _may_match(guess, wanted):
            continue
        todo.append((path, real))
    cache.prefetch(todo)
    out = [info for path, real in todo if (info := cache.get(path, real)) is not None
           and not info.version.startswith("2.")]
    cache.save()
    out.sort(key=lambda i: i.version_tuple, reverse=True)
    return out


def _may_match(guess: str, wanted: str) -> bool:
    """Could an interpreter whose path names ``guess`` satisfy ``wanted``? (``python3.10`` names only
    the minor version: it may be 3.10.4.)"""
    if re.fullmatch(r"\d+(\.\d+)*(\.\*)?", wanted.strip()):
        a, b = guess.split("."), wanted.strip().removesuffix(".*").split(".")
        n = min(len(a), len(b))
        return a[:n] == b[:n]
    return guess.count(".") < 2 or version_matches(guess, wanted)


def find_interpreter(spec: str | None, *, default: str, cache_dir: Path | None = None,
                     environ: Mapping[str, str] | None = None) -> Interpreter:
    """The newest interpreter for ``spec`` (``default`` when None); the error lists what exists."""
    wanted = spec or default
    try:
        return select(wanted, discover(cache_dir=cache_dir, environ=environ, wanted=wanted), default=default)
    except DefinitionError:  # say what does exist: everything, not only the candidates that might have matched
        return select(wanted, discover(cache_dir=cache_dir, environ=environ), default=default)


def inspect_interpreter(path: str | os.PathLike[str]) -> Interpreter:
    """Run ``path`` to learn what it is; a clear error when it does not exist or does not run."""
    target = Path(path)
    if not target.exists():
        raise DefinitionError(f"python.interpreter_path: {str(target)!r} does not exist")
    info = _probe(target)
    if info is None:
        raise DefinitionError(f"python.interpreter_path: {str(target)!r} does not run as a Python interpreter")
    return info


def named_interpreter(command: str) -> Interpreter:
    """The interpreter a user-managed environment names in ``python.interpreter_path``: a path
    (``/opt/py/bin/python3``), or a command found on ``PATH`` (``python3``)."""
    if "/" in command:
        return inspect_interpreter(command)
    import shutil

    found = shutil.which(command)
    if found is None:
        raise KilnError(f"python.interpreter_path: {command!r} is not on PATH")
    return inspect_interpreter(found)


def version_matches(version: str, spec: str) -> bool:
    """Does interpreter ``version`` (``3.11.7``) satisfy a conda-style ``spec``?

    ``3.11`` and ``3.11.*`` mean any 3.11.x (conda's ``python=3.11``); ``3.11.7`` that exact
    release; ranges (``>=3.9,<3.12``) and ``|`` alternatives follow conda's version rules for the
    cases Python versions need.
    """
    spec = spec.strip()
    if "|" in spec:
        return any(version_matches(version, part) for part in spec.split("|"))
    if re.fullmatch(r"\d+(\.\d+)*(\.\*)?", spec):
        prefix = spec.removesuffix(".*").split(".")
        return version.split(".")[: len(prefix)] == prefix
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(spec.replace(" ", "")).contains(version, prereleases=True)
    except InvalidSpecifier:
        raise DefinitionError(f"python version {spec!r} is not a version or a range Kiln understands") from None


def select(spec: str | None, interpreters: Iterable[Interpreter], *, default: str) -> Interpreter:
    """The newest interpreter matching ``spec`` (``default`` when None)."""
    wanted = spec or default
    pool = sorted(interpreters, key=lambda i: i.version_tuple, reverse=True)
    for interpreter in pool:
        if version_matches(interpreter.version, wanted):
            return interpreter
    have = ", ".join(sorted({i.version for i in pool}, key=lambda v: tuple(int(p) for p in v.split(".")),
                            reverse=True)) or "none"
    raise DefinitionError(f"no Python interpreter for python={wanted} on this machine (found: {have}); "
                          f"install one (e.g. with pyenv or `uv python install {wanted}`) or list it in "
                          f"{ENV_PYTHONS}")


def _probe(path: Path) -> Interpreter | None:
    return _probe_result(path, _start_probe(path))


def _start_probe(path: Path) -> subprocess.Popen[str] | None:
    try:
        return subprocess.Popen([str(path), "-I", "-S", "-c", _PROBE], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None


def _probe_result(path: Path, proc: subprocess.Popen[str] | None) -> Interpreter | None:
    """What the probe ``proc`` (``_start_probe(path)``) printed, once it ended; None if it didn't run as a Python."""
    if proc is None:
        return None
    with proc:
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return Interpreter(path=str(path), version=data["version"], implementation=data["implementation"],
                       machine=data["machine"], system=data["system"])


class _ProbeCache:
    """Probe results by (real path, mtime, size), in ``<cache>/interpreters-v1.json``."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.file = None if cache_dir is None else cache_dir / "interpreters-v1.json"
        self.entries: dict[str, dict[str, object]] = {}
        self.dirty = False
        if self.file is not None and self.file.is_file():
            try:
                data = json.loads(self.file.read_text())
                if data.get("format") == _CACHE_FORMAT:
                    self.entries = data["entries"]
            except (ValueError, KeyError, OSError):
                self.entries = {}

    def prefetch(self, items: list[tuple[Path, Path]]) -> None:
        """Probe, side by side, every candidate the cache can't answer for: all started, then each read. (Not a
        thread pool: importing ``concurrent.futures`` (and its ``logging``) and starting threads cost a cold build
        more than the probes themselves.)"""
        missing = [(p, r) for p, r in items if self._cached(p, r) is _MISS]
        if len(missing) < 2:
            return
        started = [(path, real, _start_probe(path)) for path, real in missing]
        for path, real, proc in started:
            self._store(path, real, _probe_result(path, proc))

    def _stamp(self, real: Path) -> str | None:
        try:
            st = real.stat()
        except OSError:
            return None
        return f"{st.st_mtime_ns}:{st.st_size}"

    def _cached(self, path: Path, real: Path) -> Interpreter | object | None:
        hit = self.entries.get(str(path))
        if hit is None or hit.get("stamp") != self._stamp(real):
            return _MISS
        info = hit.get("info")
        return None if info is None else Interpreter(**info)  # type: ignore[arg-type]

    def _store(self, path: Path, real: Path, probed: Interpreter | None) -> None:
        self.entries[str(path)] = {"stamp": self._stamp(real), "info": None if probed is None else asdict(probed)}
        self.dirty = True

    def get(self, path: Path, real: Path) -> Interpreter | None:
        cached = self._cached(path, real)
        if cached is not _MISS:
            return cached  # type: ignore[return-value]
        probed = _probe(path)
        self._store(path, real, probed)
        return probed

    def save(self) -> None:
        if self.file is None or not self.dirty:
            return
        import tempfile

        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".interpreters.", dir=self.file.parent)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": _CACHE_FORMAT, "entries": self.entries}, f)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a cache that can't be written only costs the probes again next time
