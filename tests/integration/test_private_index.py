"""A private package index with credentials (pypiserver with basic auth on 127.0.0.1, ``private_index`` in
tests/conftest.py) through the real CLI: definitions name it with ``${VAR}`` references in ``--index-url``,
``--extra-index-url`` or ``--find-links``; the values reach uv only through its environment, at resolve and
install time. Then the token is looked for everywhere Kiln writes: the lock, the registry's rows, the output of
every command, the build log and the cache entry, a run's logs and files, and every file and layer of the image
``kiln image build`` writes. A missing variable or a wrong token is a one-line error, naming the variable or
the index's refusal, with nothing kept."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REF = "http://${KILN_IDX_USER}:${KILN_IDX_TOKEN}@{HOST}"
FORMS = {
    "index-url": f"--index-url {REF}/simple\n",
    "extra-index-url": f"--extra-index-url {REF}/simple\n",
    "find-links": f"--no-index\n--find-links {REF}/packages/\n",
}


def _requirements(folder: Path, form: str, host: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "requirements.txt"
    path.write_text(FORMS[form].replace("{HOST}", host) + "kilnteampriv==1.0\n", encoding="utf-8")
    return path


def _holds(data: bytes, secret: bytes, depth: int = 0) -> bool:
    """``secret`` in ``data``, or in any member of it as a (gzipped) tar: an image's layers are both."""
    if secret in data:
        return True
    if depth > 3:
        return False
    if data[:2] == b"\x1f\x8b":
        try:
            return _holds(gzip.decompress(data), secret, depth + 1)
        except (OSError, EOFError):
            return False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None and _holds(extracted.read(), secret, depth + 1):
                        return True
    except (tarfile.TarError, OSError, EOFError):
        pass
    return False


def assert_nowhere(secret: str, roots: list[Path], outputs: list[str]) -> int:
    """``secret`` is in no output and no file under ``roots`` (tars and gzip opened); the number of files read."""
    for text in outputs:
        assert secret not in text, text[:2000]
    checked = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                checked += 1
                assert not _holds(path.read_bytes(), secret.encode()), path
    return checked


def _registry_rows(home: Path) -> str:
    """Every row of every table of the workspace's SQLite registry, as text."""
    (db,) = home.rglob("registry.sqlite")
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


@pytest.fixture
def kiln(run_kiln: Any, tmp_path: Path, private_index: Any) -> Any:
    """The CLI with the index's credentials in its environment (and a uv cache of the test's own, searched too)."""
    outputs: list[str] = []

    def run(*args: str, token: str | None = private_index.token, user: bool = True) -> tuple[int, str, str]:
        env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache")}
        if user:
            env["KILN_IDX_USER"] = private_index.user
        if token is not None:
            env["KILN_IDX_TOKEN"] = token
        code, out, err = run_kiln(*args, env=env)
        outputs.extend((out, err))
        return code, out, err

    run.outputs = outputs  # type: ignore[attr-defined]
    return run


def test_an_index_url_with_credentials_builds_runs_and_images_and_keeps_them_nowhere(
        kiln: Any, tmp_path: Path, kiln_home: Path, private_index: Any) -> None:
    source = _requirements(tmp_path / "in", "index-url", private_index.host)
    assert kiln("env", "register", "-d", str(source.parent), "-n", "private")[0] == 0
    code, out, err = kiln("env", "build", "private")
    assert code == 0, out + err
    code, out, err = kiln("env", "lock", "private")
    assert code == 0 and "kilnteampriv" in out + err
    code, out, err = kiln("-o", "json", "env", "show", "private")
    assert code == 0 and "${KILN_IDX_TOKEN}" in out  # the reference, as written

    script = tmp_path / "work" / "train.py"
    script.write_text("import os, kilnteampriv\nprint(kilnteampriv.ANSWER)\n"
                      "print(sorted(k for k in os.environ if k.startswith('KILN_IDX')))\n", encoding="utf-8")
    code, out, err = kiln("run", "submit", "train.py", "--env", "private")
    assert code == 0, out + err
    assert "from the private index" in out
    code, out, err = kiln("image", "build", "private", "--tar", str(tmp_path / "image.tar"))
    assert code == 0, out + err
    # the scan below opens layers: it finds the package's own text in the image
    assert _holds((tmp_path / "image.tar").read_bytes(), b"ANSWER = 'from the private index'")

    rows = _registry_rows(kiln_home)
    assert "kilnteampriv" in rows and "${KILN_IDX_TOKEN}" in rows  # the lock keeps the reference
    assert private_index.token not in rows
    assert list(kiln_home.rglob("build.log")) and list(kiln_home.rglob("images-v1"))
    checked = assert_nowhere(private_index.token, [tmp_path], kiln.outputs)
    assert checked > 50


@pytest.mark.parametrize("form", ["extra-index-url", "find-links"])
def test_extra_index_and_find_links_with_credentials_build_and_keep_them_nowhere(
        form: str, kiln: Any, tmp_path: Path, kiln_home: Path, private_index: Any) -> None:
    source = _requirements(tmp_path / "in", form, private_index.host)
    assert kiln("env", "register", "-d", str(source.parent), "-n", "private")[0] == 0
    code, out, err = kiln("env", "build", "private")
    assert code == 0, out + err
    code, out, err = kiln("-o", "json", "env", "lock", "private")
    assert code == 0 and "kilnteampriv" in out
    assert private_index.token not in _registry_rows(kiln_home)
    assert_nowhere(private_index.token, [tmp_path], kiln.outputs)


def test_a_missing_variable_is_named_and_nothing_is_kept(kiln: Any, tmp_path: Path, kiln_home: Path,
                                                         private_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _requirements(tmp_path / "in", "index-url", private_index.host)
    assert kiln("env", "register", "-d", str(source.parent), "-n", "private")[0] == 0
    before = _registry_rows(kiln_home)
    code, out, err = kiln("env", "build", "private", token=None)
    assert code == 1, out + err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("kiln: error: "), err
    assert err.count("kiln: error: ") == 1 and err.count("\n") <= 2  # a progress line, then the one error line
    assert "the environment variable KILN_IDX_TOKEN is not set" in err and "private:1" in err
    assert _registry_rows(kiln_home) == before  # no lock
    assert not list((kiln_home / "cache").glob("envs-v1/*"))  # no build
    code, out, err = kiln("env", "build", "private", user=False, token=None)
    assert code == 1 and "KILN_IDX_USER is not set" in err

    # the Python API: the same error, before uv is asked anything
    from kiln import Environment, Workspace
    from kiln.errors import DefinitionError

    monkeypatch.setenv("KILN_IDX_USER", private_index.user)
    monkeypatch.delenv("KILN_IDX_TOKEN", raising=False)
    ws = Workspace.from_config()
    with pytest.raises(DefinitionError, match="the environment variable KILN_IDX_TOKEN is not set"):
        Environment.get(ws, "private").build_local(ws)
    ws.close()
    assert _registry_rows(kiln_home) == before


def test_a_wrong_token_is_a_clear_error_with_the_token_masked(kiln: Any, tmp_path: Path, kiln_home: Path,
                                                              private_index: Any) -> None:
    wrong = "kilnwrongtoken" + uuid.uuid4().hex
    source = _requirements(tmp_path / "in", "index-url", private_index.host)
    assert kiln("env", "register", "-d", str(source.parent), "-n", "private")[0] == 0
    before = _registry_rows(kiln_home)
    code, out, err = kiln("env", "build", "private", token=wrong)
    assert code == 1, out + err
    assert "kiln: error: " in err and "Traceback" not in err
    assert "credentials" in err or "401" in err or "403" in err, err
    assert "also tried Python" not in err  # refused credentials are refused on every Python: none is tried
    assert private_index.host in err  # which index refused
    assert _registry_rows(kiln_home) == before
    code, out, err = kiln("-o", "json", "env", "build", "private", token=wrong)
    assert code == 1 and json.loads(out or "{}").get("kind", "error") == "error"
    assert_nowhere(wrong, [tmp_path], kiln.outputs)
    assert_nowhere(private_index.token, [tmp_path], kiln.outputs)
