"""Listing many environments pauses Python's cyclic collector and leaves it as it was."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from kiln.environment.environment import Environment
from kiln.workspace.workspace import Workspace, collector_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("boom")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_listing_pauses_the_collector_while_it_builds_the_definitions(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.create("paused", path=tmp_path / "ws")
    for name in ("a", "b"):
        Environment(name).register(ws)
    seen: list[bool] = []
    build = Workspace._environment

    def spy(self: Workspace, record: object) -> Environment:
        seen.append(gc.isenabled())
        return build(self, record)  # type: ignore[arg-type]

    monkeypatch.setattr(Workspace, "_environment", spy)
    assert {"a", "b"} <= set(ws.list_environments())
    assert [v.name for v in ws.environment_versions("a")] == ["a"]
    assert seen == [False, False, False] and gc.isenabled()
