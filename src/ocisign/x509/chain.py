"""Certificate helpers of the Go x509 package that the Notary rules build on (notation-core-go ``x509``).

* :func:`cert_fingerprint_sha256`; :func:`go_dn_string` (Go's ``pkix.Name.String()``) and
  :func:`who` (a subject for messages);
* :func:`check_signature_from` (Go ``child.CheckSignatureFrom(issuer)``: the issuer must be a CA
  with keyCertSign when it has keyUsage; SHA-1/MD5 signatures are refused; plus the issuer-name
  match) and :func:`self_signature_problem` (Go ``cert.CheckSignature`` with its own key).

The Notary signing-chain rules that use them are :mod:`ocisign.envelope.chain`.
``cryptography`` is imported inside the functions.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ocisign.x509 import der_writer
from ocisign.x509.extensions import find_extension as _ext

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["cert_fingerprint_sha256", "check_signature_from", "go_dn_string", "self_signature_problem", "who"]


def cert_fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding."""
    from ocisign.x509.encoding import certificate_der

    return hashlib.sha256(certificate_der(cert)).hexdigest()


# --- Go pkix.Name.String() ----------------------------------------------------------------------
_SHORT_NAMES = {
    "2.5.4.6": "C",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "2.5.4.5": "SERIALNUMBER",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.17": "POSTALCODE",
}
#: attributes Go parses into named fields (skipped when surfacing ``Names``)
_PARSED = {"2.5.4.3", "2.5.4.5", "2.5.4.6", "2.5.4.7", "2.5.4.8", "2.5.4.9", "2.5.4.10", "2.5.4.11", "2.5.4.17"}
#: order of ToRDNSequence for multi-valued fields
_FIELD_ORDER = ("2.5.4.6", "2.5.4.8", "2.5.4.7", "2.5.4.9", "2.5.4.17", "2.5.4.10", "2.5.4.11")
_PRINTABLE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '()+,-./:=?")


def _go_asn1_marshal_string(value: str) -> bytes:
    """What Go's ``asn1.Marshal(string)`` writes: PrintableString if possible, else UTF8String."""
    raw = value.encode("utf-8", "surrogatepass")
    tag = 0x13 if all(c in _PRINTABLE for c in value) else 0x0C
    return der_writer.tlv(tag, raw)


def _escape(value: str) -> str:
    out = []
    last = len(value.encode("utf-8", "surrogatepass")) - 1
    pos = 0
    for c in value:
        esc = c in ',+"\\<>;' or (c == " " and (pos == 0 or pos == last)) or (c == "#" and pos == 0)
        out.append("\\" + c if esc else c)
        pos += len(c.encode("utf-8", "surrogatepass"))
    return "".join(out)


def go_dn_string(name: x509.Name) -> str:
    """Render ``name`` exactly like Go's ``pkix.Name.String()`` (RFC 4514-like, reversed RDN order).

    Known attributes use short names (CN, OU, O, L, ST, C, STREET, POSTALCODE, SERIALNUMBER),
    grouped per type the way Go's ``ToRDNSequence`` does; other attributes come last as
    ``OID=#<hex of DER>``.
    """
    atvs: list[tuple[str, Any]] = [(a.oid.dotted_string, a.value) for rdn in name.rdns for a in rdn]
    rdns: list[list[tuple[str, Any]]] = [[atv] for atv in atvs if atv[0] not in _PARSED]
    fields: dict[str, list[str]] = {oid: [] for oid in _FIELD_ORDER}
    common_name = serial = ""
    for oid, value in atvs:
        if not isinstance(value, str):
            continue
        if oid == "2.5.4.3":
            common_name = value
        elif oid == "2.5.4.5":
            serial = value
        elif oid in fields:
            fields[oid].append(value)
    for oid in _FIELD_ORDER:
        if fields[oid]:
            rdns.append([(oid, v) for v in fields[oid]])
    if common_name:
        rdns.append([("2.5.4.3", common_name)])
    if serial:
        rdns.append([("2.5.4.5", serial)])
    parts = []
    for rdn in reversed(rdns):
        items = []
        for oid, value in rdn:
            short = _SHORT_NAMES.get(oid)
            if short is None:
                if isinstance(value, str):
                    items.append(f"{oid}=#{_go_asn1_marshal_string(value).hex()}")
                    continue
                short = oid
            items.append(f"{short}={_escape(value if isinstance(value, str) else str(value))}")
        parts.append("+".join(items))
    return ",".join(parts)


# --- issuer checks -------------------------------------------------------------------------------
def who(cert: x509.Certificate) -> str:
    """The subject of ``cert`` as Go prints it, for messages."""
    try:
        return go_dn_string(cert.subject)
    except Exception:  # pragma: no cover - defensive: names are always renderable
        return "<unprintable subject>"


def _verify_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None if ``cert`` is signed by ``issuer`` under Go's CheckSignatureFrom rules, else why not."""
    from cryptography import x509

    if issuer.version == x509.Version.v3:
        bc = _ext(issuer, x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
        if bc is None or not bc.value.ca:
            return f'issuer "{who(issuer)}" is not a CA (basicConstraints cA is not TRUE)'
    ku = _ext(issuer, x509.oid.ExtensionOID.KEY_USAGE)
    if ku is not None and not ku.value.key_cert_sign:
        return f'issuer "{who(issuer)}" key usage does not allow certificate signing'
    return _signature_problem(cert, issuer)


def _signature_problem(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> str | None:
    """Why ``cert``'s signature is not accepted (None when it is): SHA-1/MD5 are refused, the issuer
    name must match and the signature must verify with the issuer's key (its own key when ``issuer``
    is None, Go ``CheckSignature``)."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes

    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algo = None
    if isinstance(algo, (hashes.SHA1, hashes.MD5)):
        return f"signature algorithm {algo.name.upper()} is insecure and not accepted"
    if issuer is not None and cert.issuer.public_bytes() != issuer.subject.public_bytes():
        return f'issuer name does not match the subject of "{who(issuer)}"'
    with_key = "its own key" if issuer is None else f'the key of "{who(issuer)}"'
    try:
        cert.verify_directly_issued_by(cert if issuer is None else issuer)
    except InvalidSignature:
        return f"signature does not verify with {with_key}"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"signature cannot be verified{'' if issuer is None else ' with ' + with_key} ({exc})"
    return None


def _self_signature_problem(cert: x509.Certificate) -> str | None:
    """Go ``cert.CheckSignature`` on itself: the signature verifies with its own key (no CA checks)."""
    return _signature_problem(cert)


#: public names for other modules: Go ``child.CheckSignatureFrom(issuer)`` plus the issuer-name match
#: (None when it holds, else why not), and Go ``cert.CheckSignature`` with the certificate's own key
check_signature_from = _verify_signed_by
self_signature_problem = _self_signature_problem
