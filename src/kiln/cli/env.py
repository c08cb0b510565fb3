"""``kiln env``: scaffold, register, list, show, download, diff, build, lock, python, kernel."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.cli.failures import UsageError
from kiln.cli.parser import choice
from kiln.cli.render import build_text, parse_ref, python_output

if TYPE_CHECKING:
    from kiln.builds.builder import BuildResult
    from kiln.cli.context import CliState
    from kiln.cli.parser import Commands
    from kiln.environment.environment import Environment

__all__ = ["add_commands", "parse_ref"]

REF_HELP = "Environment, latest version by default."

#: the format registry's names (kiln.environment.formats.registry.FORMATS; a test keeps them equal), spelled
#: out so that parsing a command imports no format
DOWNLOAD_FORMATS = ("azureml-v1", "azureml-v2", "conda", "requirements")


def add_commands(commands: Commands) -> None:
    p = commands.add("scaffold", scaffold, help="Write a new Azure ML v1 environment folder with Kiln's defaults, "
                                                "to edit and register.",
                     example="kiln env scaffold --name train --directory ./train-env")
    p.add_argument("-n", "--name", metavar="NAME", required=True, help="Environment name.")
    p.add_argument("-d", "--directory", metavar="PATH", type=Path, required=True, help="Folder to write.")
    p.add_argument("--overwrite", action="store_true", help="Replace existing files.")

    p = commands.add("register", register, help="Register an environment definition: a new version only when it "
                                                "changed.",
                     example="kiln env register -d environment.yml\nkiln env register -d requirements.txt -n serve")
    p.add_argument("-d", "--directory", metavar="PATH", type=Path, required=True,
                   help="A v1 folder, a v2 YAML, a conda file or a requirements file (detected by content).")
    p.add_argument("-n", "--name", metavar="NAME", help="Environment name (overrides the file's; required for a "
                                                        "requirements file).")
    p.add_argument("--format", metavar="FORMAT", help="azureml-v1, azureml-v2, conda or requirements "
                                                      "(default: detected).")

    p = commands.add("list", list_, help="List environments (latest version of each, curated included), or every "
                                         "version of one name.",
                     example="kiln env list\nkiln env list --name train -o json")
    p.add_argument("-n", "--name", metavar="NAME", help="Only this name, all its versions.")

    p = commands.add("show", show, help="Show a registered or curated environment: packages, docker, variables "
                                        "and its hash.",
                     example="kiln env show train:2")
    p.add_argument("ref", metavar="NAME[:VERSION]", help=REF_HELP)

    p = commands.add("download", download, help="Write a registered environment to files.",
                     example="kiln env download -n train -v 2 -d ./out --format conda")
    p.add_argument("-n", "--name", metavar="NAME", required=True, help="Environment name.")
    p.add_argument("-d", "--directory", metavar="PATH", type=Path, required=True, help="Folder to write into.")
    p.add_argument("-v", "--version", metavar="VERSION", help="Version (default: latest).")
    p.add_argument("--overwrite", action="store_true", help="Replace existing files.")
    p.add_argument("--format", metavar="FORMAT", type=choice(*DOWNLOAD_FORMATS, name="format"), default="azureml-v1",
                   help="azureml-v1 (a folder; the default), azureml-v2 (env.yml), conda (environment.yml) or "
                        "requirements (requirements.txt).")

    p = commands.add("diff", diff, help="Show what changed between two environment versions, section by section.",
                     example="kiln env diff train:1 train:2\nkiln env diff train:1 2")
    p.add_argument("old", metavar="NAME:V1", help="The older definition.")
    p.add_argument("new", metavar="NAME:V2", help="The newer definition (or just V2).")

    p = commands.add("build", build_cmd, help="Build an environment from its lock (resolving one the first time); "
                                              "a cached build is instant.",
                     example="kiln env build train\nkiln env build train:2 --upgrade")
    p.add_argument("ref", metavar="NAME[:VERSION]", help=REF_HELP)
    p.add_argument("--upgrade", action="store_true", help="Resolve again, taking newer releases of unpinned "
                                                          "packages: makes a new lock and shows what changed.")
    p.add_argument("--locked", action="store_true", help="Fail instead of resolving when the environment has no "
                                                         "lock (its definition changed since).")
    p.add_argument("--conda-via", metavar="HOW", help="Conda packages through conda (py-rattler), pypi (their PyPI "
                                                      "names, with uv) or auto (default; also KILN_CONDA_VIA).")

    p = commands.add("python", python_cmd, help="Print the interpreter path of the built environment (building it "
                                                "first if needed).",
                     example='kiln env python train\n"$(kiln env python train)" -c "import sklearn"')
    p.add_argument("ref", metavar="NAME[:VERSION]", help=REF_HELP)

    p = commands.add("kernel", kernel_cmd, help="Register the built environment as a Jupyter kernel (building it "
                                                "first if needed); it needs ipykernel in the environment.",
                     example="kiln env kernel train\nkiln env kernel train:2 --prefix .venv --display-name 'Train'")
    p.add_argument("ref", metavar="NAME[:VERSION]", help=REF_HELP)
    p.add_argument("--name", dest="kernel_name", metavar="KERNEL", help="Kernel name (default: kiln-NAME-VERSION).")
    p.add_argument("--display-name", metavar="TEXT", help="Name shown in Jupyter (default: Python X.Y (Kiln "
                                                          "NAME:VERSION)).")
    p.add_argument("--prefix", metavar="PATH", type=Path, help="Install under PATH/share/jupyter/kernels (e.g. the "
                                                               "virtual environment Jupyter runs from) instead of "
                                                               "the user's Jupyter data folder.")

    p = commands.add("lock", lock_cmd, help="Show the lock an environment builds from: exact versions, artifact "
                                            "hashes, indexes.",
                     example="kiln env lock train\nkiln env lock train:2 --history")
    p.add_argument("ref", metavar="NAME[:VERSION]", help=REF_HELP)
    p.add_argument("--locked", action="store_true", help="Fail if the environment has no lock (its definition "
                                                          "changed since its last lock).")
    p.add_argument("--history", action="store_true", help="Every lock this version had, oldest first.")


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
        "base_image": env.docker.base_image, "recreation_of": env.tags.get("kiln.recreation-of"),
    }


def scaffold(st: CliState, args: Namespace) -> None:
    from kiln.environment.environment import Environment

    name, directory = args.name, args.directory
    env = Environment(name)
    env.save_to_directory(directory, overwrite=args.overwrite)
    files = sorted(p.name for p in directory.iterdir() if p.name in (
        "azureml_environment.json", "conda_dependencies.yml", "BaseDockerfile"))
    st.out.emit("env.scaffold", {"name": name, "directory": str(directory.resolve()), "files": files},
                f"Wrote environment {name!r} to {directory}: {', '.join(files)}\n"
                f"Edit the files, then: kiln env register -d {directory}")


def register(st: CliState, args: Namespace) -> None:
    from kiln.environment.formats.detect import load_any, resolve_input
    from kiln.environment.names import check_user_name
    from kiln.errors import DefinitionError, FormatError

    directory, name = args.directory, args.name
    if name is not None:  # the option is at fault, not the file
        check_user_name(name)
    env = load_any(directory, name=name, format=args.format)
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


def list_(st: CliState, args: Namespace) -> None:
    ws = st.workspace()
    name = args.name
    envs = ws.environment_versions(name) if name else list(ws.list_environments().values())
    rows = [[e.name, e.version or "-", _python_of(e), str(len(e.python.conda_dependencies.pip_packages)
                                                          if e.python.conda_dependencies else 0), e.hash[:12]]
            for e in envs]
    st.out.table("env.list", [_summary(e) for e in envs], ["name", "version", "python", "pip", "hash"], rows)


def show(st: CliState, args: Namespace) -> None:
    name, version = parse_ref(args.ref)
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
    recreation = env.tags.get("kiln.recreation-of")
    if recreation:  # said plainly: this is Kiln's re-creation, not Azure's own environment
        lines.append(f"  re-creation  Kiln's re-creation of Azure ML's curated environment {recreation}")
        lines.append(f"  from         {env.tags.get('kiln.recreation-source', '-')}")
        lines.append(f"  left out     {env.tags.get('kiln.recreation-omits', '-')}")
    tags = {k: v for k, v in env.tags.items() if not k.startswith("kiln.recreation-")}
    if tags:
        lines.append("  tags         " + ", ".join(f"{k}={v}" for k, v in tags.items()))
    if env.python.conda_dependencies is not None:
        lines.append("  conda file:")
        lines += ["    " + line for line in env.python.conda_dependencies.serialize_to_string().splitlines()]
    if d.base_dockerfile:
        lines.append("  base Dockerfile:")
        lines += ["    " + line for line in d.base_dockerfile.splitlines()]
    return "\n".join(lines)


def download(st: CliState, args: Namespace) -> None:
    from kiln.environment.formats.export import export

    fmt = args.format
    env = st.workspace().get_environment(args.name, args.version)
    files = export(env, args.directory, fmt, overwrite=args.overwrite)
    st.out.emit("env.download", {"name": env.name, "version": env.version, "format": fmt,
                                 "files": [str(f) for f in files]},
                f"Wrote {env.name}:{env.version} ({fmt}) to " + ", ".join(str(f) for f in files))


def diff(st: CliState, args: Namespace) -> None:
    from kiln.environment.diff import diff_environments

    old, new = args.old, args.new
    ws = st.workspace()
    old_name, old_version = parse_ref(old)
    new_name, new_version = parse_ref(new) if ":" in new or not (new.isascii() and new.isdigit()) else (old_name, new)
    result = diff_environments(ws.get_environment(old_name, old_version), ws.get_environment(new_name, new_version))
    lines = [f"--- {result.old}  (hash {result.old_hash[:12]})", f"+++ {result.new}  (hash {result.new_hash[:12]})"]
    lines += [str(c) for c in result.changes] or ["no differences"]
    lines.append("same build: the changes don't change what is built" if result.same_build
                 else "different build: the build identity changed")
    st.out.emit("env.diff", result.to_dict(), "\n".join(lines))


def _build(st: CliState, ref: str, *, upgrade: bool = False, locked: bool = False, quiet: bool = False,
           conda_via: str | None = None) -> BuildResult:
    """Build ``ref``. A cache hit is answered first without the builder's heavier machinery (and without rich):
    it is the hot path (aim: the whole process in 0.15 s); a miss then builds, once."""
    import sys
    from dataclasses import replace

    from kiln.builds.builder import cached_build

    if conda_via is not None:
        from kiln.settings import CONDA_VIA

        if conda_via not in CONDA_VIA:
            raise UsageError(f"{conda_via!r} is not one of {', '.join(CONDA_VIA)}", hint="--conda-via")
        st.settings = replace(st.settings, conda_via=conda_via)
    name, version = parse_ref(ref)
    ws = st.workspace()
    env = ws.get_environment(name, version)
    label = f"{env.name}:{env.version}"
    quiet = quiet or st.json_mode
    if not upgrade:
        lines: list[str] = []
        hit = cached_build(env, ws, settings=st.settings,
                           progress=lambda phase, message: lines.append(f"{label}: {message}\n"))
        if hit is not None:
            if not quiet and not sys.stderr.isatty():  # the lines a build prints, without a progress bar
                sys.stderr.write("".join(lines))
            return hit
    from kiln.builds import build
    from kiln.cli.progress import build_progress

    with build_progress(label, quiet=quiet) as progress:
        return build(env, ws, settings=st.settings, upgrade=upgrade, locked=locked, progress=progress)


def build_cmd(st: CliState, args: Namespace) -> None:
    if args.upgrade and args.locked:
        raise UsageError("--upgrade and --locked exclude each other", hint="--upgrade")
    result = _build(st, args.ref, upgrade=args.upgrade, locked=args.locked, conda_via=args.conda_via)
    st.out.emit("env.build", result.to_dict(), build_text(result, upgrade=args.upgrade))


def python_cmd(st: CliState, args: Namespace) -> None:
    result = _build(st, args.ref, quiet=True)
    st.out.emit("env.python", *python_output(result))


def kernel_cmd(st: CliState, args: Namespace) -> None:
    from kiln.builds.kernel import install_kernel

    result = _build(st, args.ref, quiet=True)
    spec = install_kernel(result, name=args.kernel_name, display_name=args.display_name, prefix=args.prefix)
    st.out.emit("env.kernel", {"name": spec.name, "path": str(spec.path), "display_name": spec.display_name,
                               "python": str(spec.python), "environment": result.environment},
                f"Kernel {spec.name!r} ({spec.display_name}) written to {spec.path / 'kernel.json'}\n"
                f"Pick it in Jupyter, or: jupyter console --kernel {spec.name}")


def lock_cmd(st: CliState, args: Namespace) -> None:
    from kiln.builds.builder import lock_environment
    from kiln.builds.lock import Lock

    name, version = parse_ref(args.ref)
    ws = st.workspace()
    env = ws.get_environment(name, version)
    if args.history:
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
    _, lock, _, resolved = lock_environment(env, ws, settings=st.settings, locked=args.locked)
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
