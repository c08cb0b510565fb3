"""Links in a run's folders, by the one copy rule (``kiln._tree``): links inside ``./outputs`` stay links,
links to outside (files or whole folders) are never read, a dangling link doesn't fail the run, and
``kiln run download`` never writes through a link already at the destination."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

RunKiln = Callable[..., tuple[int, str, str]]

TRAIN = """\
    import os, sys
    outside = sys.argv[1]
    os.makedirs("outputs/sub", exist_ok=True)
    with open("outputs/model.txt", "w") as f:
        f.write("weights\\n")
    os.symlink("model.txt", "outputs/alias.txt")                      # inside: kept as a link
    os.symlink("../model.txt", "outputs/sub/up.txt")                  # inside, one level up: kept
    os.symlink(os.path.join(outside, "secret.txt"), "outputs/leak.txt")  # outside: never read
    os.symlink(outside, "outputs/leakdir")                            # a whole folder outside
    os.symlink("/nonexistent/nowhere", "outputs/dangling")            # at nothing: left out, no failure
    print("done")
"""


def test_run_outputs_keep_inside_links_and_never_read_outside_ones(run_kiln: RunKiln, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-VALUE\n")
    (Path.cwd() / "train.py").write_text(textwrap.dedent(TRAIN))
    code, out, err = run_kiln("-o", "json", "run", "submit", "train.py", "--detach", "--", str(outside))
    assert code == 0, err
    run_id = json.loads(out)["data"]["id"]
    assert run_kiln("run", "logs", run_id, "--follow")[0] == 0
    code, out, err = run_kiln("-o", "json", "run", "show", run_id)
    assert json.loads(out)["data"]["status"] == "Completed", out + err

    run_files = Path(os.environ["KILN_HOME"]) / "workspace" / "runs" / run_id / "files"
    outputs = run_files / "outputs"
    assert (outputs / "model.txt").read_text() == "weights\n"
    assert os.readlink(outputs / "alias.txt") == "model.txt"
    assert os.readlink(outputs / "sub" / "up.txt") == "../model.txt"
    assert not os.path.lexists(outputs / "leak.txt") and not os.path.lexists(outputs / "leakdir")
    assert not os.path.lexists(outputs / "dangling")
    everything = b"".join(p.read_bytes() for p in run_files.rglob("*") if p.is_file())
    assert b"TOP-SECRET-VALUE" not in everything
    log = (run_files / "logs" / "output.log").read_text()
    assert "[kiln] outputs: left out" in log and "leak.txt (a link to outside the folder)" in log

    # a link waiting at the download's destination is replaced, and what it pointed at is untouched
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    dest = tmp_path / "dl"
    (dest / "outputs").mkdir(parents=True)
    (dest / "outputs" / "model.txt").symlink_to(victim)
    code, _, err = run_kiln("run", "download", run_id, "outputs/model.txt", "-d", str(dest))
    assert code == 0, err
    assert victim.read_text() == "keep me\n"
    assert not (dest / "outputs" / "model.txt").is_symlink()
    assert (dest / "outputs" / "model.txt").read_text() == "weights\n"
