"""The README's CLI table names every command and every option that command's ``--help`` lists.

A row's first cell holds code spans: the first is ``kiln NOUN COMMAND [OPTIONS]``, the next ones (``show ID``,
``logs ID [--follow]``) are more commands of the same noun. The global options (``-w``, ``-o``, ``--traceback``)
are described once, above the table.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from kiln.cli.parser import build_parser, commands

README = Path(__file__).resolve().parents[3] / "README.md"
GLOBAL = {"-h", "--help", "-w", "--workspace", "-o", "--output", "--traceback"}


def table_spans() -> dict[tuple[str, str], str]:
    """``(noun, command) -> the code span that documents it`` from the README's CLI table."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## CLI\n")
    cli = text[start: text.index("\n## ", start + 1)]
    spans: dict[tuple[str, str], str] = {}
    for row in cli.splitlines():
        if not row.startswith("| `kiln "):
            continue
        first_cell = re.split(r"(?<!\\)\|", row)[1]
        noun = ""
        for span in re.findall(r"`([^`]+)`", first_cell):
            words = span.split()
            if words[0] == "kiln":
                noun, words = words[1], words[2:]
            spans[(noun, words[0])] = span
    return spans


def every_command() -> list[tuple[tuple[str, str], argparse.ArgumentParser]]:
    return [((path[0], path[1]), parser) for path, parser in commands(build_parser(every=True)) if len(path) == 2]


def options_of(parser: argparse.ArgumentParser) -> list[list[str]]:
    return [list(a.option_strings) for a in parser._actions
            if a.option_strings and not set(a.option_strings) & GLOBAL]


def mentioned(option: str, span: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", span) is not None


def test_the_table_is_read() -> None:
    spans = table_spans()
    assert spans[("run", "submit")].startswith("kiln run submit SCRIPT")
    assert ("service", "delete") in spans


@pytest.mark.parametrize("command, parser", every_command(), ids=lambda v: " ".join(v) if isinstance(v, tuple)
                         else "")
def test_the_table_documents_the_command_and_its_options(command: tuple[str, str],
                                                         parser: argparse.ArgumentParser) -> None:
    spans = table_spans()
    assert command in spans, f"kiln {' '.join(command)} has no row in README's CLI table"
    missing = [names[-1] for names in options_of(parser) if not any(mentioned(n, spans[command]) for n in names)]
    assert not missing, f"README's CLI table: `{spans[command]}` lacks {', '.join(missing)}"
