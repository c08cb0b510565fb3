"""A package index on 127.0.0.1 for the benchmarks: a PEP 503 folder served by the standard library's HTTP server.

It takes the network out of a build's time: what is left is the installer's and Kiln's own work. The
folder is what PyPI serves, in miniature: ``simple/<name>/`` pages whose links carry each file's
sha256 (so a resolver that must emit hashes needn't download wheels to compute them) and point to
the wheel's core metadata (PEP 658/714, ``<wheel>.metadata``), as PyPI does, so resolving reads
metadata, not whole wheels.

The server is ``http.server``'s threading server with a listen backlog of 1,024 and HTTP/1.1 keep-alive
(``python bench/localindex.py ROOT PORT``): ``python -m http.server`` keeps socketserver's backlog of 5,
so uv's ~50 parallel requests overflowed it, and every dropped connection waited for TCP's 1-second
retransmit (a 10-package resolve took 1.4 s, a 50-package one 15 s, instead of ~0.1 s).

    with LocalIndex(folder_of_wheels) as index:
        index.url  # http://127.0.0.1:PORT/simple
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from types import TracebackType

__all__ = ["LocalIndex", "download_wheels", "write_index"]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_index(wheels: Path, root: Path) -> Path:
    """Write a PEP 503 index of the wheels in ``wheels`` under ``root`` (``root/simple``, ``root/files``)."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, list[str]] = {}
    for wheel in sorted(wheels.glob("*.whl")):
        target = files / wheel.name
        if not target.exists():
            shutil.copyfile(wheel, target)
        with zipfile.ZipFile(target) as z:
            member = next(m for m in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", m))
            metadata = z.read(member)
            name = _normalize(metadata.split(b"\nName:", 1)[1].split(b"\n", 1)[0].decode().strip())
        (files / f"{wheel.name}.metadata").write_bytes(metadata)
        meta_hash = hashlib.sha256(metadata).hexdigest()
        link = (f'<a href="../../files/{html.escape(wheel.name)}#sha256={_sha256(target)}" '
                f'data-core-metadata="sha256={meta_hash}" data-dist-info-metadata="sha256={meta_hash}">'
                f"{html.escape(wheel.name)}</a><br/>")
        by_name.setdefault(name, []).append(link)
    simple = root / "simple"
    for name, links in by_name.items():
        (simple / name).mkdir(parents=True, exist_ok=True)
        (simple / name / "index.html").write_text(
            f"<!DOCTYPE html><html><body>{''.join(links)}</body></html>\n", encoding="utf-8")
    (simple / "index.html").write_text(
        "<!DOCTYPE html><html><body>" + "".join(f'<a href="{n}/">{n}</a><br/>' for n in sorted(by_name))
        + "</body></html>\n", encoding="utf-8")
    return simple


def download_wheels(pinned: list[str], interpreter: str, into: Path) -> Path:
    """Download the wheels of ``pinned`` (``name==version`` lines) for ``interpreter`` with its pip."""
    into.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
    proc = subprocess.run([interpreter, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                           "--dest", str(into), *pinned], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"pip download failed:\n{proc.stdout}\n{proc.stderr}")
    return into


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalIndex:
    """An HTTP server (this file run as a script) over an index written from ``wheels``, on 127.0.0.1;
    stopped by its pid."""

    def __init__(self, wheels: Path, root: Path) -> None:
        self.root = root
        write_index(wheels, root)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/simple"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalIndex:
        self._proc = subprocess.Popen([sys.executable, __file__, str(self.root), str(self.port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise SystemExit(f"the local index on port {self.port} did not start") from None
                time.sleep(0.05)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


def serve(root: Path, port: int) -> None:
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real index

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024  # socketserver's 5 drops uv's parallel connections (see the module docstring)

    with Server(("127.0.0.1", port), functools.partial(Handler, directory=str(root))) as server:
        server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
