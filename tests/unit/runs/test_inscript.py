"""``kiln.run``, the module a training script imports: standard library only, any Python 3 from 3.6 on,
JSON lines inside a run, prints outside one."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import kiln.run as inscript
from kiln.builds.interpreters import find_interpreter
from kiln.errors import DefinitionError


class FakeScalar:
    """Like a NumPy scalar: ``item()`` gives the Python value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value


class FakeArray:
    """Like a NumPy array of several values: ``item()`` refuses, ``tolist()`` works."""

    def __init__(self, *values: Any) -> None:
        self.values = list(values)

    def item(self) -> Any:
        raise ValueError("can only convert an array of size 1 to a Python scalar")

    def tolist(self) -> list[Any]:
        return list(self.values)


class Opaque:
    item = "not callable"

    def __str__(self) -> str:
        return "<opaque>"


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """The module laid out as Kiln lays it out for a run: ``<folder>/kiln/run.py``."""
    folder = tmp_path / "kiln-path"
    (folder / "kiln").mkdir(parents=True)
    shutil.copyfile(inscript.__file__, folder / "kiln" / "run.py")
    (folder / "kiln" / "__init__.py").write_text("")
    return folder


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setenv("KILN_RUN_ID", "exp_1_abcdef12")
    monkeypatch.setenv("KILN_RUN_DIR", str(folder))
    monkeypatch.setenv("KILN_EXPERIMENT", "exp")
    return folder


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def isolated(python: str, shim: Path, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``-I -S``: no site-packages, no PYTHONPATH, only the standard library and ``shim``."""
    prelude = f"import sys; sys.path.insert(0, {str(shim)!r})\n"
    return subprocess.run([python, "-I", "-S", "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", ""), **(env or {})}, timeout=60, check=False)


# ---- the standard library only ---------------------------------------------------------------------------


def test_the_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(inscript.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None, "no relative imports: the module stands alone"
            imported.add(node.module.split(".")[0])
    assert imported, "the module imports something: the check looks at the right file"
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert "__future__" not in imported  # ``from __future__ import annotations`` would break Python 3.6


@pytest.mark.parametrize("version", ["3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"])
def test_the_module_works_with_nothing_but_the_standard_library_of_each_python(
        version: str, shim: Path, tmp_path: Path) -> None:
    try:
        python = find_interpreter(version, default=version).path
    except DefinitionError:
        pytest.skip(f"no Python {version} on this machine")
    folder = tmp_path / "run"
    folder.mkdir()
    code = """
        import sys
        from kiln.run import Run
        run = Run.get_context(allow_offline=False)
        run.log("accuracy", 0.5)
        run.log_row("scores", fold=1)
        run.tag("python", "%d.%d" % sys.version_info[:2])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "kiln"), run.get_tags())
    """
    proc = isolated(python, shim, code, env={"KILN_RUN_ID": "r1", "KILN_RUN_DIR": str(folder)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"['kiln', 'kiln.run'] {{'python': '{version}'}}\n"
    assert [(r["kind"], r["name"], r["value"]) for r in lines(folder)] == [
        ("metric", "accuracy", 0.5), ("row", "scores", {"fold": 1}), ("tag", "python", version)]


# ---- offline -----------------------------------------------------------------------------------------------


def test_outside_a_run_metrics_are_printed(shim: Path) -> None:
    code = """
        from kiln.run import Run, OfflineRun
        run = Run.get_context()
        assert isinstance(run, OfflineRun) and run.id.startswith("OfflineRun_"), run
        run.log("accuracy", 0.5)
        run.log_list("sizes", [1, 2])
        run.log_row("scores", fold=1)
        run.log_table("curve", {"x": [1]})
        run.tag("stage", "draft")
        run.set_tags({"owner": 7})
        print(run.get_tags())
    """
    proc = isolated(sys.executable, shim, code)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == ("[offline run] metric accuracy = 0.5\n"
                           "[offline run] list sizes = [1, 2]\n"
                           "[offline run] row scores = {'fold': 1}\n"
                           "[offline run] table curve = {'x': [1]}\n"
                           "[offline run] tag stage = 'draft'\n"
                           "[offline run] tag owner = '7'\n"
                           "{'stage': 'draft', 'owner': '7'}\n")


def test_outside_a_run_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KILN_RUN_ID", raising=False)
    monkeypatch.delenv("KILN_RUN_DIR", raising=False)
    before = sorted(tmp_path.rglob("*"))
    run = inscript.Run.get_context()
    run.log("a", 1)
    assert capsys.readouterr().out == "[offline run] metric a = 1\n"
    assert sorted(tmp_path.rglob("*")) == before


def test_get_context_without_offline_raises_outside_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_RUN_ID", raising=False)
    with pytest.raises(RuntimeError, match="not inside a Kiln run"):
        inscript.Run.get_context(allow_offline=False)


def test_a_run_folder_that_does_not_exist_is_not_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_RUN_ID", "r1")
    monkeypatch.setenv("KILN_RUN_DIR", str(tmp_path / "gone"))
    assert isinstance(inscript.Run.get_context(), inscript.OfflineRun)
    with pytest.raises(RuntimeError):
        inscript.Run.get_context(allow_offline=False)


def test_kilns_own_run_class_hands_out_the_in_script_run(run_dir: Path) -> None:
    from kiln.runs.run import Run

    run = Run.get_context()
    assert type(run) is inscript.Run
    assert (run.id, run.experiment) == ("exp_1_abcdef12", "exp")
    assert repr(run) == "Run(id='exp_1_abcdef12', experiment='exp')"


# ---- inside a run -----------------------------------------------------------------------------------------


def test_inside_a_run_each_call_appends_one_json_line(run_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    run = inscript.Run.get_context(allow_offline=False)
    assert run.outputs_dir == str(tmp_path / "outputs")
    run.log("loss", 0.5, description="training loss", step=3)
    run.log_list("sizes", (1, 2))
    run.log_row("scores", fold=1, f1=0.5)
    run.log_table("curve", {"x": [1, 2]})
    run.tag("stage", 2)
    run.tag("label")
    records = lines(run_dir)
    assert capsys.readouterr().out == ""
    for record in records:
        assert isinstance(record.pop("time"), float)
    assert records == [
        {"kind": "metric", "name": "loss", "value": 0.5, "step": 3, "description": "training loss"},
        {"kind": "list", "name": "sizes", "value": [1, 2], "description": ""},
        {"kind": "row", "name": "scores", "value": {"fold": 1, "f1": 0.5}, "description": ""},
        {"kind": "table", "name": "curve", "value": {"x": [1, 2]}, "description": ""},
        {"kind": "tag", "name": "stage", "value": "2"},
        {"kind": "tag", "name": "label", "value": None},
    ]
    assert run.get_tags() == {"stage": "2", "label": None}


def test_numpy_like_values_are_stored_as_plain_values(run_dir: Path) -> None:
    run = inscript.Run.get_context()
    run.log("scalar", FakeScalar(0.25))
    run.log("int_scalar", FakeScalar(7))
    run.log("array", FakeArray(1, 2, 3))
    run.log("nested", FakeScalar(FakeScalar(True)))
    run.log_list("mixed", [FakeScalar(1.5), 2, FakeArray(3, 4)])
    run.log_row("row", a=FakeScalar(1), b=FakeArray(FakeScalar(2)))
    run.log("opaque", Opaque())
    run.log("tuple", (1, FakeScalar(2)))
    assert [r["value"] for r in lines(run_dir)] == [0.25, 7, [1, 2, 3], True, [1.5, 2, [3, 4]], {"a": 1, "b": [2]},
                                                     "<opaque>", [1, 2]]


def test_not_a_number_is_logged_and_read_back(run_dir: Path) -> None:
    import math

    from kiln.runs.metrics import read_metrics

    run = inscript.Run.get_context()
    run.log("loss", float("nan"))
    run.log("best", float("-inf"))
    metrics = read_metrics(run_dir / "metrics.jsonl")
    assert math.isnan(metrics["loss"]) and metrics["best"] == -math.inf


def test_processes_writing_at_once_never_mix_their_lines(run_dir: Path, shim: Path) -> None:
    code = """
        import sys
        from kiln.run import Run
        run = Run.get_context(allow_offline=False)
        for i in range(300):
            run.log("w" + sys.argv[1], "x" * 2000 + str(i))
    """
    prelude = f"import sys; sys.path.insert(0, {str(shim)!r})\n"
    procs = [subprocess.Popen([sys.executable, "-I", "-c", prelude + textwrap.dedent(code), str(n)],
                              env={**os.environ}) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    records = lines(run_dir)
    assert len(records) == 1200
    for n in range(4):
        mine = [r["value"] for r in records if r["name"] == f"w{n}"]
        assert mine == ["x" * 2000 + str(i) for i in range(300)]
