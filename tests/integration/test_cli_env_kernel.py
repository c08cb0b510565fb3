"""``kiln env kernel``: the built environment as a Jupyter kernelspec. Offline: ``ipykernel`` here is a stand-in
wheel found through ``--find-links`` (Kiln only checks that the environment can import it)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]


def _wheel(folder: Path, name: str) -> None:
    info = f"{name}-0.0.1.dist-info"
    files = {f"{name}/__init__.py": "STAND_IN = True\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for member, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{name}-0.0.1-py3-none-any.whl", "w") as z:
        for member, text in files.items():
            z.writestr(member, text)


def _conda_file(path: Path, links: Path, *packages: str) -> Path:
    pip = "".join(f"    - {p}\n" for p in packages)
    path.write_text(f"name: {path.stem}\ndependencies:\n  - python=3.12\n  - pip:\n    - --no-index\n"
                    f"    - --find-links {links}\n{pip}", encoding="utf-8")
    return path


def test_kernel_points_jupyter_at_the_environments_interpreter(run_kiln: Any, tmp_path: Path) -> None:
    links = tmp_path / "links"
    _wheel(links, "ipykernel")
    code, _, err = run_kiln("env", "register", "-d", str(_conda_file(tmp_path / "nb.yml", links, "ipykernel")))
    assert code == 0, err
    code, out, err = run_kiln("-o", "json", "env", "kernel", "nb", "--prefix", str(tmp_path / "prefix"))
    assert code == 0, err
    data = json.loads(out)["data"]
    folder = tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "kiln-nb-1"
    assert (data["name"], data["path"], data["environment"]) == ("kiln-nb-1", str(folder), "nb:1")
    spec = json.loads((folder / "kernel.json").read_text(encoding="utf-8"))
    assert spec["argv"][1:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec["argv"][0] == data["python"] and spec["language"] == "python"
    assert spec["metadata"]["kiln"]["environment"] == "nb:1"
    found = subprocess.run([spec["argv"][0], "-c", "import ipykernel; print(ipykernel.STAND_IN)"],
                           capture_output=True, text=True, check=True)
    assert found.stdout == "True\n"
    # without --prefix: the user's Jupyter data folder
    code, out, err = run_kiln("env", "kernel", "nb:1", "--name", "mine", env={"JUPYTER_DATA_DIR": str(tmp_path / "jd")})
    assert code == 0, err
    assert (tmp_path / "jd" / "kernels" / "mine" / "kernel.json").is_file()
    assert out.startswith("Kernel 'mine' (Python 3.12") and "jupyter console --kernel mine" in out


def test_kernel_says_when_the_environment_has_no_ipykernel(run_kiln: Any, tmp_path: Path) -> None:
    links = tmp_path / "links"
    _wheel(links, "standin")
    code, _, err = run_kiln("env", "register", "-d", str(_conda_file(tmp_path / "plain.yml", links, "standin")))
    assert code == 0, err
    code, out, err = run_kiln("env", "kernel", "plain", "--prefix", str(tmp_path / "prefix"))
    assert (code, out) == (1, "")
    assert err.startswith("kiln: error: environment plain:1 has no ipykernel, so Jupyter could not start a kernel "
                          "in it: add it to the definition")
    assert not (tmp_path / "prefix").exists()
