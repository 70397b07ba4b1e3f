"""RFC 3161 timestamp countersignatures, verified the way notation does (``tspclient-go``).

:func:`verify_countersignature` takes the DER ``TimeStampToken`` of a Notary signature
(``io.cncf.notary.timestampSignature``), the primitive signature bytes it must cover and the
certificates of the policy's ``tsa`` trust stores, and:

1. parses the CMS ``SignedData`` (definite-length DER; content type ``id-ct-TSTInfo``) with
   :mod:`ocisign.verify.timestamp_token`;
2. parses ``TSTInfo`` (version 1) and checks that its message imprint (SHA-256/384/512) is the
   hash of the signature bytes; genTime ± accuracy is the timestamp (accuracy defaults to one
   second only for the ETSI baseline policy ``0.4.0.2023.1.1``, as tspclient-go does);
3. finds the signing certificate named by the ``signingCertificateV2`` (or v1) attribute and
   checks its hash; the SignerInfo must be version 1;
4. builds a chain from that certificate through the token's certificates to a ``tsa`` root,
   every certificate valid at genTime, issuers CAs (keyCertSign when keyUsage is present),
   no SHA-1/MD5 signatures, extended key usage compatible with timeStamping;
5. verifies the SignerInfo signature over the DER ``SET OF`` signed attributes and checks
   the ``contentType`` and ``messageDigest`` attributes (and ``signingTime`` when present);
6. requires the signing certificate's extended key usage to be exactly timeStamping, critical,
   and checks the chain with notation's timestamping certificate rules.

Every problem raises :class:`TimestampError`. The DER reader (:mod:`ocisign.x509.der`) is bounded
and never recurses more than a few levels; it only locates fields — all cryptography is done by
``cryptography`` (signatures through :func:`ocisign.x509.signatures.verify_signature`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ocisign.lazy_dataclass import dataclass
from ocisign.verify.timestamp_token import (
    OID_TST_INFO,
    SignedToken,
    SignerInfo,
    TimestampError,
    algorithm_oid,
    integer,
    octets,
    oid_of,
    parse_token,
    parse_tst_info,
    utc_time,
)
from ocisign.x509.chain import check_signature_from, go_dn_string, self_signature_problem
from ocisign.x509.der import DERError, expect
from ocisign.x509.extensions import find_extension as _ext

if TYPE_CHECKING:
    from cryptography import x509

OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
OID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
OID_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
OID_ANY_EKU = "2.5.29.37.0"
_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_SHA1 = "1.3.14.3.2.26"
_RSA = "1.2.840.113549.1.1.1"
_RSA_PSS = "1.2.840.113549.1.1.10"
_SIG_WITH_HASH = {
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
}
_MAX_CHAIN = 10


@dataclass(frozen=True)
class VerifiedTimestamp:
    """A verified timestamp: genTime ± accuracy and the TSA chain (signer first, trusted root last)."""

    gen_time: dt.datetime
    accuracy: dt.timedelta
    tsa_chain: tuple[x509.Certificate, ...]

    @property
    def earliest(self) -> dt.datetime:
        """genTime - accuracy."""
        return self.gen_time - self.accuracy

    @property
    def latest(self) -> dt.datetime:
        """genTime + accuracy."""
        return self.gen_time + self.accuracy

    def describe(self) -> str:
        """``[earliest, latest]`` in RFC 3339."""
        return f"[{self.earliest.isoformat()}, {self.latest.isoformat()}]"


# --- certificates -------------------------------------------------------------------------------
def _der(cert: x509.Certificate) -> bytes:
    from ocisign.x509.encoding import certificate_der

    return certificate_der(cert)


def _subject(cert: x509.Certificate) -> str:
    return go_dn_string(cert.subject)


def _eku_oids(cert: x509.Certificate) -> list[str] | None:
    from cryptography import x509

    ext = _ext(cert, x509.ExtendedKeyUsage)
    return None if ext is None else [o.dotted_string for o in ext.value]


def _valid_at(cert: x509.Certificate, at: dt.datetime) -> str | None:
    if at < cert.not_valid_before_utc:
        return f"current time {at.isoformat()} is before {cert.not_valid_before_utc.isoformat()}"
    if at > cert.not_valid_after_utc:
        return f"current time {at.isoformat()} is after {cert.not_valid_after_utc.isoformat()}"
    return None


def build_chain(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                roots: Sequence[x509.Certificate], at: dt.datetime) -> list[x509.Certificate]:
    """A chain leaf → … → trusted root, every certificate valid at ``at`` (Go ``Certificate.Verify``)."""
    problem = _valid_at(leaf, at)
    if problem:
        raise TimestampError(f"x509: certificate has expired or is not yet valid: {problem}")
    root_ders = {_der(r) for r in roots}
    if _der(leaf) in root_ders:
        return [leaf]
    last_error = "x509: certificate signed by unknown authority"

    def extend(chain: list[x509.Certificate]) -> list[x509.Certificate] | None:
        nonlocal last_error
        current = chain[-1]
        if len(chain) > _MAX_CHAIN:
            return None
        issuer = current.issuer.public_bytes()
        for pool, is_root in ((roots, True), (intermediates, False)):
            for cand in pool:
                if cand.subject.public_bytes() != issuer or any(_der(cand) == _der(c) for c in chain):
                    continue
                why = check_signature_from(current, cand)
                if why is not None:
                    last_error = f"x509: {why}"
                    continue
                problem = _valid_at(cand, at)
                if problem:
                    last_error = f"x509: certificate has expired or is not yet valid: {problem}"
                    continue
                if is_root or _der(cand) in root_ders:
                    return [*chain, cand]
                found = extend([*chain, cand])
                if found:
                    return found
        return None

    chain = extend([leaf])
    if chain is None:
        raise TimestampError(last_error)
    # extended key usage must allow timestamping along the chain (Go checkChainForKeyUsage)
    for cert in chain:
        ekus = _eku_oids(cert)
        if ekus is not None and OID_TIME_STAMPING not in ekus and OID_ANY_EKU not in ekus:
            raise TimestampError("x509: certificate specifies an incompatible key usage")
    return chain


def _signing_certificate(token: SignedToken, si: SignerInfo) -> Any:
    """The certificate named by signingCertificateV2 (or v1), its hash checked (RFC 5035/2634)."""
    hash_name = "sha256"
    if OID_SIGNING_CERTIFICATE_V2 in si.signed_attrs:
        values = si.signed_attrs[OID_SIGNING_CERTIFICATE_V2]
        v2 = True
    elif OID_SIGNING_CERTIFICATE in si.signed_attrs:
        values = si.signed_attrs[OID_SIGNING_CERTIFICATE]
        v2, hash_name = False, "sha1"
    else:
        raise TimestampError("failed to get SigningCertificateV2 from signed attributes: attribute not found")
    if len(values) != 1:
        raise TimestampError("malformed signingCertificate attribute")
    seq = expect(values[0], 0x30, "SigningCertificate").children()
    if not seq:
        raise TimestampError("malformed SigningCertificate")
    ids = expect(seq[0], 0x30, "SigningCertificate certs").children()
    if not ids:
        raise TimestampError("signingCertificateV2 does not contain any certificate")
    ess = expect(ids[0], 0x30, "ESSCertID").children()
    i = 0
    if v2 and ess and ess[0].tag == 0x30:
        alg = algorithm_oid(ess[0], "ESSCertIDv2 hashAlgorithm")
        if alg not in _HASHES:
            raise TimestampError("unsupported certificate hash algorithm in SigningCertificateV2 attribute")
        hash_name = _HASHES[alg]
        i = 1
    if i >= len(ess):
        raise TimestampError("malformed ESSCertID")
    cert_hash = octets(ess[i], "ESSCertID certHash")
    issuer_raw, serial = si.sid_issuer, si.sid_serial
    if i + 1 < len(ess):
        iss = expect(ess[i + 1], 0x30, "IssuerSerial").children()
        if len(iss) != 2:
            raise TimestampError("malformed IssuerSerial")
        names = expect(iss[0], 0x30, "IssuerSerial issuer").children()
        dir_names = [n for n in names if n.tag == 0xA4]
        if not dir_names:
            raise TimestampError("issuer name is missing in IssuerSerial")
        inner = dir_names[0].children()
        if len(inner) != 1:
            raise TimestampError("malformed IssuerSerial directoryName")
        issuer_raw = inner[0].raw
        serial = integer(iss[1], "IssuerSerial serialNumber")
    candidate = None
    for cert in token.certificates:
        if cert.issuer.public_bytes() == issuer_raw and cert.serial_number == serial:
            candidate = cert
            break
    if candidate is None:
        raise TimestampError("signing certificate not found in the timestamp token")
    if hashlib.new(hash_name, _der(candidate)).digest() != cert_hash:
        raise TimestampError("signing certificate hash does not match CertHash in signed attribute")
    return candidate


def _verify_signer_signature(si: SignerInfo, content: bytes, cert: x509.Certificate) -> None:
    from cryptography.hazmat.primitives import hashes

    from ocisign.x509.signatures import Scheme, verify_signature

    digest = _HASHES.get(si.digest_alg)
    if si.signature_alg in _SIG_WITH_HASH:
        kind, digest_name = _SIG_WITH_HASH[si.signature_alg]
    elif si.signature_alg in (_RSA, _RSA_PSS) and digest is not None:
        kind, digest_name = ("rsa" if si.signature_alg == _RSA else "pss"), digest
    else:
        raise TimestampError("unknown signature algorithm")
    hash_alg = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[digest_name]
    signed = si.signed_attrs_raw if si.signed_attrs_raw is not None else content
    schemes: dict[str, Scheme] = {"rsa": "pkcs1v15", "pss": "pss", "ecdsa": "ecdsa"}
    outcome = verify_signature(cert.public_key(), si.signature, signed, scheme=schemes[kind], hash_alg=hash_alg,
                               pss_salt_auto=False)
    if outcome == "wrong-key":
        raise TimestampError("signature algorithm does not match the signing certificate key")
    if outcome != "ok":
        raise TimestampError("crypto/rsa: verification error" if kind != "ecdsa"
                             else "x509: ECDSA verification failure")


def _verify_signed_attributes(token: SignedToken, si: SignerInfo, chain: Sequence[x509.Certificate]) -> None:
    if si.signed_attrs_raw is None:
        raise TimestampError("missing signed attributes")
    ct = si.signed_attrs.get(OID_CONTENT_TYPE)
    if not ct or len(ct) != 1 or oid_of(ct[0], "contentType attribute") != token.content_type:
        raise TimestampError("mismatch content type in signer info")
    md = si.signed_attrs.get(OID_MESSAGE_DIGEST)
    if not md or len(md) != 1:
        raise TimestampError("invalid message digest")
    name = _HASHES.get(si.digest_alg)
    if name is None:
        raise TimestampError("unsupported digest algorithm")
    if hashlib.new(name, token.content).digest() != octets(md[0], "messageDigest attribute"):
        raise TimestampError("mismatch message digest")
    st = si.signed_attrs.get(OID_SIGNING_TIME)
    if st:
        t = utc_time(st[0], "signingTime attribute")
        if any(t < c.not_valid_before_utc or t > c.not_valid_after_utc for c in chain):
            raise TimestampError(f"signing time, {t.isoformat()}, is outside certificate's validity period")


def _check_timestamping_chain(chain: Sequence[x509.Certificate]) -> None:
    """notation-core-go ``ValidateTimestampingCertChain``."""
    from cryptography import x509

    from ocisign.envelope.algorithms import key_spec_of
    from ocisign.errors import OcisignError

    def leaf_rules(cert: x509.Certificate) -> None:
        bc = _ext(cert, x509.BasicConstraints)
        if bc is not None and bc.value.ca:
            raise TimestampError(f"certificate with subject {_subject(cert)!r}: if the basic constraints "
                                 "extension is present, the ca field must be set to false")
        ku = _ext(cert, x509.KeyUsage)
        if ku is None:
            raise TimestampError(f"certificate with subject {_subject(cert)!r}: key usage extension must be present")
        v = ku.value
        if not v.digital_signature:
            raise TimestampError(f"the certificate with subject {_subject(cert)!r} is invalid. The key usage "
                                 "must have the bit positions for \"Digital Signature\" set")
        bad = [n for n, on in (("KeyEncipherment", v.key_encipherment), ("DataEncipherment", v.data_encipherment),
                                ("KeyAgreement", v.key_agreement), ("CertSign", v.key_cert_sign),
                                ("CRLSign", v.crl_sign),
                                ("EncipherOnly", v.key_agreement and v.encipher_only),
                                ("DecipherOnly", v.key_agreement and v.decipher_only)) if on]
        if bad:
            raise TimestampError(f"the certificate with subject {_subject(cert)!r} is invalid. The key usage "
                                 f"must be \"Digital Signature\" only, but found {', '.join(bad)}")
        eku = _ext(cert, x509.ExtendedKeyUsage)
        if eku is None or [o.dotted_string for o in eku.value] != [OID_TIME_STAMPING]:
            raise TimestampError(f"timestamp signing certificate with subject {_subject(cert)!r} must have and "
                                 "only have Timestamping as extended key usage")
        if not eku.critical:
            raise TimestampError(f"timestamp signing certificate with subject {_subject(cert)!r} must have "
                                 "extended key usage extension marked as critical")
        try:
            key_spec_of(cert.public_key(), what=f"certificate with subject {_subject(cert)!r}")
        except OcisignError as exc:
            raise TimestampError(str(exc)) from None

    def ca_rules(cert: x509.Certificate, path_len: int) -> None:
        bc = _ext(cert, x509.BasicConstraints)
        if bc is None or not bc.value.ca:
            raise TimestampError(f"certificate with subject {_subject(cert)!r}: ca field in basic constraints "
                                 "must be present, critical, and set to true")
        if bc.value.path_length is not None and bc.value.path_length < path_len:
            raise TimestampError(f"certificate with subject {_subject(cert)!r}: expected path length of "
                                 f"{path_len} but certificate has path length {bc.value.path_length} instead")
        ku = _ext(cert, x509.KeyUsage)
        if ku is None:
            raise TimestampError(f"certificate with subject {_subject(cert)!r}: key usage extension must be present")
        if not ku.value.key_cert_sign:
            raise TimestampError(f"certificate with subject {_subject(cert)!r}: key usage must have the bit "
                                 "positions for key cert sign set")

    def self_signed(cert: x509.Certificate) -> bool:
        return (cert.issuer.public_bytes() == cert.subject.public_bytes()
                and check_signature_from(cert, cert) is None)

    if len(chain) == 1:
        cert = chain[0]
        if cert.issuer.public_bytes() != cert.subject.public_bytes() or self_signature_problem(cert):
            raise TimestampError(f"certificate with subject {_subject(cert)!r} is not self-signed")
        leaf_rules(cert)
        return
    for i, cert in enumerate(chain):
        if i == len(chain) - 1:
            if not self_signed(cert):
                raise TimestampError(f"root certificate with subject {_subject(cert)!r} is not self-signed. "
                                     "Certificate chain must end with a valid self-signed root certificate")
        else:
            if self_signed(cert):
                kind = "leaf" if i == 0 else "intermediate"
                raise TimestampError(f"{kind} certificate with subject {_subject(cert)!r} is self-signed")
        if i == 0:
            leaf_rules(cert)
        else:
            ca_rules(cert, i - 1)


# --- entry point --------------------------------------------------------------------------------
def verify_countersignature(
    token: bytes, signature: bytes, tsa_roots: Sequence[x509.Certificate]
) -> VerifiedTimestamp:
    """Verify ``token`` over the primitive ``signature`` bytes against ``tsa_roots`` (see the module docstring)."""
    try:
        parsed = parse_token(token)
        if parsed.content_type != OID_TST_INFO:
            raise TimestampError(f"unexpected content type: {parsed.content_type}")
    except (TimestampError, DERError) as exc:
        raise TimestampError(f"failed to parse timestamp countersignature with error: {exc}") from None
    try:
        info = parse_tst_info(parsed.content)
    except (TimestampError, DERError) as exc:
        raise TimestampError(f"failed to get the timestamp TSTInfo with error: {exc}") from None
    try:
        if info.version != 1:
            raise TimestampError(f"timestamp token info version must be 1, but got {info.version}")
        name = _HASHES.get(info.hash_alg)
        if name is None:
            raise TimestampError(f"unrecognized hash algorithm: {info.hash_alg}")
        if hashlib.new(name, signature).digest() != info.hashed_message:
            raise TimestampError("mismatched message")
    except (TimestampError, DERError) as exc:
        raise TimestampError(f"failed to get timestamp from timestamp countersignature with error: {exc}") from None
    if not tsa_roots:
        raise TimestampError("no trusted TSA certificate found in trust store")
    if not parsed.signer_infos:
        raise TimestampError("failed to verify the timestamp countersignature with error: signerInfo not found")
    last: TimestampError | DERError | None = None
    chain: list[x509.Certificate] | None = None
    for si in parsed.signer_infos:
        try:
            cert = _signing_certificate(parsed, si)
            if si.version != 1:
                raise TimestampError(f"invalid signer info version: only version 1 is supported; got {si.version}")
            candidate = build_chain(cert, parsed.certificates, tsa_roots, info.gen_time)
            _verify_signer_signature(si, parsed.content, cert)
            _verify_signed_attributes(parsed, si, candidate)
            ekus = _eku_oids(cert)
            from cryptography import x509

            eku_ext = _ext(cert, x509.ExtendedKeyUsage)
            if ekus != [OID_TIME_STAMPING]:
                raise TimestampError("signing certificate must have and only have ExtKeyUsageTimeStamping as "
                                     "extended key usage")
            if not eku_ext.critical:
                raise TimestampError("signing certificate extended key usage extension must be set as critical")
            chain = candidate
            break
        except (TimestampError, DERError) as exc:
            last = exc
    if chain is None:
        raise TimestampError(f"failed to verify the timestamp countersignature with error: {last}")
    try:
        _check_timestamping_chain(chain)
    except (TimestampError, DERError) as exc:
        raise TimestampError(f"failed to validate the timestamping certificate chain with error: {exc}") from None
    return VerifiedTimestamp(gen_time=info.gen_time, accuracy=info.accuracy, tsa_chain=tuple(chain))
