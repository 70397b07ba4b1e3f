"""A certificate's DER bytes and ``cryptography``'s encoding enums, without its SSH key code.

``cryptography.hazmat.primitives.serialization`` imports the OpenSSH key support (``bcrypt``,
the cipher modules, the "decrepit" ciphers: about 6 ms of a cold ``verify``) only to re-export
``Encoding`` and ``PublicFormat`` from ``cryptography.hazmat.primitives._serialization``, which
``cryptography.x509`` has already imported. They are taken from there (the public module is the
fallback should that private name ever move).

:func:`certificate_der` is memoised per certificate object (:class:`~ocisign.x509.memo.CertMemo`);
a certificate parsed from DER bytes is recorded with them (:func:`remember_der`), so its DER is
never re-encoded.
"""

from __future__ import annotations

from typing import Any

from ocisign.x509.memo import CertMemo

__all__ = ["certificate_der", "encoding_enum", "public_format_enum", "remember_der"]


def _serialization() -> Any:
    try:
        from cryptography.hazmat.primitives import _serialization

        return _serialization
    except ImportError:  # pragma: no cover - a cryptography release without the private module
        from cryptography.hazmat.primitives import serialization

        return serialization


def encoding_enum() -> Any:
    """``cryptography.hazmat.primitives.serialization.Encoding``."""
    return _serialization().Encoding


def public_format_enum() -> Any:
    """``cryptography.hazmat.primitives.serialization.PublicFormat``."""
    return _serialization().PublicFormat


def _encode_der(cert: Any) -> bytes:
    der: bytes = cert.public_bytes(encoding_enum().DER)
    return der


_certificate_der = CertMemo(_encode_der)


def certificate_der(cert: Any) -> bytes:
    """The DER encoding of ``cert`` (the bytes it was parsed from, when known)."""
    return _certificate_der(cert)


def remember_der(cert: Any, der: bytes) -> None:
    """Record that ``cert`` was parsed from exactly ``der``."""
    _certificate_der.remember(cert, der)
