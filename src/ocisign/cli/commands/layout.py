"""``ocisign layout check|extract|pack``: verify, unpack and pack OCI image layouts.

* ``layout check PATH [--layout-type T] [-o text|json]`` — directory or tar; exit 1 when any
  problem is found (all of them are listed first).
* ``layout extract TAR DIR`` — DIR must be new or empty (else exit 2); nothing is written
  unless the whole archive is valid and extracted.
* ``layout pack DIR TAR [--force]`` — reproducible archive; an existing TAR is replaced (only
  with ``--force``) when the new one is complete, never truncated first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ocisign.errors import LayoutError, OcisignError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands ``check``, ``extract`` and ``pack``."""
    sub = parser.add_subparsers(dest="layout_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="verify an OCI layout (directory or tar): every reachable blob, "
                           "digests, sizes, media types, oci-layout version")
    check.add_argument("path", metavar="PATH", help="layout directory or layout tar")
    check.add_argument("--layout-type", default=None, metavar="TYPE",
                       help="layout handler to use (oci, oci-archive, …) instead of detection")
    check.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format")
    extract = sub.add_parser("extract", help="safely extract a layout tar into a new or empty directory")
    extract.add_argument("tar", metavar="TAR", help="layout tar")
    extract.add_argument("directory", metavar="DIR", help="destination (must not exist or be empty)")
    pack = sub.add_parser("pack", help="write a reproducible tar of a layout directory")
    pack.add_argument("directory", metavar="DIR", help="layout directory")
    pack.add_argument("tar", metavar="TAR", help="archive to write")
    pack.add_argument("--force", action="store_true", help="replace TAR if it exists (atomically)")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Dispatch to the subcommand."""
    if args.layout_command == "check":
        return _check(args, ctx)
    if args.layout_command == "extract":
        return _extract(args, ctx)
    if args.layout_command == "pack":
        return _pack(args, ctx)
    raise UsageError(f"unknown layout subcommand {args.layout_command!r}")  # pragma: no cover


def _refuse_reference(path: str) -> None:
    """``layout check ./x:v1``: say that it takes a path (it checks the whole layout)."""
    import os

    if os.path.lexists(path):
        return
    from ocisign.errors import BadReferenceError
    from ocisign.oci.refs import parse_layout_ref

    try:
        ref = parse_layout_ref(path)
    except BadReferenceError:
        return
    if os.path.lexists(ref.path):
        raise UsageError(f"{path!r}: layout check takes a path (a layout directory or tar), not a reference: "
                         f"use 'ocisign layout check {ref.path}' (it checks every tag and digest)")


def _check(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.oci.layout_reader import LayoutReader
    from ocisign.oci.layout_tools import check_layout

    as_json = args.output == "json"
    _refuse_reference(args.path)
    try:
        target = ctx.pm.open_layout(args.path, layout_type=args.layout_type)
    except OcisignError as exc:
        if not as_json:
            raise
        ctx.emit_json({"path": args.path, "layoutType": args.layout_type, "ok": False,
                       "problems": [{"where": args.path, "message": exc.diagnostics()}], "moreProblems": 0})
        return int(exc.exit_code)
    try:
        if not isinstance(target, LayoutReader):
            raise UsageError(f"{args.path}: layout check does not support this layout type")
        layout_type = ctx.pm.layout_type_of(target) or args.layout_type or type(target).__name__
        report = check_layout(target, layout_type=layout_type)
    finally:
        target.close()
    if as_json:
        ctx.emit_json(report.to_json())
        return 0 if report.ok else 1
    for p in report.problems:
        ctx.out(f"problem: {p.where}: {p.message}")
    if report.more_problems:
        ctx.out(f"problem: … and {report.more_problems} more")
    summary = (f"{report.manifests} manifests, {report.blobs} blobs, {report.bytes_verified} bytes verified"
               + (f", {report.missing_external} external blobs not present" if report.missing_external else ""))
    if not report.ok:
        count = len(report.problems) + report.more_problems
        raise LayoutError(f"{args.path}: {count} problem{'s' if count != 1 else ''} found ({summary})")
    ctx.out(f"{args.path}: OK ({report.layout_type} layout, {summary})")
    return 0


def _extract(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.oci.layout_tools import extract_archive

    res = extract_archive(Path(args.tar), Path(args.directory))
    ctx.out(f"Extracted {args.tar} to {res.directory} ({res.files} files, {res.bytes} bytes)")
    return 0


def _pack(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.oci.layout_tools import pack_layout

    res = pack_layout(Path(args.directory), Path(args.tar), force=args.force)
    ctx.out(f"Packed {args.directory} into {res.archive} ({res.files} files, {res.directories} directories, "
            f"{res.bytes} bytes)")
    return 0
