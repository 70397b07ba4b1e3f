"""Envelope certificates parsed the way Go's ``x509.ParseCertificate`` would accept them.

``cryptography`` is imported inside the function; the SubjectPublicKeyInfo is located with the
package's one DER reader (:mod:`ocisign.x509.der`).
"""

from __future__ import annotations

import warnings
from typing import Any

from ocisign.envelope.errors import EnvelopeError
from ocisign.x509.der import parse_single
from ocisign.x509.encoding import remember_der

#: certificates already parsed and checked in this process, by DER (a batch meets the same chain in
#: every signature; certificates are immutable, so sharing them is safe)
_PARSED_CERTS: dict[bytes, Any] = {}
_PARSED_CERTS_LIMIT = 1024


def known_certificate(der: bytes) -> Any:
    """The certificate already parsed from exactly these DER bytes in this process, else None."""
    return _PARSED_CERTS.get(der) if type(der) is bytes else None


def parse_der_certificate(der: bytes, *, where: str) -> Any:
    """An ``x509.Certificate`` from DER bytes (trailing data refused); EnvelopeError otherwise.

    A certificate is parsed once per process; failures are not remembered (their message names ``where``).
    """
    key_der = bytes(der)
    known = _PARSED_CERTS.get(key_der)
    if known is not None:
        return known
    cert = _parse_der_certificate(key_der, where=where)
    if len(_PARSED_CERTS) >= _PARSED_CERTS_LIMIT:
        _PARSED_CERTS.clear()
    _PARSED_CERTS[key_der] = cert
    remember_der(cert, key_der)
    return cert


def _parse_der_certificate(der: bytes, *, where: str) -> Any:
    from cryptography import x509

    from ocisign.x509.encoding import encoding_enum, public_format_enum

    try:
        with warnings.catch_warnings():
            # cryptography warns on non-positive serials (refused below) and odd attribute lengths
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(der)
            serial = cert.serial_number
            # parse everything now, like Go's x509.ParseCertificate (cryptography parses lazily)
            cert.subject.public_bytes()
            cert.issuer.public_bytes()
            _ = (cert.extensions, cert.not_valid_before_utc, cert.not_valid_after_utc,
                 cert.signature_algorithm_oid, cert.version)
        key = cert.public_key()
        canonical = key.public_bytes(encoding_enum().DER, public_format_enum().SubjectPublicKeyInfo)
        raw_spki = _raw_spki(cert.tbs_certificate_bytes)
    except Exception as exc:
        raise EnvelopeError(f"{where}: malformed certificate ({exc})") from None
    if serial < 0:
        raise EnvelopeError(f"{where}: malformed certificate (negative serial number)")
    if raw_spki != canonical:
        # e.g. a BIT STRING with unused bits, compressed EC points, RSA without NULL parameters:
        # Go's parser refuses these; cryptography would silently normalise them
        raise EnvelopeError(f"{where}: certificate public key is not in canonical DER form")
    return cert


def _raw_spki(tbs: bytes) -> bytes:
    """The SubjectPublicKeyInfo TLV exactly as encoded in a TBSCertificate."""
    fields = parse_single(tbs, "tbsCertificate").children()
    if fields and fields[0].tag == 0xA0:  # explicit [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    return fields[5].raw
