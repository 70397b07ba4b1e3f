"""Built-in registry credentials: env vars, ocisign's and docker's ``config.json``, the old login store.

``trylast``, so site plugins implementing ``ocisign_registry_credentials`` are asked first.
The lookup order is documented in :mod:`ocisign.registry.credentials`.
"""

from __future__ import annotations

from ocisign.lazy_plugins import hookimpl_with

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.types import Credentials


@hookimpl_with(trylast=True)
def ocisign_registry_credentials(host: str, config_dir: str | None) -> Credentials | None:
    """Credentials for ``host`` from the places ``ocisign login`` and docker keep them."""
    from pathlib import Path

    from ocisign.config.configdir import ConfigDir
    from ocisign.registry.credentials import lookup

    root = Path(config_dir) if config_dir else ConfigDir.from_env().root
    return lookup(host, config_dir=root)
