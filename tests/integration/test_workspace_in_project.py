"""The README's own layout: the workspace folder inside the project folder (``kiln workspace create
mywork``), then several submits and deploys from that folder. The workspace never copies itself into
a snapshot or a service, so it doesn't grow with copies of itself, and the live database is never
disturbed (the second run and the service after the runs work)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]

RunKiln = Callable[..., tuple[int, str, str]]

TRAIN = """\
    import os
    from kiln.run import Run

    run = Run.get_context()
    run.log("accuracy", 0.5)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as f:
        f.write("weights\\n")
"""
SCORE = """\
    import json, os

    def init():
        global WEIGHTS
        with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")) as f:
            WEIGHTS = f.read().strip()

    def run(raw_data):
        return {"weights": WEIGHTS, "got": json.loads(raw_data)}
"""


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def stored_blobs(workspace: Path) -> list[bytes]:
    return [p.read_bytes()[:16] for p in (workspace / "blobs").rglob("*") if p.is_file()]


def test_submits_and_deploys_from_the_project_folder_never_copy_the_workspace(run_kiln: RunKiln) -> None:
    project = Path.cwd()
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    (project / "score.py").write_text(textwrap.dedent(SCORE))
    code, _, err = run_kiln("workspace", "create", "mywork")
    assert code == 0, err
    workspace = project / "mywork"
    assert (workspace / "workspace.json").is_file()

    run_ids = []
    sizes = []
    for _ in range(3):
        code, out, err = run_kiln("-o", "json", "run", "submit", "train.py", "--detach")
        assert code == 0, err
        run_id = json.loads(out)["data"]["id"]
        code, _, err = run_kiln("run", "logs", run_id, "--follow")
        assert code == 0, err
        code, out, err = run_kiln("-o", "json", "run", "show", run_id)
        assert (code, json.loads(out)["data"]["status"]) == (0, "Completed"), out + err
        run_ids.append(run_id)
        sizes.append(size_of(workspace))

    # the snapshots hold train.py and score.py only: every later run adds its logs and outputs, never
    # a copy of the database, the blobs or the earlier runs
    assert sizes[2] - sizes[1] < 64 * 1024, sizes
    assert not [b for b in stored_blobs(workspace) if b.startswith(b"SQLite format 3")]
    assert [p for p in workspace.rglob("registry.sqlite") if p.parent != workspace] == []

    code, _, err = run_kiln("model", "register", "outputs/model.txt", "--name", "mymodel", "--run",
                            run_ids[-1])
    assert code == 0, err
    before_deploy = size_of(workspace)
    code, out, err = run_kiln("service", "deploy", "--model", "mymodel", "--entry-script", "score.py",
                              "--name", "mysvc")
    try:
        assert code == 0, err
        code, out, err = run_kiln("service", "call", "mysvc", "--data", "[1]")
        assert (code, json.loads(out)) == (0, {"weights": "weights", "got": [1]}), err
        service_files = [p.relative_to(workspace).as_posix() for p in (workspace / "services").rglob("*")
                         if p.is_file()]
        assert not [f for f in service_files if "registry.sqlite" in f or "/blobs/" in f or "/runs/" in f]
        assert size_of(workspace) - before_deploy < 256 * 1024
        # the deploying and the running processes still see one live database
        code, out, err = run_kiln("-o", "json", "run", "list")
        assert code == 0 and {r["runId"] for r in json.loads(out)["data"]} >= set(run_ids), err
    finally:
        assert run_kiln("service", "delete", "mysvc")[0] == 0
