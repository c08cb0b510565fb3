"""Azure ML's public v1 notebooks about the logging API and managing runs, ported by changing the imports
(``from azureml.core import ...`` → ``from kiln import ...``), each cell's behaviour asserted.

The cells are the notebooks' own (``logging-api.ipynb``, ``manage-runs.ipynb``), with what needs a
package this test's interpreter lacks replaced by the standard library: ``math`` for NumPy, a stand-in
with ``savefig`` for ``matplotlib.pyplot`` (``log_image`` only calls ``savefig``: matplotlib is imported
by the user, never by Kiln). The scripts run in Kiln's default environment (Python with no packages).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import struct
import textwrap
import zipfile
import zlib
from pathlib import Path

import pytest

from kiln import Experiment, Run, ScriptRunConfig, Workspace
from kiln.errors import KilnError
from kiln.runs.history import studio_url

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("module_build_cache")]


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (grey pixels), as a plot's ``savefig(format="png")`` writes one."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class PyplotStandIn:
    """What ``run.log_image(plot=plt)`` uses of ``matplotlib.pyplot``: ``savefig``."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    def savefig(self, fp: io.BufferedWriter, format: str = "png") -> None:
        self.saved.append(format)
        fp.write(png())


@pytest.fixture
def ws() -> Workspace:
    Workspace.create("notebooks", path="ws").write_config()
    return Workspace.from_config()


def test_logging_api_notebook(ws: Workspace) -> None:
    # experiment = Experiment(workspace=ws, name='logging-api-test')
    experiment = Experiment(workspace=ws, name="logging-api-test")
    assert [e.name for e in Experiment.list(ws)] == ["logging-api-test"]  # naming one makes it

    # run = experiment.start_logging(); run_id = run.id
    run = experiment.start_logging()
    run_id = run.id
    scale_factor = 2
    category = "Red"
    assert run.get_status() == "Running"
    assert run.type == "interactive" and run.experiment.name == "logging-api-test"
    assert "logging-api-test" in repr(experiment) and run_id in repr(run)

    run.log(name="Category", value=category)
    run.log(name="scale factor", value=scale_factor)
    run.log(name="Magic Number", value=42 * scale_factor)

    fibonacci_values = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
    scaled_values = (i * scale_factor for i in fibonacci_values)
    run.log_list(name="Fibonacci", value=scaled_values)  # a generator, as in the notebook
    for i in range(-10, 10):
        run.log(name="Sigmoid", value=1 / (1 + math.exp(-i)))

    sines: dict[str, list[float]] = {"angle": [], "sine": []}
    for i in range(-10, 10):
        angle = i / 2.0 * scale_factor
        run.log_row(name="Cosine Wave", angle=angle, cos=math.cos(angle))
        sines["angle"].append(angle)
        sines["sine"].append(math.sin(angle))
    run.log_table(name="Sine Wave", value=sines)

    plt = PyplotStandIn()
    run.log_image(name="Hyperbolic Tangent", plot=plt)
    assert plt.saved == ["png"]

    metric_names = ["Accuracy", "Precision", "Recall"]
    column_names = ["expected", "actual", "calculated"]
    for step in range(50):
        for metric_name in metric_names:
            row = {column: random.randrange(0, step + 1) for column in column_names}
            run.log_row(metric_name, "Example row for metric " + metric_name, **row)

    directory = "logging-api"
    os.makedirs(directory, exist_ok=True)
    file_name = os.path.join(directory, "myfile.txt")
    with open(file_name, "w") as f:
        f.write("This is an output file that will be uploaded.\n")
    run.upload_file(name=file_name, path_or_stream=file_name)

    run.complete()
    assert run.get_status() == "Completed"

    # fetched_run = Run(experiment, run_id)
    fetched_run = Run(experiment, run_id)
    metrics = fetched_run.get_metrics()
    assert metrics["Category"] == "Red" and metrics["scale factor"] == 2 and metrics["Magic Number"] == 84
    assert metrics["Fibonacci"] == [2 * v for v in fibonacci_values]
    assert len(metrics["Sigmoid"]) == 20 and metrics["Sigmoid"][10] == 0.5
    assert metrics["Cosine Wave"]["angle"] == sines["angle"] and len(metrics["Cosine Wave"]["cos"]) == 20
    assert metrics["Sine Wave"] == sines
    assert metrics["Hyperbolic Tangent"] == "images/Hyperbolic Tangent.png"
    assert len(metrics["Accuracy"]["expected"]) == 50
    assert fetched_run.get_metrics(name="scale factor") == {"scale factor": 2}

    names = fetched_run.get_file_names()
    assert "logging-api/myfile.txt" in names and "images/Hyperbolic Tangent.png" in names

    os.makedirs("files", exist_ok=True)
    for f_name in run.get_file_names():
        dest = os.path.join("files", f_name.split("/")[-1])
        fetched_run.download_file(f_name, dest)
    assert Path("files/myfile.txt").read_text() == "This is an output file that will be uploaded.\n"
    assert Path("files/Hyperbolic Tangent.png").read_bytes() == png()

    fetched_run.tag("My Favorite Run")
    fetched_run.tag("Competition Rank", 1)
    assert fetched_run.get_tags() == {"My Favorite Run": None, "Competition Rank": 1}

    # beyond the notebook: get_runs finds it by type and tag; its studio address
    assert [r.id for r in experiment.get_runs(type="interactive", tags="My Favorite Run")] == [run_id]
    assert list(experiment.get_runs(type="azureml.scriptrun")) == []
    assert fetched_run.get_portal_url() == studio_url(run_id) == f"http://127.0.0.1:8790/runs/{run_id}"


def test_an_image_file_and_a_file_uploaded_twice(ws: Workspace) -> None:
    run = Experiment(ws, "images").start_logging(outputs=False)
    Path("chart.png").write_bytes(png(3, 1))
    assert run.log_image("chart", path="chart.png") == "images/chart.png"
    assert run.log_image("chart", path="chart.png") == "images/chart_2.png"  # logged again: a new file, a series
    assert run.get_metrics()["chart"] == ["images/chart.png", "images/chart_2.png"]
    with pytest.raises(KilnError, match=r"give path= \(an image file\) or plot="):
        run.log_image("nothing")
    run.upload_file("notes.txt", io.BytesIO(b"first"))
    with pytest.raises(KilnError, match=r"has a file 'notes.txt' already"):
        run.upload_file("notes.txt", io.BytesIO(b"second"))
    with pytest.raises(KilnError, match=r"'\.\./x' is not a file name inside the run"):
        run.upload_file("../x", io.BytesIO(b""))
    Path("folder/sub").mkdir(parents=True)
    Path("folder/a.txt").write_text("a")
    Path("folder/sub/b.txt").write_text("b")
    assert run.upload_folder("data", "folder") == ["data/a.txt", "data/sub/b.txt"]
    run.complete()
    assert Path(run.download_file("notes.txt", "notes.txt")).read_bytes() == b"first"


HELLO = """\
from kiln import Run

run = Run.get_context()
run.log(name="message", value="Hello from run!")
print("Hello, world!")
"""
HELLO_WITH_CHILDREN = """\
from kiln import Run

run = Run.get_context()

child_runs = run.create_children(count=5)
for c, child in enumerate(child_runs):
    child.log(name="Hello from child run ", value=c)
    child.complete()
"""
HELLO_WITH_DELAY = """\
import time
from kiln import Run

run = Run.get_context()
print("Hello, world!")
time.sleep(60)
"""


def test_manage_runs_notebook(ws: Workspace) -> None:
    # the scripts' ``from azureml.core import Run``, ported: ``from kiln import Run`` (in a run, Kiln's in-run
    # module answers: the environment needs nothing of Kiln installed)
    for name, text in (("hello.py", HELLO), ("hello_with_children.py", HELLO_WITH_CHILDREN),
                       ("hello_with_delay.py", HELLO_WITH_DELAY)):
        Path(name).write_text(text)
    exp = Experiment(workspace=ws, name="explore-runs")

    notebook_run = exp.start_logging()
    notebook_run.log(name="message", value="Hello from run!")
    assert notebook_run.get_status() == "Running"
    details = notebook_run.get_details()
    assert details["status"] == "Running" and details["runType"] == "interactive"
    notebook_run.complete()
    assert notebook_run.get_status() == "Completed"

    with exp.start_logging() as notebook_run:
        notebook_run.log(name="message", value="Hello from run!")
        assert notebook_run.get_status() == "Running"
    assert notebook_run.get_status() == "Completed"

    with pytest.raises(ZeroDivisionError), exp.start_logging() as failing_run:
        1 / 0  # noqa: B018
    assert failing_run.get_status() == "Failed"
    assert failing_run.get_details()["error"]["message"] == "ZeroDivisionError: division by zero"

    Path(".amlignore").write_text("/outputs\n")
    run_config = ScriptRunConfig(source_directory=".", script="hello.py")
    local_script_run = exp.submit(run_config)
    assert local_script_run.get_status() in ("Queued", "Preparing", "Running", "Completed")
    with_logs = local_script_run.get_details_with_logs()
    assert set(with_logs["logFiles"]) <= {"logs/output.log"}
    local_script_run.wait_for_completion(show_output=True)
    assert local_script_run.get_status() == "Completed"
    assert "Hello, world!" in local_script_run.get_details_with_logs()["logFiles"]["logs/output.log"]
    assert [Path(p).name for p in local_script_run.get_all_logs(destination="logs-copy")] == ["output.log"]

    local_script_run.add_properties({"author": "azureml-user"})
    assert local_script_run.get_properties() == {"author": "azureml-user"}
    with pytest.raises(KilnError, match=r"property 'author' of run .* is 'azureml-user' already"):
        local_script_run.add_properties({"author": "different-user"})

    local_script_run.tag("quality", "great run")
    assert local_script_run.get_tags() == {"quality": "great run"}
    local_script_run.tag("quality", "fantastic run")
    assert local_script_run.get_tags() == {"quality": "fantastic run"}
    local_script_run.tag("worth another look")
    assert local_script_run.get_tags() == {"quality": "fantastic run", "worth another look": None}

    found = list(exp.get_runs(properties={"author": "azureml-user"}, tags={"quality": "fantastic run"}))
    assert [r.id for r in found] == [local_script_run.id]
    found = list(exp.get_runs(properties={"author": "azureml-user"}, tags="worth another look"))
    assert [r.id for r in found] == [local_script_run.id]

    # child runs made by a script
    run_config = ScriptRunConfig(source_directory=".", script="hello_with_children.py")
    local_script_run = exp.submit(run_config)
    local_script_run.wait_for_completion(show_output=True)
    assert local_script_run.get_status() == "Completed"
    children = list(local_script_run.get_children())
    assert [c.id for c in children] == [f"{local_script_run.id}_{n}" for n in range(1, 6)]
    assert [c.get_status() for c in children] == ["Completed"] * 5
    assert [c.get_metrics() for c in children] == [{"Hello from child run ": n} for n in range(5)]
    assert children[0].parent is not None and children[0].parent.id == local_script_run.id

    # child runs made from the notebook
    with exp.start_logging() as parent_run:
        for c, _count in enumerate(range(5)):
            with parent_run.child_run() as child:
                child.log(name="Hello from child run", value=c)
    children = list(parent_run.get_children())
    assert [c.get_metrics() for c in children] == [{"Hello from child run": n} for n in range(5)]
    assert {c.get_status() for c in children} == {"Completed"}
    # child runs are left out of get_runs unless asked for
    assert parent_run.id in [r.id for r in exp.get_runs()]
    assert children[0].id not in [r.id for r in exp.get_runs()]
    assert children[0].id in [r.id for r in exp.get_runs(include_children=True)]

    run_config = ScriptRunConfig(source_directory=".", script="hello_with_delay.py")
    local_script_run = exp.submit(run_config)
    local_script_run.cancel()
    local_script_run.wait_for_completion(raise_on_error=False)
    assert local_script_run.get_status() == "Canceled"

    local_script_run = exp.submit(run_config)
    local_script_run.fail()
    assert local_script_run.get_status() == "Failed"
    details = local_script_run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["error"]["message"] == "failed by run.fail()"

    archive = local_script_run.restore_snapshot(path="snapshots")
    with zipfile.ZipFile(archive) as z:
        assert {"hello.py", "hello_with_delay.py"} <= set(z.namelist())
        assert z.read("hello_with_delay.py").decode() == Path("hello_with_delay.py").read_text()


def test_a_script_fails_its_run_and_numbers_runs(ws: Workspace) -> None:
    Path("fails.py").write_text(textwrap.dedent("""\
        from kiln.run import Run
        run = Run.get_context()
        assert run.get_status() == "Running" and run.parent is None
        run.log_table("t", {"x": [1, 2]})
        run.upload_file("note.txt", "fails.py")
        run.flush()
        run.fail(error_details="the data was bad")
        assert run.get_status() == "Failed"
    """))
    exp = Experiment(ws, "fails")
    run = exp.submit(ScriptRunConfig(".", "fails.py"))
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["error"]["message"] == "the data was bad"
    assert run.get_metrics() == {"t": {"x": [1, 2]}}
    assert "note.txt" in run.get_file_names()
    second = exp.start_logging()
    assert (run.number, second.number) == (1, 2)
    second.display_name = "second try"
    assert second.display_name == "second try" and run.display_name == run.id
    second.complete()


def test_experiment_tags_archive_and_list(ws: Workspace) -> None:
    exp = Experiment(ws, "tagged")
    other = Experiment(ws, "other")
    assert exp.id and exp.id != other.id and Experiment(ws, "tagged").id == exp.id
    exp.tag("team", "vision")
    exp.set_tags({"stage": "draft"})
    assert exp.tags == {"team": "vision", "stage": "draft"}
    assert [e.name for e in Experiment.list(ws, tags={"team": "vision"})] == ["tagged"]
    exp.archive()
    assert exp.archived_time is not None
    assert [e.name for e in Experiment.list(ws)] == ["other"]
    assert [e.name for e in Experiment.list(ws, view_type="ArchivedOnly")] == ["tagged"]
    assert [e.name for e in Experiment.list(ws, view_type="All")] == ["other", "tagged"]
    exp.reactivate()
    assert [e.name for e in Experiment.list(ws)] == ["other", "tagged"]
    assert json.loads((ws.path / "experiments" / "tagged.json").read_text())["tags"]["team"] == "vision"


def test_a_notebook_that_ends_leaves_no_run_running(ws: Workspace) -> None:
    import subprocess
    import sys

    code = ("from kiln import Experiment, Workspace\n"
            "run = Experiment(Workspace.from_config(), 'left-open').start_logging()\n"
            "print(run.id)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    run = Run.get(ws, proc.stdout.strip())
    assert run.get_status() == "Failed"
    assert "ended without complete() or fail()" in run.get_details()["error"]["message"]
