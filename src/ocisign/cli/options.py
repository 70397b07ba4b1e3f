"""Command-line options shared by the commands that talk to registries (sign, list, inspect,
verify, cp, login), and the function that turns them into :class:`ocisign.types.RemoteOptions`;
also the common options every command takes (:func:`add_common_options`) and the subcommand
helper. This module sits below :mod:`ocisign.cli.app` and :mod:`ocisign.cli.context` and imports
neither, so the CLI has no import cycle.

Flag names follow notation and oras, with one deliberate difference: ``-p`` already means
``--plugin-module`` on sign/list/inspect/verify/cp, so their password flag is ``-P/--password``
(notation and oras use ``-p``); prefer ``--password-stdin``, or ``ocisign login``, where ``-p``
is the password as in ``notation login -u USER -p PASSWORD``.

Transport security:

* TLS with certificate verification by default; ``--ca-file FILE`` trusts an extra CA.
* ``--insecure`` (oras): TLS without certificate verification.
* ``--plain-http`` (oras) / ``--insecure-registry`` (notation): plain HTTP.
* ``localhost``, ``127.0.0.1`` and ``[::1]`` (any port) use plain HTTP by default, as notation
  and oras do for localhost, unless ``--ca-file`` or ``--insecure`` asks for TLS.
"""

from __future__ import annotations

import sys

from ocisign.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:  # argparse is imported where a parser is built (a fast-parsed cp never builds one)
    import argparse
    from collections.abc import Callable
    from typing import IO

    from ocisign.types import Credentials, RemoteOptions

DEFAULT_CONCURRENCY = 4
_PASSWORD_ATTR = "_ocisign_password_stdin"


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def _positive_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def add_credential_options(group: argparse._ArgumentGroup, *, short_p: bool = False) -> None:
    """``-u/--username``, ``-P/--password`` (also ``-p`` with ``short_p``), ``--password-stdin``."""
    group.add_argument("-u", "--username", metavar="USER", help="registry user name")
    group.add_argument(*(("-p",) if short_p else ()), "-P", "--password", metavar="PASSWORD",
                       help="registry password or identity token (insecure: prefer --password-stdin)")
    group.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def add_transport_options(group: argparse._ArgumentGroup) -> None:
    """``--insecure-registry``, ``--plain-http``, ``--insecure``, ``--ca-file``, ``--timeout``."""
    group.add_argument("--insecure-registry", action="store_true",
                       help="use plain HTTP (notation's flag; only for testing)")
    group.add_argument("--plain-http", action="store_true", help="use plain HTTP (oras's flag; only for testing)")
    group.add_argument("--insecure", action="store_true", help="use TLS without verifying the registry certificate")
    group.add_argument("--ca-file", metavar="FILE", help="also trust the CA certificates in this PEM file")
    group.add_argument("--timeout", type=_positive_float, default=30.0, metavar="SECONDS",
                       help="network timeout per read (default 30)")


def add_remote_options(parser: argparse.ArgumentParser, *, concurrency: bool = False) -> None:
    """Add the registry options to a command's parser."""
    g = parser.add_argument_group(
        "registry options",
        "localhost, 127.0.0.1 and [::1] use plain HTTP unless --ca-file or --insecure is given",
    )
    add_credential_options(g)
    add_transport_options(g)
    if concurrency:
        g.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
                       help=f"parallel blob transfers (default {DEFAULT_CONCURRENCY})")


def read_password(args: argparse.Namespace, *, stdin: IO[str] | None = None) -> str | None:
    """The password from ``--password`` or ``--password-stdin`` (read once), else None."""
    password: str | None = getattr(args, "password", None)
    if getattr(args, "password_stdin", False):
        if password is not None:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        cached = getattr(args, _PASSWORD_ATTR, None)
        if cached is None:
            stream = stdin or sys.stdin
            line = stream.readline()
            cached = line.rstrip("\r\n")
            if not cached:
                raise UsageError("--password-stdin: no password on standard input")
            setattr(args, _PASSWORD_ATTR, cached)
        return str(cached)
    if password is not None and not getattr(args, "_ocisign_password_warned", False):
        print("Warning: using --password on the command line is insecure; use --password-stdin",
              file=sys.stderr)
        args._ocisign_password_warned = True
    return password


def remote_options_from_args(
    args: argparse.Namespace,
    *,
    credential_lookup: Callable[[str], Credentials | None] | None = None,
) -> RemoteOptions:
    """RemoteOptions from the registry options in ``args`` (missing attributes take defaults)."""
    from ocisign.types import RemoteOptions

    username = getattr(args, "username", None)
    password = read_password(args)
    if password is not None and not username:
        raise UsageError("a password needs a user name (-u/--username)")
    if username and password is None:
        raise UsageError("-u/--username needs -P/--password or --password-stdin")
    plain = bool(getattr(args, "plain_http", False) or getattr(args, "insecure_registry", False))
    insecure = bool(getattr(args, "insecure", False))
    ca_file = getattr(args, "ca_file", None)
    if plain and (insecure or ca_file):
        raise UsageError("--plain-http/--insecure-registry cannot be combined with --insecure or --ca-file")
    return RemoteOptions(
        plain_http=plain,
        insecure=insecure,
        ca_file=ca_file,
        username=username,
        password=password,
        concurrency=int(getattr(args, "concurrency", DEFAULT_CONCURRENCY) or DEFAULT_CONCURRENCY),
        timeout=float(getattr(args, "timeout", 30.0) or 30.0),
        progress=bool(getattr(args, "progress", False)),
        credential_lookup=credential_lookup,
    )


def parse_key_values(items: list[str], *, flag: str) -> dict[str, str]:
    """``k=v`` strings to a dict; keys must be non-empty and unique."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        if key in out:
            raise UsageError(f"{flag}: key {key!r} given more than once")
        out[key] = value
    return out


def parse_user_metadata(items: list[str]) -> dict[str, str]:
    """``-m k=v`` pairs (keys non-empty and unique; reserved ``io.cncf.notary`` keys refused)."""
    from ocisign.envelope.payload import check_user_metadata

    out = parse_key_values(items, flag="--user-metadata")
    check_user_metadata(out)
    return out


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


def subcommand_adder(
    parser: argparse.ArgumentParser, *, dest: str
) -> Callable[..., argparse.ArgumentParser]:
    """``new(name, help_text, aliases=())`` adding a required subcommand that takes the common options."""
    sub = parser.add_subparsers(dest=dest, metavar="SUBCOMMAND", required=True)

    def new(name: str, help_text: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        add_common_options(p, top=False)
        return p

    return new
