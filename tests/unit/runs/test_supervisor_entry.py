"""``python -m kiln.runs.supervisor WORKSPACE RUN_ID``: Kiln's settings are read once, there, and handed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiln.runs import supervisor
from kiln.settings import ENV_CACHE_DIR, ENV_CONDA_VIA, ENV_HOME, Settings


class Recorder:
    made: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Recorder.made.append((args, kwargs))

    def run(self) -> int:
        return 7


def test_the_settings_come_from_the_variables_once_and_are_handed_down(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(ENV_CONDA_VIA, "pypi")
    calls = []
    from_env = Settings.from_env

    def counted(*args: Any, **kwargs: Any) -> Settings:
        calls.append(args)
        return from_env(*args, **kwargs)

    monkeypatch.setattr(Settings, "from_env", counted)
    monkeypatch.setattr(supervisor, "_Supervisor", Recorder)
    Recorder.made.clear()
    assert supervisor.main(["/some/workspace", "run_1"]) == 7
    assert len(calls) == 1
    assert Recorder.made == [(("/some/workspace", "run_1"), {"settings": Settings(
        home=(tmp_path / "home").resolve(), cache_dir=(tmp_path / "cache").resolve(), conda_via="pypi")})]


def test_bad_settings_end_the_supervisor_with_the_reason(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV_CONDA_VIA, "bogus")
    monkeypatch.setattr(supervisor, "_Supervisor", Recorder)
    Recorder.made.clear()
    assert supervisor.main(["/some/workspace", "run_1"]) == 2
    assert capsys.readouterr().err == \
        "kiln.runs.supervisor: KILN_CONDA_VIA='bogus': expected one of auto, conda, pypi\n"
    assert Recorder.made == []


@pytest.mark.parametrize("argv", [[], ["/ws"], ["/ws", "r1", "extra"]])
def test_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert supervisor.main(argv) == 2
    assert capsys.readouterr().err == "usage: python -m kiln.runs.supervisor WORKSPACE RUN_ID\n"
