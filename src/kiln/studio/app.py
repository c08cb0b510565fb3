"""The studio's ASGI app: Starlette routes, Jinja2 pages (autoescaped; every string masked on its way out),
JSON in the CLI's ``--output json`` envelope, and the actions (POST, confirmed, CSRF-checked)."""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from jinja2 import Environment as Jinja
from jinja2 import FileSystemLoader
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kiln.environment.secrets import mask
from kiln.errors import KilnError
from kiln.studio import data
from kiln.studio.charts import line_chart
from kiln.studio.guard import CSRF_COOKIE, Guard, check_csrf

if TYPE_CHECKING:
    from kiln.builds.handle import BuildHandle
    from kiln.sdk.workspace import Workspace

__all__ = ["create_app"]

HERE = Path(__file__).parent
MAX_FORM = 1 << 20
RUN_VIEWS = 16
DOWNLOADS = ("azureml-v1", "azureml-v2", "conda", "requirements")
#: run files shown in the page; anything else is sent as a download, never as a page of the studio's origin
INLINE_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def _finalize(value: Any) -> Any:
    # every string a template prints is masked (a credential in a log line, a tag, a URL); markup we built is ours
    if isinstance(value, str) and not isinstance(value, Markup):
        return mask(value)
    return value


def envelope(kind: str, payload: Any, status: int = 200) -> JSONResponse:
    body = json.loads(mask(json.dumps(payload, default=str)))
    return JSONResponse({"kiln": 1, "kind": kind, "data": body}, status_code=status)


class Studio:
    def __init__(self, ws: Workspace, *, read_only: bool) -> None:
        self.ws, self.read_only = ws, read_only
        self.builds: dict[str, tuple[str, BuildHandle]] = {}
        #: finished runs' pages already read (see ``data.run_key``), the most recent few
        self.run_views: OrderedDict[tuple[object, ...], dict[str, Any]] = OrderedDict()
        self.jinja = Jinja(loader=FileSystemLoader(HERE / "templates"), autoescape=True, finalize=_finalize)
        self.jinja.filters["when"] = data.when
        self.jinja.filters["json"] = lambda v: json.dumps(v, indent=2, default=str, ensure_ascii=False)
        self.jinja.globals["chart"] = line_chart

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        html = self.jinja.get_template(template).render(
            request=request, csrf=request.scope.get("state", {}).get("csrf", ""), read_only=self.read_only,
            workspace=self.ws.name, **values)
        return Response(html, status_code=status, media_type="text/html; charset=utf-8")

    async def form(self, request: Request) -> dict[str, str] | Response:
        """The posted form once its CSRF field matches the session's cookie; else the refusal."""
        # the studio's forms are all url-encoded: parsed here, bounded (python-multipart is not needed)
        body = await request.body()
        if len(body) > MAX_FORM:
            return Response(f"refused: a form over {MAX_FORM} bytes\n", status_code=413, media_type="text/plain")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if not check_csrf(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            return Response("refused: the form's CSRF token is missing or stale (reload the page)\n",
                            status_code=403, media_type="text/plain")
        return form

    def confirm(self, request: Request, title: str, detail: str, form: dict[str, str]) -> Response | None:
        """The confirmation page, unless this POST is the confirmed one."""
        if form.get("confirm") == "yes":
            return None
        fields = {k: v for k, v in form.items() if k not in ("csrf", "confirm")}
        return self.page(request, "confirm.html", title=title, detail=detail, action=request.url.path, fields=fields)

    # ---- pages -----------------------------------------------------------------------------------------

    async def environments(self, request: Request) -> Response:
        q = request.query_params
        view = data.environments(self.ws, query=q.get("q", ""), kind=q.get("kind", ""), page=_int(q.get("page")))
        if _wants_json(request):
            return envelope("env.list", view)
        return self.page(request, "environments.html", view=view, q=q.get("q", ""), kind=q.get("kind", ""))

    async def environment(self, request: Request) -> Response:
        name = request.path_params["name"]
        view = data.environment_view(self.ws, name, request.query_params.get("version") or None)
        if _wants_json(request):
            return envelope("env.show", {k: v for k, v in view.items() if k != "sections"})
        recorded = data.recorded_builds(self.ws, f"{name}:{view['version']}")
        # a build started here that reached the journal is listed once, as the journal's row (the one every
        # process sees); here only until then, or for good when it was a cache hit (nothing was recorded)
        listed = {b["id"] for b in recorded}
        building = [(bid, h.status) for bid, (label, h) in self.builds.items()
                    if label == f"{name}:{view['version']}" and h.journal_id not in listed]
        return self.page(request, "environment.html", env=view, downloads=DOWNLOADS, building=building,
                         recorded=recorded)

    async def diff(self, request: Request) -> Response:
        from kiln.environment.diff import diff_environments

        name, q = request.path_params["name"], request.query_params
        old = self.ws.get_environment(name, q.get("old") or None)
        new = self.ws.get_environment(q.get("other", name), q.get("new") or None)
        result = diff_environments(old, new)
        if _wants_json(request):
            return envelope("env.diff", result.to_dict())
        return self.page(request, "diff.html", name=name, diff=result.to_dict(),
                         versions=[v.version for v in self.ws.environment_versions(name)],
                         old=data.environment_view(self.ws, name, old.version),
                         new=data.environment_view(self.ws, new.name, new.version))

    async def download_env(self, request: Request) -> Response:
        from kiln.environment.formats.export import export

        p = request.path_params
        fmt = p["fmt"]
        if fmt not in DOWNLOADS:
            raise KilnError(f"no download format {fmt!r} (formats: {', '.join(DOWNLOADS)})")
        env = self.ws.get_environment(p["name"], p["version"])
        with tempfile.TemporaryDirectory() as tmp:
            files = export(env, Path(tmp) / "out", fmt)
            if len(files) == 1:
                return _attachment(files[0].name, mask(files[0].read_text(encoding="utf-8")).encode())
            return _attachment(f"{env.name}-{env.version}-{fmt}.zip",
                               _zip({f.name: mask(f.read_text(encoding="utf-8")).encode() for f in files}))

    async def build(self, request: Request) -> Response:
        form = await self.form(request)
        if isinstance(form, Response):
            return form
        p = request.path_params
        env = self.ws.get_environment(p["name"], p["version"])
        label = f"{env.name}:{env.version}"
        asked = self.confirm(request, f"Build {label}?", "Locks the version if needed and builds it into the cache.",
                             form)
        if asked is not None:
            return asked
        handle = self.ws.build_environment_in_background(env)
        build_id = f"{len(self.builds) + 1}"
        self.builds[build_id] = (label, handle)
        return RedirectResponse(f"/builds/{build_id}", status_code=303)

    async def build_page(self, request: Request) -> Response:
        build_id = request.path_params["id"]
        if build_id in self.builds:
            label, handle = self.builds[build_id]
            view = {"id": build_id, "environment": label, "status": handle.status, "log": handle.get_log()}
        else:  # a build recorded in the cache's journal: started by the CLI or the API, in any process
            view = self._journal_view(build_id)
        if _wants_json(request):
            return envelope("studio.build", view)
        return self.page(request, "build.html", build=view)

    def _journal_view(self, build_id: str) -> dict[str, Any]:
        from kiln.builds.journal import read_journal

        record = read_journal(self.ws.settings.cache_dir, build_id)
        if record is None or record.workspace != str(self.ws.path):
            raise KilnError(f"no build {build_id!r} of this workspace")
        return {**record.to_dict(), "log": record.log()}

    async def runs(self, request: Request) -> Response:
        q = request.query_params
        view = data.runs(self.ws, experiment=q.get("experiment", ""), status=q.get("status", ""),
                         environment=q.get("environment", ""), since=q.get("since", ""), page=_int(q.get("page")))
        if _wants_json(request):
            return envelope("run.list", view)
        return self.page(request, "runs.html", view=view, experiment=q.get("experiment", ""),
                         wanted=q.get("status", ""), environment=q.get("environment", ""), since=q.get("since", ""))

    async def run(self, request: Request) -> Response:
        compare = [c.strip() for c in request.query_params.get("compare", "").split(",") if c.strip()]
        q = request.query_params
        view = self._run_view(request.path_params["id"], compare)
        # the snapshot's page apart from the cached view: it changes with the query, not with the run
        snapshot = await run_in_threadpool(data.snapshot_files, self.ws, view["snapshot_id"],
                                           page=_int(q.get("files_page")), query=q.get("files", ""))
        view = {**view, "snapshot": snapshot}
        if _wants_json(request):
            return envelope("run.show", {k: v for k, v in view.items() if k != "details"})
        charts = []
        for name, values in view["series"].items():
            lines = {view["id"]: values}
            lines.update({other: m[name] for other, m in view["compare"].items() if name in m})
            charts.append((name, line_chart(name, lines)))
        return self.page(request, "run.html", run=view, charts=charts, compare=",".join(compare))

    def _run_view(self, run_id: str, compare: list[str]) -> dict[str, Any]:
        keys = [data.run_key(self.ws, r) for r in [run_id, *compare]]
        key = None if any(k is None for k in keys) else tuple(keys)
        if key is not None and key in self.run_views:
            self.run_views.move_to_end(key)
            return self.run_views[key]
        view = data.run_view(self.ws, run_id, compare)
        if key is not None:
            self.run_views[key] = view
            while len(self.run_views) > RUN_VIEWS:
                self.run_views.popitem(last=False)
        return view

    async def run_file(self, request: Request) -> Response:
        from kiln.runs.run import Run

        run = Run.get(self.ws, request.path_params["id"])
        name = request.path_params["path"]
        if name not in run.get_file_names():
            raise KilnError(f"run {run.id} has no file {name!r}")
        with tempfile.TemporaryDirectory() as tmp:
            body = Path(run.download_file(name, Path(tmp) / "f")).read_bytes()
        kind = INLINE_IMAGES.get(Path(name).suffix.lower())
        if kind is not None:
            return Response(body, media_type=kind)
        return _attachment(Path(name).name, body)

    async def snapshot_file(self, request: Request) -> Response:
        """One file of the run's snapshot, as a download (never a page of the studio), read from its blob."""
        from kiln.runs.run import Run

        run = Run.get(self.ws, request.path_params["id"])
        name = request.path_params["path"]
        snapshot = run.get_details()["runDefinition"].get("snapshotId")
        entry = None if not snapshot else next(
            (e for e in self.ws.blobs.manifest(snapshot).entries if e.path == name), None)
        if entry is None:  # only what the manifest lists: a path can't reach outside the run's snapshot
            raise KilnError(f"run {run.id}'s snapshot has no file {name!r}")
        body = await run_in_threadpool(self.ws.blobs.path_of(entry.digest).read_bytes)
        return _attachment(Path(name).name, body)

    async def snapshot_zip(self, request: Request) -> Response:
        """The whole snapshot as a ZIP, as ``run.restore_snapshot()`` writes it."""
        from kiln.runs.run import Run

        run = Run.get(self.ws, request.path_params["id"])
        with tempfile.TemporaryDirectory() as tmp:
            archive = await run_in_threadpool(run.restore_snapshot, None, tmp)
            body = Path(archive).read_bytes()
        return _attachment(f"{run.id}_snapshot.zip", body)

    async def cancel(self, request: Request) -> Response:
        from kiln.runs.run import Run

        form = await self.form(request)
        if isinstance(form, Response):
            return form
        run = Run.get(self.ws, request.path_params["id"])
        asked = self.confirm(request, f"Cancel run {run.id}?", f"It is {run.status}; its process is stopped.", form)
        if asked is not None:
            return asked
        if run.status not in ("Completed", "Failed", "Canceled"):
            await run_in_threadpool(run.cancel)
        return RedirectResponse(f"/runs/{run.id}", status_code=303)

    async def models(self, request: Request) -> Response:
        items = data.models(self.ws)
        if _wants_json(request):
            return envelope("model.list", items)
        return self.page(request, "models.html", models=items)

    async def model_download(self, request: Request) -> Response:
        from kiln.serving.model import Model

        p = request.path_params
        model = Model(self.ws, p["name"], version=int(p["version"]))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(await run_in_threadpool(model.download, tmp))
            if path.is_file():
                return _attachment(path.name, path.read_bytes())
            files = {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}
            return _attachment(f"{model.name}-{model.version}.zip", _zip(files))

    async def services(self, request: Request) -> Response:
        items = data.services(self.ws)
        if _wants_json(request):
            return envelope("service.list", items)
        return self.page(request, "services.html", services=items)

    def _service(self, name: str) -> Any:
        from kiln.serving.webservice import LocalWebservice

        return LocalWebservice(self.ws, name)

    async def service(self, request: Request, answer: dict[str, Any] | None = None,
                      keys: tuple[str, str] | None = None) -> Response:
        service = self._service(request.path_params["name"])
        view = service.serialize()
        if _wants_json(request):
            return envelope("service.show", view)
        logs = await run_in_threadpool(service.get_logs, 200)
        return self.page(request, "service.html", service=view, logs=logs, answer=answer, keys=keys)

    async def keys(self, request: Request) -> Response:
        """A service's keys, shown on request only: a POST (CSRF-checked, refused when read-only)."""
        form = await self.form(request)
        if isinstance(form, Response):
            return form
        service = self._service(request.path_params["name"])
        if not service.serialize()["authEnabled"]:
            raise KilnError(f"service {service.name!r} has no keys: auth is off")
        return await self.service(request, keys=service.get_keys())

    async def score(self, request: Request) -> Response:
        form = await self.form(request)
        if isinstance(form, Response):
            return form
        service = self._service(request.path_params["name"])
        body = form.get("body", "")
        started = time.perf_counter()
        try:
            result: Any = await run_in_threadpool(service.run, body)
            ok = True
        except KilnError as e:
            result, ok = str(e), False
        answer = {"ok": ok, "body": body, "answer": result if isinstance(result, str) else json.dumps(result),
                  "milliseconds": round((time.perf_counter() - started) * 1000, 1)}
        return await self.service(request, answer)

    async def service_action(self, request: Request) -> Response:
        form = await self.form(request)
        if isinstance(form, Response):
            return form
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ("reload", "delete"):
            raise KilnError(f"no service action {action!r} (actions: reload, delete)")
        service = self._service(name)
        asked = self.confirm(request, f"{action.capitalize()} service {name}?",
                             "Its workers start again with the same models and entry script." if action == "reload"
                             else "Its processes stop and it is removed from the workspace.", form)
        if asked is not None:
            return asked
        if action == "reload":
            await run_in_threadpool(service.reload, False)
            return RedirectResponse(f"/services/{name}", status_code=303)
        await run_in_threadpool(service.delete)
        return RedirectResponse("/services", status_code=303)

    async def cache(self, request: Request) -> Response:
        view = data.cache_view(self.ws)
        if _wants_json(request):
            return envelope("cache.list", view)
        return self.page(request, "cache.html", cache=view)

    async def prune(self, request: Request) -> Response:
        from kiln.builds.cache import BuildCache
        from kiln.builds.gc import prune, referenced_lock_hashes

        form = await self.form(request)
        if isinstance(form, Response):
            return form
        view = data.cache_view(self.ws)
        asked = self.confirm(request, "Prune the build cache?",
                             f"Removes {len(view['prune_preview'])} build(s) and {len(view['prune_images'])} "
                             "image(s) no workspace's lock refers to.", form)
        if asked is not None:
            return asked
        cache = BuildCache(self.ws.settings.cache_dir)
        refs = referenced_lock_hashes({*cache.known_workspaces(), self.ws.path})
        await run_in_threadpool(lambda: prune(cache, references=refs))
        return RedirectResponse("/cache", status_code=303)

    # ---- live updates ----------------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        """What the page polls: the status of the runs, services and builds it names."""
        from kiln.runs.run import Run

        q = request.query_params
        out: dict[str, dict[str, str]] = {"runs": {}, "services": {}, "builds": {}}
        for run_id in _names(q.get("runs")):
            try:
                out["runs"][run_id] = Run.get(self.ws, run_id).status
            except KilnError:
                out["runs"][run_id] = "Unknown"
        for name in _names(q.get("services")):
            try:
                out["services"][name] = self._service(name).state
            except KilnError:
                out["services"][name] = "Deleted"
        for build_id in _names(q.get("builds")):
            entry = self.builds.get(build_id)
            if entry is not None:
                out["builds"][build_id] = entry[1].status
            else:
                try:
                    out["builds"][build_id] = self._journal_view(build_id)["status"]
                except KilnError:
                    out["builds"][build_id] = "Unknown"
        return envelope("studio.status", out)

    async def service_logs(self, request: Request) -> Response:
        service = self._service(request.path_params["name"])
        text = await run_in_threadpool(service.get_logs, 200)
        return envelope("service.logs", {"name": service.name, "state": service.state, "text": text})

    async def run_log(self, request: Request) -> Response:
        from kiln.runs.run import Run

        run = Run.get(self.ws, request.path_params["id"])
        offset = _int(request.query_params.get("offset"), 0)
        text = run.get_output()
        return envelope("run.log", {"id": run.id, "status": run.status, "offset": len(text), "text": text[offset:]})


def _int(value: str | None, default: int = 1) -> int:
    return int(value) if value is not None and value.isascii() and value.isdigit() else default


def _names(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v][:200]


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _attachment(filename: str, body: bytes) -> Response:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename) or "download"
    return Response(body, media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{safe}"'})


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def create_app(ws: Workspace, *, hosts: tuple[str, ...] | None = ("127.0.0.1", "localhost"),
               token: str | None = None, read_only: bool = False) -> Guard:
    """The studio over ``ws``: an ASGI app. ``hosts``: the names it answers to (``None``: any); ``token``:
    required on every request when given."""
    s = Studio(ws, read_only=read_only)

    def both(path: str, endpoint: Any, **kw: Any) -> list[Route]:
        return [Route(path, endpoint, **kw), Route("/api" + path, endpoint, **kw)]

    async def home(request: Request) -> Response:
        return RedirectResponse("/environments", status_code=303)

    async def failed(request: Request, exc: Exception) -> Response:
        message = mask(str(exc))[:400]
        if _wants_json(request):
            return JSONResponse({"kiln": 1, "kind": "error", "data": {"message": message}}, status_code=404)
        return s.page(request, "error.html", status=404, message=message)

    routes = [
        Route("/", home),
        *both("/environments", s.environments),
        *both("/environments/{name}", s.environment),
        *both("/environments/{name}/diff", s.diff),
        Route("/environments/{name}/{version}/download/{fmt}", s.download_env),
        Route("/environments/{name}/{version}/build", s.build, methods=["POST"]),
        *both("/builds/{id}", s.build_page),
        *both("/runs", s.runs),
        *both("/runs/{id}", s.run),
        Route("/runs/{id}/files/{path:path}", s.run_file),
        Route("/runs/{id}/snapshot.zip", s.snapshot_zip),
        Route("/runs/{id}/snapshot/{path:path}", s.snapshot_file),
        Route("/runs/{id}/cancel", s.cancel, methods=["POST"]),
        Route("/api/runs/{id}/log", s.run_log),
        Route("/api/services/{name}/logs", s.service_logs),
        *both("/models", s.models),
        Route("/models/{name}/{version}/download", s.model_download),
        *both("/services", s.services),
        *both("/services/{name}", s.service),
        Route("/services/{name}/score", s.score, methods=["POST"]),
        Route("/services/{name}/keys", s.keys, methods=["POST"]),
        Route("/services/{name}/{action}", s.service_action, methods=["POST"]),
        *both("/cache", s.cache),
        Route("/cache/prune", s.prune, methods=["POST"]),
        Route("/api/status", s.status),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={KilnError: failed})
    return Guard(app, hosts=None if hosts is None else frozenset(hosts), token=token, read_only=read_only)
