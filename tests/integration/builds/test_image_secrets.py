"""Secrets never in an image (issue 12, item 9): an environment whose every credential is a ``${VAR}``
reference — the base image registry's password, a private index's user and token (an index on 127.0.0.1 that
refuses requests without them), a conda channel's token — is built and written as an image; then every layer
(each file, link and header of its decompressed tar), the config, the manifest, the index and the exported tar
are scanned for the values, plainly and as HTTP Basic credentials (base64)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from build_support import make_wheel

from kiln import CondaDependencies, Environment, Workspace
from kiln.builds.oci.build import build_image
from kiln.settings import Settings

pytestmark = pytest.mark.integration


class PrivateIndex:
    """A simple index on 127.0.0.1 serving one wheel, only to requests with HTTP Basic ``user:token``."""

    def __init__(self, wheel: Path, user: str, token: str) -> None:
        body = wheel.read_bytes()
        page = f'<a href="/files/{wheel.name}#sha256={hashlib.sha256(body).hexdigest()}">{wheel.name}</a>'.encode()
        wanted = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                seen.append(self.path)
                if self.headers.get("Authorization") != wanted:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="private"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path.split("?")[0].rstrip("/")
                out = body if path == f"/files/{wheel.name}" else page if path == "/simple/kiln-img-secret" else None
                self.send_response(200 if out is not None else 404)
                self.send_header("Content-Type", "text/html" if out is page else "application/octet-stream")
                self.send_header("Content-Length", str(len(out or b"")))
                self.end_headers()
                if not head:
                    self.wfile.write(out or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


SECRETS = {name: f"kiln{name.lower()}{uuid.uuid4().hex}" for name in ("USER", "TOKEN", "REGISTRY", "CHANNEL")}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PrivateIndex]:
    wheel = make_wheel(tmp_path / "wheels", "kiln_img_secret", "1.0", "VALUE = 42\n")
    server = PrivateIndex(wheel, SECRETS["USER"], SECRETS["TOKEN"])
    yield server
    server.close()


def needles() -> dict[str, bytes]:
    """Each secret, and the Basic credentials made of user and token, in the forms they could leak in."""
    out = {name: value.encode() for name, value in SECRETS.items()}
    basic = f"{SECRETS['USER']}:{SECRETS['TOKEN']}".encode()
    out["BASIC"] = base64.b64encode(basic)
    out["BASIC-urlsafe"] = base64.urlsafe_b64encode(basic)
    return out


def tar_texts(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Every member of a tar: its name, link target and PAX headers, and its content."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            meta = f"{member.name}\0{member.linkname}\0{json.dumps(member.pax_headers)}".encode()
            body = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            yield member.name, meta + b"\0" + body


def scan(label: str, data: bytes, found: list[str]) -> None:
    for name, needle in needles().items():
        if needle in data:
            found.append(f"{name} in {label}")


def test_no_credential_of_any_form_reaches_an_image(index: PrivateIndex, kiln_home: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"KILN_T_{name}", value)
    ws = Workspace.create("img-secrets", path=tmp_path / "ws")
    env = Environment("secret-image")
    env.python.conda_dependencies = CondaDependencies.create(python_version="3.12", pip_packages=["kiln-img-secret"])
    env.python.conda_dependencies.set_pip_option(f"--index-url http://${{KILN_T_USER}}:${{KILN_T_TOKEN}}@"
                                                 f"{index.host}/simple")
    env.python.conda_dependencies.add_channel(f"http://{index.host}/t/${{KILN_T_CHANNEL}}/channel")
    env.docker.base_image = f"{index.host}/base/python:3.12"
    env.docker.base_image_registry.address = index.host
    env.docker.base_image_registry.username = "kiln"
    env.docker.base_image_registry.password = "${KILN_T_REGISTRY}"
    env.environment_variables = {"MODE": "secret-test"}
    env.register(ws)
    tar = tmp_path / "image.tar"
    image = build_image(env, ws, settings=Settings.from_env(), tar=tar)
    ws.close()
    assert any(p.startswith("/files/") for p in index.requests)  # the wheel came from the private index
    assert any(x.title == "kiln-img-secret 1.0" for x in image.layers)

    found: list[str] = []
    blobs = image.layout / "blobs" / "sha256"
    scanned_layers = 0
    for blob in sorted(blobs.iterdir()):
        data = blob.read_bytes()
        scan(f"blob {blob.name}", data, found)  # config, manifest: JSON; layers: compressed bytes as they are
        if data[:2] == b"\x1f\x8b":
            scanned_layers += 1
            for member, text in tar_texts(gzip.decompress(data)):
                scan(f"layer {blob.name[:12]} member {member}", text, found)
    assert scanned_layers == len(image.layers)
    config = json.loads((blobs / image.config_digest[7:]).read_bytes())
    assert "MODE=secret-test" in config["config"]["Env"]  # the config scanned is the image's
    for path in image.layout.rglob("*"):
        if path.is_file() and blobs not in path.parents:
            scan(f"layout file {path.relative_to(image.layout)}", path.read_bytes(), found)
    for member, text in tar_texts(tar.read_bytes()):
        scan(f"exported tar member {member}", text, found)
    assert found == []


def test_the_scan_finds_a_value_in_a_file_a_link_or_a_header_of_a_layer() -> None:
    buffer = io.BytesIO()
    basic = base64.b64encode(f"{SECRETS['USER']}:{SECRETS['TOKEN']}".encode())
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body, link, pax in (("netrc", b"password " + SECRETS["TOKEN"].encode(), "", {}),
                                      ("link", b"", f"/x/{SECRETS['CHANNEL']}", {}),
                                      ("headers", b"", "", {"comment": SECRETS["REGISTRY"]}),
                                      ("auth", b"Authorization: Basic " + basic, "", {})):
            info = tarfile.TarInfo(name)
            info.pax_headers = pax
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body else None)
    found: list[str] = []
    for member, text in tar_texts(gzip.decompress(gzip.compress(buffer.getvalue()))):
        scan(member, text, found)
    # (the url-safe base64 of the credentials is often the same text as the standard one)
    assert sorted(f for f in found if not f.startswith("BASIC-urlsafe")) == [
        "BASIC in auth", "CHANNEL in link", "REGISTRY in headers", "TOKEN in netrc"]
