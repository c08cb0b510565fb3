from __future__ import annotations

import pytest

from kiln.environment.pip_options import (
    REPEATABLE_PIP_OPTIONS,
    PipOption,
    check_pip_option,
    is_pip_option,
    parse_pip_options,
    pip_option_flag,
)
from kiln.errors import SpecError


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-i https://my.index/simple", True),
        ("--index-url https://my.index/simple", True),
        ("  --pre", True),
        ("-e ./localpkg", True),
        ("-r other.txt", True),
        ("numpy==1.0", False),
        ("# -r commented.txt", False),
        ("git+https://github.com/u/r.git#egg=x", False),
        ("", False),
    ],
)
def test_is_pip_option(line: str, expected: bool) -> None:
    assert is_pip_option(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-i https://my.index/simple", ["--index-url https://my.index/simple"]),
        ("-ihttps://my.index/simple", ["--index-url https://my.index/simple"]),
        ("--index-url=https://my.index/simple", ["--index-url https://my.index/simple"]),
        ("--extra-index-url https://extra/simple", ["--extra-index-url https://extra/simple"]),
        ("-f ./wheels", ["--find-links ./wheels"]),
        ("--find-links 'my wheels'", ["--find-links 'my wheels'"]),
        ("-e ./localpkg", ["--editable ./localpkg"]),
        ("-r other.txt", ["--requirement other.txt"]),
        ("-c constraints.txt", ["--constraint constraints.txt"]),
        ("--pre --no-index", ["--pre", "--no-index"]),
        ("--prefer-binary", ["--prefer-binary"]),
        ("--require-hashes", ["--require-hashes"]),
        ("--no-binary :all:", ["--no-binary :all:"]),
        ("--only-binary=numpy,scipy", ["--only-binary numpy,scipy"]),
        ("--trusted-host my.index:8080", ["--trusted-host my.index:8080"]),
        ("--index-url https://${TOKEN}@my.index/simple", ["--index-url https://${TOKEN}@my.index/simple"]),
    ],
)
def test_parse_pip_options(line: str, expected: list[str]) -> None:
    assert [str(option) for option in parse_pip_options(line)] == expected
    assert [str(option) for option in check_pip_option(line)] == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("--bogus", "unknown option '--bogus'"),
        ("--extra-index https://x", "did you mean --extra-index-url?"),
        ("-x value", "unknown option '-x'"),
        ("--index-url", "--index-url needs a value"),
        ("-r", "--requirement needs a value"),
        ("--pre=yes", "--pre takes no value"),
        ("--hash=sha256:abc", "--hash must follow a requirement"),
        ("--index-url ./relative/index", "is not an http(s):// or file:// URL"),
        ("--no-binary 'not a name'", "expects :all:, :none: or project names"),
        ("--trusted-host https://host/", "expects host[:port]"),
        ("--find-links 'unterminated", "No closing quotation"),
        ("-", "is not an option"),
    ],
)
def test_parse_pip_options_rejects(line: str, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_pip_options(line, where="env.yml: dependencies[2].pip[0]")
    assert info.value.kind == "pip option"
    assert reason in info.value.reason
    assert str(info.value).startswith(f"env.yml: dependencies[2].pip[0]: {line!r}")


def test_parse_pip_options_masks_credentials() -> None:
    with pytest.raises(SpecError) as info:
        parse_pip_options("--index-url https://me:pa55word@host/simple --bogus")
    assert "pa55word" not in str(info.value)


def test_pip_option_str_round_trips() -> None:
    option = PipOption("--find-links", "/path with space/wheels")
    assert parse_pip_options(str(option)) == [option]


@pytest.mark.parametrize(
    ("line", "flag"),
    [
        ("-i https://x", "--index-url"),
        ("--index-url=https://x", "--index-url"),
        ("--extra-index-url https://x", "--extra-index-url"),
        ("-e .", "--editable"),
        ("--not-an-option", "--not-an-option"),
    ],
)
def test_pip_option_flag(line: str, flag: str) -> None:
    assert pip_option_flag(line) == flag


def test_repeatable_pip_options() -> None:
    assert "--extra-index-url" in REPEATABLE_PIP_OPTIONS
    assert "--find-links" in REPEATABLE_PIP_OPTIONS
    assert "--index-url" not in REPEATABLE_PIP_OPTIONS
    assert "--pre" not in REPEATABLE_PIP_OPTIONS
