"""Looking up a certificate extension: the one helper the chain rules, timestamp and revocation
checks and the trust-policy plugin share (``cryptography`` is imported inside the functions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["extension_value", "find_extension"]

T = TypeVar("T")


def find_extension(cert: x509.Certificate, kind: Any) -> Any:
    """The ``x509.Extension`` of ``cert`` for ``kind`` (an extension class or an OID); None when absent."""
    from cryptography import x509

    try:
        if isinstance(kind, x509.ObjectIdentifier):
            return cert.extensions.get_extension_for_oid(kind)
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def extension_value(cert: x509.Certificate, cls: type[T]) -> T | None:
    """The value of ``cert``'s extension of class ``cls``; None when absent."""
    ext = find_extension(cert, cls)
    return None if ext is None else ext.value
