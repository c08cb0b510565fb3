"""The CLI's one error policy: an exception → the text for stderr and the exit code.

0 ok; 1 a user error (a ``KilnError``, or bad usage: ``UsageError``); 2 an internal error (any other
exception: a bug, reported as such); 130 interrupted (Ctrl-C). Errors are one line,
``kiln: error: ...`` (a ``KilnError``'s further lines indented below it); tracebacks only when asked
(``--traceback`` or ``KILN_DEBUG``), and then with the same exit code.
"""

from __future__ import annotations

__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_USER", "UsageError", "failure"]

EXIT_USER = 1
EXIT_INTERNAL = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line is wrong: an unknown option, a missing argument, a bad value.

    ``hint`` names the option at fault (``--format``); ``prog`` is the command (``kiln env download``),
    whose ``--help`` the message points to.
    """

    def __init__(self, message: str, *, hint: str | None = None, prog: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.prog = prog

    def __str__(self) -> str:
        text = f"Invalid value for {self.hint}: {self.message}" if self.hint else self.message
        return text + (f" (see: {self.prog} --help)" if self.prog else "")


def failure(error: BaseException, *, traceback: bool = False) -> tuple[int, str]:
    """The exit code for ``error`` and what to write on stderr about it (credentials masked)."""
    from kiln.environment.secrets import mask

    code, text = _failure(error, traceback=traceback)
    return code, mask(text)


def _failure(error: BaseException, *, traceback: bool) -> tuple[int, str]:
    from kiln.errors import KilnError

    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "kiln: interrupted\n"
    if isinstance(error, UsageError):
        return EXIT_USER, f"kiln: error: {_cut(str(error))}\n"
    code = EXIT_USER if isinstance(error, KilnError) else EXIT_INTERNAL
    if traceback:
        import traceback as tb

        return code, "".join(tb.format_exception(type(error), error, error.__traceback__))
    if isinstance(error, KilnError):
        first, *rest = str(error).splitlines() or [type(error).__name__]
        return code, "".join([f"kiln: error: {_cut(first)}\n", *(f"  {_cut(line)}\n" for line in rest)])
    detail = str(error).splitlines()
    return code, (f"kiln: internal error: {type(error).__name__}" + (f": {_cut(detail[0])}" if detail else "")
                  + " (run with --traceback for details)\n")


#: the longest error line: messages quote values (a name, a path, a spec), and a value can be a megabyte
MAX_LINE = 400


def _cut(line: str) -> str:
    room = MAX_LINE - len("kiln: internal error: ")  # the whole printed line stays within MAX_LINE
    if len(line) <= room:
        return line
    return f"{line[:room - 40]}... ({len(line)} characters)"
