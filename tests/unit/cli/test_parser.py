"""The ``kiln`` parser: global options wherever they are typed, pass-through arguments, help screens."""

from __future__ import annotations

import argparse
import re

import pytest

from kiln.cli.failures import UsageError
from kiln.cli.parser import NOUNS, build_parser, commands, noun_of, parse

EVERY = dict(commands(build_parser(every=True)))


def parsed(*argv: str) -> argparse.Namespace:
    return parse(build_parser(noun_of(argv)), argv)


@pytest.mark.parametrize("argv", [
    ["-o", "json", "-w", "ws", "--traceback", "env", "list"],
    ["env", "-o", "json", "-w", "ws", "--traceback", "list"],
    ["env", "list", "--output", "json", "--workspace", "ws", "--traceback"],
    ["--output=json", "env", "list", "--workspace=ws", "--traceback"],
    ["-o", "text", "env", "list", "-o", "json", "-w", "ws", "--traceback"],  # the last one typed wins
])
def test_global_options_anywhere(argv: list[str]) -> None:
    ns = parsed(*argv)
    assert (ns.output, ns.workspace, ns.traceback, ns.parser.prog) == ("json", "ws", True, "kiln env list")


def test_global_options_absent_are_absent() -> None:
    ns = parsed("env", "list")
    assert not hasattr(ns, "output") and not hasattr(ns, "workspace") and not hasattr(ns, "traceback")


def test_noun_of_skips_the_global_options_and_their_values() -> None:
    assert noun_of(["-w", "env", "-o", "json", "run", "list"]) == "run"
    assert noun_of(["--traceback", "model"]) == "model"
    assert noun_of(["--version"]) is None


@pytest.mark.parametrize(("argv", "script", "args"), [
    (["train.py"], "train.py", []),
    (["train.py", "a", "--experiment", "mixed", "b"], "train.py", ["a", "b"]),
    (["train.py", "--", "--env", "x", "-d"], "train.py", ["--env", "x", "-d"]),
    (["train.py", "--", "a", "--", "b"], "train.py", ["a", "--", "b"]),
    (["-x", "e", "train.py", "-", "--", "-5"], "train.py", ["-", "-5"]),
])
def test_submit_passes_arguments_through(argv: list[str], script: str, args: list[str]) -> None:
    ns = parsed("run", "submit", *argv)
    assert (ns.script, ns.args) == (script, args)


@pytest.mark.parametrize(("argv", "message"), [
    (["train.py", "-5"], "no such option: -5"),
    (["--exp", "x", "train.py"], "no such option: --exp"),
    (["--det", "train.py"], "no such option: --det"),
    (["--timeout", "soon", "train.py"], "--timeout: invalid float value: 'soon'"),
    ([], "the following arguments are required: SCRIPT"),
])
def test_submit_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parsed("run", "submit", *argv)
    assert info.value.message.startswith(message) and info.value.prog == "kiln run submit"
    assert str(info.value).endswith(" (see: kiln run submit --help)")


@pytest.mark.parametrize(("argv", "message", "prog"), [
    (["env", "frobnicate"], "no such command 'frobnicate' (commands: scaffold, register", "kiln env"),
    (["frobnicate"], "no such command 'frobnicate' (commands: workspace, env, run", "kiln"),
    (["env", "list", "--bogus"], "no such option: --bogus", "kiln env list"),
    (["env", "show", "a", "b"], "unexpected argument: b", "kiln env show"),
    (["env", "list", "-o", "yaml"], "--output: 'yaml' is not one of text, json", "kiln env list"),
    (["env", "list", "-o"], "--output: expected one argument", "kiln env list"),
    (["env", "register"], "the following arguments are required: -d/--directory", "kiln env register"),
])
def test_usage_errors_name_the_option_or_value(argv: list[str], message: str, prog: str) -> None:
    with pytest.raises(UsageError) as info:
        parsed(*argv)
    assert info.value.message.startswith(message) and info.value.prog == prog


def test_every_noun_and_its_commands_are_there() -> None:
    assert {path[0] for path in EVERY if path} == set(NOUNS)
    assert {path for path in EVERY if len(path) == 2} >= {("env", "build"), ("run", "submit"), ("service", "deploy"),
                                                         ("cache", "prune"), ("model", "register"),
                                                         ("workspace", "create")}


@pytest.mark.parametrize("path", list(EVERY), ids=[" ".join(p) or "kiln" for p in EVERY])
def test_help_reads_cleanly(path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    text = EVERY[path].format_help()
    usage = text.splitlines()[0]
    assert usage.startswith(f"Usage: {' '.join(['kiln', *path])} [OPTIONS]"), usage
    assert "{" not in usage and "}" not in usage, usage
    assert not re.search(r"<bool>|\[bool\]|BOOL|\bTRUE\b|\bFALSE\b", text), text
    assert re.search(r"\nExample:\n  kiln \S", text), text
    assert "--output" in text and "--workspace" in text and "--traceback" in text
    for line in text.splitlines():
        assert not re.fullmatch(r"\s*\{.*\}\s*", line), line  # no argparse {a,b,c} choice lists


def test_options_show_one_metavar() -> None:
    text = EVERY[("env", "download")].format_help()
    assert "-n, --name NAME" in text and "--overwrite " in text and "--format FORMAT" in text
    assert "NAME, --name" not in text


def test_download_formats_are_the_format_registrys() -> None:
    # the parser names the formats without importing them (start-up); the registry is the one list
    from kiln.cli.env import DOWNLOAD_FORMATS
    from kiln.environment.formats.registry import FORMATS

    assert tuple(FORMATS) == DOWNLOAD_FORMATS
