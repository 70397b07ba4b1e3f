"""Command-line entry point: ``ocisign`` and ``python -m ocisign``.

Start-up is kept fast: only the module of the command being run is imported (see
:data:`COMMANDS`), and command modules import heavy libraries (cryptography, cbor2, urllib3)
inside their ``run`` functions. Each command module provides::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace, ctx: ocisign.cli.context.CliContext) -> int: ...
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: --version never does (mypy reads it alike)
if TYPE_CHECKING:  # argparse and typing are imported only when a parser is built (not for --version)
    import argparse
    from collections.abc import Sequence
    from typing import NoReturn, Protocol

    class CommandModule(Protocol):
        """Shape of an ``ocisign.cli.commands.*`` module."""

        def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

        def run(self, args: argparse.Namespace, ctx: object) -> int: ...


#: command -> (module, one-line help, aliases)
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sign": ("ocisign.cli.commands.sign", "Sign an artifact in an OCI layout or a registry", ()),
    "verify": ("ocisign.cli.commands.verify", "Verify the signatures of an artifact against the trust policy", ()),
    "list": ("ocisign.cli.commands.list", "List the signatures of an artifact", ("ls",)),
    "inspect": ("ocisign.cli.commands.inspect", "Inspect the signatures of an artifact", ()),
    "cert": ("ocisign.cli.commands.cert", "Manage certificates in the trust store", ("certificate",)),
    "key": ("ocisign.cli.commands.key", "Manage signing keys", ()),
    "policy": ("ocisign.cli.commands.policy", "Manage the trust policy", ()),
    "cp": ("ocisign.cli.commands.cp", "Copy an artifact and its signatures between layouts and registries", ("copy",)),
    "login": ("ocisign.cli.commands.login", "Log in to a registry", ()),
    "logout": ("ocisign.cli.commands.login", "Log out from a registry", ()),
    "layout": ("ocisign.cli.commands.layout", "Check, extract and pack OCI layouts", ()),
    "plugin": ("ocisign.cli.commands.plugin", "List plugins; install and uninstall notation plugins", ()),
    "hook": ("ocisign.cli.commands.hook", "Run a pre-commit hook over file names", ()),
    "completion": ("ocisign.cli.commands.completion", "Print a shell completion script (bash, zsh, fish, powershell)",
                   ()),
    "demo": ("ocisign.cli.commands.demo", "Run the whole workflow on a hello-world image with a throw-away config", ()),
    "version": ("ocisign.cli.commands.version", "Show the version", ()),
}
ALIASES = {alias: name for name, (_, _, aliases) in COMMANDS.items() for alias in aliases}


def _find_command(argv: Sequence[str]) -> str | None:
    takes_value = {"-p", "--plugin-module", "--config-dir", "--project-config"}
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok in takes_value:
            skip = True
            continue
        if tok.startswith("-"):
            continue
        return ALIASES.get(tok, tok)
    return None


def _print_version() -> None:
    import ocisign

    print(f"ocisign {ocisign.__version__}")


def _version_action() -> type[argparse.Action]:
    """``--version``: the version is read from the package metadata only when asked for."""
    import argparse

    class VersionAction(argparse.Action):
        def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                     default: str = argparse.SUPPRESS, help: str | None = None) -> None:
            super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                     values: object, option_string: str | None = None) -> None:
            _print_version()
            parser.exit()

    return VersionAction


_PARSER_CLASS: type[argparse.ArgumentParser] | None = None


def _parser_class() -> type[argparse.ArgumentParser]:
    """argparse with ocisign's error format: the usage line, then ``Error: <message>`` (exit 2).

    Subcommand parsers are of this class too (argparse creates them with the parent's class).
    Built on first use, so that ``--version`` does not import argparse.
    """
    global _PARSER_CLASS
    if _PARSER_CLASS is None:
        import argparse

        from ocisign.errors import ExitCode, error_line

        class Parser(argparse.ArgumentParser):
            def _get_formatter(self) -> argparse.HelpFormatter:
                # argparse makes a formatter for every add_argument; its default width comes from
                # shutil.get_terminal_size, and importing shutil (with bz2, lzma, zlib) is a third of
                # argparse's cost: the same width, computed without it
                return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)  # type: ignore[call-arg]

            def error(self, message: str) -> NoReturn:
                """Print the usage and the error line (with a "did you mean" for a mistyped choice); exit 2."""
                self.print_usage(sys.stderr)
                self.exit(int(ExitCode.USAGE), error_line(message + _choice_hint(message)) + "\n")

        _PARSER_CLASS = Parser
    return _PARSER_CLASS


_COLUMNS: list[int] = []


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (``$COLUMNS``, else stdout's terminal, else 80);
    computed once per parser build (argparse asks for every argument)."""
    if _COLUMNS:
        return _COLUMNS[0]
    import os

    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    _COLUMNS.append(columns)
    return columns


def _choice_hint(message: str) -> str:
    """``; did you mean 'add'?`` for argparse's ``invalid choice: 'ad' (choose from 'add', …)``."""
    import re

    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)\Z", message)
    if not m:
        return ""
    import difflib

    choices = re.findall(r"'([^']*)'", m.group(2)) or [c.strip() for c in m.group(2).split(",")]  # 3.12.8+: bare
    close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def build_parser(command: str | None, *, all_commands: bool = True, examples: bool = True) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its arguments.

    With ``all_commands=False`` (a run of ``command`` that asks for no top-level help) the other
    commands get no subparser at all: each costs an ``ArgumentParser``, and only the top-level
    ``--help`` lists them. ``examples=False`` (a run that prints no help) leaves out the
    ``Example:`` epilogs, which only ``--help`` shows.
    """
    from ocisign.cli.options import add_common_options

    _COLUMNS.clear()  # the terminal width is read once for this parser
    parser = _parser_class()(
        prog="ocisign",
        description="Sign, list, inspect, verify and copy OCI images with Notary Project signatures.",
        epilog="Exit codes: 0 ok, 1 check or operation failed, 2 usage or input error, "
        "3 plugin error, 4 internal error.",
    )
    parser.add_argument("--version", action=_version_action(), help="show program's version number and exit")
    add_common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen: set[str] = set()
    for name, (module_name, help_text, aliases) in COMMANDS.items():
        if not all_commands and name != command:
            continue
        sp = sub.add_parser(name, help=help_text, aliases=list(aliases), description=help_text)
        if name == command and module_name not in seen:
            seen.add(module_name)
            import importlib

            module: CommandModule = importlib.import_module(module_name)
            module.add_arguments(sp)
            add_common_options(sp, top=False, plugin_short=getattr(module, "PLUGIN_SHORT_FLAG", True))
            sp.set_defaults(_module=module_name, _command=name)
            if examples:
                _add_examples(sp, name)
    return parser


def _add_examples(parser: argparse.ArgumentParser, path: str) -> None:
    """Put the ``Example:`` section of :mod:`ocisign.cli.examples` under ``--help`` (subcommands too)."""
    import argparse

    from ocisign.cli.examples import epilog

    text = epilog(path)
    if text:
        parser.epilog = f"{parser.epilog}\n\n{text}" if parser.epilog else text
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            done: set[int] = set()
            for word, sub in action.choices.items():
                if id(sub) not in done:  # aliases share the parser
                    done.add(id(sub))
                    _add_examples(sub, f"{path} {word}")


def _asks_for_help(argv: Sequence[str]) -> bool:
    """True when argparse may print a help text: ``-h``, ``--help`` or an abbreviation of it
    (``--he``), or ``-h`` among combined short flags (``-vh``); some false alarms are harmless."""
    return any(a == "--help" or (len(a) > 3 and "--help".startswith(a))
               or (a.startswith("-") and not a.startswith("--") and "h" in a) for a in argv)


def _fast_args(command: str | None, argv: Sequence[str]) -> argparse.Namespace | None:
    """The arguments of a command line that starts with the command word, parsed by the command
    module's ``fast_parse(rest)`` without building any parser (``cp``: a re-push is mostly
    start-up); None when the module has none or it declines (the parser then decides)."""
    if command is None or not argv or ALIASES.get(argv[0], argv[0]) != command:
        return None
    import importlib

    module_name = COMMANDS[command][0]
    fast_parse = getattr(importlib.import_module(module_name), "fast_parse", None)
    args: argparse.Namespace | None = fast_parse(list(argv[1:])) if fast_parse is not None else None
    if args is not None:
        args.command, args._module, args._command = argv[0], module_name, command
    return args


def unknown_command_message(word: str) -> str | None:
    """``unknown command 'sgin'; did you mean 'sign'?`` for a mistyped command (None: not a command slot)."""
    import difflib

    names = [*COMMANDS, *ALIASES]
    if word in names:
        return None
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown command {word!r}{hint} (see 'ocisign --help' for the list)"


def _tolerate_undecodable_names() -> None:
    """Paths that are not UTF-8 reach us surrogate-escaped: print them back as the original bytes
    (stdout) or escaped (stderr) instead of failing with UnicodeEncodeError under a strict UTF-8 locale."""
    import contextlib

    for stream, real, errors in ((sys.stdout, sys.__stdout__, "surrogateescape"),
                                 (sys.stderr, sys.__stderr__, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)  # only the process's own streams, never a capture
        if stream is real and reconfigure is not None and getattr(stream, "errors", None) == "strict":
            with contextlib.suppress(ValueError, OSError, AttributeError):  # exotic stream replacements
                reconfigure(errors=errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:  # the fast path: no parser, no plugins, not even ocisign.errors
        _print_version()
        return 0  # ExitCode.OK
    import importlib

    from ocisign.errors import ExitCode, OcisignError, error_line

    _tolerate_undecodable_names()
    command = _find_command(args_list)
    if command is not None and command not in COMMANDS:
        message = unknown_command_message(command)
        if message:
            print(error_line(message), file=sys.stderr)
            return int(ExitCode.USAGE)
        command = None
    debug = "-d" in args_list or "--debug" in args_list
    try:
        # the other commands' subparsers and the examples only when help may show them
        helped = _asks_for_help(args_list)
        fast = None if helped else _fast_args(command, args_list)
        if fast is not None:
            args = fast
        else:
            parser = build_parser(command, all_commands=command is None or helped, examples=helped)
            try:
                args, extras = parser.parse_known_args(args_list)
                if extras:  # batch references given between options (``verify A --scope S B``) join the others
                    refs = getattr(args, "references", None)
                    if not isinstance(refs, list) or any(e.startswith("-") for e in extras):
                        parser.error(f"unrecognized arguments: {' '.join(extras)}")  # what parse_args says
                    refs.extend(extras)
            except SystemExit as exc:
                return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
            if getattr(args, "_module", None) is None:
                parser.print_help(sys.stderr if args_list else sys.stdout)
                return ExitCode.USAGE if args_list else ExitCode.OK
        from ocisign.cli.context import CliContext

        ctx = CliContext.from_args(args)
        module: CommandModule = importlib.import_module(args._module)
        try:
            return int(module.run(args, ctx))
        finally:
            ctx.close()
    except OcisignError as exc:
        print(error_line(exc.diagnostics()), file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(error_line("interrupted"), file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.FAILED)
    except Exception as exc:  # a bug: say so in one line, traceback with --debug
        if debug:
            import traceback

            traceback.print_exc()
        print(
            error_line(f"internal error in ocisign {command or ''}: {type(exc).__name__}: {exc} "
                       "(run with --debug for a traceback and please report it)"),
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)
