"""Helpers of the conda resolve: channels as rattler takes them, unreachable channels, pip entries conda provides."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builds.conda.rattler import CondaError
from kiln.builds.conda.resolve import DEFAULT_CHANNEL, _without, channel_url, unreachable

# ---- channel_url --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["conda-forge", "defaults", "pytorch", "nvidia/label/cuda-12.1.0"])
def test_channel_names_stay_names(name: str) -> None:
    assert channel_url(name) == name
    assert DEFAULT_CHANNEL == "conda-forge"


@pytest.mark.parametrize("url", [
    "https://conda.anaconda.org/conda-forge",
    "http://user:secret@127.0.0.1:8080/channel/",
    "file:///srv/channels/local",
    "s3://bucket/channel",
])
def test_urls_stay_as_written(url: str) -> None:
    assert channel_url(url) == url


def test_an_absolute_folder_becomes_a_file_url(tmp_path: Path) -> None:
    folder = tmp_path / "my channel"  # a space: the URL quotes it
    assert channel_url(str(folder)) == f"file://{tmp_path}/my%20channel"
    folder.mkdir()
    assert channel_url(str(folder) + "/") == f"file://{tmp_path}/my%20channel"
    assert channel_url(str(folder / ".." / "my channel")) == f"file://{tmp_path}/my%20channel"


def test_a_relative_folder_is_relative_to_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.chdir(tmp_path)
    assert channel_url("./local") == f"file://{tmp_path}/local"
    assert channel_url("../up") == f"file://{tmp_path.parent}/up"
    assert channel_url("plain") == "plain"  # not a folder here: a channel name
    (tmp_path / "plain").mkdir()
    assert channel_url("plain") == f"file://{tmp_path}/plain"  # a folder here: a local channel


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert channel_url("~/channels/local") == f"file://{tmp_path}/channels/local"


# ---- unreachable ---------------------------------------------------------------------------------

# rattler's own words, from builds against a closed port and a missing host
GATEWAY = ("solving the conda packages of x: GatewayError: error sending request for url "
           "(http://127.0.0.1:9/conda/linux-64/repodata_shards.msgpack.zst)\nCaused by: client error (Connect)\n"
           "Caused by: tcp connect error\nCaused by: Connection refused (os error 111)")
SOLVER = ("solving the conda packages of x: SolverError: Cannot solve the request because of: "
          "No candidates were found for datapkg >=3.")


@pytest.mark.parametrize("message", [
    GATEWAY,
    "GatewayError: error sending request for url (https://conda.anaconda.org/conda-forge/noarch/repodata.json)\n"
    "Caused by: dns error: failed to lookup address information",
    "FetchRepoDataError: failed to fetch repodata: operation timed out",
    "the network is unreachable",
])
def test_unreachable_channels(message: str) -> None:
    assert unreachable(CondaError(message)) is True


@pytest.mark.parametrize("message", [
    SOLVER,
    "solving the conda packages of x: SolverError: Cannot solve the request because of: datapkg <1 cannot be "
    "installed because there are no viable options",
    "the conda worker failed (exit code -9)",
])
def test_a_failed_solve_is_not_an_unreachable_channel(message: str) -> None:
    assert unreachable(CondaError(message)) is False


@pytest.mark.parametrize("package", ["networkx", "dnspython", "connectorx"])
def test_a_solver_error_naming_a_package_is_not_an_unreachable_channel(package: str) -> None:
    message = SOLVER.replace("datapkg", package)
    assert unreachable(CondaError(message)) is False


# ---- _without ------------------------------------------------------------------------------------

LOCKED = """\
--index-url https://pypi.org/simple
--find-links https://example.org/wheels

idna==3.7 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
six==1.16.0 \\
    --hash=sha256:1111 \\
    --hash=sha256:8888
typing-extensions==4.12.2 ; python_version < "3.13" \\
    --hash=sha256:cccc
urllib3==2.2.2 \\
    --hash=sha256:dddd
"""


def test_without_drops_the_entries_and_their_hash_lines() -> None:
    assert _without(LOCKED, {"six"}) == LOCKED.replace(
        "six==1.16.0 \\\n    --hash=sha256:1111 \\\n    --hash=sha256:8888\n", "")


def test_without_matches_canonical_names() -> None:
    text = LOCKED.replace("typing-extensions", "Typing_Extensions")
    out = _without(text, {"typing-extensions", "urllib3"})
    assert out == ("--index-url https://pypi.org/simple\n--find-links https://example.org/wheels\n\n"
                   "idna==3.7 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n"
                   "six==1.16.0 \\\n    --hash=sha256:1111 \\\n    --hash=sha256:8888\n")


def test_without_keeps_everything_else() -> None:
    assert _without(LOCKED, set()) == LOCKED
    assert _without(LOCKED, {"numpy"}) == LOCKED
    assert _without("six==1.16.0\n", {"six"}) == "\n"
