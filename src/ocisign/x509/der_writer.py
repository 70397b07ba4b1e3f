"""A minimal DER writer: the encoding counterpart of :mod:`ocisign.x509.der` (which only reads).

Just what RFC 3161 requests (and the test TSA's responses) need: definite minimal lengths,
single-byte tags, INTEGER, BOOLEAN, NULL, OBJECT IDENTIFIER, OCTET/BIT/UTF8 strings,
GeneralizedTime, SEQUENCE, ``SET OF`` (elements sorted by their encoding, as DER requires)
and context-specific tags. No cryptography here.
"""

from __future__ import annotations

import datetime as dt


def tlv(tag: int, content: bytes) -> bytes:
    """One element: identifier byte, minimal definite length, content."""
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F:
        raise ValueError(f"DER writer: tag 0x{tag:x} is not a single-byte tag")
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def sequence(*items: bytes) -> bytes:
    """``SEQUENCE { items… }`` in the given order."""
    return tlv(0x30, b"".join(items))


def set_of(*items: bytes) -> bytes:
    """``SET OF`` with the element encodings sorted (X.690 §11.6)."""
    return tlv(0x31, b"".join(sorted(items)))


def integer(value: int) -> bytes:
    """``INTEGER`` (two's complement, minimal)."""
    length = (~value if value < 0 else value).bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(length, "big", signed=True))


def boolean(value: bool) -> bytes:
    """``BOOLEAN`` (DER TRUE is 0xFF)."""
    return tlv(0x01, b"\xff" if value else b"\x00")


def null() -> bytes:
    """``NULL``."""
    return b"\x05\x00"


def oid(dotted: str) -> bytes:
    """``OBJECT IDENTIFIER`` from its dotted form (``1.2.840.113549.1.7.2``)."""
    try:
        arcs = [int(p) for p in dotted.split(".")]
    except ValueError:
        raise ValueError(f"DER writer: {dotted!r} is not a dotted object identifier") from None
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or any(a < 0 for a in arcs):
        raise ValueError(f"DER writer: {dotted!r} is not a valid object identifier")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def octet_string(data: bytes) -> bytes:
    """``OCTET STRING``."""
    return tlv(0x04, data)


def bit_string(data: bytes, unused_bits: int = 0) -> bytes:
    """``BIT STRING`` with ``unused_bits`` padding bits in the last byte."""
    return tlv(0x03, bytes((unused_bits,)) + data)


def utf8_string(text: str) -> bytes:
    """``UTF8String``."""
    return tlv(0x0C, text.encode("utf-8"))


def generalized_time(t: dt.datetime) -> bytes:
    """``GeneralizedTime`` in UTC, ``YYYYMMDDHHMMSS[.f]Z`` without trailing fraction zeros."""
    if t.tzinfo is None:
        raise ValueError("DER writer: GeneralizedTime needs an aware datetime")
    t = t.astimezone(dt.timezone.utc)
    text = t.strftime("%Y%m%d%H%M%S")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return tlv(0x18, (text + "Z").encode("ascii"))


def context(number: int, content: bytes, *, constructed: bool = True) -> bytes:
    """A context-specific ``[number]`` element around ``content`` (EXPLICIT, or IMPLICIT contents)."""
    if not 0 <= number < 0x1F:
        raise ValueError(f"DER writer: context tag [{number}] needs a multi-byte tag")
    return tlv(0x80 | (0x20 if constructed else 0) | number, content)


def algorithm_identifier(dotted: str, *, null_parameters: bool = False) -> bytes:
    """``AlgorithmIdentifier { algorithm, parameters }`` with absent or NULL parameters."""
    return sequence(oid(dotted), null()) if null_parameters else sequence(oid(dotted))
