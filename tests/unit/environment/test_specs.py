from __future__ import annotations

import pytest

from kiln.environment.specs import (
    REPEATABLE_PIP_OPTIONS,
    PipOption,
    check_pip_option,
    conda_spec_name,
    conda_spec_version,
    is_pip_option,
    looks_like_path,
    looks_like_url,
    normalize_conda_spec,
    normalize_pip_requirement,
    parse_conda_spec,
    parse_pip_options,
    parse_pip_requirement,
    pip_option_flag,
    pip_requirement_name,
    redact_credentials,
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
        ("https://alice:hunter2@example.com/simple", "https://alice:****@example.com/simple"),
        ("--index-url https://ghp_abcdef@github.com/x", "--index-url https://****@github.com/x"),
        ("https://${USER}:${TOKEN}@example.com/simple", "https://${USER}:${TOKEN}@example.com/simple"),
        ("git+ssh://git@github.com/u/r.git", "git+ssh://git@github.com/u/r.git"),
        ("git+https://github.com/u/r.git@main", "git+https://github.com/u/r.git@main"),
        ("https://u:p@ss@host/x", "https://u:****@host/x"),
    ],
)
def test_redact_credentials(text: str, expected: str) -> None:
    assert redact_credentials(text) == expected


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


# --- conda --------------------------------------------------------------------------------------


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
