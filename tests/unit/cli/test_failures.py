"""The CLI's error policy: exit codes and the one line on stderr."""

from __future__ import annotations

from kiln.cli.failures import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USER, UsageError, failure
from kiln.errors import KilnError, NotFoundError


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as e:
        return e


def test_a_kiln_error_is_a_user_error_on_one_line() -> None:
    assert failure(NotFoundError("no environment 'x'")) == (EXIT_USER, "kiln: error: no environment 'x'\n")


def test_a_kiln_errors_further_lines_are_indented() -> None:
    assert failure(KilnError("bad file\nline 2: this\nline 3: that")) == (
        EXIT_USER, "kiln: error: bad file\n  line 2: this\n  line 3: that\n")


def test_a_usage_error_names_the_option_and_the_help() -> None:
    error = UsageError("'mamba' is not one of auto, conda, pypi", hint="--conda-via", prog="kiln env build")
    assert failure(error, traceback=True) == (
        EXIT_USER, "kiln: error: Invalid value for --conda-via: 'mamba' is not one of auto, conda, pypi "
                   "(see: kiln env build --help)\n")
    assert failure(UsageError("no such option: --bogus", prog="kiln")) == (
        EXIT_USER, "kiln: error: no such option: --bogus (see: kiln --help)\n")


def test_anything_else_is_an_internal_error() -> None:
    code, text = failure(raised(RuntimeError("boom\nmore")))
    assert (code, text) == (EXIT_INTERNAL, "kiln: internal error: RuntimeError: boom (run with --traceback for "
                                           "details)\n")
    assert failure(ValueError())[1] == "kiln: internal error: ValueError (run with --traceback for details)\n"


def test_tracebacks_when_asked_keep_the_exit_code() -> None:
    code, text = failure(raised(RuntimeError("boom")), traceback=True)
    assert code == EXIT_INTERNAL
    assert text.startswith("Traceback (most recent call last):\n") and text.endswith("RuntimeError: boom\n")
    code, text = failure(raised(NotFoundError("gone")), traceback=True)
    assert code == EXIT_USER and text.endswith("kiln.errors.NotFoundError: gone\n")


def test_ctrl_c_is_130() -> None:
    assert failure(KeyboardInterrupt()) == (EXIT_INTERRUPTED, "kiln: interrupted\n")
