"""The ``kiln`` command: global options, error handling, and the nouns (one module each)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from kiln.cli import cache as cache_cmd
from kiln.cli import env as env_cmd
from kiln.cli import model as model_cmd
from kiln.cli import run as run_cmd
from kiln.cli import service as service_cmd
from kiln.cli import workspace as workspace_cmd
from kiln.cli.context import CliState

__all__ = ["app", "main"]

app = typer.Typer(
    name="kiln",
    help="Kiln: define, register, build and use software environments for machine learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(env_cmd.app, name="env")
app.add_typer(workspace_cmd.app, name="workspace")
app.add_typer(run_cmd.app, name="run")
app.add_typer(model_cmd.app, name="model")
app.add_typer(service_cmd.app, name="service")
app.add_typer(cache_cmd.app, name="cache")


def _version(value: bool) -> None:
    if value:
        from kiln import __version__

        typer.echo(f"kiln {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", envvar="KILN_WORKSPACE",
                                                  help="Workspace folder or config file (default: found from "
                                                       ".kiln/config.json upward, else the user's default).")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    traceback: Annotated[bool, typer.Option("--traceback", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show Kiln's version.")] = False,
) -> None:
    from kiln.settings import Settings

    if output not in ("text", "json"):
        raise typer.BadParameter(f"{output!r} is not one of text, json", param_hint="--output")
    ctx.obj = CliState(settings=Settings.from_env(workspace=workspace), json_mode=output == "json",
                       traceback=traceback)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: exit 0 ok, 1 user error (one line on stderr), 2 internal error."""
    from kiln.errors import KilnError

    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args or os.environ.get("KILN_DEBUG", "") not in ("", "0")
    try:
        code = app(args=args, prog_name="kiln", standalone_mode=False)
    except typer.TyperException as e:  # bad usage is a user error: exit 1, not click's 2, on one line
        ctx = getattr(e, "ctx", None)
        where = ctx.command_path if ctx is not None else "kiln"
        sys.stderr.write(f"kiln: error: {e.format_message()} (see: {where} --help)\n")
        return _exit(1)
    except typer.Abort:
        sys.stderr.write("kiln: aborted\n")
        return _exit(1)
    except KilnError as e:
        if show_tb:
            raise
        from kiln.cli.render import error_text

        sys.stderr.write(error_text(e))
        return _exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("kiln: interrupted\n")
        return _exit(130)
    except Exception as e:
        if show_tb:
            raise
        sys.stderr.write(f"kiln: internal error: {type(e).__name__}: {e} (run with --traceback for details)\n")
        return _exit(2)
    return _exit(code if isinstance(code, int) else 0)


def _exit(code: Any) -> Any:
    sys.exit(code)
