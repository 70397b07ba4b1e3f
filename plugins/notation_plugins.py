"""Built-in plugin ``notation_plugins``: external notation plugins as ocisign signers and verifiers.

Each directory ``<config>/plugins/<name>/`` becomes a signer factory named ``<name>``, so a
``signingkeys.json`` key ``{"id", "pluginName": "<name>", "pluginConfig"}`` (``key add --plugin``,
``sign --key``, ``sign --plugin P --id ID``) signs through the same path as file keys:
``SIGNATURE_GENERATOR.RAW`` plugins sign the envelope's signing input, ``.ENVELOPE`` plugins
return whole envelopes (:mod:`ocisign.extplugin.signing`). ``ocisign_verification_plugin`` hands
the trust-policy verification the plugin a signature names (:mod:`ocisign.extplugin.verification`).
Listing directories is all that happens at registration; plugins run only when used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocisign.lazy_plugins import hookimpl
from ocisign.types import SignerFactory

if TYPE_CHECKING:
    from ocisign.extplugin.discovery import ExternalPlugin
    from ocisign.types import Signer

#: names of in-process signers an external plugin directory cannot shadow
_RESERVED = frozenset({"file"})


def _root(config_dir: str | None) -> Path:
    from ocisign.config.configdir import default_config_dir

    return Path(config_dir) if config_dir else default_config_dir()


def _installed(root: Path) -> list[str]:
    try:  # <config>/plugins (extplugin.discovery.plugins_root), read before importing the plugin machinery
        entries = list(os.scandir(root / "plugins"))
    except OSError:
        return []
    if not entries:
        return []
    from ocisign.extplugin.protocol import PLUGIN_NAME_RE

    return sorted(e.name for e in entries
                  if e.is_dir(follow_symlinks=False) and PLUGIN_NAME_RE.match(e.name)
                  and not e.name.startswith(".") and e.name not in _RESERVED)


def _create(root: Path, name: str, record: Mapping[str, Any]) -> Signer:
    from ocisign.extplugin.discovery import find_plugin
    from ocisign.extplugin.signing import create_plugin_signer

    return create_plugin_signer(find_plugin(root, name), record)


@hookimpl
def ocisign_signers(config_dir: str | None) -> Iterator[SignerFactory]:
    """One factory per installed notation plugin."""
    root = _root(config_dir)
    for name in _installed(root):
        yield SignerFactory(name=name, create=functools.partial(_create, root, name),
                            description=f"notation plugin {root / 'plugins' / name / ('notation-' + name)}")


@hookimpl
def ocisign_verification_plugin(name: str, config_dir: str | None) -> ExternalPlugin | None:
    """The installed plugin ``name`` (None when its directory does not exist)."""
    from ocisign.extplugin.discovery import find_plugin, plugin_dir

    root = _root(config_dir)
    if not plugin_dir(root, name).is_dir():
        return None
    return find_plugin(root, name)
