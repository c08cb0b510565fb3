"""The README's quickstart runs as written, line by line, in a copy of the repository's ``examples/`` folder.

How a line is run, the way a user following the README would:

- ``pip install ...`` lines are skipped: Kiln is installed already (its ``kiln`` command is this interpreter's).
- ``cd DIR`` changes the folder the next lines run in (the copy of ``examples/`` is in the test's folder, as it
  is in a clone).
- Every other line runs in ``bash -euo pipefail`` (so ``a; b`` fails at the first failing command, and
  ``$(kiln env python myenv) train.py`` works), with Kiln's paths from the autouse fixture, and must exit 0.
- The placeholder ``ID`` (the word, in capitals) is a run's id: the id of the newest run, as
  ``kiln run list`` shows it after the latest ``kiln run submit``.

Services a failed test leaves behind are deleted at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\bID\b")


def section(title: str) -> str:
    """The README's section ``## title``, up to the next ``## ``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def quickstart_lines() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", section("Quickstart"), flags=re.S)
    assert block is not None, "the Quickstart section has no ```bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()
            and not line.strip().startswith("#")]


def shell_env() -> dict[str, str]:
    """This process's environment (Kiln's paths from the fixture) with this interpreter's ``kiln`` first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def kiln_json(cwd: Path, *args: str) -> object:
    proc = subprocess.run(["kiln", "-o", "json", *args], cwd=cwd, env=shell_env(), capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout)["data"]


@pytest.fixture
def project() -> Iterator[Path]:
    """The test's folder with a copy of ``examples/`` in it; services still running at the end are deleted."""
    here = Path.cwd()
    shutil.copytree(REPO / "examples", here / "examples")
    yield here
    for cwd in (here / "examples", here):
        if (cwd / ".kiln" / "config.json").is_file():
            services = kiln_json(cwd, "service", "list")
            assert isinstance(services, list)
            for service in services:
                subprocess.run(["kiln", "service", "delete", service["name"]], cwd=cwd, env=shell_env(),
                               capture_output=True, timeout=120, check=False)


def test_the_quickstart_section_uses_the_examples_folder() -> None:
    lines = quickstart_lines()
    assert "cd examples" in lines
    for name in ("environment.yml", "train.py", "score.py"):
        assert (REPO / "examples" / name).is_file(), name
    assert any(PLACEHOLDER.search(line) for line in lines), "the ID placeholder this test documents is gone"


def test_the_quickstart_runs_as_written(project: Path) -> None:
    cwd = project
    ran: list[str] = []
    run_id: str | None = None
    for line in quickstart_lines():
        if line.startswith("pip install"):
            continue
        cd = re.fullmatch(r"cd (\S+)(\s+#.*)?", line)
        if cd:
            cwd = cwd / cd.group(1)
            assert cwd.is_dir(), f"{line}: no such folder"
            continue
        if PLACEHOLDER.search(line):
            assert run_id is not None, f"{line}: ID before any kiln run submit"
            line = PLACEHOLDER.sub(run_id, line)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=cwd, env=shell_env(),
                              capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, (f"`{line}` exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                                      f"\n--- stderr\n{proc.stderr[-3000:]}")
        ran.append(line)
        if "kiln run submit" in line:
            runs = kiln_json(cwd, "run", "list")
            assert isinstance(runs, list) and runs, f"{line}: kiln run list shows no run"
            run_id = runs[0]["runId"]
    assert any("kiln service call" in line for line in ran)
    assert run_id is not None
    # the names lined up: the conda file made version 2 of the scaffolded environment, which the run used
    details = kiln_json(cwd, "run", "show", run_id)
    assert isinstance(details, dict)
    assert details["status"] == "Completed"
    assert details["runDefinition"]["environment"] == {**details["runDefinition"]["environment"], "name": "myenv",
                                                       "version": "2"}
    assert kiln_json(cwd, "service", "list") == []
