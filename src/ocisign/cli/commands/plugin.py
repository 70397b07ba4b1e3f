"""``ocisign plugin``: list pluggy plugins and notation plugins; install and uninstall notation plugins.

* ``plugin list|ls [-o text|json]``: the loaded pluggy plugins (distribution, version, hooks), then
  the notation plugins installed under ``<config>/plugins`` (name, description, version,
  capabilities, or a one-line error for a broken one). JSON: one list, each entry with ``kind``
  ``pluggy`` or ``notation``.
* ``plugin install|add --file PATH [--force]``, ``plugin install --url URL --sha256sum HEX [--force]``
  (:mod:`ocisign.extplugin.install`); prints notation's ``Successfully installed plugin …`` line.
* ``plugin uninstall|remove|rm NAME [-y]``: asks for confirmation unless ``-y``.
"""

from __future__ import annotations

import argparse
import sys

from ocisign.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any

    from ocisign.cli.context import CliContext


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``plugin list|install|uninstall``."""
    from ocisign.cli.options import subcommand_adder

    new = subcommand_adder(parser, dest="plugin_command")
    ls = new("list", "List loaded pluggy plugins and installed notation plugins", ("ls",))
    ls.add_argument("-o", "--output", choices=["text", "json"], default="text")

    add = new("install", "Install a notation plugin (executable, .zip or .tar.gz)", ("add",))
    src = add.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", metavar="PATH", help="install from a file on the file system")
    src.add_argument("--url", metavar="URL", help="install from an https:// URL (with --sha256sum)")
    add.add_argument("--sha256sum", metavar="HEX", help="SHA-256 of the source; required with --url")
    add.add_argument("--force", action="store_true", help="reinstall or downgrade an installed plugin")

    rm = new("uninstall", "Uninstall a notation plugin", ("remove", "rm"))
    rm.add_argument("name", metavar="NAME", help="plugin name")
    rm.add_argument("-y", "--yes", action="store_true", help="do not prompt for confirmation")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Dispatch to the subcommand."""
    cmd = args.plugin_command
    if cmd in ("install", "add"):
        return _install(args, ctx)
    if cmd in ("uninstall", "remove", "rm"):
        return _uninstall(args, ctx)
    return _list(args, ctx)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.extplugin.discovery import list_plugins

    infos = ctx.pm.plugin_info()
    external = list_plugins(ctx.config_dir.root)
    if args.output == "json":
        import dataclasses

        out: list[dict[str, Any]] = [{**dataclasses.asdict(i), "kind": "pluggy"} for i in infos]
        for e in external:
            md = e.metadata
            out.append({
                "name": e.name, "kind": "notation", "path": str(e.path),
                "description": md.description if md else None, "version": md.version if md else None,
                "url": md.url if md else None, "capabilities": list(md.capabilities) if md else [],
                "error": e.error,
            })
        ctx.emit_json(out)
        return 0
    rows = [("NAME", "DISTRIBUTION", "VERSION", "HOOKS")]
    rows += [(i.name, i.distribution, i.version, ", ".join(h.removeprefix("ocisign_") for h in i.hooks)) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for r in rows:
        ctx.out(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    if external:
        from ocisign.goformat import tab_table

        table = [["NOTATION PLUGIN", "DESCRIPTION", "VERSION", "CAPABILITIES", "ERROR"]]
        for e in external:
            md = e.metadata
            table.append([e.name, md.description if md else "", md.version if md else "",
                          "[" + " ".join(md.capabilities) + "]" if md else "[]", e.error or "<nil>"])
        ctx.out()
        sys.stdout.write(tab_table(table))
    return 0


def _install(args: argparse.Namespace, ctx: CliContext) -> int:
    from pathlib import Path

    from ocisign.extplugin.install import install_from_file, install_from_url

    root = ctx.config_dir.root
    if args.url:
        if not args.sha256sum:
            raise UsageError("--sha256sum is required with --url")
        result = install_from_url(root, args.url, args.sha256sum, force=args.force)
    else:
        if args.sha256sum:
            import hashlib

            from ocisign.errors import PluginError

            h = hashlib.sha256()
            try:
                with open(args.file, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            except OSError as exc:
                raise UsageError(f"{args.file}: cannot read: {exc.strerror}") from None
            if h.hexdigest() != args.sha256sum.strip().lower():
                raise PluginError(f"plugin checksum does not match: {args.file} has SHA-256 {h.hexdigest()}, "
                                  f"expected {args.sha256sum.strip().lower()}")
        result = install_from_file(root, Path(args.file), force=args.force)
    ctx.out(result.message())
    return 0


def _uninstall(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.extplugin.discovery import plugin_dir
    from ocisign.extplugin.install import uninstall

    root = ctx.config_dir.root
    directory = plugin_dir(root, args.name)
    if not args.yes:
        if not directory.is_dir():
            uninstall(root, args.name)  # raises the not-found error
        sys.stderr.write(f"Are you sure you want to uninstall plugin {args.name!r}? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            ctx.out("Operation cancelled.")
            return 0
    uninstall(root, args.name)
    ctx.out(f"Successfully uninstalled plugin {args.name}")
    return 0
