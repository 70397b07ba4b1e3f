"""``ocisign cert``: manage the trust store (``truststore/x509/<type>/<store>/``) and test keys.

Subcommands follow ``notation certificate``: ``add``, ``list|ls``, ``show``, ``delete``,
``generate-test`` and ``cleanup-test``. Read-only subcommands never create anything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from pathlib import Path

from ocisign.errors import NotFoundError, OcisignError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.cli.context import CliContext
    from ocisign.config.configdir import ConfigDir

STORE_TYPES = ("ca", "signingAuthority", "tsa")
SEPARATOR = "-" * 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands and their flags."""
    from ocisign.cli.options import subcommand_adder

    new = subcommand_adder(parser, dest="cert_command")

    add = new("add", "Add certificates to the trust store")
    add.add_argument("-t", "--type", dest="store_type", required=True,
                     help="trust store type: ca, signingAuthority, tsa")
    add.add_argument("-s", "--store", required=True, help="named store")
    add.add_argument("paths", nargs="+", metavar="FILE", help="certificate file (PEM or DER)")

    ls = new("list", "List certificates in the trust store", ("ls",))
    ls.add_argument("-t", "--type", dest="store_type", default="", help="trust store type")
    ls.add_argument("-s", "--store", default="", help="named store")
    ls.add_argument("-o", "--output", choices=("text", "json"), default="text",
                    help='json: {"certificates": [{"storeType", "storeName", "file", "path"}]}')

    show = new("show", "Show the certificates in a trust store file")
    show.add_argument("-t", "--type", dest="store_type", required=True, help="trust store type")
    show.add_argument("-s", "--store", required=True, help="named store")
    show.add_argument("file", metavar="FILE", help="certificate file name in the store")

    delete = new("delete", "Delete certificates from the trust store")
    delete.add_argument("-t", "--type", dest="store_type", required=True, help="trust store type")
    delete.add_argument("-s", "--store", required=True, help="named store")
    delete.add_argument("-a", "--all", action="store_true", help="delete the whole named store")
    delete.add_argument("-y", "--yes", action="store_true", help="do not prompt for confirmation")
    delete.add_argument("file", nargs="?", metavar="FILE", help="certificate file name in the store")

    gen = new("generate-test", "Generate a test RSA key and a self-signed certificate, and trust it")
    gen.add_argument("-b", "--bits", type=int, default=2048, help="RSA key bits: 2048 (default), 3072 or 4096")
    gen.add_argument("--default", action="store_true", help="mark the key as the default signing key")
    gen.add_argument("name", metavar="NAME", help="common name of the certificate (also key and store name)")

    clean = new("cleanup-test", "Remove a key, certificate and trust store entry made by generate-test")
    clean.add_argument("-y", "--yes", action="store_true", help="do not prompt for confirmation")
    clean.add_argument("name", metavar="NAME", help="name given to generate-test")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Dispatch to the subcommand."""
    cmd = args.cert_command
    if cmd == "add":
        return _add(args, ctx)
    if cmd in ("list", "ls"):
        return _list(args, ctx)
    if cmd == "show":
        return _show(args, ctx)
    if cmd == "delete":
        return _delete(args, ctx)
    if cmd == "generate-test":
        from ocisign.config.testkeys import generate_test

        generate_test(ctx.config_dir, args.name, bits=args.bits, make_default=args.default, out=ctx.out)
        return 0
    from ocisign.config.testkeys import check_name, cleanup_test

    check_name(args.name)
    prompt = f'Are you sure you want to clean up test key "{args.name}" and its certificate?'
    if not ask_confirmation(prompt, args.yes):
        return 0
    if not cleanup_test(ctx.config_dir, args.name, out=ctx.out, err=lambda s: print(s, file=sys.stderr)):
        raise OcisignError("failed to complete the cleanup-test, manual deletion is required")
    return 0


# --- helpers ------------------------------------------------------------------------------------
def check_store(store_type: str, store: str) -> None:
    """Validate ``-t`` and ``-s`` values (store names are ``[a-zA-Z0-9_.-]+``)."""
    from ocisign.config.testkeys import check_name

    if not store_type:
        raise UsageError("store type cannot be empty")
    if store_type not in STORE_TYPES:
        raise UsageError(f"unsupported store type: {store_type} (choose one of: {', '.join(STORE_TYPES)})")
    check_name(store, what="named store")


def ask_confirmation(prompt: str, confirmed: bool) -> bool:
    """True when ``confirmed`` or the user answers y/yes on the terminal (anything else, or EOF, is no).

    Without a terminal to ask on, a UsageError (exit 2) says to add ``-y`` (as ``policy import``
    refuses and says ``--force``), instead of exiting 0 having done nothing.
    """
    if confirmed:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt} Cannot ask: standard input is not a terminal; add -y (--yes) to confirm")
    print(f"{prompt} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        print()
    return answer.strip().lower() in ("y", "yes")


def _store_dir(config: ConfigDir, store_type: str, store: str) -> Path:
    return config.trust_store_dir(store_type, store)


def validate_store_certificates(certs: list[x509.Certificate], store_type: str, where: str) -> None:
    """Certificates a trust store accepts: CA or self-signed; ``tsa`` stores only self-signed root CAs.

    The same rules the trust-store reader applies at verification time, checked when adding.
    """
    from ocisign.plugins.truststore_files import ca_or_self_signed_problem, root_ca_problem

    for cert in certs:
        problem = ca_or_self_signed_problem(cert)
        if problem is None and store_type == "tsa":
            problem = root_ca_problem(cert)
            if problem:
                problem += " (tsa stores hold only root CAs)"
        if problem:
            raise UsageError(f"{where}: {problem}")


def _add(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.config.files import read_regular_file
    from ocisign.fsutil import make_private_dirs, write_atomic
    from ocisign.plugins.truststore_files import parse_certificates

    check_store(args.store_type, args.store)
    store_dir = _store_dir(ctx.config_dir, args.store_type, args.store)
    added: list[str] = []
    failed: list[str] = []
    for path_text in args.paths:
        src = Path(os.path.abspath(path_text))
        try:
            data = read_regular_file(src)
            assert data is not None
            validate_store_certificates(parse_certificates(data, where=str(src)), args.store_type, str(src))
            dst = store_dir / src.name
            if os.path.lexists(dst):
                raise UsageError(f"{src}: certificate {src.name} already exists in the trust store")
            make_private_dirs(store_dir)
            try:
                write_atomic(dst, data, mode=0o644, overwrite=False)
            except FileExistsError:
                raise UsageError(f"{src}: certificate {src.name} already exists in the trust store") from None
            added.append(path_text)  # printed as given, like notation
        except OcisignError as exc:
            failed.append(exc.diagnostics())
        except OSError as exc:
            failed.append(f"{src}: {exc.strerror}")
    if added:
        ctx.out(f"Successfully added following certificates to named store {args.store} of type {args.store_type}:")
        for p in added:
            ctx.out(p)
    if failed:
        for msg in failed:
            print(f"Failed: {msg}", file=sys.stderr)
        raise UsageError(
            f"failed to add {len(failed)} certificate file(s) to named store {args.store} of type {args.store_type}"
        )
    return 0


def list_store_files(config: ConfigDir, store_type: str = "", store: str = "") -> list[Path]:
    """Certificate files in the trust store (filtered by type and/or store), in notation's order.

    Only regular files directly inside a named store are listed; a file that is not a
    certificate is an error (as in notation). Nothing is created.
    """
    from ocisign.plugins.truststore_files import read_certificate_file

    types = [store_type] if store_type else list(STORE_TYPES)
    out: list[Path] = []
    base = config.root / "truststore" / "x509"
    for t in types:
        type_dir = base / t
        stores = [store] if store else _sorted_dirs(type_dir)
        for name in stores:
            d = type_dir / name
            if not _is_real_dir(d):
                continue
            for entry in sorted(os.scandir(d), key=lambda e: e.name):
                if not entry.is_file(follow_symlinks=False):
                    continue
                read_certificate_file(Path(entry.path), where=entry.path)
                out.append(Path(entry.path))
    return out


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _sorted_dirs(path: Path) -> list[str]:
    if not _is_real_dir(path):
        return []
    return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.goformat import tab_table

    if args.store_type and args.store_type not in STORE_TYPES:
        raise UsageError(f"unsupported store type: {args.store_type} (choose one of: {', '.join(STORE_TYPES)})")
    if args.store:
        from ocisign.config.testkeys import check_name

        check_name(args.store, what="named store")
    paths = list_store_files(ctx.config_dir, args.store_type, args.store)
    if args.output == "json":
        ctx.emit_json({"certificates": [
            {"storeType": p.parent.parent.name, "storeName": p.parent.name, "file": p.name, "path": str(p)}
            for p in paths
        ]})
        return 0
    if paths:
        rows = [["STORE TYPE", "STORE NAME", "CERTIFICATE"]]
        rows += [[p.parent.parent.name, p.parent.name, p.name] for p in paths]
        sys.stdout.write(tab_table(rows))
    return 0


def _cert_file(config: ConfigDir, store_type: str, store: str, name: str) -> Path:
    from ocisign.config.testkeys import check_name

    check_store(store_type, store)
    if not name:
        raise UsageError("certificate file name cannot be empty")
    check_name(name, what="certificate file name")
    return _store_dir(config, store_type, store) / name


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.goformat import go_time_string
    from ocisign.plugins.truststore_files import read_certificate_file
    from ocisign.x509.chain import cert_fingerprint_sha256, go_dn_string

    path = _cert_file(ctx.config_dir, args.store_type, args.store, args.file)
    if not os.path.lexists(path):
        raise NotFoundError(f"failed to show details of certificate {args.file}: {path} does not exist")
    certs = read_certificate_file(path, where=str(path))
    from cryptography import x509 as cx509

    lines = ["Certificate details", SEPARATOR]
    for i, cert in enumerate(certs):
        try:
            is_ca = cert.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca
        except cx509.ExtensionNotFound:
            is_ca = False
        lines += [
            f"Issuer: {go_dn_string(cert.issuer)}",
            f"Subject: {go_dn_string(cert.subject)}",
            f"Valid from: {go_time_string(cert.not_valid_before_utc)}",
            f"Valid to: {go_time_string(cert.not_valid_after_utc)}",
            f"IsCA: {'true' if is_ca else 'false'}",
            f"SHA256 Thumbprint: {cert_fingerprint_sha256(cert)}",
        ]
        if i != len(certs) - 1:
            lines.append(SEPARATOR)
    for line in lines:
        ctx.out(line)
    return 0


def _delete(args: argparse.Namespace, ctx: CliContext) -> int:
    check_store(args.store_type, args.store)
    store_dir = _store_dir(ctx.config_dir, args.store_type, args.store)
    if args.all:
        if args.file:
            raise UsageError("--all cannot be used with a certificate file name")
        if not _is_real_dir(store_dir):
            raise NotFoundError(f"named store {args.store} of type {args.store_type} does not exist: {store_dir}")
        prompt = f'Are you sure you want to delete all certificates in "{args.store}" of type "{args.store_type}"?'
        if not ask_confirmation(prompt, args.yes):
            return 0
        shutil.rmtree(store_dir)
        ctx.out(f"Successfully deleted {store_dir}")
        return 0
    if not args.file:
        raise UsageError("missing certificate file name (or use --all)")
    path = _cert_file(ctx.config_dir, args.store_type, args.store, args.file)
    if not os.path.lexists(path):
        raise NotFoundError(
            f"certificate {args.file} does not exist in named store {args.store} of type {args.store_type}"
        )
    prompt = f'Are you sure you want to delete "{args.file}" in "{args.store}" of type "{args.store_type}"?'
    if not ask_confirmation(prompt, args.yes):
        return 0
    path.unlink()
    ctx.out(f"Successfully deleted {args.file}")
    return 0
