"""Which key and which envelope format a signature is made with: shared by ``ocisign sign``
(:mod:`ocisign.cli.commands.sign`) and the ``ocisign-sign`` pre-commit hook (:mod:`ocisign.hooks.sign`),
so both make the same choice.

The key is the one named (``--key``), else the project config's ``key``, else the default key of
``signingkeys.json``; or an on-demand plugin key (``--plugin`` with ``--id``). The format is the
one named (``--signature-format``), else the project config's, else ``config.json``'s
``signatureFormat``, else ``jws``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocisign.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any

    from ocisign.cli.context import CliContext
    from ocisign.types import Signer

__all__ = ["SIGNATURE_FORMATS", "choose_format", "make_named_signer"]

SIGNATURE_FORMATS = ("jws", "cose")


def choose_format(ctx: CliContext, requested: str | None = None) -> str:
    """The envelope format name: ``requested``, project config, config.json, then ``jws``."""
    from ocisign.config.files import config_signature_format

    name = requested or ctx.project.signature_format or config_signature_format(ctx.config_dir) or "jws"
    name = name.lower()
    if name not in SIGNATURE_FORMATS:
        raise UsageError(f"signature format {name!r} not supported: choose jws or cose")
    return name


def make_named_signer(
    ctx: CliContext,
    *,
    key: str | None = None,
    plugin: str | None = None,
    key_id: str | None = None,
    plugin_config: Sequence[str] = (),
) -> tuple[Signer, str]:
    """The Signer of the chosen key and the key's name.

    ``key``: a key of ``signingkeys.json`` (default: the project's, then the default key);
    ``plugin`` and ``key_id`` together: an on-demand plugin key instead; ``plugin_config``:
    ``KEY=VALUE`` strings merged into a plugin key's configuration (``--plugin-config``).
    """
    from ocisign.cli.options import parse_key_values
    from ocisign.config.signingkeys import KeyRecord, load_signing_keys

    if plugin or key_id:
        if not (plugin and key_id):
            raise UsageError("--plugin and --id must be given together")
        if key:
            raise UsageError("--key cannot be combined with --plugin/--id")
        record = KeyRecord(name=f"{plugin}:{key_id}", id=key_id, plugin_name=plugin)
    else:
        record = load_signing_keys(ctx.config_dir).resolve(key or ctx.project.key)
    config = parse_key_values(list(plugin_config), flag="--plugin-config")
    mapping: dict[str, Any] = record.to_json()
    if config:
        if record.is_file_key:
            raise UsageError(f"--plugin-config: key {record.name!r} is a local key, not a plugin key")
        mapping["pluginConfig"] = {**(record.plugin_config or {}), **config}
    factory = ctx.pm.signer_factory(record.scheme, ctx.config_dir.root)
    return factory.create(mapping), record.name
