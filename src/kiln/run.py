"""Inside a training script: ``from kiln.run import Run; run = Run.get_context()``.

This module uses the standard library only and runs on any Python 3 from 3.6 on: Kiln puts it on
the script's path, so the user's environment needs nothing of Kiln installed. Metrics, tags, properties
and status requests are appended as JSON lines to the run's folder (``KILN_RUN_DIR``), one write per
line, so that Kiln reads them live from another process; files (``upload_file``, ``log_image``) go to
the run's ``files/`` folder. Child runs (``child_run``) are folders under ``children/`` that the run's
supervisor records in the workspace. Outside a Kiln run, ``get_context()`` returns an offline run that
prints what it is given.
"""

import json
import os
import re
import shutil
import sys
import time

__all__ = ["OfflineRun", "Run"]

ENV_RUN_ID = "KILN_RUN_ID"
ENV_RUN_DIR = "KILN_RUN_DIR"
ENV_EXPERIMENT = "KILN_EXPERIMENT"
METRICS_FILE = "metrics.jsonl"
FILES_DIR = "files"
CHILDREN_DIR = "children"
CHILD_FILE = "child.json"
IMAGES_DIR = "images"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


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
    if hasattr(value, "__iter__") and not isinstance(value, (bytes, bytearray)):
        return [_plain(v) for v in value]  # a generator (log_list of ``(i * 2 for i in values)``)
    return str(value)


def _artifact_name(name):
    """``name`` as a relative path inside the run's files, or ValueError."""
    text = str(name).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or text.startswith("/") or ".." in parts:
        raise ValueError("{!r} is not a file name inside the run (a relative path without '..')".format(name))
    return "/".join(parts)


def _read_records(path):
    records = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a line being written right now
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
    except (IOError, OSError):
        pass
    return records


class Run:
    """The run this script is part of. Get it with ``Run.get_context()``.

    A child run (``child_run``) is a ``Run`` too, with ``parent`` set; ``with run.child_run() as child:``
    completes the child at the end of the block, or fails it on an exception.
    """

    def __init__(self, run_id, run_dir, experiment=None, parent=None, name=None):
        self.id = run_id
        self._dir = run_dir
        self.experiment = experiment
        self.parent = parent
        self.name = name
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

    def _records(self, kind):
        return [r for r in _read_records(os.path.join(self._dir, METRICS_FILE)) if r.get("kind") == kind]

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

    def log_image(self, name, path=None, plot=None, description=""):
        """Store an image with the run (``images/<name>.png``) and log its file name under ``name``.

        ``plot``: a matplotlib figure or ``matplotlib.pyplot`` itself (anything with ``savefig``), saved as
        PNG; ``path``: an image file, stored as it is. Give one of them.
        """
        if (path is None) == (plot is None):
            raise ValueError("log_image({!r}): give path= (an image file) or plot= (a matplotlib figure), "
                             "one of them".format(name))
        if plot is not None and not callable(getattr(plot, "savefig", None)):
            raise ValueError("log_image({!r}): plot= must be a matplotlib figure or matplotlib.pyplot "
                             "(it has no savefig), got {!r}".format(name, type(plot).__name__))
        if path is not None and not os.path.isfile(str(path)):
            raise ValueError("log_image({!r}): {!r} is not a file".format(name, str(path)))
        ext = ".png" if plot is not None else (os.path.splitext(str(path))[1].lower() or ".png")
        stem = _UNSAFE.sub("_", str(name)).strip(" .") or "image"
        folder = os.path.join(self._dir, FILES_DIR, IMAGES_DIR)
        os.makedirs(folder, exist_ok=True)
        count = 1
        while True:  # a name logged again gets a new file: name.png, name_2.png, ...
            file_name = stem + ext if count == 1 else "{}_{}{}".format(stem, count, ext)
            try:
                fd = os.open(os.path.join(folder, file_name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                count += 1
        with os.fdopen(fd, "wb") as out:
            if plot is not None:
                plot.savefig(out, format="png")
            else:
                with open(str(path), "rb") as source:
                    shutil.copyfileobj(source, out)
        stored = IMAGES_DIR + "/" + file_name
        self._write({"kind": "image", "name": str(name), "value": stored, "description": description})
        return stored

    def tag(self, key, value=None):
        """Tag the run (``value`` may be omitted: a plain label)."""
        self._write({"kind": "tag", "name": str(key), "value": None if value is None else str(value)})

    def set_tags(self, tags):
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self):
        return {r["name"]: r.get("value") for r in self._records("tag") if "name" in r}

    def add_properties(self, properties):
        """Add properties: unlike tags they can't change once set (as in Azure ML)."""
        current = self.get_properties()
        for key, value in properties.items():
            key, value = str(key), str(value)
            if key in current and current[key] != value:
                raise ValueError("property {!r} of run {} is {!r} already: properties can't be changed".format(
                    key, self.id, current[key]))
        for key, value in properties.items():
            if str(key) not in current:
                self._write({"kind": "property", "name": str(key), "value": str(value)})

    def get_properties(self):
        out = {}
        for r in self._records("property"):
            out.setdefault(r.get("name"), r.get("value"))  # the first one stays
        return out

    def flush(self, timeout_seconds=300):
        """Every call above is written when it returns: there is nothing to wait for."""
        del timeout_seconds

    # ---- files -------------------------------------------------------------------------------

    def upload_file(self, name, path_or_stream):
        """Store a file (a path, or an open binary stream) with the run under ``name``; a name is stored once."""
        rel = _artifact_name(name)
        target = os.path.join(self._dir, FILES_DIR, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ValueError("run {} has a file {!r} already: a file is uploaded once".format(self.id, rel)) from None
        with os.fdopen(fd, "wb") as out:
            if hasattr(path_or_stream, "read"):
                data = path_or_stream.read()
                out.write(data.encode("utf-8") if isinstance(data, str) else data)
            else:
                with open(str(path_or_stream), "rb") as source:
                    shutil.copyfileobj(source, out)
        return rel

    def upload_files(self, names, paths):
        names, paths = list(names), list(paths)
        if len(names) != len(paths):
            raise ValueError("upload_files: {} names for {} paths".format(len(names), len(paths)))
        return [self.upload_file(names[i], paths[i]) for i in range(len(names))]

    def upload_folder(self, name, path):
        """Store every file under the folder ``path`` as ``name/<relative path>``."""
        base = _artifact_name(name)
        stored = []
        for folder, dirs, files in os.walk(str(path)):
            dirs.sort()
            for file_name in sorted(files):
                full = os.path.join(folder, file_name)
                if os.path.islink(full):
                    continue  # a link may point anywhere: only the folder's own files are stored
                rel = os.path.relpath(full, str(path)).replace(os.sep, "/")
                stored.append(self.upload_file(base + "/" + rel, full))
        return stored

    # ---- status and children -----------------------------------------------------------------

    def get_status(self):
        """``Running``, or the status ``complete()`` / ``fail()`` gave it."""
        statuses = self._records("status")
        return statuses[-1].get("value", "Running") if statuses else "Running"

    def complete(self, _set_status=True):
        """Mark the run completed. For the script's own run this changes nothing: it completes when the script
        ends well. A child run is Completed from now."""
        if _set_status:
            self._write({"kind": "status", "value": "Completed"})

    def fail(self, error_details=None, error_code=None, _set_status=True):
        """Mark the run Failed (with ``error_details`` as its error), even if the script then ends well."""
        if _set_status:
            message = "failed by run.fail()" if error_details is None else str(error_details)
            self._write({"kind": "status", "value": "Failed", "error": message,
                         "code": None if error_code is None else str(error_code)})

    def child_run(self, name=None, run_id=None, outputs=None):
        """A new child run of this one, Running until ``complete()`` / ``fail()`` (or the end of a ``with``)."""
        del outputs
        folder = os.path.join(self._dir, CHILDREN_DIR)
        os.makedirs(folder, exist_ok=True)
        number = len(os.listdir(folder)) + 1
        while True:
            child_id = str(run_id) if run_id else "{}_{}".format(self.id, number)
            if run_id and (_UNSAFE.search(child_id) or " " in child_id or child_id.startswith(".")):
                raise ValueError("run_id {!r}: use letters, digits, '.', '_' and '-'".format(run_id))
            try:
                os.mkdir(os.path.join(folder, child_id))
                break
            except FileExistsError:
                if run_id:
                    raise ValueError("run {} has a child {!r} already".format(self.id, child_id)) from None
                number += 1
        child_dir = os.path.join(folder, child_id)
        info = {"id": child_id, "name": name, "parent": self.id, "created": time.time()}
        tmp = os.path.join(child_dir, "." + CHILD_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(child_dir, CHILD_FILE))
        return type(self)(child_id, child_dir, self.experiment, parent=self, name=name)

    def create_children(self, count=None, tag_key=None, tag_values=None):
        """``count`` child runs, or one per value of ``tag_values`` tagged ``tag_key=value``."""
        if tag_values is not None:
            children = []
            for value in tag_values:
                child = self.child_run()
                if tag_key is not None:
                    child.tag(tag_key, value)
                children.append(child)
            return children
        return [self.child_run() for _ in range(int(count or 0))]

    def get_children(self):
        folder = os.path.join(self._dir, CHILDREN_DIR)
        out = []
        for child_id in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            child_dir = os.path.join(folder, child_id)
            try:
                with open(os.path.join(child_dir, CHILD_FILE), encoding="utf-8") as f:
                    info = json.load(f)
            except (IOError, OSError, ValueError):
                continue
            out.append(type(self)(child_id, child_dir, self.experiment, parent=self, name=info.get("name")))
        return out

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.complete()
        else:
            self.fail(error_details="{}: {}".format(exc_type.__name__, exc))
        return False

    def __repr__(self):
        return "Run(id={!r}, experiment={!r})".format(self.id, self.experiment)


class OfflineRun(Run):
    """A run outside Kiln: metrics are printed, nothing is stored."""

    def __init__(self, parent=None, name=None):
        Run.__init__(self, "OfflineRun_{}".format(int(time.time())), None, None, parent=parent, name=name)
        self._tags = {}
        self._properties = {}
        self._status = "Running"

    def _write(self, record):
        if record["kind"] == "tag":
            self._tags[record["name"]] = record["value"]
        elif record["kind"] == "property":
            self._properties.setdefault(record["name"], record["value"])
        elif record["kind"] == "status":
            self._status = record["value"]
        sys.stdout.write("[offline run] {} {} = {!r}\n".format(record["kind"], record.get("name", ""),
                                                                record["value"]))
        sys.stdout.flush()

    def get_tags(self):
        return dict(self._tags)

    def get_properties(self):
        return dict(self._properties)

    def get_status(self):
        return self._status

    def log_image(self, name, path=None, plot=None, description=""):
        if (path is None) == (plot is None):
            raise ValueError("log_image({!r}): give path= or plot=, one of them".format(name))
        self._write({"kind": "image", "name": str(name), "value": str(path) if path is not None else "(a plot)"})

    def upload_file(self, name, path_or_stream):
        rel = _artifact_name(name)
        self._write({"kind": "file", "name": rel, "value": getattr(path_or_stream, "name", str(path_or_stream))})
        return rel

    def child_run(self, name=None, run_id=None, outputs=None):
        return OfflineRun(parent=self, name=name)

    def get_children(self):
        return []
