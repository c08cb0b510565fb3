"""``kiln image build / list / show / rm``: the real command, a real build, the image in Kiln's cache."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from build_support import *  # noqa: F403 - the shared fixtures (see build_support)
from test_cli_build import envelope, ok, register

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("python")]


@pytest.fixture
def python(interpreter: Any) -> Any:
    return interpreter("3.12")


def test_image_build_list_show_rm(run_kiln: Any, tmp_path: Path) -> None:
    register(run_kiln, tmp_path, "imaged", "six==1.16.0")
    built = envelope(run_kiln, "image", "build", "imaged", "--tar", str(tmp_path / "i.tar"), kind="image.build")
    assert built["name"].startswith("kiln/kiln_") and built["digest"].startswith("sha256:")
    assert [x["title"] for x in built["layers"]] == ["environment", "six 1.16.0"]
    with tarfile.open(tmp_path / "i.tar") as tar:
        docker = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert docker[0]["RepoTags"] == [built["image"]]
    again = envelope(run_kiln, "image", "build", "imaged", "--layout", str(tmp_path / "lay"), kind="image.build")
    assert again["digest"] == built["digest"]
    index = json.loads((tmp_path / "lay" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [built["digest"]]

    listed = envelope(run_kiln, "image", "list", kind="image.list")
    assert [(i["image"], i["digest"], i["environment"]) for i in listed] == [(built["image"], built["digest"],
                                                                              "imaged:1")]
    shown = envelope(run_kiln, "image", "show", "imaged:1", kind="image.show")
    assert shown["lock_hash"] == built["labels"]["io.kiln.lock-hash"]
    out, _ = ok(run_kiln, "image", "show", built["image"])
    assert f"digest       {built['digest']}" in out and "six 1.16.0" in out

    removed = envelope(run_kiln, "image", "rm", built["image"], kind="image.rm")
    assert removed["removed"] == [built["image"]] and removed["freed"] > 0
    assert envelope(run_kiln, "image", "list", kind="image.list") == []
    code, _, err = run_kiln("image", "show", built["image"])
    assert code != 0 and "no such image" in err
