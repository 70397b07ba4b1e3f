"""``ocisign policy``: import, show and initialise the OCI trust policy (like ``notation policy``).

::

    ocisign policy import FILE|- [--force] [--strict]
    ocisign policy show [-o json]
    ocisign policy init --name N --trust-store TYPE:NAME --trusted-identity ID [--scope S]… [--level L] [--force]

The policy in effect is ``trustpolicy.oci.json`` when it exists, else ``trustpolicy.json``
(see :mod:`ocisign.config.trustpolicy`). ``import`` and ``init`` write that same file — so what they
write is always what ``verify`` reads — creating ``trustpolicy.json`` (readable by notation 1.x
and 2.x) when neither exists. The document is validated in full before anything is written
(every problem is listed, exit 2). As in notation, a valid policy in place is replaced with
``--force`` (warning ``existing trust policy configuration file will be overwritten``) or after a
y/N question on a terminal; without a terminal ocisign refuses (exit 2) instead of asking; a
missing or invalid policy is replaced without asking. Success prints notation's ``Trust policy
configuration imported successfully.``; ``show`` prints the file's bytes unchanged. The write is
atomic (temp file in the same directory, fsync, rename). Trust stores the policy names but that
do not exist yet produce a warning. Unknown members are ignored as notation ignores them, with a
warning naming each by JSON path (``import``, ``show``); ``import --strict`` refuses them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ocisign.errors import ConfigError, ExitCode, UsageError, error_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext
    from ocisign.config.trustpolicy import TrustPolicyDocument

MAX_IMPORT_SIZE = 4 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands ``import``, ``show`` and ``init``."""
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    imp = sub.add_parser("import", help="validate a trust policy file and install it")
    imp.add_argument("file", metavar="FILE", help="trust policy JSON file ('-' reads standard input)")
    imp.add_argument("--force", action="store_true", help="replace an existing trust policy")
    imp.add_argument("--strict", action="store_true",
                     help="refuse unknown members (by default they are ignored with a warning, as notation does)")
    show = sub.add_parser("show", help="print the trust policy in effect")
    show.add_argument("-o", "--output", choices=("text", "json"), default="text",
                      help="text: the file's bytes (as notation); json: {path, valid, problems, policy}")
    init = sub.add_parser("init", help="write a trust policy with one statement")
    init.add_argument("--name", required=True, metavar="NAME", help="statement name")
    init.add_argument("--trust-store", dest="trust_stores", action="append", required=True, metavar="TYPE:NAME",
                      help="trust store (ca, signingAuthority or tsa) and its name (repeatable)")
    init.add_argument("--trusted-identity", dest="trusted_identities", action="append", required=True,
                      metavar="ID", help="'*' or x509.subject:<DN> (repeatable)")
    init.add_argument("--scope", dest="scopes", action="append", default=[], metavar="SCOPE",
                      help="registry scope REGISTRY/REPO, or '*' (repeatable; default '*')")
    init.add_argument("--level", default="strict", choices=["strict", "permissive", "audit"],
                      help="verification level (default strict)")
    init.add_argument("--force", action="store_true", help="replace an existing trust policy")


def print_policy_problems(command: str, exc: ConfigError) -> int:
    """Print a policy error on stderr, one line per violated rule; returns the usage exit code."""
    problems = list(getattr(exc, "problems", []) or [])
    where = getattr(exc, "where", None)
    if len(problems) > 1 and where:
        print(error_line(f"invalid trust policy {where} ({len(problems)} problems):"), file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
    else:
        print(error_line(exc.diagnostics()), file=sys.stderr)
    return int(ExitCode.USAGE)


def _destination(ctx: CliContext) -> Path:
    from ocisign.config.trustpolicy import effective_policy_path

    return effective_policy_path(ctx.config_dir) or ctx.config_dir.trust_policy


def _install(ctx: CliContext, data: bytes, doc: TrustPolicyDocument, *, force: bool, command: str) -> Path:
    """Atomically write ``data`` to the effective policy file; refuse to overwrite without force."""
    import os

    from ocisign.config.trustpolicy import missing_trust_stores
    from ocisign.fsutil import write_atomic

    dest = _destination(ctx)
    if os.path.lexists(dest) and not force:
        raise UsageError(f"trust policy {dest} already exists; use --force to replace it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(dest, data, mode=0o644, overwrite=force)
    except FileExistsError:
        raise UsageError(f"trust policy {dest} already exists; use --force to replace it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write trust policy {dest}: {exc.strerror}") from None
    for ref in missing_trust_stores(doc, ctx.config_dir):
        ctx.warn(f"trust store {ref} does not exist yet in {ctx.config_dir.root / 'truststore' / 'x509'}")
    return dest


def _existing_policy_is_valid(ctx: CliContext) -> bool:
    """True when the policy in effect exists and validates (notation only asks before replacing one)."""
    from ocisign.config.trustpolicy import effective_policy_path, parse_policy, read_policy_file

    path = effective_policy_path(ctx.config_dir)
    if path is None:
        return False
    try:
        parse_policy(read_policy_file(path), where=str(path), path=path)
    except ConfigError:
        return False
    return True


def _read_source(path: str) -> bytes:
    """The policy to import: a file, a pipe (``<(…)``) or ``-`` (stdin), at most MAX_IMPORT_SIZE bytes."""
    from ocisign.config.files import read_input_file

    return read_input_file(path, max_size=MAX_IMPORT_SIZE)


def _policy_json(path: Path, data: bytes) -> dict[str, object]:
    """``policy show -o json``: ``{"path", "valid", "problems", "policy"}`` (policy: the parsed file, or
    null when it is not JSON); an invalid policy is reported, not refused, as in the text output."""
    from ocisign.config.trustpolicy import parse_policy

    problems: list[str] = []
    try:
        parse_policy(data, where=str(path), path=path)
    except ConfigError as exc:
        problems = [str(p) for p in getattr(exc, "problems", []) or [exc.diagnostics()]]
    try:
        policy: object = json.loads(data)
    except ValueError:
        policy = None
    return {"path": str(path), "valid": not problems, "problems": problems, "policy": policy}


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run the sub-command."""
    command = args.policy_command
    if command == "import":
        return _import(args, ctx)
    if command == "show":
        return _show(args, ctx)
    return _init(args, ctx)


def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    """``policy import FILE|-``: validate, then install (asking before replacing a valid policy)."""
    from ocisign.config.trustpolicy import ignored_member_warnings, parse_policy

    data = _read_source(args.file)
    try:
        doc = parse_policy(data, where="standard input" if args.file == "-" else args.file, strict=args.strict)
    except ConfigError as exc:
        return print_policy_problems("policy", exc)
    for w in ignored_member_warnings(doc, args.file):
        ctx.warn(w)
    force = args.force
    if force:
        ctx.warn("existing trust policy configuration file will be overwritten")
    elif _existing_policy_is_valid(ctx):
        # notation asks; without a terminal to ask on, ocisign refuses (use --force)
        if not sys.stdin.isatty():
            raise UsageError(f"trust policy {_destination(ctx)} already exists; use --force to replace it")
        from ocisign.cli.commands.cert import ask_confirmation

        if not ask_confirmation("Existing trust policy configuration found, do you want to overwrite it?", False):
            return 0
        force = True
    else:
        force = True  # a missing or invalid policy is replaced without asking, as notation does
    _install(ctx, data, doc, force=force, command="import")
    ctx.out("Trust policy configuration imported successfully.")
    return 0


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    """``policy show``: the file's bytes as notation prints them (problems on stderr), or ``-o json``."""
    from ocisign.config.trustpolicy import (
        PolicyNotFoundError,
        effective_policy_path,
        ignored_member_warnings,
        parse_policy,
        read_policy_file,
    )

    path = effective_policy_path(ctx.config_dir)
    if path is None:
        raise PolicyNotFoundError(
            f"no trust policy in {ctx.config_dir.root} (trustpolicy.oci.json or trustpolicy.json); "
            "import one with 'ocisign policy import FILE'"
        )
    data = read_policy_file(path)
    if args.output == "json":
        ctx.emit_json(_policy_json(path, data))
        return 0
    try:
        for w in ignored_member_warnings(parse_policy(data, where=str(path), path=path)):
            ctx.warn(w)
    except ConfigError as exc:
        ctx.warn(f"the trust policy in {path} is invalid, update it with 'ocisign policy import --force FILE'")
        for p in getattr(exc, "problems", []) or [str(exc)]:
            print(f"  - {p}", file=sys.stderr)
    # the file's bytes exactly, as notation prints them (no newline added)
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # pragma: no cover - a text-only stdout replacement
        sys.stdout.write(data.decode("utf-8", "replace"))
    else:
        sys.stdout.flush()
        buffer.write(data)
        buffer.flush()
    return 0


def _init(args: argparse.Namespace, ctx: CliContext) -> int:
    """``policy init``: a policy with one statement from the command line."""
    from ocisign.config.trustpolicy import PolicyError, validate_policy

    statement = {
        "name": args.name,
        "registryScopes": list(args.scopes) or ["*"],
        "signatureVerification": {"level": args.level},
        "trustStores": list(args.trust_stores),
        "trustedIdentities": list(args.trusted_identities),
    }
    obj = {"version": "1.0", "trustPolicies": [statement]}
    doc_or_none, problems = validate_policy(obj)
    if doc_or_none is None:
        return print_policy_problems("policy", PolicyError("from the command line", problems))
    data = (json.dumps(obj, indent=4) + "\n").encode("utf-8")
    dest = _install(ctx, data, doc_or_none, force=args.force, command="init")
    ctx.out(f"Successfully initialized the trust policy file {dest}")
    return 0
