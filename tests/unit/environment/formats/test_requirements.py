from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kiln.environment.formats.requirements import RequirementsFile, parse_requirements, write_requirements
from kiln.environment.pip_requirements import parse_pip_requirement
from kiln.errors import FormatError, SpecError

FACTORIES = Path(__file__).parents[3] / "fixtures" / "azureml-v1" / "factories"
SHA_A = "a" * 64
SHA_B = "b" * 64


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- the SDK's reference file -------------------------------------------------------------------


def test_reference_file(tmp_path: Path) -> None:
    folder = tmp_path / "factories"
    folder.mkdir()
    for name in ("requirements.txt", "other-requirements.txt"):
        shutil.copyfile(FACTORIES / name, folder / name)

    parsed = parse_requirements(folder / "requirements.txt")

    assert parsed.options == [
        "--index-url https://my.index/simple",
        "--extra-index-url https://extra.index/simple",
        f"--editable {folder / 'localpkg'}",
    ]
    assert parsed.packages == [
        "torch==2.0.0",  # from -r other-requirements.txt, in place
        "numpy==1.24.3",
        "pandas[parquet]>=1.5,<2.0",
        'requests ; python_version >= "3.8"',
        "mypkg @ git+https://github.com/user/repo.git@main",
        "pkg @ https://example.com/pkg-1.0-py3-none-any.whl",
        "scikit-learn~=1.2",
    ]
    for package in parsed.packages:
        parse_pip_requirement(package)


def test_reference_file_in_place() -> None:
    parsed = parse_requirements(FACTORIES / "requirements.txt")
    assert parsed.packages[0] == "torch==2.0.0"
    assert parsed.options[-1] == f"--editable {FACTORIES.absolute() / 'localpkg'}"


def test_write_requirements_round_trips(tmp_path: Path) -> None:
    parsed = parse_requirements(FACTORIES / "requirements.txt")
    text = write_requirements(parsed.packages, parsed.options)

    assert text.splitlines() == [*parsed.options, *parsed.packages]
    assert text.endswith("\n")
    assert parse_requirements(write(tmp_path / "again.txt", text)) == parsed


def test_write_requirements_empty_and_refuses_line_breaks() -> None:
    assert write_requirements([], []) == ""
    with pytest.raises(SpecError):
        write_requirements(["numpy\n--index-url https://evil/simple"], [])


# --- what pip accepts ---------------------------------------------------------------------------


def test_comments_blank_lines_and_whitespace(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", "# header\n\n   numpy==1.0   \n\tpandas  # why\n   # indented comment\n\n")
    assert parse_requirements(path) == RequirementsFile(packages=["numpy==1.0", "pandas"], options=[])


def test_hash_sign_without_space_is_not_a_comment(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", "requests#not-a-comment\n")
    with pytest.raises(FormatError, match=r"line 1: 'requests#not-a-comment' is not a valid pip requirement"):
        parse_requirements(path)


def test_empty_file(tmp_path: Path) -> None:
    assert parse_requirements(write(tmp_path / "r.txt", "")) == RequirementsFile([], [])


def test_line_continuations(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.txt",
        "numpy\\\n==1.24.3\n"
        "pandas>=1.5,\\\n  <2.0\n"
        "# a comment ending in a backslash \\\n"
        "scipy\n"
        f"torch==2.0.0 \\\n    --hash=sha256:{SHA_B} \\\n    --hash=sha256:{SHA_A}\n",
    )
    assert parse_requirements(path).packages == [
        "numpy==1.24.3",
        "pandas>=1.5,  <2.0",
        "scipy",
        f"torch==2.0.0 --hash=sha256:{SHA_B} --hash=sha256:{SHA_A}",
    ]


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", b"\xef\xbb\xbfnumpy==1.0\r\n-i https://my.index/simple\r\n")
    assert parse_requirements(path) == RequirementsFile(
        packages=["numpy==1.0"], options=["--index-url https://my.index/simple"]
    )


def test_extras_markers_and_urls(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.txt",
        "Pandas[parquet, aws] >= 1.5\n"
        "pywin32 ; sys_platform == 'win32'\n"
        "foo @ https://example.com/foo-1.0.tar.gz\n"
        "https://example.com/bar-2.0-py3-none-any.whl ; python_version >= '3.9'\n"
        "git+https://github.com/u/r.git@v1#egg=baz&subdirectory=python\n",
    )
    assert parse_requirements(path).packages == [
        "Pandas[parquet, aws] >= 1.5",
        "pywin32 ; sys_platform == 'win32'",
        "foo @ https://example.com/foo-1.0.tar.gz",
        "bar @ https://example.com/bar-2.0-py3-none-any.whl ; python_version >= '3.9'",
        "baz @ git+https://github.com/u/r.git@v1#subdirectory=python",
    ]


def test_local_archive_becomes_file_url(tmp_path: Path) -> None:
    write(tmp_path / "dist" / "mylib-1.0-py3-none-any.whl", b"PK")
    path = write(tmp_path / "sub" / "r.txt", "../dist/mylib-1.0-py3-none-any.whl\n")
    wheel = (tmp_path / "dist" / "mylib-1.0-py3-none-any.whl").as_uri()
    assert parse_requirements(path).packages == [f"mylib @ {wheel}"]


def test_hashes_kept_and_normalized(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.txt",
        f"--require-hashes\nnumpy==1.24.3 --hash=sha256:{SHA_A.upper()} --hash sha256:{SHA_B}\n",
    )
    parsed = parse_requirements(path)
    assert parsed.options == ["--require-hashes"]
    assert parsed.packages == [f"numpy==1.24.3 --hash=sha256:{SHA_A} --hash=sha256:{SHA_B}"]


def test_options_normalized_to_long_names(tmp_path: Path) -> None:
    write(tmp_path / "wheels" / ".keep", "")
    write(tmp_path / "constraints.txt", "numpy<2\n")
    path = write(
        tmp_path / "r.txt",
        "-i https://my.index/simple\n"
        "--extra-index-url=https://extra.index/simple\n"
        "-f ./wheels\n"
        "--find-links https://download.pytorch.org/whl/torch_stable.html\n"
        "-c constraints.txt\n"
        "--pre --prefer-binary\n"
        "--no-binary :all:\n"
        "--only-binary=numpy,scipy\n"
        "--trusted-host my.index\n"
        "--no-index\n",
    )
    assert parse_requirements(path).options == [
        "--index-url https://my.index/simple",
        "--extra-index-url https://extra.index/simple",
        f"--find-links {tmp_path / 'wheels'}",
        "--find-links https://download.pytorch.org/whl/torch_stable.html",
        f"--constraint {tmp_path / 'constraints.txt'}",
        "--pre",
        "--prefer-binary",
        "--no-binary :all:",
        "--only-binary numpy,scipy",
        "--trusted-host my.index",
        "--no-index",
    ]


def test_editable(tmp_path: Path) -> None:
    path = write(
        tmp_path / "project" / "r.txt",
        "-e ./localpkg[dev,test]\n"
        "--editable ../other\n"
        "-e git+https://github.com/u/r.git@main#egg=mypkg\n"
        "-e ${LOCAL_PKG}\n",
    )
    assert parse_requirements(path).options == [
        f"--editable {tmp_path / 'project' / 'localpkg'}[dev,test]",
        f"--editable {tmp_path / 'other'}",
        "--editable git+https://github.com/u/r.git@main#egg=mypkg",
        "--editable ${LOCAL_PKG}",
    ]


def test_path_with_spaces_is_quoted(tmp_path: Path) -> None:
    path = write(tmp_path / "my project" / "r.txt", "-f 'my wheels'\n")
    parsed = parse_requirements(path)
    assert parsed.options == [f"--find-links '{tmp_path / 'my project' / 'my wheels'}'"]
    again = write(tmp_path / "elsewhere" / "r.txt", write_requirements(parsed.packages, parsed.options))
    assert parse_requirements(again) == parsed


def test_env_references_are_never_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN", "s3cr3t-value")
    monkeypatch.setenv("PRIVATE_PKG_URL", "https://example.com/private-1.0.tar.gz")
    path = write(
        tmp_path / "r.txt",
        "--extra-index-url https://__token__:${TOKEN}@pkgs.example.com/simple\n"
        "private @ ${PRIVATE_PKG_URL}\n"
        "secretpkg @ https://${TOKEN}@example.com/secretpkg-1.0.tar.gz\n",
    )
    parsed = parse_requirements(path)
    assert parsed.options == ["--extra-index-url https://__token__:${TOKEN}@pkgs.example.com/simple"]
    assert parsed.packages == [
        "private @ ${PRIVATE_PKG_URL}",
        "secretpkg @ https://${TOKEN}@example.com/secretpkg-1.0.tar.gz",
    ]
    assert "s3cr3t-value" not in write_requirements(parsed.packages, parsed.options)


# --- includes -----------------------------------------------------------------------------------


def test_nested_includes_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path / "base" / "common.txt", "requests\n-f ./wheels\n")
    write(tmp_path / "base" / "more" / "extra.txt", "-r ../common.txt\nscipy\n")
    path = write(tmp_path / "r.txt", "numpy\n-r base/more/extra.txt\n--requirement=base/common.txt\npandas\n")
    parsed = parse_requirements(path)
    assert parsed.packages == ["numpy", "requests", "scipy", "pandas"]  # common.txt twice: its lines once
    assert parsed.options == [f"--find-links {tmp_path / 'base' / 'wheels'}"]


def test_same_index_url_in_two_files_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "-i https://my.index/simple\nnumpy\n")
    path = write(tmp_path / "r.txt", "--index-url https://my.index/simple\n-r a.txt\n")
    assert parse_requirements(path).options == ["--index-url https://my.index/simple"]


# --- malformed files ----------------------------------------------------------------------------

MALFORMED = [
    # (file text, line number, value the message must show, reason the message must show)
    ("numpy==1.0\nnumpy=>1.2\n", 2, "'numpy=>1.2'", "Expected"),
    ("foo==\n", 1, "'foo=='", "Expected"),
    ("# c\n\npandas[parquet>=1.5\n", 3, "'pandas[parquet>=1.5'", "Expected"),
    ("numpy>=1.0.*\n", 1, "'numpy>=1.0.*'", ".* suffix"),
    ("https://example.com/download/\n", 1, "'https://example.com/download/'", "can't derive a package name"),
    ("git+https://github.com/u/r.git@main\n", 1, "'git+https://github.com/u/r.git@main'", "add #egg=<name>"),
    ("https://example.com/pkg-1.0.whl\n", 1, "'https://example.com/pkg-1.0.whl'", "Invalid wheel filename"),
    ("ftp://example.com/pkg-1.0.tar.gz\n", 1, "'ftp://example.com/pkg-1.0.tar.gz'", "not a URL pip can fetch"),
    ("numpy\n--bogus-option x\n", 2, "'--bogus-option x'", "unknown option '--bogus-option'"),
    ("--extra-index https://x/simple\n", 1, "'--extra-index https://x/simple'", "did you mean --extra-index-url?"),
    ("--index-url\n", 1, "'--index-url'", "--index-url needs a value"),
    ("--pre=yes\n", 1, "'--pre=yes'", "--pre takes no value"),
    ("--index-url ./not-a-url\n", 1, "'--index-url ./not-a-url'", "not an http(s):// or file:// URL"),
    (f"--hash=sha256:{SHA_A}\n", 1, "'--hash=sha256:", "must follow a requirement"),
    ("numpy==1.0 --hash=md5:abc\n", 1, "'numpy==1.0 --hash=md5:abc'", "'md5' is not one of sha256"),
    ("numpy==1.0 --hash=sha256:abc\n", 1, "'numpy==1.0 --hash=sha256:abc'", "64 hex digits, not 3"),
    ("numpy --global-option=--fast\n", 1, "'numpy --global-option=--fast'", "--global-option is not supported"),
    ("numpy==${NUMPY_VERSION}\n", 1, "'numpy==${NUMPY_VERSION}'", "does not expand ${VAR}"),
    ("-f 'unterminated\n", 1, '"-f \'unterminated"', "No closing quotation"),
    ("--no-binary 'not valid'\n", 1, "\"--no-binary 'not valid'\"", "project names"),
    ("-e https://example.com/pkg-1.0.tar.gz\n", 1, "'-e https://example.com/pkg-1.0.tar.gz'", "local path or a VCS"),
    ("-e git+https://github.com/u/r.git\n", 1, "'-e git+https://github.com/u/r.git'", "add #egg=<name>"),
    ("-r https://example.com/r.txt\n", 1, "'https://example.com/r.txt'", "remote requirements files"),
    ("numpy\\\n=>1.0\nscipy\n", 1, "'numpy=>1.0'", "Expected"),
    (
        "-i https://a/simple\n-i https://b/simple\n",
        2,
        "'https://b/simple'",
        "conflicts with --index-url 'https://a/simple'",
    ),
    ("name: my-env\ndependencies:\n- numpy\n", 1, "'name: my-env'", "looks like a YAML document"),
    ("---\n- numpy\n", 1, "'---'", "looks like a YAML document"),
    ('{"name": "env", "packages": ["numpy"]}\n', 1, '\'{"name"', "looks like a JSON document"),
    ("# just a comment\n[\n", 2, "'['", "looks like a JSON document"),
    ("numpy\nscipy\x00\x01\n", 2, "'scipy\\x00\\x01'", "control character '\\x00'"),
]


@pytest.mark.parametrize(("text", "line", "value", "reason"), MALFORMED)
def test_malformed(tmp_path: Path, text: str, line: int, value: str, reason: str) -> None:
    path = write(tmp_path / "requirements.txt", text)
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    error = info.value
    message = str(error)
    assert error.file == str(path)
    assert error.field == f"line {line}"
    assert message.startswith(f"{path}: line {line}: ")
    assert value in message
    assert reason in message


@pytest.mark.parametrize("exists", [True, False])
def test_malformed_local_directory(tmp_path: Path, exists: bool) -> None:
    if exists:
        (tmp_path / "pkgdir").mkdir()
    path = write(tmp_path / "r.txt", "numpy\n./pkgdir\n")
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert str(info.value) == (
        f"{path}: line 2: './pkgdir' is not a valid pip requirement: {str(tmp_path / 'pkgdir')!r} is a local "
        "path: build a wheel (uv build) and install it from an index (--extra-index-url ${MY_INDEX}) or a "
        "--find-links folder"
    )


def test_binary_junk(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", b"numpy\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert str(info.value) == f"{path}: line 2: byte 0x89 is not UTF-8 text: is this a binary file?"


def test_missing_include_names_including_file_line_and_path(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", "numpy\n\n-r sub/missing.txt\n")
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert info.value.file == str(path)
    assert info.value.field == "line 3"
    assert str(info.value) == (
        f"{path}: line 3: -r 'sub/missing.txt': requirements file {str(tmp_path / 'sub' / 'missing.txt')!r} not found"
    )


def test_include_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "r.txt", "-r sub\n")
    with pytest.raises(FormatError, match=r"line 1: -r 'sub': requirements file '.*sub' is not a file"):
        parse_requirements(path)


def test_include_cycle(tmp_path: Path) -> None:
    top = write(tmp_path / "a.txt", "numpy\n-r b.txt\n")
    second = write(tmp_path / "b.txt", "scipy\n\n-r a.txt\n")
    with pytest.raises(FormatError) as info:
        parse_requirements(top)
    assert info.value.file == str(second)
    assert str(info.value) == f"{second}: line 3: -r 'a.txt': include cycle a.txt -> b.txt -> a.txt"


def test_self_include(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "-r ./a.txt\n")
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert str(info.value) == f"{path}: line 1: -r './a.txt': include cycle a.txt -> a.txt"


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    included = write(tmp_path / "sub" / "inc.txt", "ok\n\nbad==\n")
    path = write(tmp_path / "r.txt", "-r sub/inc.txt\n")
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert info.value.file == str(included)
    assert str(info.value).startswith(f"{included}: line 3: 'bad==' is not a valid pip requirement: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert str(info.value) == f"{path}: can't read the requirements file: No such file or directory"


@pytest.mark.parametrize(
    "line",
    [
        "-i https://alice:hunter2@my.index/simple\n-i https://alice:hunter2@other/simple\n",
        "https://alice:hunter2@example.com/download/\n",
        "--index-url https://alice:hunter2@my.index/simple --bogus\n",
        "numpy==1.0 --hash=sha256:x https://alice:hunter2@example.com\n",
        "\x00 https://alice:hunter2@example.com\n",
    ],
)
def test_errors_never_show_passwords(tmp_path: Path, line: str) -> None:
    path = write(tmp_path / "r.txt", line)
    with pytest.raises(FormatError) as info:
        parse_requirements(path)
    assert "hunter2" not in str(info.value)
    assert "alice:****@" in str(info.value)


def test_credentials_written_by_the_user_are_kept_in_the_result(tmp_path: Path) -> None:
    # Kiln does not rewrite what the user wrote; it only keeps secrets out of messages.
    path = write(tmp_path / "r.txt", "--extra-index-url https://alice:hunter2@my.index/simple\n")
    assert parse_requirements(path).options == ["--extra-index-url https://alice:hunter2@my.index/simple"]
