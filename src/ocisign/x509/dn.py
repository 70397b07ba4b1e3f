"""Distinguished names (RFC 4514) the way notation reads them, for ``x509.subject`` identities.

Two layers, mirroring notation:

* :func:`parse_dn` is the go-ldap v3 ``ParseDN`` algorithm: RDNs separated by ``,`` or ``;``,
  attributes inside an RDN by ``+``; the whole string, each type and each value are trimmed of
  white space (Go ``strings.TrimSpace``); ``\\,``-style and ``\\XX`` hex escapes are decoded; a
  trailing space survives only when escaped (odd number of backslashes before it); a NUL
  character is an error. Hex-encoded BER values (``CN=#0403…``) are never decoded.
* :func:`parse_identity_dn` is notation's ``pkix.ParseDistinguishedName``: it refuses ``=#``,
  multi-valued RDNs and repeated attribute types, treats ``S`` as an alias of ``ST``, and
  requires non-empty ``C``, ``ST`` and ``O``. Attribute types are case-sensitive.

:func:`is_subset_dn` is notation's ``IsSubsetDN``: every attribute of the policy DN must be present
in the certificate DN with an identical value. Formatted DN strings are never compared.

Every failure raises :class:`DNError`; nothing else escapes these functions.
"""

from __future__ import annotations

from collections.abc import Mapping

from ocisign.errors import UsageError
from ocisign.goformat import go_quote as _q

#: characters Go's ``strings.TrimSpace`` removes (Unicode White_Space)
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"
_ESCAPABLE = frozenset(' "#+,;<=>\\')
_HEX = frozenset("0123456789abcdefABCDEF")
#: attributes a notation identity must contain (after the S -> ST alias)
MANDATORY_ATTRIBUTES = ("C", "ST", "O")
#: bound on the input length (identities and rendered subjects are short)
MAX_DN_LENGTH = 64 * 1024

Attribute = tuple[str, str]
RDN = tuple[Attribute, ...]



class DNError(UsageError):
    """A distinguished name could not be parsed or breaks notation's identity rules."""


def _strip_spaces(raw: str) -> str:
    """Trim white space like Go's ``strings.TrimSpace``; keep a trailing space that is escaped.

    A space is escaped when an odd number of backslashes precedes it.
    """
    stripped = raw.strip(_GO_SPACE)
    if stripped:
        lead = len(raw) - len(raw.lstrip(_GO_SPACE))
        after = lead + len(stripped)
        backslashes = len(stripped) - len(stripped.rstrip("\\"))
        if after < len(raw) and raw[after] == " " and backslashes % 2 == 1:
            stripped += " "
    return stripped


def _decode(raw: str, *, what: str) -> str:
    """Trim and unescape a type or value (go-ldap ``decodeString``)."""
    s = _strip_spaces(raw)
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch != "\\":
            if ch == "\x00":
                raise DNError(f"{what}: unescaped NUL character")
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= n:
            raise DNError(f"{what}: dangling escape character at the end")
        nxt = s[i + 1]
        if nxt in _ESCAPABLE:
            out += nxt.encode("utf-8")
            i += 2
            continue
        if i + 2 >= n:
            raise DNError(
                f"{what}: invalid escape '\\{nxt}' (want \\ followed by a special character or two hex digits)"
            )
        pair = s[i + 1 : i + 3]
        if not all(c in _HEX for c in pair):
            raise DNError(f"{what}: invalid hex escape '\\{pair}'")
        out.append(int(pair, 16))
        i += 3
    return out.decode("utf-8", "surrogateescape")


def parse_dn(text: str) -> tuple[RDN, ...]:
    """Parse an RFC 4514 DN into RDNs of (type, value) pairs, in written order (go-ldap ``ParseDN``).

    An empty or all-space string yields no RDNs. Raises :class:`DNError`.
    """
    if not isinstance(text, str):
        raise DNError(f"distinguished name must be a string, got {type(text).__name__}")
    if len(text) > MAX_DN_LENGTH:
        raise DNError(f"distinguished name is longer than {MAX_DN_LENGTH} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DNError("distinguished name is not valid Unicode (lone surrogate)") from None
    if not text.strip(_GO_SPACE):
        return ()
    rdns: list[RDN] = []
    current: list[Attribute] = []
    attr_type: str | None = None
    escaping = False
    start = 0
    for i, ch in enumerate(text):
        if escaping:
            escaping = False
        elif ch == "\\":
            escaping = True
        elif ch == "=" and not attr_type:
            attr_type = _decode(text[start:i], what="attribute type")
            start = i + 1
        elif ch in ",;+":
            if not attr_type:
                raise DNError(f"incomplete type=value pair before {_q(ch)} at position {i}")
            current.append((attr_type, _value(text[start:i])))
            attr_type = None
            start = i + 1
            if ch != "+":
                rdns.append(tuple(current))
                current = []
    if not attr_type:
        raise DNError("distinguished name ends with an incomplete type=value pair")
    current.append((attr_type, _value(text[start:])))
    rdns.append(tuple(current))
    return tuple(rdns)


def _value(raw: str) -> str:
    if raw.startswith("#"):
        raise DNError("hex-encoded attribute values ('=#…') are not supported")
    return _decode(raw, what="attribute value")


def parse_identity_dn(text: str) -> dict[str, str]:
    """Parse a DN with notation's identity rules into ``{type: value}``.

    Refuses ``=#``, multi-valued RDNs, repeated attribute types (``S`` and ``ST`` are the same
    type) and DNs without non-empty ``C``, ``ST`` and ``O``. Raises :class:`DNError`.
    """
    if not isinstance(text, str):
        raise DNError(f"distinguished name must be a string, got {type(text).__name__}")
    if "=#" in text:
        raise DNError(f"distinguished name {_q(text)}: hex-encoded values ('=#') are not supported")
    try:
        rdns = parse_dn(text)
    except DNError as exc:
        raise DNError(f"distinguished name {_q(text)} is not a valid RFC 4514 DN: {exc}") from None
    out: dict[str, str] = {}
    for rdn in rdns:
        if len(rdn) > 1:
            raise DNError(f"distinguished name {_q(text)} has a multi-valued RDN ('+'), which is not supported")
        attr_type, value = rdn[0]
        if attr_type == "S":
            attr_type = "ST"
        if attr_type in out:
            raise DNError(f"distinguished name {_q(text)} repeats the attribute {_q(attr_type)}")
        out[attr_type] = value
    for field in MANDATORY_ATTRIBUTES:
        if not out.get(field):
            raise DNError(
                f"distinguished name {_q(text)} has no {_q(field)} attribute; "
                "an identity must contain at least C, ST and O"
            )
    return out


def is_subset_dn(subset: Mapping[str, str], superset: Mapping[str, str]) -> bool:
    """True when every attribute of ``subset`` has the identical value in ``superset``.

    As in notation, a missing attribute counts as the empty value.
    """
    return all(superset.get(k, "") == v for k, v in subset.items())


def format_dn(attrs: Mapping[str, str]) -> str:
    """Render attributes as an RFC 4514 string ``K=V, …`` that :func:`parse_dn` reads back.

    Escapes ``,+;\\"<>=#`` (so the text never contains ``=#``), leading and trailing white space, and
    control characters.
    """

    def esc(v: str) -> str:
        out = []
        for i, c in enumerate(v):
            if c in ',+;\\"<>=#' or (c == " " and i in (0, len(v) - 1)):
                out.append("\\" + c)
            elif ord(c) < 0x20 or c == "\x7f" or (c in _GO_SPACE and i in (0, len(v) - 1)):
                out.append("".join(f"\\{b:02x}" for b in c.encode("utf-8")))
            else:
                out.append(c)
        return "".join(out)

    return ", ".join(f"{k}={esc(v)}" for k, v in attrs.items())
