"""Built-in ``registry`` transport: OCI distribution registries (docker-registry, zot, GHCR, …).

``Transport.open(host, repository, options)`` returns a
:class:`ocisign.registry.target.RegistryTarget`; the HTTP stack (``http.client``) is imported only then.
Credentials come from ``options.credential_lookup`` (the CLI passes the
``ocisign_registry_credentials`` hook) unless ``options.username`` is set.
"""

from __future__ import annotations

from ocisign.lazy_plugins import hookimpl
from ocisign.types import RemoteOptions, Transport

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Iterator

    from ocisign.types import Credentials, Target


def open_registry(host: str, repository: str, options: RemoteOptions) -> Target:
    """A Target for ``host/repository``."""
    from ocisign.registry.target import RegistryTarget

    lookup = options.credential_lookup

    def credentials() -> Credentials | None:
        return lookup(host) if lookup is not None else None

    return RegistryTarget(host, repository, options, credentials)


@hookimpl
def ocisign_transports() -> Iterator[Transport]:
    """Register the ``registry`` transport."""
    yield Transport(name="registry", open=open_registry, description="OCI distribution API (HTTP)")
