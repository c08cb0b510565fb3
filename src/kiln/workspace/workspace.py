"""``Workspace``: a folder holding a registry of versioned environments (and, later, models and runs).

Layout of a workspace folder::

    workspace.json      {"format": 1, "name": ..., "store": "registry.sqlite" | "postgresql://...",
                         "blobs": absent (blobs/ here) | a shared folder's absolute path,
                         "registry": absent | {"address": "host:port", "username": ..., "password": "${VAR}"}}
    registry.sqlite     the default store (SQLite)

A project points at a workspace with ``.kiln/config.json`` (``ws.write_config()``), found by
``Workspace.from_config()`` from the current folder upward, as Azure ML finds ``config.json``.

Azure's cloud attributes have local meanings: ``subscription_id`` and ``resource_group`` are
``"local"``, ``location`` is the workspace folder. The workspaces this user created are remembered
under ``KILN_HOME/workspaces/`` (one marker file each), which is what ``Workspace.list`` and
``Workspace.get`` search.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._files import write_text_atomic
from kiln.errors import DefinitionError, NotFoundError, WorkspaceError

if TYPE_CHECKING:
    from typing_extensions import Self

    from kiln.environment.environment import Environment
    from kiln.settings import Settings
    from kiln.workspace.blobs import BlobStore
    from kiln.workspace.store import EnvironmentRecord, Store

__all__ = ["CONFIG_DIR", "CONFIG_FILE", "LOCAL", "WORKSPACE_FILE", "Workspace", "collector_paused"]

log = logging.getLogger(__name__)

WORKSPACE_FILE = "workspace.json"
CONFIG_DIR = ".kiln"
CONFIG_FILE = "config.json"
WORKSPACE_FORMAT = 1
DEFAULT_STORE = "registry.sqlite"
#: wheels added with Environment.add_private_pip_wheel, by content hash: <blobs>/wheels/<sha256>/<file>.whl (and,
#: stored by an older Kiln, <workspace>/wheels/<sha256>/<file>.whl, still read where they are)
WHEELS_DIR = "wheels"
#: ``subscription_id`` and ``resource_group`` of every Kiln workspace: there is no cloud account behind it
LOCAL = "local"
#: what a workspace folder may hold for ``delete`` to remove it whole (anything else: it refuses)
_WORKSPACE_ENTRIES = frozenset({WORKSPACE_FILE, DEFAULT_STORE, f"{DEFAULT_STORE}-wal", f"{DEFAULT_STORE}-shm",
                                f"{DEFAULT_STORE}-journal", "blobs", "runs", "services", "locks", "tmp", CONFIG_DIR,
                                "experiments", WHEELS_DIR})


class Workspace:
    """An existing workspace folder. Create one with ``Workspace.create``; find one with ``from_config``."""

    def __init__(self, path: str | os.PathLike[str], *, settings: Settings | None = None) -> None:
        folder = Path(path).expanduser().resolve()
        meta_path = folder / WORKSPACE_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkspaceError(f"{folder}: not a Kiln workspace (no {WORKSPACE_FILE}); create one with "
                                 f"Workspace.create(name, path=...) or `kiln workspace create`") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise WorkspaceError(f"{meta_path}: not valid JSON ({e})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise WorkspaceError(f"{meta_path}: expected an object with a 'name'")
        if meta.get("format", 1) > WORKSPACE_FORMAT:
            raise WorkspaceError(f"{meta_path}: workspace format {meta['format']} is newer than this Kiln "
                                 f"(knows {WORKSPACE_FORMAT}): upgrade Kiln")
        self.path = folder
        self.name: str = meta["name"]
        self._store_url = str(meta.get("store") or DEFAULT_STORE)
        # a relative blob folder is the workspace's own; a shared one (a team's mount) is absolute
        self._blobs = folder / str(meta.get("blobs") or "blobs")
        registry = meta.get("registry")
        self._registry: dict[str, str] | None = dict(registry) if isinstance(registry, dict) else None
        self._store: Store | None = None
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The ``Settings`` this workspace was opened with (built from the environment on first use when
        the caller gave none: for the Python API, opening a workspace is the entry point)."""
        if self._settings is None:
            from kiln.settings import Settings

            self._settings = Settings.from_env()
        return self._settings

    # ---- finding and making workspaces ---------------------------------------------------------

    @classmethod
    def create(cls, name: str, path: str | os.PathLike[str] | None = None, exist_ok: bool = True, *,
               store: str | None = None, blobs: str | os.PathLike[str] | None = None,
               settings: Settings | None = None, container_registry: str | None = None,
               registry_username: str | None = None, registry_password: str | None = None) -> Self:
        """Create the workspace ``name`` in the folder ``path`` (default: ``./<name>``).

        With ``exist_ok`` an existing workspace of that name is opened instead; ``store`` is a
        database URL (default: SQLite inside the folder; ``postgresql://USER@HOST:PORT/DB`` for a team);
        ``blobs`` the folder of snapshots and model files (default: ``blobs`` inside the folder; a folder
        shared by a team's machines, with the same PostgreSQL store). ``container_registry`` is the address
        (``host:port``) images are pushed to (``build_local(..., pushImageToWorkspaceAcr=True)``, ``kiln image
        push``), with ``registry_password`` (and the user name, if secret) as ``${VAR}`` references only.
        """
        from kiln.environment.names import check_name

        check_name(name, "workspace name")
        folder = Path(path if path is not None else name).expanduser().resolve()
        meta_path = folder / WORKSPACE_FILE
        if meta_path.exists():
            if not exist_ok:
                raise WorkspaceError(f"{folder}: a workspace exists already (exist_ok=False)")
            ws = cls(folder, settings=settings)
            if ws.name != name:
                raise WorkspaceError(f"{folder}: holds the workspace {ws.name!r}, not {name!r}")
            ws._remember()  # one made by an older Kiln, or by another user's KILN_HOME: listed from now on
            if container_registry is not None:
                ws.set_container_registry(container_registry, username=registry_username, password=registry_password)
            return ws
        if store is not None and "://" in store:
            from kiln.workspace.store import open_store

            # a database that can't be reached or used leaves no workspace folder behind it
            probe = open_store(store)
            try:
                probe.schema_version  # noqa: B018
            finally:
                probe.close()
        meta: dict[str, object] = {"format": WORKSPACE_FORMAT, "name": name, "store": store or DEFAULT_STORE}
        if container_registry is not None:
            meta["registry"] = _registry(container_registry, registry_username, registry_password)
        if blobs is not None:
            shared = Path(blobs).expanduser().resolve()
            try:
                shared.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise WorkspaceError(f"{shared}: can't create the blob folder ({e.strerror or e})") from None
            meta["blobs"] = str(shared)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
        ws = cls(folder, settings=settings)
        ws.store.schema_version  # create the database and its schema now, so that a failure shows here  # noqa: B018
        ws._remember()
        return ws

    # ---- Azure ML's workspace attributes, with local meanings ---------------------------------------

    @property
    def subscription_id(self) -> str:
        """``"local"``: a Kiln workspace belongs to no cloud subscription."""
        return LOCAL

    @property
    def resource_group(self) -> str:
        """``"local"``: a Kiln workspace belongs to no resource group."""
        return LOCAL

    @property
    def location(self) -> str:
        """Where the workspace is: its folder."""
        return str(self.path)

    def get_details(self) -> dict[str, Any]:
        """Azure's keys, with local values (no key vault, registry or insights), plus the folder and its store."""
        meta = self.path / WORKSPACE_FILE
        import datetime as dt

        created = dt.datetime.fromtimestamp(meta.stat().st_mtime, dt.timezone.utc).replace(microsecond=0).isoformat()
        return {"id": f"kiln:{self.path}", "name": self.name, "friendlyName": self.name, "location": self.location,
                "subscriptionId": LOCAL, "resourceGroup": LOCAL, "type": "Kiln workspace (local)",
                "creationTime": created, "path": str(self.path), "store": self.store.name,
                "storageAccount": str(self._blobs),
                "containerRegistry": None if self._registry is None else self._registry.get("address"),
                "keyVault": None,
                "applicationInsights": None, "hbiWorkspace": False, "sku": "local"}

    @property
    def container_registry(self) -> dict[str, str] | None:
        """The registry images are pushed to: ``{"address", "username", "password"}``, the password (and a secret
        user name) as ``${VAR}`` references, resolved only when pushing; None: the workspace has none."""
        return None if self._registry is None else dict(self._registry)

    def set_container_registry(self, address: str | None, *, username: str | None = None,
                               password: str | None = None) -> None:
        """Set (or, with None, remove) the workspace's registry; written to its ``workspace.json``."""
        meta_path = self.path / WORKSPACE_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if address is None:
            meta.pop("registry", None)
        else:
            meta["registry"] = _registry(address, username, password)
        write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
        self._registry = meta.get("registry")

    @classmethod
    def list(cls, subscription_id: str | None = None, auth: object = None, resource_group: str | None = None, *,
             settings: Settings | None = None) -> dict[str, builtins.list[Self]]:
        """Name → the workspaces of that name this user created (and the default one), as Azure's ``list``.
        ``subscription_id``, ``auth`` and ``resource_group`` are accepted for ported code and don't filter."""
        del subscription_id, auth, resource_group
        settings = settings or _settings()
        out: dict[str, builtins.list[Self]] = {}
        for folder in _known(settings):
            try:
                ws = cls(folder, settings=settings)
            except WorkspaceError:
                continue  # deleted or moved since: not a workspace any more
            out.setdefault(ws.name, []).append(ws)
        return dict(sorted(out.items()))

    @classmethod
    def get(cls, name: str, auth: object = None, subscription_id: str | None = None,
            resource_group: str | None = None, location: str | None = None, *, settings: Settings | None = None,
            **kwargs: object) -> Self:
        """The workspace ``name`` among those this user created (see ``list``); ``location``, if given, is its
        folder. The other Azure arguments are accepted for ported code."""
        del auth, subscription_id, resource_group, kwargs
        found = cls.list(settings=settings).get(name, [])
        if location is not None:
            found = [ws for ws in found if ws.path == Path(location).expanduser().resolve()]
        if len(found) == 1:
            return found[0]
        if not found:
            known = ", ".join(cls.list(settings=settings)) or "none"
            raise NotFoundError(f"no workspace {name!r} known here (workspaces: {known}); create it with "
                                f"Workspace.create({name!r}) or open its folder with Workspace(path)")
        raise WorkspaceError(f"{len(found)} workspaces are named {name!r} ({', '.join(str(w.path) for w in found)}): "
                             "give location=<its folder>")

    def delete(self, delete_dependent_resources: bool = False, no_wait: bool = False) -> None:
        """Delete the workspace: its folder, with its registry, runs, models and services. A folder holding
        anything else is left alone (a ``WorkspaceError`` names what): Kiln deletes only what it made."""
        del delete_dependent_resources, no_wait
        import shutil

        others = sorted(p.name for p in self.path.iterdir() if p.name not in _WORKSPACE_ENTRIES)
        if others:
            raise WorkspaceError(f"{self.path}: holds files that aren't the workspace's ({', '.join(others[:10])}): "
                                 "not deleted; move them away or delete the folder yourself")
        self.close()
        shutil.rmtree(self.path)
        self._forget()

    def _marker(self) -> Path:
        import hashlib

        # the settings given, else the environment's now, without keeping them: a workspace opened without
        # settings builds them on first real use (a test or a notebook may change KILN_* before that)
        home = (self._settings or _settings()).home
        return home / "workspaces" / hashlib.sha256(str(self.path).encode()).hexdigest()[:16]

    def _remember(self) -> None:
        try:
            marker = self._marker()
            if not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(marker, str(self.path) + "\n")
        except OSError as e:  # only Workspace.list/get miss it: creating the workspace succeeded
            log.warning("could not remember workspace %s: %s", self.path, e)

    def _forget(self) -> None:
        import contextlib

        with contextlib.suppress(OSError):
            self._marker().unlink()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, *, settings: Settings | None = None
                    ) -> Self:
        """Find the workspace of the current project.

        ``path`` may be a config file, a folder holding ``.kiln/config.json`` or a workspace folder.
        Without it: ``settings.workspace`` (``--workspace`` / ``KILN_WORKSPACE``), then
        ``.kiln/config.json`` in the current folder or a parent, then the user's default workspace
        under ``KILN_HOME`` (created on first use).
        """
        if path is not None:
            return cls._from_path(Path(path).expanduser(), settings)
        if settings is None:
            from kiln.settings import Settings

            settings = Settings.from_env()
        if settings.workspace is not None:
            return cls._from_path(settings.workspace, settings)
        here = Path.cwd()
        for folder in (here, *here.parents):
            config = folder / CONFIG_DIR / CONFIG_FILE
            if config.is_file():
                return cls._from_config_file(config, settings)
        return cls.create("default", settings.default_workspace, settings=settings)

    @classmethod
    def _from_path(cls, path: Path, settings: Settings | None) -> Self:
        if path.is_file() and path.name == WORKSPACE_FILE:
            return cls(path.parent, settings=settings)
        if path.is_file():
            return cls._from_config_file(path, settings)
        if (path / WORKSPACE_FILE).is_file():
            return cls(path, settings=settings)
        if (path / CONFIG_DIR / CONFIG_FILE).is_file():
            return cls._from_config_file(path / CONFIG_DIR / CONFIG_FILE, settings)
        if (path / CONFIG_FILE).is_file():
            return cls._from_config_file(path / CONFIG_FILE, settings)
        raise WorkspaceError(f"{path}: no Kiln workspace here (no {WORKSPACE_FILE} or {CONFIG_DIR}/{CONFIG_FILE})")

    @classmethod
    def _from_config_file(cls, config: Path, settings: Settings | None) -> Self:
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            target = data["workspace"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise WorkspaceError(f"{config}: expected JSON with a \"workspace\" path") from None
        folder = Path(target)
        if not folder.is_absolute():
            folder = config.parent.parent / folder if config.parent.name == CONFIG_DIR else config.parent / folder
        return cls(folder, settings=settings)

    def write_config(self, path: str | os.PathLike[str] | None = None, file_name: str | None = None) -> Path:
        """Write ``<path>/.kiln/config.json`` (default: the current folder) pointing at this workspace."""
        folder = Path(path) if path is not None else Path.cwd()
        config = folder / CONFIG_DIR / (file_name or CONFIG_FILE)
        config.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(config, json.dumps({"workspace": str(self.path), "name": self.name}, indent=2) + "\n")
        return config

    # ---- the store -----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            from kiln.workspace.store import open_store

            url = self._store_url
            if "://" not in url:
                url = str(self.path / url)
            self._store = open_store(url)
        return self._store

    def migrate_store(self, to: str) -> dict[str, int]:
        """Copy this workspace's records (environments with their history, locks, runs, models, services)
        from its SQLite store into the new, empty database ``to`` (a PostgreSQL URL), check the counts, and
        point the workspace at it; the SQLite file stays beside it as a backup. Returns the rows per table."""
        from kiln.workspace.store import SqliteStore, open_store
        from kiln.workspace.store.copy import copy_records
        from kiln.workspace.store.sql import SqlStore

        source = self.store
        if not isinstance(source, SqliteStore):
            raise WorkspaceError(f"{self.path / WORKSPACE_FILE}: the workspace's store is {source.name}, not SQLite: "
                                 "only a SQLite store is moved (copy a database with its own tools)")
        if "://" not in to or to.startswith("sqlite:"):
            raise WorkspaceError(f"{to}: --to names the new database by URL (postgresql://USER@HOST:PORT/DB)")
        target = open_store(to)
        try:
            assert isinstance(target, SqlStore), "every store of a URL is a SQL store"
            counts = copy_records(source, target)
        finally:
            target.close()
        meta_path = self.path / WORKSPACE_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["store"] = to
        write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
        self.close()
        self._store_url = to
        return counts

    @property
    def blobs(self) -> BlobStore:
        """Content-addressed files: snapshots, model files."""
        from kiln.workspace.blobs import BlobStore

        return BlobStore(self._blobs)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, path={str(self.path)!r})"

    # ---- environments ----------------------------------------------------------------------------

    def register_environment(self, environment: Environment) -> Environment:
        """See ``Environment.register``."""
        return self.register_environment_ex(environment)[0]

    def register_environment_ex(self, environment: Environment) -> tuple[Environment, bool]:
        """Register and say whether a new version was made (False: the definition was unchanged)."""
        from kiln.environment.names import check_user_name
        from kiln.environment.secrets import is_reference

        check_user_name(environment.name)
        environment.validate()  # refuses literal credentials (kiln.environment.secrets.literal_secret)
        password = environment.docker.base_image_registry.password
        if password is not None and not is_reference(password):
            log.warning("environment %r: the literal registry password is not stored; give it as a reference "
                        "such as '${REGISTRY_PASSWORD}' to keep it with the definition", environment.name)
        definition = environment.definition_text()
        latest = self.store.get_environment(name=environment.name)
        if latest is not None and _same_definition(latest.definition, definition):
            return self._environment(latest), False
        record, created = self.store.register_environment(
            name=environment.name, definition=definition, hash=environment.hash)
        log.info("environment %s:%s %s", record.name, record.version, "registered" if created else "unchanged")
        return self._environment(record), created

    def is_registered_as(self, environment: Environment, version: str) -> bool:
        """Is ``environment`` exactly what is registered as ``version`` of its name?"""
        record = self.store.get_environment(name=environment.name, version=_version_number(version))
        return record is not None and _same_definition(record.definition, environment.definition_text())

    def get_environment(self, name: str, version: str | None = None) -> Environment:
        """See ``Environment.get``."""
        from kiln.environment.names import is_curated_name

        if is_curated_name(name):
            from kiln.environment.curated import get_curated, unknown_curated_message

            env = get_curated(name, version)
            if env is None:
                raise NotFoundError(unknown_curated_message(name, version))
            return env
        number = _version_number(version)
        record = self.store.get_environment(name=name, version=number)
        if record is None:
            if number is not None and self.store.get_environment(name=name) is not None:
                versions = [r.version for r in self.store.list_environment_versions(name=name)]
                raise NotFoundError(f"environment {name!r} has no version {version} (versions: "
                                    f"{_ranges(versions)})")
            raise NotFoundError(f"no environment {name!r} in workspace {self.name!r}")
        return self._environment(record)

    def list_environments(self) -> dict[str, Environment]:
        """See ``Environment.list``: name → latest version, curated included."""
        from kiln.environment.curated import list_curated

        out = list_curated()
        with collector_paused():
            for record in self.store.list_environments():
                out[record.name] = self._environment(record)
        return dict(sorted(out.items()))

    def environment_versions(self, name: str) -> builtins.list[Environment]:
        """Every registered version of ``name``, oldest first."""
        from kiln.environment.curated import get_curated, is_curated_name

        if is_curated_name(name):
            env = get_curated(name)
            if env is None:
                from kiln.environment.curated import unknown_curated_message

                raise NotFoundError(unknown_curated_message(name))
            return [env]
        records = self.store.list_environment_versions(name=name)
        if not records:
            raise NotFoundError(f"no environment {name!r} in workspace {self.name!r}")
        with collector_paused():
            return [self._environment(r) for r in records]

    def add_private_wheel(self, file_path: str | os.PathLike[str], *, exist_ok: bool = False) -> str:
        """See ``Environment.add_private_pip_wheel``: store a wheel by its content hash in the artifact store
        (``<blobs>/wheels/<sha256>/<file>.whl``: the team's shared folder when the workspace has one, so a
        teammate's build finds the same file) and return the requirement that installs it
        (``name @ file:///.../wheels/<sha256>/<file>.whl``)."""
        from kiln.environment.wheels import stored_wheel_requirement, wheel_name

        source = Path(file_path)
        if not source.is_file():
            raise DefinitionError(f"add_private_pip_wheel: {str(file_path)[:300]!r} is not a file")
        project = wheel_name(source.name)
        digest = _sha256(source)
        # wheels stored before the artifact store held them (<workspace>/wheels/) still count: their
        # definitions name them there, and they are still read from there
        others = [p for folder in (self._blobs / WHEELS_DIR, self.path / WHEELS_DIR) if folder.is_dir()
                  for p in folder.glob(f"*/{source.name}") if p.parent.name != digest]
        if others and not exist_ok:
            raise DefinitionError(f"add_private_pip_wheel: a different wheel named {source.name!r} is stored already "
                                  f"(sha256 {others[0].parent.name[:12]}...): exist_ok=True stores this one beside it")
        try:
            stored, target = self.blobs.put_named(source, WHEELS_DIR)
        except OSError as e:
            raise WorkspaceError(f"{self._blobs}: can't store the wheel {source.name!r} in the artifact store "
                                 f"({e.strerror or e})") from None
        if stored != digest:  # changed while it was being stored: name the bytes the store holds
            raise DefinitionError(f"add_private_pip_wheel: {str(file_path)[:300]!r} changed while it was stored")
        return stored_wheel_requirement(project, target)

    @property
    def wheel_folders(self) -> tuple[Path, Path]:
        """Where this workspace's private wheels live (``<folder>/<sha256>/<file>.whl``): its artifact store,
        then the ``wheels/`` folder an older Kiln kept in the workspace."""
        return self._blobs / WHEELS_DIR, self.path / WHEELS_DIR

    @property
    def environments(self) -> dict[str, Environment]:
        """As in Azure ML: ``ws.environments["name"]``."""
        return self.list_environments()

    def _environment(self, record: EnvironmentRecord) -> Environment:
        from kiln.environment.serialize import environment_from_dict

        data: dict[str, Any] = json.loads(record.definition)
        data["name"] = record.name
        data["version"] = str(record.version)
        env = environment_from_dict(data, f"workspace {self.name!r}: environment {record.name}:{record.version}",
                                    trusted=True)
        env._remember_hash(record.definition, record.hash)
        return env


def _settings() -> Settings:
    from kiln.settings import Settings

    return Settings.from_env()


def _known(settings: Settings) -> list[Path]:
    """The folders of the workspaces this user created, and the default workspace if it exists."""
    folders = [settings.default_workspace] if (settings.default_workspace / WORKSPACE_FILE).is_file() else []
    marks = settings.home / "workspaces"
    for marker in sorted(marks.iterdir()) if marks.is_dir() else []:
        try:
            folder = Path(marker.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
        if folder not in folders:
            folders.append(folder)
    return folders


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _same_definition(stored: str, new: str) -> bool:
    # by meaning, not by text: key order or spacing written by another Kiln version must not make a version
    return stored == new or json.loads(stored) == json.loads(new)


def _version_number(version: str | None) -> int | None:
    if version is None:
        return None
    text = str(version).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:  # "٢".isdigit()
        raise NotFoundError(f"{str(version)[:40]!r} is not a version number (versions are 1, 2, 3...)")
    return int(text)


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    return f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}..{numbers[-1]}"


def _registry(address: str, username: str | None, password: str | None) -> dict[str, str]:
    """A workspace's registry as ``workspace.json`` keeps it: a password only as a ``${VAR}`` reference."""
    from kiln.environment.secrets import is_reference

    address = address.strip().rstrip("/")
    if not address or "://" in address or " " in address:
        raise WorkspaceError(f"registry {address[:200]!r}: expected an address (host:port or host), without a scheme")
    if password is not None and not is_reference(password):
        raise WorkspaceError(f"registry {address}: the password must be a ${{VAR}} reference (e.g. "
                             "'${KILN_REGISTRY_PASSWORD}'), resolved when pushing: a password is never written")
    out = {"address": address}
    if username:
        out["username"] = username
    if password:
        out["password"] = password
    return out


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while many definitions are built at once, on again after (as it
    was). Each of its passes visits every live object, so building 10,000 environments made ``list`` cost
    more per name the more there were (bench/growth.py: 1.54x per name from 1,000 to 10,000 names; flat with
    the collector off). Nothing built here makes reference cycles that need it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
