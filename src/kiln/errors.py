"""The error hierarchy: every failure Kiln reports to a user is a ``KilnError``.

Messages name what is wrong (file, field, value) so that one line on stderr is enough.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CommandError",
    "DefinitionError",
    "FormatError",
    "IgnoredSettingWarning",
    "KilnError",
    "NotFoundError",
    "ReadOnlyError",
    "SpecError",
    "WorkspaceError",
]


class KilnError(Exception):
    """Root of every error Kiln raises on purpose."""


class IgnoredSettingWarning(UserWarning):
    """A setting Kiln accepts but can't apply yet (``docker.enabled``, ``docker.base_image`` before container
    runs land): said out loud, never dropped silently. ``warnings.simplefilter("error", IgnoredSettingWarning)``
    makes it an error."""


class DefinitionError(KilnError):
    """An environment definition is invalid (a field or a combination of fields)."""


class SpecError(DefinitionError):
    """A package spec (pip requirement or conda match spec) does not parse."""

    def __init__(self, spec: str, kind: str, reason: str, where: str | None = None) -> None:
        self.spec = spec
        self.kind = kind
        self.reason = reason
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{spec!r} is not a valid {kind} spec: {reason}")


class FormatError(DefinitionError):
    """A file of a supported format is malformed. Names the file, the field and the value."""

    def __init__(self, file: str, message: str, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.detail = message
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + message)


class WorkspaceError(KilnError):
    """The workspace or its store can't be opened or used."""


class NotFoundError(KilnError):
    """A named object (environment, version, run, model...) does not exist."""


class ReadOnlyError(KilnError):
    """An object can't be changed (e.g. a curated environment)."""


class CommandError(KilnError):
    """A subprocess failed: carries its command, exit code and output."""

    def __init__(self, cmd: Sequence[str], returncode: int, output: str, what: str | None = None) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.output = output
        tail = output.strip().splitlines()[-15:]
        head = what or f"command {self.cmd[0]!r}"
        super().__init__(f"{head} failed with exit code {returncode}" + ("\n" + "\n".join(tail) if tail else ""))
