"""The interface every environment file format implements (``kiln env register -d``, ``kiln env download``).

A format is one way of writing a definition to files: an Azure ML v1 folder, an Azure ML v2 YAML,
a conda ``environment.yml``, a pip ``requirements.txt``. ``formats.registry`` holds one instance
of each; detection, registration and download go through it, so a new format is one class there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["Format"]


class Format(ABC):
    """One file format of environment definitions.

    Implementers set ``name`` (what ``--format`` takes, e.g. ``"azureml-v2"``) and ``file_names``
    (the files the format owns; ``dump`` writes the first, or all for a folder format), and keep
    ``load(dump(env))`` equal to ``env`` for what the format can hold. Errors are ``KilnError``
    subclasses naming the file, the field and the value; nothing is printed.
    """

    #: the name users give (``kiln env register --format NAME``, ``kiln env download --format NAME``)
    name: str
    #: the files this format owns, by their usual names
    file_names: tuple[str, ...]
    #: whether a folder of ``file_names`` is the definition (Azure ML v1) rather than one file
    folder: bool = False

    @abstractmethod
    def sniff(self, path: Path) -> bool:
        """Whether the existing file (or folder) ``path`` is in this format, by its name and content.

        Cheap and without side effects; may raise ``FormatError`` when the file can't be read at all.
        The registry asks formats in order and takes the first that says yes.
        """

    @abstractmethod
    def load(self, path: Path, *, name: str | None = None) -> Environment:
        """The environment ``path`` defines; ``name`` (checked) replaces the file's own name, and is
        required when the format holds none (raise ``FormatError`` saying to give one)."""

    @abstractmethod
    def dump(self, env: Environment, directory: Path, *, overwrite: bool = False) -> list[Path]:
        """Write ``env`` into ``directory`` (created if missing) and return the files written.

        An existing file is replaced only with ``overwrite=True``; on error nothing is written.
        Raise ``DefinitionError`` when the format can't hold ``env`` (see ``cannot_dump``)."""

    def cannot_dump(self, env: Environment) -> str | None:
        """Why ``env`` can't be written in this format (a sentence), or None when it can."""
        del env
        return None
