"""Strict decoding of envelope text fields: base64url/standard base64 and JSON.

Go's encoders are the reference: base64url without padding (JWS), standard base64 with padding
(Go ``[]byte`` in JSON), strict JSON. Anything non-canonical raises EnvelopeError. The JSON
*encoder* (Go ``json.Marshal``) is :func:`ocisign.goformat.go_marshal`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import sys
from typing import Any

from ocisign.envelope.errors import EnvelopeError
from ocisign.errors import ContentError
from ocisign.oci.model import parse_json


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode_strict(text: object, *, where: str) -> bytes:
    """Decode canonical base64url without padding; anything else raises EnvelopeError.

    Padding, whitespace, the standard alphabet (``+/``) and non-zero trailing bits are refused.
    """
    if not isinstance(text, str):
        raise EnvelopeError(f"{where}: expected a base64url string, got {json_type(text)}")
    if not text.isascii():
        raise EnvelopeError(f"{where}: not base64url (non-ASCII characters)")
    rem = len(text) % 4
    if rem == 1:
        raise EnvelopeError(f"{where}: not base64url (bad length)")
    try:
        raw = _decode_std(text.encode("ascii").translate(_URL_TO_STD) + _PAD[rem])
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{where}: not base64url without padding") from None
    # canonical: the bits of the last character beyond the data are zero (RFC 4648 section 3.5)
    if rem and text[-1] not in _LAST[rem]:
        raise EnvelopeError(f"{where}: not canonical base64url without padding")
    return raw


def b64std_decode_strict(text: object, *, where: str) -> bytes:
    """Decode canonical standard base64 *with* padding (Go's ``[]byte`` JSON encoding)."""
    if not isinstance(text, str):
        raise EnvelopeError(f"{where}: expected a base64 string, got {json_type(text)}")
    if not text.isascii():
        raise EnvelopeError(f"{where}: not base64 (non-ASCII characters)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{where}: not standard base64 with padding") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise EnvelopeError(f"{where}: not canonical standard base64 with padding")
    return raw


#: base64url → standard alphabet; ``+``, ``/`` and ``=`` (not base64url without padding) become ``!``,
#: which the decoder refuses
_URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
#: the padding a base64url text of length ``4k + rem`` needs (rem 1 is refused before)
_PADDING = {0: b"", 2: b"==", 3: b"="}
#: the last characters whose unused low bits are zero, for ``rem`` 2 (4 unused bits) and 3 (2 bits)
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
#: the two tables indexed by ``rem`` (a tuple index is cheaper than a dict lookup per field)
_PAD = (b"", b"", b"==", b"=")
_LAST: tuple[frozenset[str], ...] = (frozenset(), frozenset(), _CANONICAL_LAST[2], _CANONICAL_LAST[3])


#: standard base64 with padding, every character in the alphabet (``b64decode(validate=True)``)
if sys.version_info >= (3, 11):
    _decode_std = functools.partial(binascii.a2b_base64, strict_mode=True)
else:  # pragma: no cover - Python 3.10

    def _decode_std(data: bytes) -> bytes:
        return base64.b64decode(data, validate=True)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type (``null``, ``number``, ``object`` …) for messages."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def parse_json_strict(data: bytes, *, where: str) -> Any:
    """Strict JSON (UTF-8 without BOM, no duplicate keys, no NaN); EnvelopeError otherwise."""
    try:
        return parse_json(data, where=where)
    except ContentError as exc:
        raise EnvelopeError(str(exc)) from None
