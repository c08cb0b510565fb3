"""``kiln env``: scaffold, register, list, show, download, diff, build, lock, python."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kiln.cli.context import state
from kiln.cli.render import build_text, parse_ref, python_output

if TYPE_CHECKING:
    from kiln.environment.environment import Environment

__all__ = ["app", "parse_ref"]

app = typer.Typer(help="Define, register and inspect environments.", no_args_is_help=True)

DOWNLOAD_FORMATS = ("azureml-v1", "azureml-v2", "conda", "requirements")


def _python_of(env: Environment) -> str:
    if env.python.user_managed_dependencies:
        return f"user-managed ({env.python.interpreter_path})"
    cd = env.python.conda_dependencies
    return (cd.get_python_version() or "-") if cd is not None else "-"


def _summary(env: Environment) -> dict[str, Any]:
    from kiln.environment.names import is_curated_name

    cd = env.python.conda_dependencies
    return {
        "name": env.name, "version": env.version, "hash": env.hash, "curated": is_curated_name(env.name),
        "python": _python_of(env), "description": env.description,
        "conda_packages": cd.conda_packages if cd else [], "pip_packages": cd.pip_packages if cd else [],
        "base_image": env.docker.base_image,
    }


@app.command()
def scaffold(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Environment name.")],
    directory: Annotated[Path, typer.Option("--directory", "-d", help="Folder to write.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
) -> None:
    """Write a new Azure ML v1 environment folder with Kiln's defaults, to edit and register."""
    from kiln.environment.environment import Environment

    st = state(ctx)
    env = Environment(name)
    env.save_to_directory(directory, overwrite=overwrite)
    files = sorted(p.name for p in directory.iterdir() if p.name in (
        "azureml_environment.json", "conda_dependencies.yml", "BaseDockerfile"))
    st.out.emit("env.scaffold", {"name": name, "directory": str(directory.resolve()), "files": files},
                f"Wrote environment {name!r} to {directory}: {', '.join(files)}\n"
                f"Edit the files, then: kiln env register -d {directory}")


@app.command()
def register(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Option("--directory", "-d", help="A v1 folder, a v2 YAML, a conda file or a "
                                                                      "requirements file (detected by content).")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Environment name (overrides the file's; "
                                                                  "required for a requirements file).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="azureml-v1, azureml-v2, conda or requirements "
                                                             "(default: detected).")] = None,
) -> None:
    """Register an environment definition: a new version only when it changed."""
    from kiln.environment.formats.detect import load_any, resolve_input
    from kiln.environment.names import check_user_name
    from kiln.errors import DefinitionError, FormatError

    st = state(ctx)
    if name is not None:  # the option is at fault, not the file
        check_user_name(name)
    env = load_any(directory, name=name, format=fmt)
    try:  # before the workspace is opened (or created): a refused input must write nothing
        check_user_name(env.name)
        env.validate()
    except FormatError:
        raise
    except DefinitionError as e:
        source = resolve_input(directory)
        if source.is_dir():
            source = source / "azureml_environment.json"
        raise FormatError(str(source), str(e)) from None
    registered, created = st.workspace().register_environment_ex(env)
    data = {**_summary(registered), "created": created}
    text = (f"Registered {registered.name} version {registered.version} (hash {registered.hash[:12]})" if created
            else f"{registered.name} is unchanged: version {registered.version} (hash {registered.hash[:12]})")
    st.out.emit("env.register", data, text)


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this name, all its versions.")] = None,
) -> None:
    """List environments (latest version of each, curated included), or every version of one name."""
    st = state(ctx)
    ws = st.workspace()
    envs = ws.environment_versions(name) if name else list(ws.list_environments().values())
    rows = [[e.name, e.version or "-", _python_of(e), str(len(e.python.conda_dependencies.pip_packages)
                                                          if e.python.conda_dependencies else 0), e.hash[:12]]
            for e in envs]
    st.out.table("env.list", [_summary(e) for e in envs], ["name", "version", "python", "pip", "hash"], rows)


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="Environment, latest version by default.")],
) -> None:
    """Show a registered or curated environment: packages, docker, variables and its hash."""
    st = state(ctx)
    name, version = parse_ref(ref)
    env = st.workspace().get_environment(name, version)
    data = {**_summary(env), "definition": env.to_dict()}
    st.out.emit("env.show", data, _render(env))


def _render(env: Environment) -> str:
    lines = [f"{env.name}:{env.version or '-'}", f"  hash         {env.hash}"]
    if env.description:
        lines.append(f"  description  {env.description}")
    lines.append(f"  python       {_python_of(env)}")
    d = env.docker
    if d.base_image:
        lines.append(f"  base image   {d.base_image}")
    if d.build_context:
        lines.append(f"  build ctx    {d.build_context.location} ({d.build_context.dockerfile_path})")
    if d.base_image_registry.address:
        lines.append(f"  registry     {d.base_image_registry.address}")
    for k, v in env.environment_variables.items():
        lines.append(f"  env          {k}={v}")
    for p in env.spark.packages:
        lines.append(f"  spark        {p}")
    if env.tags:
        lines.append("  tags         " + ", ".join(f"{k}={v}" for k, v in env.tags.items()))
    if env.python.conda_dependencies is not None:
        lines.append("  conda file:")
        lines += ["    " + line for line in env.python.conda_dependencies.serialize_to_string().splitlines()]
    if d.base_dockerfile:
        lines.append("  base Dockerfile:")
        lines += ["    " + line for line in d.base_dockerfile.splitlines()]
    return "\n".join(lines)


@app.command()
def download(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Environment name.")],
    directory: Annotated[Path, typer.Option("--directory", "-d", help="Folder to write into.")],
    version: Annotated[str | None, typer.Option("--version", "-v", help="Version (default: latest).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="azureml-v1 (a folder), azureml-v2 (env.yml), conda "
                                                      "(environment.yml) or requirements (requirements.txt).")]
    = "azureml-v1",
) -> None:
    """Write a registered environment to files."""
    from kiln.environment.formats.export import export

    st = state(ctx)
    if fmt not in DOWNLOAD_FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(DOWNLOAD_FORMATS)}", param_hint="--format")
    env = st.workspace().get_environment(name, version)
    files = export(env, directory, fmt, overwrite=overwrite)
    st.out.emit("env.download", {"name": env.name, "version": env.version, "format": fmt,
                                 "files": [str(f) for f in files]},
                f"Wrote {env.name}:{env.version} ({fmt}) to " + ", ".join(str(f) for f in files))


@app.command()
def diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(metavar="NAME:V1", help="The older definition.")],
    new: Annotated[str, typer.Argument(metavar="NAME:V2", help="The newer definition (or just V2).")],
) -> None:
    """Show what changed between two environment versions, section by section."""
    from kiln.environment.diff import diff_environments

    st = state(ctx)
    ws = st.workspace()
    old_name, old_version = parse_ref(old)
    new_name, new_version = parse_ref(new) if ":" in new or not new.isdigit() else (old_name, new)
    result = diff_environments(ws.get_environment(old_name, old_version), ws.get_environment(new_name, new_version))
    lines = [f"--- {result.old}  (hash {result.old_hash[:12]})", f"+++ {result.new}  (hash {result.new_hash[:12]})"]
    lines += [str(c) for c in result.changes] or ["no differences"]
    lines.append("same build: the changes don't change what is built" if result.same_build
                 else "different build: the build identity changed")
    st.out.emit("env.diff", result.to_dict(), "\n".join(lines))


def _build(ctx: typer.Context, ref: str, *, upgrade: bool = False, locked: bool = False, quiet: bool = False,
           conda_via: str | None = None) -> Any:
    from dataclasses import replace

    from kiln.builds import build
    from kiln.cli.progress import build_progress
    from kiln.settings import CONDA_VIA

    st = state(ctx)
    if conda_via is not None:
        if conda_via not in CONDA_VIA:
            raise typer.BadParameter(f"{conda_via!r} is not one of {', '.join(CONDA_VIA)}", param_hint="--conda-via")
        st.settings = replace(st.settings, conda_via=conda_via)
    name, version = parse_ref(ref)
    ws = st.workspace()
    env = ws.get_environment(name, version)
    with build_progress(f"{env.name}:{env.version}", quiet=quiet or st.json_mode) as progress:
        return build(env, ws, settings=st.settings, upgrade=upgrade, locked=locked, progress=progress)


@app.command("build")
def build_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="Environment, latest version by default.")],
    upgrade: Annotated[bool, typer.Option("--upgrade", help="Resolve again, taking newer releases of unpinned "
                                                            "packages: makes a new lock and shows what changed.")]
    = False,
    locked: Annotated[bool, typer.Option("--locked", help="Fail instead of resolving when the environment has "
                                                          "no lock (its definition changed since).")] = False,
    conda_via: Annotated[str | None, typer.Option("--conda-via", help="Conda packages through conda (py-rattler), "
                                                                      "pypi (their PyPI names, with uv) or auto "
                                                                      "(default; also KILN_CONDA_VIA).")] = None,
) -> None:
    """Build an environment from its lock (resolving one the first time); a cached build is instant."""
    st = state(ctx)
    if upgrade and locked:
        raise typer.BadParameter("--upgrade and --locked exclude each other", param_hint="--upgrade")
    result = _build(ctx, ref, upgrade=upgrade, locked=locked, conda_via=conda_via)
    st.out.emit("env.build", result.to_dict(), build_text(result, upgrade=upgrade))


@app.command("python")
def python_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="Environment, latest version by default.")],
) -> None:
    """Print the interpreter path of the built environment (building it first if needed)."""
    st = state(ctx)
    result = _build(ctx, ref, quiet=True)
    st.out.emit("env.python", *python_output(result))


@app.command("lock")
def lock_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="Environment, latest version by default.")],
    locked: Annotated[bool, typer.Option("--locked", help="Fail if the environment has no lock (its definition "
                                                          "changed since its last lock).")] = False,
    history: Annotated[bool, typer.Option("--history", help="Every lock this version had, oldest first.")] = False,
) -> None:
    """Show the lock an environment builds from: exact versions, artifact hashes, indexes."""
    from kiln.builds.builder import lock_environment
    from kiln.builds.lock import Lock

    st = state(ctx)
    name, version = parse_ref(ref)
    ws = st.workspace()
    env = ws.get_environment(name, version)
    if history:
        assert env.version is not None
        locks = [Lock.from_json(r.content) for r in ws.store.list_environment_locks(name=env.name,
                                                                                     version=int(env.version))]
        rows = [[str(i + 1), lk.lock_hash[:12], lk.python, lk.created_at, str(len(lk.packages))]
                for i, lk in enumerate(locks)]
        st.out.table("env.lock.history", [{"seq": i + 1, "lock_hash": lk.lock_hash, "python": lk.python,
                                           "created_at": lk.created_at, "packages": len(lk.packages)}
                                          for i, lk in enumerate(locks)],
                     ["seq", "lock", "python", "created", "packages"], rows)
        return
    _, lock, _, resolved = lock_environment(env, ws, settings=st.settings, locked=locked)
    data = {"environment": f"{env.name}:{env.version}", "lock_hash": lock.lock_hash, "python": lock.python,
            "platform": lock.platform, "resolver": lock.resolver, "created_at": lock.created_at,
            "indexes": list(lock.indexes), "requirements": list(lock.requirements), "stored": not resolved,
            "packages": [p.to_dict() for p in lock.packages], "conda": [c.to_dict() for c in lock.conda],
            "python_source": lock.python_source, "conda_via": lock.conda_via}
    lines = [f"{env.name}:{env.version}  lock {lock.lock_hash}" + ("" if not resolved else "  (new: not built yet)"),
             f"  python {lock.python} on {lock.platform}, resolved by {lock.resolver} at {lock.created_at}",
             f"  indexes: {', '.join(lock.indexes)}"]
    lines += [f"  conda {c.name}={c.version}={c.build}  {c.channel}  sha256:{c.sha256}" for c in lock.conda]
    lines += [f"  {p.name}=={p.version}  {p.hashes[0] if p.hashes else ''}" for p in lock.packages]
    st.out.emit("env.lock", data, "\n".join(lines))
