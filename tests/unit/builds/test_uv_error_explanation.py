"""uv's whole explanation stays in Kiln's error (the root cause of a failed source build is at its end)."""

from __future__ import annotations

from kiln.builds.uv import UvError


def test_a_traceback_keeps_its_last_line_and_indentation() -> None:
    output = "\n".join(["  \u00d7 Failed to build `scikit-learn==0.22.1`", "  ╰─▶ The build backend returned an error",
                        "      [stderr]", "      Traceback (most recent call last):",
                        *[f'        File "setup.py", line {i}, in <module>' for i in range(30)],
                        "      ModuleNotFoundError: No module named 'pkg_resources'"])
    message = str(UvError(["uv"], 1, output, "installing old:1"))
    lines = message.splitlines()
    assert lines[0] == "installing old:1: \u00d7 Failed to build `scikit-learn==0.22.1`"
    assert lines[-1] == "      ModuleNotFoundError: No module named 'pkg_resources'"
    assert len(lines) == 35


def test_a_very_long_explanation_keeps_head_and_tail() -> None:
    output = "\n".join(f"line {i}" for i in range(500))
    lines = str(UvError(["uv"], 1, output, "resolving x")).splitlines()
    assert lines[0] == "resolving x: line 0" and lines[19] == "line 19"
    assert lines[20] == "[... 420 lines of uv's output left out ...]"
    assert lines[-1] == "line 499" and len(lines) == 81


def test_a_note_is_added_below() -> None:
    error = UvError(["uv"], 1, "error: boom", "resolving x")
    error.add_note_line("(Kiln tried PyPI because the conda channels can't be reached)")
    assert str(error) == "resolving x: error: boom\n(Kiln tried PyPI because the conda channels can't be reached)"
