"""A stored private wheel named by another machine's mount of the artifact store is found here by its digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builds.wheels import WheelPaths
from kiln.errors import WorkspaceError

DIGEST = "ab" * 32
FILE = "pkg-1.0-py3-none-any.whl"


def _stored(folder: Path) -> Path:
    path = folder / DIGEST / FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"wheel")
    return path


def test_a_wheel_at_its_path_is_left_and_a_missing_one_points_at_this_store(tmp_path: Path) -> None:
    here = _stored(tmp_path / "blobs" / "wheels")
    elsewhere = f"file:///mnt/other/wheels/{DIGEST}/{FILE}"
    text = (f"--index-url https://pypi.org/simple\npkg @ {elsewhere} \\\n    --hash=sha256:{DIGEST}\n"
            f"other @ {here.as_uri()}\nsix==1.16.0\n")
    out = WheelPaths([tmp_path / "blobs" / "wheels", tmp_path / "wheels"]).localize(text)
    assert out == text.replace(elsewhere, here.resolve().as_uri())


def test_the_older_workspace_folder_is_searched_second(tmp_path: Path) -> None:
    old = _stored(tmp_path / "ws" / "wheels")
    paths = WheelPaths([tmp_path / "blobs" / "wheels", tmp_path / "ws" / "wheels"])
    assert paths.localize(f"pkg @ file:///gone/wheels/{DIGEST}/{FILE}") == f"pkg @ {old.resolve().as_uri()}"


def test_a_wheel_found_nowhere_is_one_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=rf"the private wheel '{FILE}' \(sha256 {DIGEST[:12]}\.\.\.\) is neither "
                                             r"at /gone/wheels/.* nor in this workspace's artifact store"):
        WheelPaths([tmp_path / "blobs" / "wheels"]).localize(f"pkg @ file:///gone/wheels/{DIGEST}/{FILE}")


def test_text_without_stored_wheels_is_unchanged(tmp_path: Path) -> None:
    text = "six==1.16.0\npkg @ file:///somewhere/else/pkg-1.0-py3-none-any.whl\n"
    assert WheelPaths([tmp_path]).localize(text) == text
