"""What the studio's pages show, read from the workspace through the SDK layer: plain dicts and lists.

The JSON endpoints return these same values in the CLI's envelope; the templates render them escaped.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.environment.environment import Environment
    from kiln.sdk.workspace import Workspace
    from kiln.settings import Settings
    from kiln.workspace.store.interface import RunRecord

__all__ = ["cache_view", "env_summary", "environment_view", "environments", "models", "recorded_builds", "run_view",
           "runs", "services", "snapshot_files", "when"]

PAGE = 50


def when(value: str | float | None) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def env_summary(env: Environment) -> dict[str, Any]:
    from kiln.environment.names import is_curated_name

    cd = env.python.conda_dependencies
    python = (f"user-managed ({env.python.interpreter_path})" if env.python.user_managed_dependencies
              else (cd.get_python_version() or "-") if cd is not None else "-")
    return {"name": env.name, "version": env.version, "hash": env.hash, "curated": is_curated_name(env.name),
            "python": python, "description": env.description,
            "pip_packages": cd.pip_packages if cd else [], "conda_packages": cd.conda_packages if cd else [],
            "base_image": env.docker.base_image}


def _builds_by_lock(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    from kiln.builds.cache import BuildCache

    out: dict[str, list[dict[str, Any]]] = {}
    for e in BuildCache(settings.cache_dir).entries():
        lock_hash = e.meta.get("lock_hash")
        if isinstance(lock_hash, str):
            out.setdefault(lock_hash, []).append(
                {"key": e.key, "label": e.meta.get("label"), "backend": e.meta.get("backend"),
                 "python": e.meta.get("python_version"), "packages": e.meta.get("packages"),
                 "last_used": e.last_used, "lock_hash": lock_hash})
    return out


def recorded_builds(ws: Workspace, label: str) -> list[dict[str, Any]]:
    """The builds of ``label`` (``name:version``) from this workspace recorded in the cache's journal, newest
    first: those started by the CLI or the API in other processes too, running or finished."""
    from kiln.builds.journal import recent_builds

    return [r.to_dict() for r in recent_builds(ws.settings.cache_dir, workspace=ws.path, label=label)[:10]]


def environments(ws: Workspace, *, query: str = "", kind: str = "", page: int = 1) -> dict[str, Any]:
    """The environments (latest version each), filtered: ``kind`` is ``curated``, ``mine`` or ``built``.

    Filtering and paging work on names: only the page's environments are read as definitions (a
    workspace of thousands of names would otherwise build every one of them for 50 rows)."""
    from kiln.environment.curated import curated_names
    from kiln.environment.names import is_curated_name

    names = sorted({*curated_names(), *(r.name for r in ws.store.list_environments())})
    names = [n for n in names if query.lower() in n.lower()]
    if kind == "curated":
        names = [n for n in names if is_curated_name(n)]
    elif kind == "mine":
        names = [n for n in names if not is_curated_name(n)]
    last_built: dict[str, float] = {}  # environment name -> when a build of any of its versions was last used
    for builds in _builds_by_lock(ws.settings).values():
        for b in builds:
            name = str(b["label"]).rsplit(":", 1)[0]
            last_built[name] = max(last_built.get(name, 0.0), b["last_used"])
    if kind == "built":  # the recently built first
        names = sorted((n for n in names if n in last_built), key=lambda n: -last_built[n])
    start = (max(page, 1) - 1) * PAGE
    rows = [{**env_summary(ws.get_environment(n)), "last_build": last_built.get(n)} for n in names[start:start + PAGE]]
    return {"total": len(names), "page": max(page, 1), "page_size": PAGE, "items": rows}


def _sections(definition: dict[str, Any]) -> list[tuple[str, Any]]:
    order = ("python", "docker", "environmentVariables", "spark", "r", "inferencingStackVersion")
    keys = [k for k in order if k in definition] + [k for k in definition if k not in order and k not in
                                                        ("name", "version")]
    return [(k, definition[k]) for k in keys]


def environment_view(ws: Workspace, name: str, version: str | None) -> dict[str, Any]:
    from kiln.builds.lock import Lock

    versions = ws.environment_versions(name)
    env = ws.get_environment(name, version)
    assert env.version is not None
    locks = [Lock.from_json(r.content) for r in ws.store.list_environment_locks(name=name, version=int(env.version))]
    builds = _builds_by_lock(ws.settings)
    definition = env.to_dict()
    lock = locks[-1] if locks else None
    return {
        **env_summary(env), "versions": [env_summary(v) for v in versions],
        "sections": _sections(definition), "definition": definition,
        "conda_file": env.python.conda_dependencies.serialize_to_string() if env.python.conda_dependencies else "",
        "dockerfile": env.docker.base_dockerfile or "",
        "lock": None if lock is None else {
            "lock_hash": lock.lock_hash, "python": lock.python, "platform": lock.platform,
            "resolver": lock.resolver, "created_at": lock.created_at, "indexes": list(lock.indexes),
            "packages": [p.to_dict() for p in lock.packages], "conda": [c.to_dict() for c in lock.conda]},
        "locks": [{"lock_hash": lk.lock_hash, "created_at": lk.created_at, "packages": len(lk.packages)}
                  for lk in locks],
        "builds": [b for lk in locks for b in builds.get(lk.lock_hash, [])],
        "image": _image(ws.settings, env, [lk.lock_hash for lk in locks]),
    }


def _image(settings: Settings, env: Environment, lock_hashes: list[str]) -> dict[str, Any] | None:
    """The image written (``kiln image build``) for the version's newest lock that has one, or None. Only what
    was written: ``get_image_details`` would lock the version first, which a page must not do."""
    from kiln.builds.image import image_name
    from kiln.builds.oci.build import written_image

    for lock_hash in reversed(lock_hashes):
        found = written_image(settings, image_name(env), lock_hash)
        if found is not None:
            return {**found, "lock_hash": lock_hash}
    return None


def runs(ws: Workspace, *, experiment: str = "", status: str = "", environment: str = "", since: str = "",
         page: int = 1) -> dict[str, Any]:
    """The runs, newest first; ``environment`` is a name or ``name:version``; ``since`` a date (YYYY-MM-DD)."""
    from kiln.runs.experiment import Experiment

    # filtered and sorted on the store's records; the run's details (files read) only for the page shown
    names = sorted(e.name for e in Experiment.list(ws, view_type="All"))
    records = ws.store.list_runs(experiment=experiment or None)
    if status:
        records = [r for r in records if r.status == status]
    if environment:
        records = [r for r in records if r.environment is not None
                   and environment in (r.environment, f"{r.environment}:{r.environment_version}")]
    if since:
        records = [r for r in records if dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d") >= since[:10]]
    records.sort(key=lambda r: r.created_at, reverse=True)
    start = (max(page, 1) - 1) * PAGE
    return {"total": len(records), "page": max(page, 1), "page_size": PAGE, "experiments": names,
            "items": [_record_row(ws, r) for r in records[start:start + PAGE]]}


def _record_row(ws: Workspace, record: RunRecord) -> dict[str, Any]:
    """A run's row from its store record alone: a list page never parses runs' metrics files (a run of 100,000
    points takes a second). A run not finished is asked its status (its supervisor may have died)."""
    import json

    from kiln.runs.run import Run
    from kiln.workspace.store.interface import FINAL_STATUSES

    definition = json.loads(record.definition)
    program = " ".join(definition["command"]) if definition.get("command") else (
        definition.get("script") or "(interactive)")
    status = record.status if record.status in FINAL_STATUSES else Run.get(ws, record.id).status
    return {"id": record.id, "experiment": record.experiment, "status": status, "program": program,
            "environment": None if record.environment is None else {"name": record.environment,
                                                                    "version": str(record.environment_version)},
            "created": record.created_at, "started": record.started_at, "ended": record.ended_at}


def _run_row(d: dict[str, Any]) -> dict[str, Any]:
    env = d["runDefinition"]["environment"]
    definition = d["runDefinition"]
    program = " ".join(definition["command"]) if definition.get("command") else (
        definition.get("script") or f"({d.get('runType', 'interactive')})")
    return {"id": d["runId"], "experiment": d["experiment"], "status": d["status"], "program": program,
            "environment": None if env is None else {"name": env["name"], "version": env["version"]},
            "created": d["createdTimeUtc"], "started": d["startTimeUtc"], "ended": d["endTimeUtc"]}


def run_key(ws: Workspace, run_id: str) -> tuple[object, ...] | None:
    """What a finished run's page depends on (its status, metrics file and log, by size and time), to reuse a
    page already read: building it copies every series of its metrics file (parsed once, kiln.runs.metrics).
    ``None`` while the run is not finished (then it is read every time)."""
    import dataclasses
    import json

    from kiln.runs.layout import RunLayout
    from kiln.workspace.store.interface import FINAL_STATUSES

    record = ws.store.get_run(run_id)
    if record is None or record.status not in FINAL_STATUSES:
        return None
    layout = RunLayout(ws.path, run_id, json.loads(record.definition).get("folder"))
    stamps: list[object] = [str(ws.path), *dataclasses.astuple(record)]  # its tags, status, ... in the store
    for path in (layout.metrics, layout.output_log, layout.files):
        try:
            st = path.stat()
            stamps += [st.st_size, st.st_mtime_ns]
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def run_view(ws: Workspace, run_id: str, compare: list[str]) -> dict[str, Any]:
    from kiln.runs.run import Run
    from kiln.studio.charts import numeric_series

    run = Run.get(ws, run_id)
    d = run.get_details()
    metrics = run.get_metrics()
    files = run.get_file_names()
    series, tables, scalars, images = {}, {}, {}, {}
    for name, value in metrics.items():
        numbers = numeric_series(value)
        if numbers is not None:
            series[name] = numbers
        elif isinstance(value, dict):
            tables[name] = value
        elif isinstance(value, str) and value in files and value.startswith("images/"):
            images[name] = [value]
        elif isinstance(value, list) and value and all(isinstance(v, str) and v in files for v in value):
            images[name] = value
        else:
            scalars[name] = value
    others = {}
    for other in compare:
        if other and other != run_id:
            others[other] = {k: v for k, v in Run.get(ws, other).get_metrics().items() if numeric_series(v)}
    return {**_run_row(d), "details": d, "tags": d["tags"], "properties": d.get("properties", {}),
            "arguments": d["runDefinition"]["arguments"], "error": d.get("error"), "exit_code": d.get("exitCode"),
            "series": series, "tables": tables, "scalars": scalars, "images": images, "files": files,
            "compare": others, "log": run.get_output(), "snapshot_id": d["runDefinition"].get("snapshotId")}


SNAPSHOT_PAGE = 200


def snapshot_files(ws: Workspace, snapshot_id: str | None, *, page: int = 1, query: str = "") -> dict[str, Any] | None:
    """A page of a run's snapshot (its source folder as submitted, a manifest in the blob store): files and links
    kept inside it, sorted by path, those whose path holds ``query`` (any case). A snapshot of 10,000+ files is
    read once (its manifest is content-addressed: it never changes) and shown ``SNAPSHOT_PAGE`` rows at a time.
    None when the run has none, or its manifest is gone from the store."""
    from kiln.errors import NotFoundError

    if not snapshot_id:
        return None
    try:
        items, size, files = _snapshot_items(ws, snapshot_id)
    except NotFoundError:
        return None
    if query:
        needle = query.lower()
        items = [i for i in items if needle in i["path"].lower()]
    last = max(1, -(-len(items) // SNAPSHOT_PAGE))
    page = min(max(page, 1), last)
    start = (page - 1) * SNAPSHOT_PAGE
    return {"id": snapshot_id, "size": size, "file_count": files, "total": len(items), "page": page,
            "page_size": SNAPSHOT_PAGE, "pages": last, "query": query, "items": items[start:start + SNAPSHOT_PAGE]}


_MANIFESTS: OrderedDict[tuple[str, str], tuple[list[dict[str, Any]], int, int]] = OrderedDict()


def _snapshot_items(ws: Workspace, snapshot_id: str) -> tuple[list[dict[str, Any]], int, int]:
    key = (str(ws.blobs.path_of(snapshot_id)), snapshot_id)
    if key in _MANIFESTS:
        _MANIFESTS.move_to_end(key)
        return _MANIFESTS[key]
    manifest = ws.blobs.manifest(snapshot_id)
    items: list[dict[str, Any]] = [{"path": e.path, "size": e.size, "executable": e.executable, "link": None}
                                   for e in manifest.entries]
    items += [{"path": path, "size": None, "executable": False, "link": target} for path, target in manifest.links]
    items.sort(key=lambda i: i["path"])
    _MANIFESTS[key] = found = (items, manifest.size, len(manifest.entries))
    while len(_MANIFESTS) > 8:
        _MANIFESTS.popitem(last=False)
    return found


def models(ws: Workspace) -> list[dict[str, Any]]:
    from kiln.serving.model import Model

    return sorted((m.serialize() for m in Model.list(ws)), key=lambda m: (m["name"], -int(m["version"])))


def services(ws: Workspace) -> list[dict[str, Any]]:
    from kiln.serving.webservice import LocalWebservice

    return [s.serialize() for s in LocalWebservice.list(ws)]


def cache_view(ws: Workspace) -> dict[str, Any]:
    from kiln.builds.cache import BuildCache, disk_usage
    from kiln.builds.gc import prune, referenced_lock_hashes

    cache = BuildCache(ws.settings.cache_dir)
    entries = sorted(cache.entries(), key=lambda e: e.last_used, reverse=True)
    references = referenced_lock_hashes({*cache.known_workspaces(), ws.path})
    preview = prune(cache, references=references, dry_run=True) if cache.root.exists() else None
    return {"path": str(cache.root), "bytes": disk_usage([cache.root]) if cache.root.exists() else 0,
            "entries": [{"key": e.key, "environment": e.meta.get("label"), "python": e.meta.get("python_version"),
                         "backend": e.meta.get("backend"), "packages": e.meta.get("packages"),
                         "lock_hash": e.meta.get("lock_hash"), "last_used": e.last_used,
                         "referenced": e.meta.get("lock_hash") in references} for e in entries],
            "prune_preview": [] if preview is None else [e.key for e in preview.removed],
            "prune_images": [] if preview is None else [i["reference"] for i in preview.removed_images],
            "prune_frees": 0 if preview is None else preview.freed}
