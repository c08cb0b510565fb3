"""The one masker (``kiln.environment.secrets.mask``): what it hides, what it keeps, and that it is linear."""

from __future__ import annotations

import pytest

from kiln.environment.secrets import mask


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://alice:hunter2@example.com/simple", "https://alice:****@example.com/simple"),
        ("--index-url https://ghp_abcdef@github.com/x", "--index-url https://****@github.com/x"),
        ("https://${USER}:${TOKEN}@example.com/simple", "https://${USER}:${TOKEN}@example.com/simple"),
        ("git+ssh://git@github.com/u/r.git", "git+ssh://git@github.com/u/r.git"),
        ("git+https://github.com/u/r.git@main", "git+https://github.com/u/r.git@main"),
        ("https://u:p@ss@host/x", "https://u:****@host/x"),
        ("https://u:pa/ss@host/x@v1", "https://u:****@host/x@v1"),
        ("https://u:p#s%40@host/simple", "https://u:****@host/simple"),
        ("https://host:8080/path@ref", "https://host:8080/path@ref"),
        ("https://u:$TOKEN@host/x", "https://u:$TOKEN@host/x"),
        ("https://conda.anaconda.org/t/tk-12ab/conda-forge", "https://conda.anaconda.org/t/****/conda-forge"),
        ("https://conda.anaconda.org/t/${CONDA_TOKEN}/ch", "https://conda.anaconda.org/t/${CONDA_TOKEN}/ch"),
        ("error: 'https://tok@h/x', see 'a@b'", "error: 'https://****@h/x', see 'a@b'"),
        ("no URL here: user@example.com", "no URL here: user@example.com"),
    ],
)
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.timeout(20)  # linear: milliseconds; the old patterns were quadratic here (hours for 1 MB)
@pytest.mark.parametrize(
    "line",
    [
        "a" * 1_000_000,  # a long run of scheme characters and no "://"
        "https://" + "a" * 1_000_000,  # a user name without "@"
        "x://" * 250_000,  # many schemes on one line
        "https://u:" + "a/" * 500_000,  # a password-looking run with no "@"
        "a://b:c/" * 125_000,
    ],
)
def test_mask_is_linear_on_a_1mb_line(line: str) -> None:
    assert mask(line) == line


def test_mask_a_1mb_password() -> None:
    assert mask("https://u:" + "p@" * 500_000 + "host/x") == "https://u:****@host/x"
