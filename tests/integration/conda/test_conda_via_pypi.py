"""Conda definitions through PyPI (``--conda-via pypi``, ``KILN_CONDA_VIA``, unreachable channels in
auto mode) with conda-pypi's name map, and channel credentials kept out of locks, logs and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conda_support import *  # noqa: F403 - the fixtures (see conda_support)
from conda_support import build, cache_root, closed_port, envelope, fails, installed, published, register

from kiln.builds.interpreters import Interpreter

pytestmark = pytest.mark.integration


# ---- the PyPI path ---------------------------------------------------------------------------------

VIA_PYPI = [pytest.param(("--conda-via", "pypi"), {}, id="option"),
            pytest.param((), {"KILN_CONDA_VIA": "pypi"}, id="setting")]


@pytest.mark.parametrize(("options", "environ"), VIA_PYPI)
def test_conda_packages_through_pypi(run_kiln: Any, tmp_path: Path, python: Interpreter, options: tuple[str, ...],
                                     environ: dict[str, str]) -> None:
    register(run_kiln, tmp_path, "via-pypi", ["conda-forge"], ["six=1.16"])
    result = build(run_kiln, "via-pypi", *options, env=environ)
    assert result["backend"] == "venv"
    assert result["packages"] == ["six==1.16.0"]
    prefix = Path(result["path"]) / "env"
    assert installed(prefix / "bin" / "python") == {"six": ("1.16.0", "uv")}
    lock = envelope(run_kiln, "env", "lock", "via-pypi", kind="env.lock")
    assert (lock["requirements"], lock["conda"], lock["conda_via"]) == (["six==1.16.*"], [], "pypi")
    log = (Path(result["path"]) / "build.log").read_text()
    assert "# conda packages resolved under their PyPI names (conda-pypi's map), installed with uv" in log
    assert "py-rattler" not in log


@pytest.mark.parametrize(("options", "environ"), VIA_PYPI)
def test_a_conda_package_without_a_pypi_name_is_named(run_kiln: Any, tmp_path: Path, channel: Path,
                                                      python: Interpreter, options: tuple[str, ...],
                                                      environ: dict[str, str]) -> None:
    register(run_kiln, tmp_path, "no-pypi", [str(channel)], ["six", "libdatapkg"])
    message = fails(run_kiln, "env", "build", "no-pypi", *options, env=environ)
    assert message == ("conda package 'libdatapkg' has no PyPI equivalent (it is not a Python project): build it "
                       "from conda channels (not --conda-via=pypi), or list a pip requirement instead")
    assert published() == []
    # a name the map doesn't know is tried under the same name on PyPI: uv's answer names it
    register(run_kiln, tmp_path, "no-pypi-2", [str(channel)], ["kiln-no-such-project-xyz"])
    code, _, err = run_kiln("env", "build", "no-pypi-2", *options, env=environ)
    assert code == 1 and "kiln-no-such-project-xyz" in err and "not found" in err
    assert published() == []


def test_an_unknown_conda_via_is_refused(run_kiln: Any, tmp_path: Path, channel: Path) -> None:
    register(run_kiln, tmp_path, "bad-via", [str(channel)], ["datapkg"])
    assert fails(run_kiln, "env", "build", "bad-via", env={"KILN_CONDA_VIA": "mamba"}) == (
        "KILN_CONDA_VIA='mamba': expected one of auto, conda, pypi")
    assert fails(run_kiln, "env", "build", "bad-via", "--conda-via", "mamba") == (
        "Invalid value for --conda-via: 'mamba' is not one of auto, conda, pypi (see: kiln env build --help)")


def test_unreachable_channels_fall_back_to_pypi(run_kiln: Any, tmp_path: Path, python: Interpreter) -> None:
    url = f"http://127.0.0.1:{closed_port()}/conda"
    register(run_kiln, tmp_path, "offline", [url], ["six=1.16"])
    result = build(run_kiln, "offline")
    assert result["backend"] == "venv"
    assert installed(Path(result["python"])) == {"six": ("1.16.0", "uv")}
    log = (Path(result["path"]) / "build.log").read_text()
    assert f"# solving 2 conda specs with py-rattler on {url} (linux-64 + noarch)" in log
    assert "# the conda channels can't be reached (solving the conda packages of offline: " in log
    assert "): the conda packages are resolved from PyPI under their PyPI names instead (--conda-via conda to " \
           "forbid this)" in log
    assert "# conda packages resolved under their PyPI names (conda-pypi's map), installed with uv" in log
    assert envelope(run_kiln, "env", "lock", "offline", kind="env.lock")["conda_via"] == "pypi"


def test_the_fallback_to_pypi_is_said_in_the_build_output_and_in_its_error(run_kiln: Any, tmp_path: Path,
                                                                          python: Interpreter) -> None:
    url = f"http://127.0.0.1:{closed_port()}/conda"
    register(run_kiln, tmp_path, "told", [url], ["six=1.16"])
    code, _, err = run_kiln("env", "build", "told")
    assert code == 0, err
    assert "told:1: the conda channels can't be reached (solving the conda packages of told: " in err
    assert "the conda packages are resolved from PyPI under their PyPI names instead" in err
    register(run_kiln, tmp_path, "nowhere", [url], ["six=99.1"])
    message = fails(run_kiln, "env", "build", "nowhere")
    assert message.startswith("resolving nowhere: ")
    assert message.endswith("\n  (the conda channels can't be reached, so Kiln resolved the conda packages from PyPI "
                            "under their PyPI names; --conda-via conda to forbid this)")


def test_unreachable_channels_are_an_error_when_conda_is_asked_for(run_kiln: Any, tmp_path: Path,
                                                                   python: Interpreter) -> None:
    port = closed_port()
    register(run_kiln, tmp_path, "conda-only", [f"http://127.0.0.1:{port}/conda"], ["six=1.16"])
    message = fails(run_kiln, "env", "build", "conda-only", "--conda-via", "conda")
    assert message.startswith(f"solving the conda packages of conda-only: GatewayError: error sending request for url "
                              f"(http://127.0.0.1:{port}/conda/")
    assert "Connection refused" in message
    assert published() == []


# ---- credentials -----------------------------------------------------------------------------------

PASSWORD = "kiln-s3cret-PW"


def everything_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def test_channel_credentials_stay_out_of_locks_logs_and_errors(run_kiln: Any, tmp_path: Path,
                                                               python: Interpreter) -> None:
    port = closed_port()
    channel = f"http://reader:${{CHANNEL_PW}}@127.0.0.1:{port}/conda"  # a reference: read when used
    secret = {"CHANNEL_PW": PASSWORD}
    register(run_kiln, tmp_path, "secret", [channel], ["six=1.16"])
    code, out, err = run_kiln("-o", "json", "env", "build", "secret", env=secret)  # auto: falls back to PyPI
    assert code == 0, err
    assert PASSWORD not in out + err
    result = json.loads(out)["data"]
    log = (Path(result["path"]) / "build.log").read_text()
    assert f"127.0.0.1:{port}/conda" in log
    code, out, err = run_kiln("-o", "json", "env", "lock", "secret", env=secret)
    assert code == 0 and PASSWORD not in out + err
    leaks = [p for p, data in everything_under(cache_root()).items() if PASSWORD.encode() in data]
    assert leaks == []

    register(run_kiln, tmp_path, "secret-conda", [channel], ["six=1.16", "datapkg"])
    for environ in (secret, {**secret, "KILN_DEBUG": "1"}):
        code, out, err = run_kiln("env", "build", "secret-conda", "--conda-via", "conda", env=environ)
        assert code == 1
        assert "GatewayError" in err
        assert PASSWORD not in out + err
    # the reference must be set when the channel is used
    code, out, err = run_kiln("env", "build", "secret-conda", "--conda-via", "conda", env={"CHANNEL_PW": ""})
    assert code == 1 and PASSWORD not in out + err


def test_a_literal_channel_password_is_refused_and_not_saved(run_kiln: Any, tmp_path: Path, kiln_home: Path) -> None:
    from conda_support import conda_file

    path = conda_file(tmp_path / "defs", "secret", [f"http://reader:{PASSWORD}@127.0.0.1:{closed_port()}/conda"],
                      ["six"], [])
    code, out, err = run_kiln("env", "register", "-d", str(path))
    assert code == 1
    assert "holds a literal credential" in err and "https://user:${CHANNEL_PASSWORD}@host/channel" in err
    assert PASSWORD not in out + err
    assert [p for p, data in everything_under(kiln_home).items() if PASSWORD.encode() in data] == []


def test_conda_via_pypi_after_a_conda_build(run_kiln: Any, tmp_path: Path, channel: Path,
                                            python: Interpreter) -> None:
    register(run_kiln, tmp_path, "switch", [str(channel)], ["six=1.16"])
    assert build(run_kiln, "switch")["backend"] == "conda"
    assert build(run_kiln, "switch", "--conda-via", "pypi")["backend"] == "venv"


def test_a_conda_package_of_the_same_name_on_pypi(run_kiln: Any, tmp_path: Path, python: Interpreter) -> None:
    register(run_kiln, tmp_path, "same-name", ["conda-forge"], ["toolz"])
    result = build(run_kiln, "same-name", "--conda-via", "pypi")
    assert "toolz" in installed(Path(result["python"]))
