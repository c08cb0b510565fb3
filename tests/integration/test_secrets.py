"""Credentials end to end: a unique secret placed in every form a definition can hold one, through the real CLI.

As a literal it is refused at registration (exit 1, a masked message saying how to write a reference) and
nothing is stored. As a ``${VAR}`` reference whose value is the secret it is registered and built against an
index on 127.0.0.1 that wants it (or fails to build, where the source can't exist offline). Either way the
secret's value is never found in the registry, any file under Kiln's home (workspace and build cache), uv's
cache, any downloaded file, or any output of the CLI (show, list, download in every format, build, lock,
errors).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

WHEEL = "kiln_secret_pkg-1.0-py3-none-any.whl"
FORMATS = ("azureml-v1", "azureml-v2", "conda", "requirements")


def make_wheel() -> bytes:
    import io

    di = "kiln_secret_pkg-1.0.dist-info"
    files = {"kiln_secret_pkg.py": "X = 1\n",
             f"{di}/METADATA": "Metadata-Version: 2.1\nName: kiln-secret-pkg\nVersion: 1.0\n",
             f"{di}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(text)}")
        z.writestr(f"{di}/RECORD", "\n".join([*record, f"{di}/RECORD,,"]) + "\n")
    return buffer.getvalue()


class Index:
    """A package index on 127.0.0.1 that answers only requests carrying one of ``accepted`` (HTTP Basic
    ``u:<secret>`` or ``<secret>:`` as a token), serving one wheel from /simple/kiln-secret-pkg/ and /wheels/."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        wheel = make_wheel()
        page = f'<a href="{WHEEL}#sha256={hashlib.sha256(wheel).hexdigest()}">{WHEEL}</a>'.encode()
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.answer(head=True)

            def do_GET(self) -> None:
                self.answer(head=False)

            def answer(self, *, head: bool) -> None:
                credentials = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:]).decode()
                user, _, password = credentials.partition(":")
                if not ({password, user} & index.accepted):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="kiln-test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path.split("?")[0]
                body = (wheel if path.endswith("/" + WHEEL) else
                        page if path.rstrip("/") in ("/simple/kiln-secret-pkg", "/wheels") else None)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/octet-stream" if body is wheel else "text/html")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if not head:
                    self.wfile.write(body or b"")

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


@pytest.fixture(scope="module")
def index() -> Iterator[Index]:
    server = Index()
    yield server
    server.close()


@pytest.fixture
def uv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    return cache


def unique() -> str:
    return "kilnsecret" + uuid.uuid4().hex


def write_input(folder: Path, kind: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "requirements":
        path = folder / "requirements.txt"
    elif kind == "conda":
        path = folder / "environment.yml"
    else:  # an Azure ML v1 folder: text is its azureml_environment.json
        path = folder / "v1"
        path.mkdir()
        (path / "azureml_environment.json").write_text(text, encoding="utf-8")
        return path
    path.write_text(text, encoding="utf-8")
    return path


def assert_nowhere(secret: str, root: Path, outputs: list[str], *, skip: Path) -> None:
    """``secret`` is in no output and in no file under ``root`` (but ``skip``, the user's own input)."""
    for text in outputs:
        assert secret not in text, text[:2000]
    checked = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and skip not in path.parents:
            checked += 1
            assert secret.encode() not in path.read_bytes(), path
    assert checked > 0


def v1_json(**docker: Any) -> str:
    return json.dumps({"name": "sec", "python": {"userManagedDependencies": True, "interpreterPath": "python3"},
                       "docker": {"baseImageRegistry": docker}})


# ---- literals: refused, nothing stored ------------------------------------------------------------------

LITERALS = [
    ("direct-reference", "requirements", "pkg @ https://user:{S}@host.example/pkg-1.0-py3-none-any.whl\n"),
    ("token-as-user-index", "requirements", "--index-url https://{S}@host.example/simple\nsix\n"),
    ("git-token", "requirements", "pkg @ git+https://{S}@github.com/u/r.git\n"),
    ("password-with-slash", "requirements", "--extra-index-url https://u:ab/{S}@host.example/simple\nsix\n"),
    ("password-with-hash", "requirements", "-i https://u:ab#{S}@host.example/simple\nsix\n"),
    ("password-with-at", "requirements", "--find-links https://u:ab@{S}@host.example/wheels/\nsix\n"),
    ("password-with-percent", "requirements", "--index-url https://u:ab%40{S}@host.example/simple\nsix\n"),
    ("conda-channel-token", "conda", "name: c\nchannels:\n  - https://host.example/t/{S}/channel\n"
                                     "dependencies:\n  - python=3.12\n"),
    ("conda-pip-list", "conda", "name: c\ndependencies:\n  - python=3.12\n  - pip:\n"
                                "    - --extra-index-url https://{S}@host.example/simple\n    - six\n"),
    ("registry-address", "v1", v1_json(address="https://u:{S}@registry.example")),
]


@pytest.mark.parametrize(("kind", "text"), [f[1:] for f in LITERALS], ids=[f[0] for f in LITERALS])
def test_a_literal_credential_is_refused_and_nothing_is_kept(kind: str, text: str, run_kiln: Any, tmp_path: Path,
                                                             kiln_home: Path) -> None:
    secret = unique()
    plain = write_input(tmp_path / "plain", "requirements", "six\n")
    assert run_kiln("env", "register", "-d", str(plain), "-n", "plain")[0] == 0  # the workspace exists
    before = run_kiln("env", "list", "-o", "json")[1]
    source = write_input(tmp_path / "in", kind, text.replace("{S}", secret))
    code, out, err = run_kiln("env", "register", "-d", str(source), "-n", "sec")
    assert code == 1, out + err
    assert len(err.splitlines()) == 1 and err.startswith(f"kiln: error: {source}")
    assert "holds a literal credential" in err and "****" in err and "${" in err
    assert "Traceback" not in err
    assert run_kiln("env", "list", "-o", "json")[1] == before  # nothing registered
    shown = run_kiln("env", "show", "sec")
    assert shown[0] == 1 and "no environment 'sec'" in shown[2]
    assert_nowhere(secret, tmp_path, [out, err, shown[1], shown[2]], skip=tmp_path / "in")


def test_the_python_api_refuses_a_literal_too(tmp_path: Path) -> None:
    from kiln import CondaDependencies, Environment, Workspace
    from kiln.errors import DefinitionError

    secret = unique()
    ws = Workspace.create("api", path=tmp_path / "ws")
    env = Environment("api")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"], python_version="3.12")
    env.python.conda_dependencies.set_pip_option(f"--index-url https://u:{secret}@host.example/simple")
    with pytest.raises(DefinitionError) as e:
        env.register(ws)
    assert secret not in str(e.value) and "https://u:****@host.example/simple" in str(e.value)
    assert ws.store.get_environment(name="api") is None
    ws.close()
    assert_nowhere(secret, tmp_path, [], skip=tmp_path / "none")


# ---- references: registered, kept as references, expanded only by the installer ------------------------

REFERENCES = [  # (id, kind, text, built?)
    ("index-password", "requirements", "-i http://u:${KILN_T_SECRET}@{HOST}/simple\nkiln-secret-pkg\n", True),
    ("token-as-user-index", "requirements", "--index-url http://${KILN_T_SECRET}@{HOST}/simple\nkiln-secret-pkg\n",
     True),
    ("direct-reference", "requirements", "kiln-secret-pkg @ http://u:${KILN_T_SECRET}@{HOST}/wheels/" + WHEEL + "\n",
     True),
    ("find-links", "requirements", "--no-index\n--find-links http://u:${KILN_T_SECRET}@{HOST}/wheels/\n"
                                   "kiln-secret-pkg\n", True),
    ("conda-pip-list", "conda", "name: c\ndependencies:\n  - python=3.12\n  - pip:\n"
                                "    - --index-url http://u:${KILN_T_SECRET}@{HOST}/simple\n    - kiln-secret-pkg\n",
     True),
    ("git-token", "requirements", "kiln-secret-pkg @ git+http://${KILN_T_SECRET}@{HOST}/u/r.git\n", False),
    ("wrong-password-with-slash", "requirements", "--index-url http://u:${KILN_T_SECRET}@{HOST}/simple\n"
                                                  "kiln-secret-pkg\n", False),
    ("conda-channel-token", "conda", "name: c\nchannels:\n  - http://{HOST}/t/${KILN_T_SECRET}/channel\n"
                                     "dependencies:\n  - python=3.12\n  - six\n", False),
    ("registry-address", "v1", v1_json(address="https://${KILN_T_SECRET}@registry.example",
                                       username="u", password="${KILN_T_SECRET}"), None),
]


@pytest.mark.parametrize(("kind", "text", "builds"), [f[1:] for f in REFERENCES], ids=[f[0] for f in REFERENCES])
def test_a_referenced_credential_is_used_and_never_kept(kind: str, text: str, builds: bool | None, run_kiln: Any,
                                                        tmp_path: Path, index: Index, uv_cache: Path,
                                                        request: pytest.FixtureRequest) -> None:
    secret = unique()
    value = f"ab/{secret}" if "slash" in request.node.callspec.id else secret  # uv gets it, the index refuses it
    index.accepted.add(secret)
    env = {"KILN_T_SECRET": value}
    source = write_input(tmp_path / "in", kind, text.replace("{HOST}", index.host))
    outputs: list[str] = []

    def kiln(*args: str) -> tuple[int, str, str]:
        code, out, err = run_kiln(*args, env=env)
        outputs.extend((out, err))
        return code, out, err

    code, out, err = kiln("env", "register", "-d", str(source), "-n", "sec")
    assert code == 0, err
    for args in (("env", "show", "sec"), ("env", "show", "sec", "-o", "json"), ("env", "list", "-o", "json"),
                 ("env", "list", "-n", "sec", "-o", "json")):
        assert kiln(*args)[0] == 0
    assert "${KILN_T_SECRET}" in outputs[-6]  # env show -o json: the reference, as written
    for fmt in FORMATS:
        code, _, err = kiln("env", "download", "-n", "sec", "-d", str(tmp_path / f"dl-{fmt}"), "--format", fmt)
        assert code == 0 or (kind == "v1" and "has no Python packages to write" in err), err
    downloaded = "".join(p.read_text() for p in tmp_path.glob("dl-*/**/*") if p.is_file())
    assert "${KILN_T_SECRET}" in downloaded
    if builds is not None:
        code, out, err = kiln("env", "build", "sec", *(("--conda-via", "conda") if "channel" in text else ()))
        assert code == (0 if builds else 1), out + err
        if builds:
            assert "built" in err + out
            code, out, err = kiln("env", "lock", "sec")
            assert code == 0 and "kiln-secret-pkg" in out.lower() + err.lower()
        else:
            assert "kiln: error: " in err and "Traceback" not in err
    assert_nowhere(secret, tmp_path, outputs, skip=tmp_path / "in")
