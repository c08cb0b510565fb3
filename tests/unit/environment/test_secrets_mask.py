"""The one masker (``kiln.environment.secrets.mask``): what it hides, what it keeps, and that it is linear."""

from __future__ import annotations

import pytest

from kiln.environment.secrets import literal_secret, mask, refuse_literal_secrets
from kiln.errors import DefinitionError


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
        ("git+ssh://alice@host/r.git", "git+ssh://alice@host/r.git"),  # an SSH login name is no token
        ("ssh://alice:pw@host/r", "ssh://alice:****@host/r"),
        ("https://alice@host/simple", "https://****@host/simple"),
        ("pkg @ git+https://ghp_tok@github.com/u/r.git@v1", "pkg @ git+https://****@github.com/u/r.git@v1"),
        ("/home/t/abc/x and https://h/x", "/home/t/abc/x and https://h/x"),  # a path, not a channel
        ("--find-links file:///data/t/wheels/", "--find-links file:///data/t/wheels/"),
        ("'https://h/t/tok/ch' /srv/t/a/b", "'https://h/t/****/ch' /srv/t/a/b"),
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


@pytest.mark.timeout(20)
@pytest.mark.parametrize("line", ["https://h" + "/t/x" * 250_000, "http:///t/" * 100_000,
                                  "https://h/t/" + "a" * 1_000_000])
def test_mask_is_linear_on_channel_paths(line: str) -> None:
    assert len(mask(line)) <= 2 * len(line)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"python": {"condaDependencies": {"dependencies": ["python=3.11", {"pip": ["x @ https://u:p@h/x.whl"]}]}}},
         "python.condaDependencies.dependencies[1].pip[0]"),
        ({"python": {"condaDependencies": {"channels": ["https://h/t/tok/ch"]}}},
         "python.condaDependencies.channels[0]"),
        ({"docker": {"baseImageRegistry": {"address": "https://tok@registry.example"}}},
         "docker.baseImageRegistry.address"),
        ({"docker": {"baseDockerfile": "RUN pip install --index-url https://u:p@h/simple x"}}, "docker.baseDockerfile"),
        ({"description": "see https://u:p@h/"}, "description"),
    ],
)
def test_literal_secret_finds_the_field(data: dict[str, object], field: str) -> None:
    found = literal_secret(data)
    assert found is not None and found[0] == field and "****" in found[1]


@pytest.mark.parametrize(
    "data",
    [
        {"environmentVariables": {"URL": "https://u:p@h/"}},  # the user's to set, as in Azure ML
        {"docker": {"baseImageRegistry": {"password": "literal", "address": "myregistry.azurecr.io"}}},
        {"python": {"condaDependencies": {"dependencies": [{"pip": ["--index-url https://u:${PW}@h/simple",
                                                                    "x @ git+https://${TOKEN}@github.com/u/r.git",
                                                                    "y @ git+ssh://git@github.com/u/r.git"]}],
                                          "channels": ["https://h/t/${CONDA_TOKEN}/ch", "conda-forge"]}}},
    ],
)
def test_references_and_non_secrets_pass(data: dict[str, object]) -> None:
    assert literal_secret(data) is None


def test_the_refusal_is_masked_and_says_how_to_write_a_reference() -> None:
    with pytest.raises(DefinitionError) as e:
        refuse_literal_secrets({"python": {"condaDependencies": {"dependencies": [
            {"pip": ["--index-url https://u:pa/ss@h/simple"]}]}}}, "environment 'e'")
    message = str(e.value)
    assert "pa/ss" not in message and "ss@" not in message
    assert message.startswith("environment 'e': pip option '--index-url https://u:****@h/simple' holds a literal "
                              "credential")
    assert "https://user:${INDEX_PASSWORD}@host/simple" in message
