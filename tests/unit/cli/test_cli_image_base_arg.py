"""``kiln image build --base-layout DIR[:TAG]``: the folder and the tag."""

from __future__ import annotations

from pathlib import Path

from kiln.cli.image import _base


def test_a_tag_after_the_last_colon(tmp_path: Path) -> None:
    assert _base(None) == (None, None)
    assert _base(str(tmp_path / "base")) == (tmp_path / "base", None)
    assert _base(f"{tmp_path / 'base'}:3.12") == (tmp_path / "base", "3.12")


def test_an_existing_folder_with_a_colon_in_its_name_is_taken_whole(tmp_path: Path) -> None:
    folder = tmp_path / "python:3.12"
    folder.mkdir()
    assert _base(str(folder)) == (folder, None)
