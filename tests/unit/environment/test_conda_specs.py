from __future__ import annotations

import pytest

from kiln.environment.conda_specs import conda_spec_name, conda_spec_version, normalize_conda_spec, parse_conda_spec
from kiln.errors import SpecError


@pytest.mark.parametrize(
    ("text", "normalized", "name"),
    [
        ("pytorch::pytorch=2.0", "pytorch::pytorch 2.0.*", "pytorch"),
        ("numpy>=1.20", "numpy >=1.20", "numpy"),
        ("python=3.9.16", "python 3.9.16.*", "python"),
        ("numpy 1.2.*", "numpy 1.2.*", "numpy"),
        ("numpy=1.2.*", "numpy 1.2.*", "numpy"),
        ("NumPy >=1.2, <2", "numpy >=1.2,<2", "numpy"),
        ("numpy=1.2=py39_0", "numpy ==1.2 py39_0", "numpy"),
        ("conda-forge::numpy", "conda-forge::numpy", "numpy"),
        ("conda-forge/linux-64::numpy", "conda-forge/linux-64::numpy", "numpy"),
        ("pip", "pip", "pip"),
    ],
)
def test_conda_spec(text: str, normalized: str, name: str) -> None:
    assert normalize_conda_spec(text) == normalized
    assert normalize_conda_spec(normalized) == normalized
    assert conda_spec_name(text) == name
    assert parse_conda_spec(text).name.normalized == name


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("numpy=>1.2", "unable to parse version spec"),
        ("", "it is empty"),
        ("numpy[", "not a valid package name"),
        ("*", "only exact package names"),
        ("numpy ==", "unable to parse version spec"),
        ("numpy>=1.2 ;", "';' is not a valid build string"),
        ("foo bar baz qux", "is not a valid build string"),
        ("a::b::c", "invalid channel"),
    ],
)
def test_parse_conda_spec_rejects(text: str, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_conda_spec(text, where="conda_dependencies.yml: dependencies[3]")
    assert info.value.kind == "conda match"
    assert reason in info.value.reason
    prefix = f"conda_dependencies.yml: dependencies[3]: {text!r} is not a valid conda match spec"
    assert str(info.value).startswith(prefix)


def test_parse_conda_spec_masks_channel_credentials() -> None:
    with pytest.raises(SpecError) as info:
        parse_conda_spec("https://me:t0ken@conda.example.com/chan::numpy=>1")
    assert "t0ken" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("python=3.9", "3.9"),
        ("python=3.9.16", "3.9.16"),
        ("python 3.9.*", "3.9"),
        ("python==3.10.18", "3.10.18"),
        ("python>=3.8,<3.12", ">=3.8,<3.12"),
        ("python", None),
    ],
)
def test_conda_spec_version(text: str, version: str | None) -> None:
    assert conda_spec_version(text) == version
