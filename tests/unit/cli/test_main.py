"""``kiln.cli.main.main`` in process: exit codes, one error line, the JSON envelope, no second attempt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kiln import __version__
from kiln.cli.main import main

Captured = tuple[int, str, str]


@pytest.fixture
def kiln(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str, **environ: str) -> Captured:
        code = main(list(argv), {**os.environ, **environ})
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_version(kiln: Any) -> None:
    assert kiln("--version") == (0, f"kiln {__version__}\n", "")


def test_help_is_success_and_no_command_is_a_usage_error(kiln: Any) -> None:
    code, out, err = kiln("env", "--help")
    assert (code, err) == (0, "") and out.startswith("Usage: kiln env [OPTIONS] COMMAND")
    code, out, err = kiln("env")
    assert (code, err) == (1, "") and out.startswith("Usage: kiln env [OPTIONS] COMMAND")


@pytest.mark.parametrize("argv", [["-o", "json", "workspace", "show"], ["workspace", "show", "-o", "json"],
                                  ["workspace", "--output", "json", "show"]])
def test_json_envelope_wherever_the_option_is(kiln: Any, argv: list[str]) -> None:
    code, out, err = kiln(*argv)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert list(doc) == ["kiln", "kind", "data"] and (doc["kiln"], doc["kind"]) == (1, "workspace.show")
    assert doc["data"]["name"] == "default" and doc["data"]["environments"] == 0


def test_workspace_option_after_the_command(kiln: Any, tmp_path: Path) -> None:
    assert kiln("workspace", "create", "proj", "-d", str(tmp_path / "ws"), "--no-config")[0] == 0
    code, out, _ = kiln("workspace", "show", "-w", str(tmp_path / "ws"), "-o", "json")
    assert code == 0 and json.loads(out)["data"]["name"] == "proj"


def test_a_kiln_error_exits_1_on_one_line(kiln: Any) -> None:
    assert kiln("env", "show", "nope") == (1, "", "kiln: error: no environment 'nope' in workspace 'default'\n")


@pytest.mark.parametrize(("argv", "environ"), [(["--traceback", "env", "show", "nope"], {}),
                                               (["env", "show", "nope", "--traceback"], {}),
                                               (["env", "show", "nope"], {"KILN_DEBUG": "1"}),
                                               (["env", "show", "nope"], {"KILN_DEBUG": "yes"})])
def test_tracebacks_only_when_asked(kiln: Any, argv: list[str], environ: dict[str, str]) -> None:
    code, out, err = kiln(*argv, **environ)
    assert (code, out) == (1, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.endswith("kiln.errors.NotFoundError: no environment 'nope' in workspace 'default'\n")


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_kiln_debug_off(kiln: Any, value: str) -> None:
    assert kiln("env", "show", "nope", KILN_DEBUG=value)[2] == \
        "kiln: error: no environment 'nope' in workspace 'default'\n"


def test_a_usage_error_exits_1_and_names_the_option(kiln: Any) -> None:
    assert kiln("env", "list", "--bogus") == (1, "", "kiln: error: no such option: --bogus "
                                                     "(see: kiln env list --help)\n")
    assert kiln("env", "list", "--bogus", "--traceback")[0:2] == (1, "")  # bad usage has no traceback to show


def test_a_usage_error_raised_by_a_command_points_to_its_help(kiln: Any) -> None:
    assert kiln("env", "build", "x", "--upgrade", "--locked") == (
        1, "", "kiln: error: Invalid value for --upgrade: --upgrade and --locked exclude each other "
               "(see: kiln env build --help)\n")


def test_a_bug_is_an_internal_error_exit_2(kiln: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr("kiln.cli.submit_flow.run_submit", broken)
    assert kiln("run", "submit", "train.py") == (
        2, "", "kiln: internal error: RuntimeError: boom (run with --traceback for details)\n")
    code, _, err = kiln("run", "submit", "train.py", "--traceback")
    assert code == 2 and err.startswith("Traceback (most recent call last):\n") and err.endswith("boom\n")


def test_run_submit_passes_the_scripts_exit_code(kiln: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(settings: Any, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 7

    monkeypatch.setattr("kiln.cli.submit_flow.run_submit", fake)
    assert kiln("run", "submit", "train.py", "a", "-x", "e", "--", "-b") == (7, "", "")
    assert (seen["script"], seen["args"], seen["experiment"]) == ("train.py", ["a", "-b"], "e")


def test_ctrl_c_exits_130(kiln: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("kiln.cli.submit_flow.run_submit", interrupted)
    assert kiln("run", "submit", "train.py") == (130, "", "kiln: interrupted\n")


def test_a_build_that_fails_with_a_bug_is_tried_once(kiln: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("environment.yml").write_text("name: once\ndependencies:\n  - python=3.11\n", encoding="utf-8")
    assert kiln("env", "register", "-d", "environment.yml")[0] == 0
    calls: list[str] = []

    def broken(env: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(env.name)
        raise RuntimeError("backend exploded")

    monkeypatch.setattr("kiln.builds.build", broken)
    assert kiln("env", "build", "once") == (
        2, "", "kiln: internal error: RuntimeError: backend exploded (run with --traceback for details)\n")
    assert calls == ["once"]


def test_the_settings_are_built_once_and_passed_down(kiln: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.settings import Settings

    built: list[Settings] = []
    real = Settings.from_env.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Settings], *args: Any, **kwargs: Any) -> Settings:
        built.append(real(cls, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(Settings, "from_env", classmethod(counting))
    seen: list[Any] = []
    monkeypatch.setattr("kiln.cli.submit_flow.run_submit", lambda settings, **kwargs: seen.append(settings) or 0)
    assert kiln("run", "submit", "train.py", KILN_DEBUG="1")[0] == 0
    assert len(built) == 1 and seen == built and built[0].debug is True


def test_the_parser_loads_no_framework() -> None:
    import subprocess
    import sys

    code = ("import sys; from kiln.cli.parser import build_parser; build_parser(every=True); "
            "print(sorted(m for m in ('typer', 'click', 'pydantic', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"
