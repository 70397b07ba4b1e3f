"""A small, bounded DER reader (definite lengths, single-byte tags) for locating ASN.1 fields.

The one DER tokenizer of the package: used to read RFC 3161 timestamp tokens
(:mod:`ocisign.verify.timestamp`), to find the SubjectPublicKeyInfo of envelope certificates
(:mod:`ocisign.envelope.certificates`), to decode GeneralizedTime values (timestamps, OCSP/CRL
invalidity dates: :func:`generalized_time`) and to hold certificates to the strict DER that Go's
parser demands (:func:`certificate_encoding_problem`). It only splits bytes into
tag/length/value; all cryptography is done by ``cryptography``. Every problem raises
:class:`DERError`. The writing side is :mod:`ocisign.x509.der_writer`.
"""

from __future__ import annotations

import datetime as dt

from ocisign.errors import ContentError

#: bound on the number of elements in one constructed value
MAX_ELEMENTS = 10_000


class DERError(ContentError):
    """Bytes are not the DER structure expected."""


class TLV:
    """One DER element: its identifier byte, full encoding and content bytes (treat as immutable).

    A plain class: parsing a certificate makes many, and a dataclass would also cost half a
    millisecond of every ``verify``'s start-up.
    """

    __slots__ = ("content", "raw", "tag")

    def __init__(self, tag: int, raw: bytes, content: bytes) -> None:
        self.tag = tag
        self.raw = raw
        self.content = content

    def __repr__(self) -> str:
        return f"TLV(tag={self.tag!r}, raw={self.raw!r}, content={self.content!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TLV):
            return NotImplemented
        return (self.tag, self.raw) == (other.tag, other.raw)

    def __hash__(self) -> int:
        return hash((self.tag, self.raw))

    @property
    def constructed(self) -> bool:
        """True for constructed encodings (SEQUENCE, SET, context-specific constructed)."""
        return bool(self.tag & 0x20)

    def children(self) -> list[TLV]:
        """The elements inside a constructed value."""
        if not self.constructed:
            raise DERError(f"malformed DER: element with tag 0x{self.tag:02x} is not constructed")
        return parse_all(self.content)


def parse_one(data: bytes, pos: int) -> tuple[TLV, int]:
    """The element starting at ``pos`` and the position after it."""
    if pos + 2 > len(data):
        raise DERError("malformed DER: truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DERError("malformed DER: multi-byte tags are not supported")
    first = data[pos + 1]
    if first < 0x80:
        length, hdr = first, 2
    elif first == 0x80:
        raise DERError("malformed DER: indefinite lengths (BER) are not supported")
    else:
        n = first & 0x7F
        if n > 4 or pos + 2 + n > len(data):
            raise DERError("malformed DER: bad length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
        if length < 0x80 or data[pos + 2] == 0:
            raise DERError("malformed DER: length is not minimally encoded")
        hdr = 2 + n
    end = pos + hdr + length
    if end > len(data):
        raise DERError("malformed DER: element runs past the end of its container")
    return TLV(tag, data[pos:end], data[pos + hdr : end]), end


def parse_all(data: bytes) -> list[TLV]:
    """Every element of ``data``, back to back."""
    out: list[TLV] = []
    pos = 0
    while pos < len(data):
        tlv, pos = parse_one(data, pos)
        out.append(tlv)
        if len(out) > MAX_ELEMENTS:
            raise DERError("malformed DER: too many elements")
    return out


def parse_single(data: bytes, what: str) -> TLV:
    """Exactly one element filling ``data``."""
    tlv, end = parse_one(data, 0)
    if end != len(data):
        raise DERError(f"malformed {what}: trailing data")
    return tlv


def expect(tlv: TLV, tag: int, what: str) -> TLV:
    """``tlv`` if it has ``tag``."""
    if tlv.tag != tag:
        raise DERError(f"malformed {what}: unexpected tag 0x{tlv.tag:02x} (want 0x{tag:02x})")
    return tlv


def generalized_time(tlv: TLV, what: str, *, fraction: bool = True) -> dt.datetime:
    """A UTC ``GeneralizedTime`` (``YYYYMMDDHHMMSS[.f]Z``) as an aware datetime.

    Only the ``Z`` form is accepted. Fractional seconds (``.`` and digits without a trailing
    zero, as DER requires) are accepted when ``fraction`` is true and refused otherwise (RFC 5280
    times: certificates, CRL/OCSP invalidity dates). Digits past microseconds are dropped.
    """
    text = expect(tlv, 0x18, what).content.decode("ascii", "replace")
    if not text.endswith("Z") or len(text) < 15 or not text[:14].isdigit():
        raise DERError(f"malformed {what}: {text!r} is not a UTC GeneralizedTime")
    frac = text[14:-1]
    micro = 0
    if frac:
        if not fraction:
            raise DERError(f"malformed {what}: fractional seconds are not allowed in {text!r}")
        if not frac.startswith(".") or not frac[1:].isdigit() or frac.endswith("0"):
            raise DERError(f"malformed {what}: bad fractional seconds in {text!r}")
        micro = int(frac[1:].ljust(6, "0")[:6])
    try:
        return dt.datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                           int(text[12:14]), micro, tzinfo=dt.timezone.utc)
    except ValueError:
        raise DERError(f"malformed {what}: invalid date {text!r}") from None


def certificate_encoding_problem(der: bytes) -> str | None:
    """Why a certificate's outer encoding is not what Go's parser accepts (None when it is).

    ``Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }``
    with nothing after it, and a signature BIT STRING without unused bits (Go refuses non-zero
    padding and right-aligns the rest; ``cryptography`` ignores them, which would let a changed
    encoding verify).
    """
    try:
        parts = expect(parse_single(der, "certificate"), 0x30, "certificate").children()
        if len(parts) != 3:
            return "certificate must have exactly tbsCertificate, signatureAlgorithm and signatureValue"
        expect(parts[0], 0x30, "tbsCertificate")
        expect(parts[1], 0x30, "signatureAlgorithm")
        sig = expect(parts[2], 0x03, "signatureValue")
    except DERError as exc:
        return str(exc)
    if not sig.content or sig.content[0] != 0:
        return "certificate signature BIT STRING has unused bits"
    return None
