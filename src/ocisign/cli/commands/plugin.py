"""``ocisign plugin list``: every loaded plugin with its distribution, version and hooks."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``plugin list|ls [-o text|json]``."""
    sub = parser.add_subparsers(dest="plugin_command", metavar="SUBCOMMAND", required=True)
    ls = sub.add_parser("list", aliases=["ls"], help="list loaded plugins")
    ls.add_argument("-o", "--output", choices=["text", "json"], default="text")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """List plugins."""
    infos = ctx.pm.plugin_info()
    if args.output == "json":
        ctx.emit_json([dataclasses.asdict(i) for i in infos])
        return 0
    rows = [("NAME", "DISTRIBUTION", "VERSION", "HOOKS")]
    rows += [(i.name, i.distribution, i.version, ", ".join(h.removeprefix("ocisign_") for h in i.hooks)) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for r in rows:
        ctx.out(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    return 0
