"""Containers against this machine, side by side in one run: a run's overhead on the container target against
the local target's, and a service's deploy-to-first-answer in a container against the local service's.

    .venv/bin/python bench/containers.py [--rounds 5]

The engine (``podman system service``), the registry and the base image (this machine's Python 3.12 as
``python:3.12-slim-bookworm``) are the tests' (``tests/engine_support.py``), started and stopped here.
One workspace, one environment (Python 3.12, no packages: what is measured is Kiln's and the engine's part),
built once before anything is timed.

1. Runs: ``Experiment.submit`` of a one-line script until ``wait_for_completion`` returns, local target and
   ``compute_target="docker"`` alternating (medians). The first container run also writes the environment's
   image and loads it into the engine: reported on its own.
2. Services: ``Model.deploy`` until the first ``POST /score`` answers 200, in process and in a container
   (``deploy_configuration(container=True)``), alternating; each service is deleted before the next.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import kiln_env

from engine_support import engine_session

SCORE = "def init():\n    pass\n\ndef run(raw):\n    import json\n    return {'sum': sum(json.loads(raw)['data'])}\n"


def answered(url: str) -> bool:
    request = urllib.request.Request(url, data=b'{"data": [1, 2]}', headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200 and json.loads(response.read()) == {"sum": 3}
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-boxes-") as tmp, engine_session() as engine:
        root = Path(tmp)
        os.environ.update({k: v for k, v in kiln_env(root).items() if k.startswith(("KILN_", "UV_"))})
        os.environ.update(engine.environ)
        os.environ["KILN_DOCKER_HOST"] = engine.engine_url
        from kiln import (
            CondaDependencies,
            Environment,
            Experiment,
            InferenceConfig,
            LocalWebservice,
            Model,
            ScriptRunConfig,
            Workspace,
        )

        ws = Workspace.create("bench", path=root / "ws")
        definition = Environment("boxes")
        definition.python.conda_dependencies = CondaDependencies.create(python_version="3.12")
        env = ws.register_environment(definition)
        env.build(ws).wait_for_completion()
        project = root / "project"
        project.mkdir()
        (project / "tiny.py").write_text('print("hello")\n')
        (project / "score.py").write_text(SCORE)
        experiment = Experiment(ws, "bench")

        def run_once(target: str) -> float:
            start = time.perf_counter()
            run = experiment.submit(ScriptRunConfig(source_directory=project, script="tiny.py", environment=env,
                                                    compute_target=target))
            run.wait_for_completion()
            return time.perf_counter() - start

        first_container = run_once("docker")
        runs: dict[str, list[float]] = {"local": [], "docker": []}
        for i in range(args.rounds):
            for target in ("local", "docker") if i % 2 == 0 else ("docker", "local"):
                runs[target].append(run_once(target))

        def serve_once(name: str, container: bool) -> float:
            inference = InferenceConfig(entry_script="score.py", source_directory=project, environment=env)
            start = time.perf_counter()
            service = Model.deploy(ws, name, [], inference,
                                   LocalWebservice.deploy_configuration(container=container))
            while not answered(service.scoring_uri):
                if service.state in ("Failed", "Unhealthy"):
                    raise SystemExit(f"{name}: {service.state}: {service.get_logs()[-2000:]}")
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
            service.delete()
            return elapsed

        serves: dict[str, list[float]] = {"process": [], "container": []}
        for i in range(args.rounds):
            kinds = ("process", "container") if i % 2 == 0 else ("container", "process")
            for kind in kinds:
                serves[kind].append(serve_once(f"{kind}-{i}", kind == "container"))
        ws.close()

    local, docker = statistics.median(runs["local"]), statistics.median(runs["docker"])
    process, container = statistics.median(serves["process"]), statistics.median(serves["container"])
    print(f"medians of {args.rounds} rounds (seconds); a shared 2-core machine, busy")
    print(f"{'measure':62} {'local':>8} {'container':>10} {'ratio':>7}")
    print(f"{'run: submit -> completed (one-line script)':62} {local:8.3f} {docker:10.3f} {docker / local:7.2f}")
    print(f"{'run: container overhead over local':62} {'':8} {docker - local:10.3f}")
    print(f"{'run: first container run (image written and loaded)':62} {'':8} {first_container:10.3f}")
    print(f"{'service: deploy -> first 200 from /score':62} {process:8.3f} {container:10.3f} "
          f"{container / process:7.2f}")


if __name__ == "__main__":
    main()
