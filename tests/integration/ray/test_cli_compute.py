"""``kiln compute attach/list/show/detach`` and ``kiln run submit --compute-target``, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_attach_list_show_detach(run_kiln: Any, tmp_path: Path) -> None:
    assert run_kiln("workspace", "create", "team", "-d", str(tmp_path / "ws"))[0] == 0
    code, out, err = run_kiln("compute", "attach", "ray", "ray-dev", "--address", "http://127.0.0.1:8265")
    assert code == 0, err
    assert out == "ray-dev: attached (Ray, http://127.0.0.1:8265)\n"

    code, out, _ = run_kiln("-o", "json", "compute", "list")
    listed = json.loads(out)
    assert listed["kind"] == "compute.list"
    assert [(t["name"], t["type"], t.get("address")) for t in listed["data"]] == \
        [("local", "local", None), ("container", "docker", None), ("ray-dev", "Ray", "http://127.0.0.1:8265")]
    code, out, _ = run_kiln("compute", "show", "ray-dev")
    assert code == 0 and out.splitlines()[:2] == ["ray-dev  Ray", "  address  http://127.0.0.1:8265"]

    code, _, err = run_kiln("compute", "attach", "ray", "ray-dev", "--address", "http://10.0.0.1:8265")
    assert code == 1 and err.startswith("kiln: error: compute target 'ray-dev' is attached to workspace 'team' already")
    code, _, err = run_kiln("compute", "attach", "ray", "other", "--address", "http://kiln:pw@10.0.0.1:8265")
    assert code == 1 and "pw" not in err and "credentials are not stored" in err

    assert run_kiln("compute", "detach", "ray-dev") == (0, "ray-dev: detached\n", "")
    code, _, err = run_kiln("compute", "show", "ray-dev")
    assert code == 1 and err.startswith("kiln: error: no compute target 'ray-dev' in workspace 'team'")


def test_run_submit_on_an_attached_ray_cluster(run_kiln: Any, tmp_path: Path, ray_head: Any) -> None:
    assert run_kiln("workspace", "create", "team", "-d", str(tmp_path / "ws"))[0] == 0
    assert run_kiln("compute", "attach", "ray", "ray-dev", "--address", ray_head.address)[0] == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("import sys\nprint('on the cluster', sys.argv[1:], flush=True)\nsys.exit(5)\n")
    code, out, err = run_kiln("run", "submit", "train.py", "--source-dir", str(src), "--compute-target", "ray-dev",
                              "--", "--lr", "0.1")
    assert code == 5, err  # the script's own exit code
    assert "on the cluster ['--lr', '0.1']\n" in out

    code, _, err = run_kiln("run", "submit", "train.py", "--source-dir", str(src), "--compute-target", "ray-prod")
    assert code == 1
    assert err.startswith("kiln: error: compute_target 'ray-prod': Kiln runs on local, container, ray-dev for now")
