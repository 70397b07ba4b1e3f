"""``ocisign key``: manage ``signingkeys.json`` (``add``, ``list|ls``, ``update|set``, ``delete``).

``key add NAME --key-file K --cert-file C [--default]`` adds a local key after checking that
the pair loads and matches; ``key add NAME --plugin P --id ID [--plugin-config k=v]…`` adds a
key served by a signer plugin (as ``notation key add --plugin`` does).
"""

from __future__ import annotations

import argparse
import sys

from ocisign.errors import PluginError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands and their flags."""
    from ocisign.cli.options import subcommand_adder

    new = subcommand_adder(parser, dest="key_command")

    add = new("add", "Add a signing key")
    add.add_argument("name", metavar="NAME", help="key name")
    add.add_argument("--key-file", metavar="FILE", help="private key file (PEM: PKCS#1, PKCS#8 or SEC1)")
    add.add_argument("--cert-file", metavar="FILE", help="certificate chain file (PEM, leaf first)")
    add.add_argument("--plugin", metavar="NAME", help="signer plugin serving the key")
    add.add_argument("--id", metavar="ID", help="key id within the plugin (required with --plugin)")
    add.add_argument("--plugin-config", action="append", default=[], metavar="KEY=VALUE",
                     help="plugin configuration (repeatable)")
    add.add_argument("--default", action="store_true", help="mark as the default signing key")

    ls = new("list", "List signing keys (the default is marked with *)", ("ls",))
    ls.add_argument("-o", "--output", choices=("text", "json"), default="text",
                    help='json: {"default", "keys": [{"name", "default", "keyPath", "certPath", "id", '
                         '"pluginName", "pluginConfig"}]}')

    upd = new("update", "Update a signing key", ("set",))
    upd.add_argument("name", metavar="NAME", help="key name")
    upd.add_argument("--default", action="store_true", help="mark as the default signing key")

    rm = new("delete", "Delete signing keys from the list (key files are left alone)", ("rm", "remove"))
    rm.add_argument("names", nargs="+", metavar="NAME", help="key name")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Dispatch to the subcommand."""
    from ocisign.config.signingkeys import edit_signing_keys

    cmd = args.key_command
    if cmd in ("list", "ls"):
        return _list(ctx, json_output=args.output == "json")
    if cmd in ("update", "set"):
        if not args.default:
            from ocisign.config.signingkeys import load_signing_keys

            load_signing_keys(ctx.config_dir).get(args.name)
            print("Nothing to update: use --default to mark the key as the default signing key", file=sys.stderr)
            return 0
        with edit_signing_keys(ctx.config_dir) as keys:
            keys.set_default(args.name)
        ctx.out(f"{args.name}: marked as default")
        return 0
    if cmd in ("delete", "rm", "remove"):
        with edit_signing_keys(ctx.config_dir) as keys:
            previous_default = keys.default
            removed = list(dict.fromkeys(keys.remove(args.names)))
        # notation's wording
        if len(removed) == 1:
            which = "default key " if removed[0] == previous_default else ""
            ctx.out(f"Removed {which}{removed[0]} from Notation signing key list. The source key still exists.")
        elif removed:
            ctx.out("Removed the following keys from Notation signing key list. The source keys still exist.")
            for name in removed:
                ctx.out(f"{name} (default)" if name == previous_default else name)
        return 0
    return _add(args, ctx)


def _add(args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.cli.options import parse_key_values
    from ocisign.config.signingkeys import KeyRecord, absolute, edit_signing_keys

    name = args.name
    if not name:
        raise UsageError("key name cannot be empty")
    if args.plugin:
        if args.key_file or args.cert_file:
            raise UsageError("--plugin cannot be combined with --key-file/--cert-file")
        if not args.id:
            raise UsageError("missing key id: --id is required with --plugin")
        config = parse_key_values(args.plugin_config, flag="--plugin-config")
        factories = ctx.pm.signer_factories(ctx.config_dir.root)
        if args.plugin not in factories:
            raise PluginError(
                f"no signer plugin {args.plugin!r} is installed; available: {', '.join(sorted(factories))}"
            )
        record = KeyRecord(name=name, id=args.id, plugin_name=args.plugin, plugin_config=config or None)
    else:
        if args.id or args.plugin_config:
            raise UsageError("--id and --plugin-config need --plugin")
        if not args.key_file or not args.cert_file:
            raise UsageError("missing --key-file and --cert-file (or --plugin and --id for a plugin key)")
        key_path, cert_path = absolute(args.key_file), absolute(args.cert_file)
        from ocisign.plugins.file_key import load_file_signer

        load_file_signer(key_path, cert_path)  # the pair must load and match
        record = KeyRecord(name=name, key_path=key_path, cert_path=cert_path)
    with edit_signing_keys(ctx.config_dir) as keys:
        keys.add(record, make_default=args.default)
    ctx.out(f"{name}: marked as default" if args.default else name)
    return 0


def _list(ctx: CliContext, *, json_output: bool = False) -> int:
    from ocisign.config.signingkeys import load_signing_keys
    from ocisign.goformat import tab_table

    keys = load_signing_keys(ctx.config_dir)
    if json_output:  # every member always present (null when unset): a stable shape for scripts
        ctx.emit_json({"default": keys.default, "keys": [
            {"name": k.name, "default": k.name == keys.default, "keyPath": k.key_path, "certPath": k.cert_path,
             "id": k.id, "pluginName": k.plugin_name, "pluginConfig": k.plugin_config}
            for k in keys.keys
        ]})
        return 0
    rows = [["NAME", "KEY PATH", "CERTIFICATE PATH", "ID", "PLUGIN NAME"]]
    for k in keys.keys:
        name = f"* {k.name}" if k.name == keys.default else k.name
        rows.append([name, k.key_path or "", k.cert_path or "", k.id or "", k.plugin_name or ""])
    sys.stdout.write(tab_table(rows))
    return 0
