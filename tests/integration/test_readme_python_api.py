"""The README's Python API blocks run: in a copy of ``examples/``, one after the other in one namespace, as a
user pasting them into a notebook would.

Every ```python block of the "Python API" section runs, except the deployment one (it names a ``new_config``
the reader writes, and an auth-enabled service's keys); a ``.venv`` (no pip) is made in the folder for
``Environment.from_existing_python("captured", ".venv")``. What a block prints is not checked; that it raises
nothing is, and a few of the objects it leaves behind are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Python API\n")
    api = text[start: text.index("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", api, flags=re.S)


def runnable(block: str) -> bool:
    return "LocalWebservice" not in block


def test_the_blocks_are_found() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    assert [runnable(b) for b in blocks].count(False) == 1


def test_the_python_api_blocks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    here = Path.cwd() / "examples"
    shutil.copytree(REPO / "examples", here)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(here / ".venv")], check=True, timeout=120)
    monkeypatch.chdir(here)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    for number, block in enumerate(python_blocks()):
        if runnable(block):
            exec(compile(block, f"README.md (Python API, block {number + 1})", "exec"), namespace)

    ws = namespace["ws"]
    assert namespace["registered"].version == "1"
    assert namespace["result"].python.is_file()
    assert (here / "outputs" / "model.pkl").is_file()  # train.py, run with the build's interpreter
    assert (here / "model.pkl").is_file()  # run.download_file("outputs/model.pkl")
    from kiln import Environment, Experiment, Model
    from kiln.runs.run import Run

    assert Environment.get(ws, "myenv").version == "2"  # environment.yml, built, is the next version of myenv
    assert [r.get_status() for r in Run.list(Experiment(ws, "environment-example"))] == ["Completed"]
    assert [m.name for m in Model.list(ws)] == ["mymodel"]
