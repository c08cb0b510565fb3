"""The stand-in ``python`` package: a found interpreter offered to the conda solve as ``python=X.Y.Z=kiln_0``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from kiln.builds.conda import standin
from kiln.builds.conda.standin import BUILD_STRING, conda_subdir, standin_channel
from kiln.builds.interpreters import Interpreter


def interpreter(system: str = "Linux", machine: str = "x86_64", version: str = "3.12.1") -> Interpreter:
    return Interpreter(path="/usr/bin/python3", version=version, machine=machine, system=system)


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.mark.parametrize(("system", "machine", "subdir"), [
    ("Linux", "x86_64", "linux-64"),
    ("linux", "AARCH64", "linux-aarch64"),
    ("Linux", "ppc64le", "linux-ppc64le"),
    ("Darwin", "x86_64", "osx-64"),
    ("Darwin", "arm64", "osx-arm64"),
    ("Windows", "AMD64", "win-64"),
])
def test_conda_subdir_of_an_interpreter(system: str, machine: str, subdir: str) -> None:
    assert conda_subdir(interpreter(system, machine)) == subdir


def test_an_unknown_machine_falls_back_to_linux_64() -> None:
    assert conda_subdir(interpreter("Linux", "riscv64")) == "linux-64"
    assert conda_subdir(interpreter("", "")) == "linux-64"


def test_the_package_is_an_empty_python_of_the_interpreters_version() -> None:
    files = members(standin._package("3.12.1", "linux-aarch64"))
    assert sorted(files) == ["info/about.json", "info/files", "info/index.json", "info/paths.json"]
    index = json.loads(files["info/index.json"])
    assert (index["name"], index["version"], index["build"], index["build_number"]) == ("python", "3.12.1",
                                                                                        "kiln_0", 0)
    assert index["subdir"] == "linux-aarch64"
    assert index["depends"] == []
    assert json.loads(files["info/paths.json"]) == {"paths": [], "paths_version": 1}
    assert files["info/files"] == b""
    assert BUILD_STRING == "kiln_0"


def test_the_channel_is_written_and_indexed_once(tmp_path: Path) -> None:
    indexed: list[Path] = []

    def index(channel: Path) -> None:
        indexed.append(channel)
        (channel / "linux-64" / "repodata.json").write_text("{}")

    channel = standin_channel(tmp_path, interpreter(version="3.11.7"), index)
    assert channel == tmp_path / "channels" / "kiln-interpreters"
    package = channel / "linux-64" / "python-3.11.7-kiln_0.tar.bz2"
    assert json.loads(members(package.read_bytes())["info/index.json"])["version"] == "3.11.7"
    assert (channel / "noarch").is_dir()  # a channel without noarch/ trips the solver
    assert indexed == [channel]
    assert not list(channel.rglob("*.tmp"))

    assert standin_channel(tmp_path, interpreter(version="3.11.7"), index) == channel
    assert indexed == [channel]  # already there: not written or indexed again

    standin_channel(tmp_path, interpreter(version="3.12.1"), index)  # another interpreter: added, re-indexed
    assert (channel / "linux-64" / "python-3.12.1-kiln_0.tar.bz2").is_file()
    assert package.is_file()
    assert len(indexed) == 2


def test_a_package_without_an_index_is_indexed_again(tmp_path: Path) -> None:
    indexed: list[Path] = []
    standin_channel(tmp_path, interpreter(), indexed.append)  # this index writes no repodata.json
    standin_channel(tmp_path, interpreter(), indexed.append)
    assert len(indexed) == 2


def test_the_package_is_the_same_bytes_whenever_it_is_written() -> None:
    first = standin._package("3.12.1", "linux-64")
    assert standin._package("3.12.1", "linux-64") == first
    assert standin._package("3.12.2", "linux-64") != first
