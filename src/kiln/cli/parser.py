"""The ``kiln`` command line, on argparse: one parser for every command.

argparse is the standard library's: importing it costs a few milliseconds where typer (click and
pydantic) cost ~80 ms, more than a whole cache-hit ``kiln env build``. Each noun module
(``kiln.cli.env``, ``kiln.cli.run``, ...) adds its commands with ``add_commands(commands)``; a command is
a function ``handler(state, args) -> exit code | None`` set as the parser's ``handler`` default.

The global options (``-w/--workspace``, ``-o/--output``, ``--traceback``) are accepted before the noun,
after it and after the command: every parser gets them, with no default (``SUPPRESS``), so that an
option given in one place is not reset by the parser of another.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from kiln.cli.failures import UsageError

if TYPE_CHECKING:
    from kiln.cli.context import CliState

__all__ = ["OUTPUTS", "Handler", "KilnParser", "build_parser", "choice", "commands", "noun_of", "parse"]

OUTPUTS = ("text", "json")
Handler = Callable[["CliState", argparse.Namespace], "int | None"]


def choice(*values: str, name: str = "") -> Callable[[str], str]:
    """An argparse ``type`` accepting one of ``values``: the error names the value and the choices."""

    def check(value: str) -> str:
        if value not in values:
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(values)}")
        return value

    check.__name__ = name or "value"
    return check


class HelpFormatter(argparse.HelpFormatter):
    """Help screens as the README shows them: ``Usage: kiln env show [OPTIONS] NAME[:VERSION]``, options as
    ``-w, --workspace PATH``, and the description and the example kept as written (line breaks included)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=_width())

    def _format_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None) -> str:
        words = [self._prog, "[OPTIONS]"]
        for action in actions:
            if action.option_strings or action.help == argparse.SUPPRESS:
                continue
            metavar = self._metavar_formatter(action, action.dest.upper())(1)[0]
            if action.nargs == argparse.OPTIONAL:
                metavar = f"[{metavar}]"
            elif action.nargs in (argparse.ZERO_OR_MORE, argparse.REMAINDER):
                metavar = f"[{metavar}...]"
            elif action.nargs == argparse.PARSER:
                metavar = f"{metavar} ..."
            words.append(metavar)
        return "Usage: " + " ".join(words) + "\n\n"

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return ", ".join(action.option_strings) + " " + self._format_args(action, action.dest.upper())

    def _format_action(self, action: argparse.Action) -> str:
        if isinstance(action, argparse._SubParsersAction):  # the commands, without a "COMMAND" line above them
            return "".join(self._format_action(sub) for sub in action._get_subactions())
        return super()._format_action(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "".join(indent + line for line in text.splitlines(keepends=True))


def _width() -> int:
    import os
    import shutil

    return min(int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else
               shutil.get_terminal_size().columns, 120) - 2


class KilnParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are ``UsageError`` (exit 1, one line, through the error policy)
    instead of printing usage and exiting 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # --exp is not --experiment: a typo must not pick an option
        super().__init__(*args, **kwargs)
        self._positionals.title = "arguments"

    def error(self, message: str) -> NoReturn:
        raise UsageError(_reword(message), prog=self.prog)


def _reword(message: str) -> str:
    """argparse's ``argument -o/--output: ...`` as ``--output: ...``; an unknown command as such."""
    command = re.fullmatch(r"argument COMMAND: invalid choice: ('[^']*') \(choose from (.*)\)", message)
    if command:
        return f"no such command {command.group(1)} (commands: {command.group(2).replace(chr(39), '')})"
    named = re.fullmatch(r"argument (\S+): (.*)", message, flags=re.S)
    if named:
        return f"{max(named.group(1).split('/'), key=len)}: {named.group(2)}"
    return message


def _global_options() -> KilnParser:
    """The options every command takes, wherever they are typed (no defaults here: see the module doc)."""
    from kiln.settings import ENV_DEBUG, ENV_WORKSPACE

    common = KilnParser(add_help=False)
    group = common.add_argument_group("global options")
    group.add_argument("-w", "--workspace", metavar="PATH", default=argparse.SUPPRESS,
                       help=f"Workspace folder or config file (default: ${ENV_WORKSPACE}, else found from "
                            ".kiln/config.json upward, else the user's default).")
    group.add_argument("-o", "--output", metavar="FORMAT", type=choice(*OUTPUTS, name="output"),
                       default=argparse.SUPPRESS, help="text (default) or json: {\"kiln\": 1, \"kind\", \"data\"}.")
    group.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                       help=f"Show the traceback of an error (also ${ENV_DEBUG}=1).")
    return common


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import sys

        from kiln import __version__

        sys.stdout.write(f"kiln {__version__}\n")
        parser.exit(0)


class Commands:
    """The commands of one noun: ``commands.add(name, handler, help=..., example=...)`` returns the command's
    parser, to add its arguments to."""

    def __init__(self, action: Any, common: KilnParser) -> None:
        self._action = action
        self._common = common

    def add(self, name: str, handler: Handler, *, help: str, description: str = "", example: str,
            passthrough: bool = False) -> KilnParser:
        parser: KilnParser = self._action.add_parser(name, help=help, description=description or help,
                                                     epilog=_example(example), parents=[self._common])
        parser.set_defaults(handler=handler, parser=parser, passthrough=passthrough)
        return parser


def _example(text: str) -> str:
    return "Example:\n" + "".join(f"  {line}\n" for line in text.strip("\n").splitlines())


#: the nouns: their module (which adds the commands), summary and example. A noun's module is imported, and its
#: commands built, only when the command line names it (or for the whole tree: ``build_parser(None)``)
NOUNS: dict[str, tuple[str, str, str]] = {
    "workspace": ("kiln.cli.workspace", "Create and inspect workspaces.",
                  "kiln workspace create proj -d ./ws\nkiln workspace show"),
    "env": ("kiln.cli.env", "Define, register and inspect environments.",
            "kiln env register -d environment.yml\nkiln env list\nkiln env build train"),
    "run": ("kiln.cli.run", "Submit training runs and watch them.",
            "kiln run submit train.py --env train -- --epochs 3\nkiln run list"),
    "model": ("kiln.cli.model", "Register and fetch models.",
              "kiln model register model.pkl -n forest\nkiln model list"),
    "service": ("kiln.cli.service", "Deploy models as local web services and call them.",
                "kiln service deploy --entry-script score.py -m forest\nkiln service call forest -d @request.json"),
    "compute": ("kiln.cli.compute", "Attach Ray clusters to the workspace as compute targets.",
                "kiln compute attach ray ray-dev --address http://127.0.0.1:8265\nkiln compute list"),
    "image": ("kiln.cli.image", "Write environments' OCI images from their locked builds (no daemon).",
              "kiln image build train --tar train.tar\nkiln image list"),
    "cache": ("kiln.cli.cache", "Inspect and prune the build cache.",
              "kiln cache du\nkiln cache prune --max-size 5G --dry-run"),
    "studio": ("kiln.cli.studio", "Serve the studio: a web UI over the workspace (127.0.0.1:8790).",
               "kiln studio\nkiln studio --port 9000 --read-only\n"
               "kiln studio --host 0.0.0.0 --token '${STUDIO_TOKEN}'"),
}
_VALUED = ("-w", "--workspace", "-o", "--output")
#: nouns with no commands of their own (``kiln studio [OPTIONS]``): their module's ``add_options(parser)``
#: adds the options and returns the handler
_COMMAND_NOUNS = ("studio",)


def noun_of(argv: Sequence[str]) -> str | None:
    """The noun the command line names (the first word that is neither a global option nor its value)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _VALUED:
            skip = True
        elif token == "--":
            return None
        elif not token.startswith("-"):
            return token
    return None


def build_parser(noun: str | None = None, *, every: bool = False) -> KilnParser:
    """The ``kiln`` command: global options and nouns, with the commands of ``noun`` (of all nouns: ``every``)."""
    import importlib

    common = _global_options()
    root = KilnParser(prog="kiln", parents=[common],
                      description="Kiln: define, register, build and use software environments for machine "
                                  "learning.",
                      epilog=_example("kiln workspace create proj\nkiln env register -d environment.yml\n"
                                      "kiln env build train\nkiln run submit train.py --env train"))
    root.add_argument("--version", action=_Version, help="Show Kiln's version.")
    root.set_defaults(handler=None, parser=root)
    nouns = root.add_subparsers(metavar="COMMAND", title="commands", prog="kiln")
    for name, (module, summary, example) in NOUNS.items():
        parser = nouns.add_parser(name, help=summary, description=summary, epilog=_example(example),
                                  parents=[common])
        parser.set_defaults(handler=None, parser=parser)
        if (every or name == noun) and name in _COMMAND_NOUNS:  # a noun that is itself the command
            parser.set_defaults(handler=importlib.import_module(module).add_options(parser))
        elif every or name == noun:
            commands = Commands(parser.add_subparsers(metavar="COMMAND", title="commands", prog=parser.prog), common)
            importlib.import_module(module).add_commands(commands)
    return root


def parse(parser: KilnParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``. A command that passes arguments through (``run submit SCRIPT [ARGS...] [-- ARGS]``)
    gets everything after the first ``--`` as it is, and positionals between its options in order."""
    args = list(argv)
    head = args[: args.index("--")] if "--" in args else args
    ns, extra = parser.parse_known_args(head)
    if getattr(ns, "passthrough", False):
        command: KilnParser = ns.parser
        before = [*ns.args, *extra]  # positionals between options, in order
        bad = next((a for a in before if a.startswith("-") and a != "-"), None)
        if bad is not None:
            # argparse takes -5 for a value: click did not, and a script's own options belong after --
            raise UsageError(f"no such option: {bad} (the script's own options go after --)", prog=command.prog)
        ns.args = [*before, *args[len(head) + 1:]]
        return ns
    if len(head) != len(args):
        ns, extra = parser.parse_known_args(args)  # no pass-through: "--" means what argparse makes of it
    if extra:
        raise UsageError(f"no such option: {extra[0]}" if extra[0].startswith("-") else
                         f"unexpected argument: {extra[0]}", prog=ns.parser.prog)
    return ns


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                            argparse.ArgumentParser]]:
    """Every command of ``parser`` (nouns included) with its path: ``(), ("env",), ("env", "build"), ...``."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))
