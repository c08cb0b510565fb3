"""Inside a training script: ``from kiln.run import Run; run = Run.get_context()``.

This module uses the standard library only and runs on any Python 3 from 3.6 on: Kiln puts it on
the script's path, so the user's environment needs nothing of Kiln installed. Metrics and tags are
appended as JSON lines to the run's folder (``KILN_RUN_DIR``), one write per line, so that Kiln
reads them live from another process. Outside a Kiln run, ``get_context()`` returns an offline
run that prints what it is given.
"""

import json
import os
import sys
import time

__all__ = ["OfflineRun", "Run"]

ENV_RUN_ID = "KILN_RUN_ID"
ENV_RUN_DIR = "KILN_RUN_DIR"
ENV_EXPERIMENT = "KILN_EXPERIMENT"
METRICS_FILE = "metrics.jsonl"


def _plain(value):
    """A JSON-ready value: numbers, strings, booleans, None, lists and dicts of them (numpy scalars too)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _plain(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _plain(tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


class Run:
    """The run this script is part of. Get it with ``Run.get_context()``."""

    def __init__(self, run_id, run_dir, experiment=None):
        self.id = run_id
        self._dir = run_dir
        self.experiment = experiment
        self.outputs_dir = os.path.abspath("outputs")

    @classmethod
    def get_context(cls, allow_offline=True):
        """The current run, or (outside a Kiln run) an offline run that prints metrics."""
        run_id = os.environ.get(ENV_RUN_ID)
        run_dir = os.environ.get(ENV_RUN_DIR)
        if run_id and run_dir and os.path.isdir(run_dir):
            return cls(run_id, run_dir, os.environ.get(ENV_EXPERIMENT))
        if not allow_offline:
            raise RuntimeError("not inside a Kiln run (KILN_RUN_ID is not set)")
        return OfflineRun()

    # ---- metrics -----------------------------------------------------------------------------

    def _write(self, record):
        record["time"] = time.time()
        line = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
        fd = os.open(os.path.join(self._dir, METRICS_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write of a whole line on an O_APPEND file: readers never see half of it
        finally:
            os.close(fd)

    def log(self, name, value, description="", step=None):
        """Log a value; logged again under the same name, it becomes a series."""
        self._write({"kind": "metric", "name": str(name), "value": _plain(value), "step": step,
                     "description": description})

    def log_list(self, name, value, description=""):
        """Log a list of values under ``name``."""
        self._write({"kind": "list", "name": str(name), "value": _plain(list(value)), "description": description})

    def log_row(self, name, description=None, **kwargs):
        """Add a row to the table ``name`` (columns are the keyword arguments)."""
        self._write({"kind": "row", "name": str(name), "value": _plain(kwargs), "description": description or ""})

    def log_table(self, name, value, description=""):
        """Log a table: a dict of column name to list of values."""
        self._write({"kind": "table", "name": str(name), "value": _plain(value), "description": description})

    def tag(self, key, value=None):
        """Tag the run (``value`` may be omitted: a plain label)."""
        self._write({"kind": "tag", "name": str(key), "value": None if value is None else str(value)})

    def set_tags(self, tags):
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self):
        tags = {}
        path = os.path.join(self._dir, METRICS_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if record.get("kind") == "tag":
                        tags[record["name"]] = record.get("value")
        return tags

    def __repr__(self):
        return f"Run(id={self.id!r}, experiment={self.experiment!r})"


class OfflineRun(Run):
    """A run outside Kiln: metrics are printed, nothing is stored."""

    def __init__(self):
        Run.__init__(self, f"OfflineRun_{int(time.time())}", None, None)
        self._tags = {}

    def _write(self, record):
        if record["kind"] == "tag":
            self._tags[record["name"]] = record["value"]
        sys.stdout.write("[offline run] {} {} = {!r}\n".format(record["kind"], record["name"], record["value"]))
        sys.stdout.flush()

    def get_tags(self):
        return dict(self._tags)
