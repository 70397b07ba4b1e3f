"""Command-line entry point: ``ocisign`` and ``python -m ocisign``.

Start-up is kept fast: only the module of the command being run is imported (see
:data:`COMMANDS`), and command modules import heavy libraries (cryptography, cbor2, urllib3)
inside their ``run`` functions. Each command module provides::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace, ctx: ocisign.cli.context.CliContext) -> int: ...
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import TYPE_CHECKING

from ocisign.errors import ExitCode, OcisignError

if TYPE_CHECKING:  # argparse and typing are imported only when a parser is built (not for --version)
    import argparse
    from collections.abc import Sequence
    from typing import Protocol

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
    "plugin": ("ocisign.cli.commands.plugin", "List loaded plugins", ()),
    "hook": ("ocisign.hooks.precommit", "Run a pre-commit hook over file names", ()),
    "demo": ("ocisign.cli.commands.demo", "Run the whole workflow on a hello-world image with a throw-away config", ()),
    "version": ("ocisign.cli.commands.version", "Show the version", ()),
}
ALIASES = {alias: name for name, (_, _, aliases) in COMMANDS.items() for alias in aliases}


def add_common_options(parser: argparse.ArgumentParser, *, top: bool, plugin_short: bool = True) -> None:
    """Options accepted both before and after the command name.

    ``plugin_short=False`` leaves ``-p`` to the command (``login -p PASSWORD``, as notation);
    ``--plugin-module`` and ``ocisign -p MODULE login`` still work there.
    """
    import argparse

    default = argparse.SUPPRESS
    g = parser.add_argument_group("common options")
    g.add_argument("-d", "--debug", action="store_true", default=False if top else default,
                   help="debug output; tracebacks on internal errors")
    g.add_argument("-v", "--verbose", action="store_true", default=False if top else default,
                   help="verbose output")
    g.add_argument(*(("-p",) if plugin_short else ()), "--plugin-module", dest="plugin_modules", action="append",
                   default=[] if top else default, metavar="MODULE",
                   help="load plugin module MODULE; 'no:NAME' disables plugin NAME (repeatable)")
    g.add_argument("--trace-plugins", action="store_true", default=False if top else default,
                   help="trace hook calls to stderr (also OCISIGN_TRACE_PLUGINS=1)")
    g.add_argument("--config-dir", default=None if top else argparse.SUPPRESS, metavar="DIR",
                   help="configuration directory (default: $OCISIGN_CONFIG_DIR, else $XDG_CONFIG_HOME/ocisign)")
    g.add_argument("--project-config", default=None if top else argparse.SUPPRESS, metavar="FILE",
                   help="project config: ocisign.toml or pyproject.toml with [tool.ocisign] (default: "
                   "$OCISIGN_PROJECT_CONFIG, else found from the working directory upward; 'none' disables)")


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


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its arguments."""
    import argparse

    parser = argparse.ArgumentParser(
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
        sp = sub.add_parser(name, help=help_text, aliases=list(aliases), description=help_text)
        if name == command and module_name not in seen:
            seen.add(module_name)
            module: CommandModule = importlib.import_module(module_name)
            module.add_arguments(sp)
            add_common_options(sp, top=False, plugin_short=getattr(module, "PLUGIN_SHORT_FLAG", True))
            sp.set_defaults(_module=module_name, _command=name)
    return parser


def _tolerate_undecodable_names() -> None:
    """Paths that are not UTF-8 reach us surrogate-escaped: print them back as the original bytes
    (stdout) or escaped (stderr) instead of failing with UnicodeEncodeError under a strict UTF-8 locale."""
    for stream, real, errors in ((sys.stdout, sys.__stdout__, "surrogateescape"),
                                 (sys.stderr, sys.__stderr__, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)  # only the process's own streams, never a capture
        if stream is real and reconfigure is not None and getattr(stream, "errors", None) == "strict":
            with contextlib.suppress(ValueError, OSError, AttributeError):  # exotic stream replacements
                reconfigure(errors=errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--version"]:  # the fast path: no parser, no plugins
        _print_version()
        return int(ExitCode.OK)
    _tolerate_undecodable_names()
    command = _find_command(args_list)
    if command not in COMMANDS:
        command = None
    debug = "-d" in args_list or "--debug" in args_list
    try:
        parser = build_parser(command)
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
        name = command or "ocisign"
        print(f"ocisign {name}: error: {exc.diagnostics()}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("ocisign: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.FAILED)
    except Exception as exc:  # a bug: say so in one line, traceback with --debug
        if debug:
            import traceback

            traceback.print_exc()
        print(
            f"ocisign {command or ''}: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for a traceback and please report it)",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)
