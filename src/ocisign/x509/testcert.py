"""The certificate ``cert generate-test`` makes, exactly as notation makes it.

:func:`make_test_certificate`: a self-signed, non-CA leaf certificate, subject = issuer =
``C=US, ST=WA, L=Seattle, O=Notary, CN=NAME`` (:func:`test_subject`, Go's RDN order and string
types), valid from now for 24 hours, keyUsage digitalSignature (critical), extendedKeyUsage
codeSigning, SHA256WithRSA, random serial. The key files, the key list and the trust store it goes
into are :mod:`ocisign.config.testkeys` (this module touches no file).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["VALIDITY", "make_test_certificate", "test_subject"]

VALIDITY = dt.timedelta(hours=24)


def _name_attr(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    """An attribute encoded as Go does: PrintableString when the value allows it, else UTF8String."""
    from cryptography import x509
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    printable = re.fullmatch(r"[A-Za-z0-9 '()+,\-./:=?]*", value) is not None
    if oid == NameOID.COUNTRY_NAME or printable:
        return x509.NameAttribute(oid, value, _type=_ASN1Type.PrintableString)
    return x509.NameAttribute(oid, value)


def test_subject(name: str) -> x509.Name:
    """``C=US, ST=WA, L=Seattle, O=Notary, CN=<name>`` in Go's RDN order."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([
        _name_attr(NameOID.COUNTRY_NAME, "US"),
        _name_attr(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        _name_attr(NameOID.LOCALITY_NAME, "Seattle"),
        _name_attr(NameOID.ORGANIZATION_NAME, "Notary"),
        _name_attr(NameOID.COMMON_NAME, name),
    ])


def make_test_certificate(
    key: rsa.RSAPrivateKey, name: str, *, now: dt.datetime | None = None
) -> x509.Certificate:
    """The self-signed non-CA code-signing leaf notation's generate-test creates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    start = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    subject = test_subject(name)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1 + secrets.randbelow(199))  # notation: random in [0, 200); zero is not a valid serial
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )


