"""Reading RFC 3161 TimeStampTokens: the CMS ``SignedData`` around a ``TSTInfo`` (parsing only).

:func:`parse_token` and :func:`parse_tst_info` locate the fields with the package's DER reader
(:mod:`ocisign.x509.der`); ``cryptography`` only loads the embedded certificates. Verifying a
token (imprint, signer, chain, attributes) is :mod:`ocisign.verify.timestamp`. Every problem
raises :class:`TimestampError` or :class:`~ocisign.x509.der.DERError`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ocisign.errors import VerificationError
from ocisign.lazy_dataclass import dataclass
from ocisign.x509.der import TLV, expect, generalized_time, parse_single

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
OID_BASELINE_TIMESTAMP_POLICY = "0.4.0.2023.1.1"
#: tokens are a few KiB; refuse anything absurd before parsing
MAX_TOKEN_SIZE = 1024 * 1024


class TimestampError(VerificationError):
    """A timestamp countersignature is malformed, untrusted or cannot be checked."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


# --- DER fields ---------------------------------------------------------------------------------
def oid_of(tlv: TLV, what: str) -> str:
    """The dotted form of an OBJECT IDENTIFIER."""
    expect(tlv, 0x06, what)
    body = tlv.content
    if not body:
        raise TimestampError(f"malformed {what}: empty object identifier")
    parts: list[int] = []
    value = 0
    for i, b in enumerate(body):
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
        elif i == len(body) - 1:
            raise TimestampError(f"malformed {what}: truncated object identifier")
    first = parts[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(p) for p in head + parts[1:])


def integer(tlv: TLV, what: str) -> int:
    """An INTEGER (two's complement)."""
    expect(tlv, 0x02, what)
    if not tlv.content:
        raise TimestampError(f"malformed {what}: empty integer")
    return int.from_bytes(tlv.content, "big", signed=True)


def octets(tlv: TLV, what: str) -> bytes:
    """The content of an OCTET STRING."""
    return expect(tlv, 0x04, what).content


def utc_time(tlv: TLV, what: str) -> dt.datetime:
    """A CMS ``Time``: UTCTime, or GeneralizedTime (:func:`ocisign.x509.der.generalized_time`)."""
    if tlv.tag == 0x18:
        return generalized_time(tlv, what)
    text = expect(tlv, 0x17, what).content.decode("ascii", "replace")
    if len(text) != 13 or not text.endswith("Z") or not text[:12].isdigit():
        raise TimestampError(f"malformed {what}: {text!r} is not a UTCTime")
    year = int(text[0:2])
    year += 1900 if year >= 50 else 2000
    try:
        return dt.datetime(year, int(text[2:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                           tzinfo=dt.timezone.utc)
    except ValueError:
        raise TimestampError(f"malformed {what}: invalid date {text!r}") from None


def algorithm_oid(tlv: TLV, what: str) -> str:
    """The algorithm OID of an AlgorithmIdentifier."""
    kids = expect(tlv, 0x30, what).children()
    if not kids:
        raise TimestampError(f"malformed {what}: empty AlgorithmIdentifier")
    return oid_of(kids[0], what)


# --- structures ---------------------------------------------------------------------------------
@dataclass
class SignerInfo:
    """One CMS SignerInfo (RFC 5652 §5.3) as far as timestamp verification needs it."""

    version: int
    sid_issuer: bytes
    sid_serial: int
    digest_alg: str
    signed_attrs_raw: bytes | None
    signed_attrs: dict[str, list[TLV]]
    signature_alg: str
    signature_alg_tlv: TLV
    signature: bytes


@dataclass
class SignedToken:
    """A TimeStampToken: its encapsulated content, certificates and SignerInfos."""

    content_type: str
    content: bytes
    certificates: list[Any]
    signer_infos: list[SignerInfo]


@dataclass
class TSTInfo:
    """The TSTInfo of a token (RFC 3161 §2.4.2)."""

    version: int
    policy: str
    hash_alg: str
    hashed_message: bytes
    gen_time: dt.datetime
    accuracy: dt.timedelta
    #: the request's nonce echoed by the TSA (None when absent)
    nonce: int | None = None


def _parse_attributes(tlv: TLV) -> dict[str, list[TLV]]:
    out: dict[str, list[TLV]] = {}
    for attr in tlv.children():
        kids = expect(attr, 0x30, "attribute").children()
        if len(kids) != 2:
            raise TimestampError("malformed attribute")
        oid = oid_of(kids[0], "attribute type")
        if oid in out:
            raise TimestampError(f"malformed signed attributes: attribute {oid} repeated")
        out[oid] = expect(kids[1], 0x31, "attribute values").children()
    return out


def _parse_signer_info(tlv: TLV) -> SignerInfo:
    kids = expect(tlv, 0x30, "SignerInfo").children()
    if len(kids) < 5:
        raise TimestampError("malformed SignerInfo")
    version = integer(kids[0], "SignerInfo version")
    sid_issuer, sid_serial = b"", 0
    if kids[1].tag == 0x30:
        sid = kids[1].children()
        if len(sid) != 2:
            raise TimestampError("malformed SignerInfo sid")
        sid_issuer = expect(sid[0], 0x30, "sid issuer").raw
        sid_serial = integer(sid[1], "sid serial number")
    digest_alg = algorithm_oid(kids[2], "SignerInfo digestAlgorithm")
    i = 3
    signed_raw: bytes | None = None
    attrs: dict[str, list[TLV]] = {}
    if kids[i].tag == 0xA0:
        attrs = _parse_attributes(kids[i])
        # the signature covers the DER SET OF: the same bytes with the universal SET tag
        signed_raw = b"\x31" + kids[i].raw[1:]
        i += 1
    if i + 1 >= len(kids):
        raise TimestampError("malformed SignerInfo: missing signature")
    sig_alg_tlv = kids[i]
    sig_alg = algorithm_oid(sig_alg_tlv, "SignerInfo signatureAlgorithm")
    signature = octets(kids[i + 1], "SignerInfo signature")
    return SignerInfo(version, sid_issuer, sid_serial, digest_alg, signed_raw, attrs, sig_alg, sig_alg_tlv, signature)


def parse_token(token: bytes) -> SignedToken:
    """Parse a DER TimeStampToken (CMS SignedData); raises TimestampError."""
    from cryptography import x509

    if len(token) > MAX_TOKEN_SIZE:
        raise TimestampError(f"timestamp token of {len(token)} bytes is larger than {MAX_TOKEN_SIZE}")
    ci = parse_single(token, "ContentInfo").children()
    if len(ci) != 2 or oid_of(ci[0], "content type") != OID_SIGNED_DATA:
        raise TimestampError("the timestamp token is not a CMS SignedData")
    sd_wrapped = expect(ci[1], 0xA0, "ContentInfo content").children()
    if len(sd_wrapped) != 1:
        raise TimestampError("malformed ContentInfo content")
    sd = expect(sd_wrapped[0], 0x30, "SignedData").children()
    if len(sd) < 4:
        raise TimestampError("malformed SignedData")
    encap = expect(sd[2], 0x30, "EncapsulatedContentInfo").children()
    if not encap:
        raise TimestampError("malformed EncapsulatedContentInfo")
    content_type = oid_of(encap[0], "eContentType")
    content = b""
    if len(encap) > 1:
        inner = expect(encap[1], 0xA0, "eContent").children()
        if len(inner) != 1:
            raise TimestampError("malformed eContent")
        content = octets(inner[0], "eContent")
    certs: list[Any] = []
    signer_set: TLV | None = None
    for tlv in sd[3:]:
        if tlv.tag == 0xA0:
            for c in tlv.children():
                if c.tag != 0x30:
                    raise TimestampError("unsupported certificate choice in the timestamp token")
                try:
                    certs.append(x509.load_der_x509_certificate(c.raw))
                except ValueError as exc:
                    raise TimestampError(f"invalid certificate in the timestamp token: {exc}") from None
        elif tlv.tag == 0xA1:
            continue  # CRLs are not used
        elif tlv.tag == 0x31:
            signer_set = tlv
        else:
            raise TimestampError(f"malformed SignedData: unexpected tag 0x{tlv.tag:02x}")
    if signer_set is None:
        raise TimestampError("malformed SignedData: no signerInfos")
    signers = [_parse_signer_info(t) for t in signer_set.children()]
    return SignedToken(content_type, content, certs, signers)


def parse_tst_info(content: bytes) -> TSTInfo:
    """Parse the TSTInfo content of a token."""
    kids = expect(parse_single(content, "TSTInfo"), 0x30, "TSTInfo").children()
    if len(kids) < 5:
        raise TimestampError("malformed TSTInfo")
    version = integer(kids[0], "TSTInfo version")
    policy = oid_of(kids[1], "TSTInfo policy")
    mi = expect(kids[2], 0x30, "messageImprint").children()
    if len(mi) != 2:
        raise TimestampError("malformed messageImprint")
    hash_alg = algorithm_oid(mi[0], "messageImprint hashAlgorithm")
    hashed = octets(mi[1], "messageImprint hashedMessage")
    integer(kids[3], "TSTInfo serialNumber")
    gen_time = generalized_time(kids[4], "TSTInfo genTime")
    accuracy = dt.timedelta()
    if len(kids) > 5 and kids[5].tag == 0x30:
        for part in kids[5].children():
            if part.tag == 0x02:
                accuracy += dt.timedelta(seconds=integer(part, "accuracy seconds"))
            elif part.tag == 0x80:
                accuracy += dt.timedelta(milliseconds=int.from_bytes(part.content, "big", signed=True))
            elif part.tag == 0x81:
                accuracy += dt.timedelta(microseconds=int.from_bytes(part.content, "big", signed=True))
            else:
                raise TimestampError("malformed TSTInfo accuracy")
        if accuracy < dt.timedelta():
            raise TimestampError("malformed TSTInfo accuracy: negative")
    if accuracy == dt.timedelta() and policy == OID_BASELINE_TIMESTAMP_POLICY:
        accuracy = dt.timedelta(seconds=1)
    # after genTime/accuracy: ordering BOOLEAN, nonce INTEGER, tsa [0], extensions [1]
    nonces = [integer(kid, "TSTInfo nonce") for kid in kids[5:] if kid.tag == 0x02]
    if len(nonces) > 1:
        raise TimestampError("malformed TSTInfo: more than one nonce")
    return TSTInfo(version, policy, hash_alg, hashed, gen_time, accuracy, nonces[0] if nonces else None)
