from __future__ import annotations

import pytest

from kiln.environment.pip_requirements import (
    looks_like_path,
    looks_like_url,
    normalize_pip_requirement,
    parse_pip_requirement,
    pip_requirement_name,
    split_hashes,
    url_to_requirement,
)
from kiln.errors import SpecError

SHA_A = "a" * 64
SHA_B = "b" * 64
WHEEL_URL = "https://example.com/pkg-1.0-py3-none-any.whl"
GIT_URL = "git+https://github.com/user/repo.git@main"


# --- pip requirements -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "extras", "specifier", "url", "marker"),
    [
        ("numpy==1.24.3", "numpy", set(), "==1.24.3", None, None),
        ("pandas[parquet]>=1.5,<2.0", "pandas", {"parquet"}, "<2.0,>=1.5", None, None),
        ('requests ; python_version >= "3.8"', "requests", set(), "", None, 'python_version >= "3.8"'),
        ("scikit-learn~=1.2  # trailing comment", "scikit-learn", set(), "~=1.2", None, None),
        (f"pkg @ {WHEEL_URL}", "pkg", set(), "", WHEEL_URL, None),
        (f"{GIT_URL}#egg=mypkg", "mypkg", set(), "", GIT_URL, None),
        (f"numpy==1.0 --hash=sha256:{SHA_A}", "numpy", set(), "==1.0", None, None),
        ("foo @ https://${HOST}/foo-1.0.tar.gz", "foo", set(), "", "https://${HOST}/foo-1.0.tar.gz", None),
    ],
)
def test_parse_pip_requirement_accepts(
    text: str, name: str, extras: set[str], specifier: str, url: str | None, marker: str | None
) -> None:
    requirement = parse_pip_requirement(text)
    assert requirement.name == name
    assert requirement.extras == extras
    assert str(requirement.specifier) == specifier
    assert requirement.url == url
    assert (str(requirement.marker) if requirement.marker else None) == marker


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("numpy=>1.2", "Expected"),
        ("foo==", "Expected"),
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("# only a comment", "it is empty"),
        ("pandas[parquet>=1.5", "Expected"),
        ("foo>=1.0.*", ".* suffix"),
        ("-e .", "pip option"),
        ("foo @ ./local", "is not a URL pip can fetch"),
        ("foo @ ftp://example.com/foo-1.0.tar.gz", "is not a URL pip can fetch"),
        ("./dist/pkg-1.0-py3-none-any.whl", "local path"),
        ("numpy==${NUMPY_VERSION}", "does not expand ${VAR}"),
        ("numpy==1.0 --global-option=--x", "--global-option is not supported"),
        ("numpy==1.0 --hash=md5:abc", "'md5' is not one of sha256"),
        ("numpy==1.0 --hash=sha256:abc", "64 hex digits, not 3"),
        ("numpy==1.0 --hash=nonsense", "not of the form algo:hexdigest"),
        ("numpy==1.0 --pre", "unexpected '--pre'"),
    ],
)
def test_parse_pip_requirement_rejects(text: str, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_pip_requirement(text, where="requirements.txt: line 3")
    error = info.value
    assert error.kind == "pip requirement"
    assert error.spec == text
    assert reason in error.reason
    assert str(error).startswith(f"requirements.txt: line 3: {text!r} is not a valid pip requirement spec: ")


def test_parse_pip_requirement_masks_credentials() -> None:
    with pytest.raises(SpecError) as info:
        parse_pip_requirement("https://alice:hunter2@example.com/simple/")
    assert "hunter2" not in str(info.value)
    assert "alice:****@example.com" in str(info.value)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Scikit_Learn >= 1.0 , <2", "scikit-learn<2,>=1.0"),
        ("Pandas[Parquet,aws]>=1.5", "pandas[aws,parquet] >=1.5"),
        ("requests;python_version>='3.8'", 'requests ; python_version >= "3.8"'),
        ("git+https://github.com/user/repo.git@main#egg=MyPkg", "mypkg @ git+https://github.com/user/repo.git@main"),
        (
            f"numpy==1.0 --hash=sha256:{SHA_B} --hash=sha256:{SHA_A.upper()}",
            f"numpy==1.0 --hash sha256:{SHA_A} --hash=sha256:{SHA_B}",
        ),
        ("numpy==1.0  # pinned", "numpy==1.0"),
    ],
)
def test_normalize_pip_requirement_equal_spellings(first: str, second: str) -> None:
    assert normalize_pip_requirement(first) == normalize_pip_requirement(second)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Scikit_Learn >= 1.0 , <2", "scikit-learn<2,>=1.0"),
        ("Foo.Bar[B_ar,A]", "foo-bar[a,b-ar]"),
        ("x @ https://h/x-1.0.tar.gz ; os_name=='nt'", 'x @ https://h/x-1.0.tar.gz ; os_name == "nt"'),
        ("requests;python_version>='3.8'", 'requests; python_version >= "3.8"'),
        (f"numpy --hash=sha256:{SHA_A}", f"numpy --hash=sha256:{SHA_A}"),
    ],
)
def test_normalize_pip_requirement_text(text: str, expected: str) -> None:
    assert normalize_pip_requirement(text) == expected
    assert normalize_pip_requirement(expected) == expected


def test_normalize_pip_requirement_keeps_different_requirements_apart() -> None:
    assert normalize_pip_requirement("numpy>=1.0") != normalize_pip_requirement("numpy>=1.0.1")
    assert normalize_pip_requirement("numpy[a]") != normalize_pip_requirement("numpy")


def test_pip_requirement_name() -> None:
    assert pip_requirement_name("Scikit_Learn>=1") == "scikit-learn"
    assert pip_requirement_name("NumPy") == "numpy"
    assert pip_requirement_name("git+https://github.com/u/r.git#egg=My_Pkg") == "my-pkg"


def test_split_hashes() -> None:
    assert split_hashes(f"numpy==1.0 --hash=sha256:{SHA_A.upper()} --hash sha256:{SHA_B}") == (
        "numpy==1.0",
        [f"sha256:{SHA_A}", f"sha256:{SHA_B}"],
    )
    assert split_hashes('requests ; python_version >= "3.8"') == ('requests ; python_version >= "3.8"', [])


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/pkg-1.0-py3-none-any.whl", "pkg @ https://example.com/pkg-1.0-py3-none-any.whl"),
        (
            "https://example.com/Foo_Bar-1.0-py3-none-any.whl",
            "foo-bar @ https://example.com/Foo_Bar-1.0-py3-none-any.whl",
        ),
        (
            "https://h/torch-2.0.0%2Bcu118-cp39-cp39-linux_x86_64.whl",
            "torch @ https://h/torch-2.0.0%2Bcu118-cp39-cp39-linux_x86_64.whl",
        ),
        ("https://example.com/foo-bar-1.0.tar.gz", "foo-bar @ https://example.com/foo-bar-1.0.tar.gz"),
        ("file:///tmp/dist/foo-1.0.zip", "foo @ file:///tmp/dist/foo-1.0.zip"),
        ("git+https://github.com/user/repo.git@main#egg=mypkg", "mypkg @ git+https://github.com/user/repo.git@main"),
        (
            "git+https://github.com/user/repo.git@v1#egg=mypkg&subdirectory=python",
            "mypkg @ git+https://github.com/user/repo.git@v1#subdirectory=python",
        ),
        ("git+ssh://git@github.com/user/repo.git#egg=mypkg", "mypkg @ git+ssh://git@github.com/user/repo.git"),
        (
            'https://example.com/pkg-1.0-py3-none-any.whl ; python_version >= "3.8"',
            'pkg @ https://example.com/pkg-1.0-py3-none-any.whl ; python_version >= "3.8"',
        ),
        ("https://${TOKEN}@example.com/pkg-1.0.tar.gz", "pkg @ https://${TOKEN}@example.com/pkg-1.0.tar.gz"),
    ],
)
def test_url_to_requirement(url: str, expected: str) -> None:
    assert url_to_requirement(url) == expected
    assert parse_pip_requirement(expected).url is not None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/download/", "can't derive a package name"),
        ("git+https://github.com/user/repo.git@main", "can't derive a package name"),
        ("https://example.com/pkg-1.0.whl", "Invalid wheel filename"),
        ("https://example.com/pkg.tar.gz", "Invalid sdist filename"),
        ("ftp://example.com/pkg-1.0-py3-none-any.whl", "is not a URL pip can fetch"),
        ("example.com/pkg-1.0-py3-none-any.whl", "is not a URL pip can fetch"),
        ("git+https://github.com/u/r.git#egg=not a name", "is not a valid project name"),
        ("https://example.com/foo-1.0-py3-none-any.whl#egg=bar", "does not match"),
    ],
)
def test_url_to_requirement_rejects(url: str, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        url_to_requirement(url, where="file.txt: line 2")
    assert reason in info.value.reason
    assert str(info.value).startswith(f"file.txt: line 2: {url!r}")


def test_url_to_requirement_masks_credentials() -> None:
    with pytest.raises(SpecError) as info:
        url_to_requirement("https://bob:s3cret-token@example.com/download/")
    assert "s3cret-token" not in str(info.value)
    assert "https://bob:****@example.com/download/" in str(info.value)



@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("./pkg", True),
        ("../dist/pkg-1.0.tar.gz", True),
        ("/abs/pkg", True),
        ("C:\\pkgs\\pkg", True),
        ("dist/pkg-1.0-py3-none-any.whl", True),
        ("pkg @ https://x/pkg-1.0-py3-none-any.whl", False),
        ("https://x/pkg-1.0-py3-none-any.whl", False),
        ("numpy", False),
    ],
)
def test_looks_like_path(text: str, expected: bool) -> None:
    assert looks_like_path(text) is expected


def test_looks_like_url() -> None:
    assert looks_like_url("https://x/y")
    assert looks_like_url("git+ssh://git@github.com/x")
    assert looks_like_url("${PKG_URL}")
    assert not looks_like_url("numpy>=1")
    assert not looks_like_url("./pkg")


# --- pip options --------------------------------------------------------------------------------
