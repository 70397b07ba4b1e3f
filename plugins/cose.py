"""Built-in plugin ``cose``: Notary COSE envelopes (``application/cose``).

``COSE_Sign1_Tagged`` = CBOR tag 18 around ``[protected bstr, unprotected map, payload bstr,
signature bstr]``, byte-compatible with notation-core-go / go-cose:

* protected map (deterministic key order): ``1`` alg (int), ``2`` crit, ``3`` content type
  (tstr), ``io.cncf.notary.signingScheme``, signing time / authentic signing time / expiry as
  CBOR tag 1 wrapping an integer (written; a finite float is accepted when read, as notation
  does), extended attributes (tstr labels);
* unprotected map: ``33`` x5chain (always an array of bstr, leaf first),
  ``io.cncf.notary.timestampSignature`` (bstr), ``io.cncf.notary.signingAgent`` (tstr);
* signature over ``Sig_structure = ["Signature1", protected bstr, h'', payload]``:
  RSASSA-PSS with salt = hash length, or raw ``r||s`` ECDSA.

Envelopes are written with ``cbor2`` and read with a small strict decoder that refuses
indefinite lengths, non-minimal heads, duplicate map keys, tags outside the protected header
(only tag 1 inside it), simple values other than false/true/null, trailing bytes and deep
nesting. :func:`open_envelope` raises only :class:`~ocisign.envelope.errors.EnvelopeError`.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ocisign.envelope.algorithms import BY_COSE_ALG
from ocisign.envelope.content import (
    check_required_critical,
    optional_string,
    scheme_times,
    verified_content,
)
from ocisign.envelope.errors import EnvelopeError
from ocisign.envelope.guard import open_guarded
from ocisign.envelope.headers import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_AGENT,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_TIMESTAMP_SIGNATURE,
    H_VERIFICATION_PLUGIN,
    H_VERIFICATION_PLUGIN_MIN_VERSION,
    PAYLOAD_CONTENT_TYPE,
    SCHEME_SIGNING_AUTHORITY,
    SCHEME_X509,
    STANDARD_HEADERS,
)
from ocisign.envelope.times import from_unix, to_unix
from ocisign.errors import SigningError
from ocisign.lazy_plugins import hookimpl
from ocisign.oci.model import MT_COSE
from ocisign.types import EnvelopeContent, EnvelopeFormat

if TYPE_CHECKING:
    from ocisign.types import Signer, SignRequest

LABEL_ALG = 1
LABEL_CRIT = 2
LABEL_CONTENT_TYPE = 3
LABEL_X5CHAIN = 33
TAG_SIGN1 = 18
TAG_EPOCH = 1
_MAX_DEPTH = 16
_TIME_LABELS = (H_SIGNING_TIME, H_AUTHENTIC_SIGNING_TIME, H_EXPIRY)


# --- strict CBOR decoding ------------------------------------------------------------------------
class Tagged:
    """A CBOR tag and its content (only tag 1 is ever accepted, inside the protected header).

    A plain class (treat as immutable): a dataclass would cost half a millisecond of start-up.
    """

    __slots__ = ("tag", "value")

    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __repr__(self) -> str:
        return f"Tagged(tag={self.tag!r}, value={self.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tagged):
            return NotImplemented
        return (self.tag, self.value) == (other.tag, other.value)

    def __hash__(self) -> int:
        return hash((self.tag, self.value))


class _CborError(ValueError):
    pass


class _Decoder:
    """Strict decoder for the CBOR subset COSE headers use (RFC 8949 well-formedness + policy)."""

    def __init__(self, data: bytes, *, allowed_tags: frozenset[int] = frozenset()) -> None:
        self.data = data
        self.pos = 0
        self.allowed_tags = allowed_tags

    def decode_all(self) -> Any:
        value = self.item(0)
        if self.pos != len(self.data):
            raise _CborError(f"{len(self.data) - self.pos} bytes of trailing data")
        return value

    def _take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _CborError("unexpected end of data")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _head(self) -> tuple[int, int, int]:
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info
        if info == 31:
            raise _CborError("indefinite-length items are not allowed")
        if info > 27:
            raise _CborError(f"reserved additional information {info}")
        size = 1 << (info - 24)
        arg = int.from_bytes(self._take(size), "big")
        if major != 7 and arg < (24 if size == 1 else 1 << (4 * size)):
            raise _CborError("non-minimal integer or length encoding")
        return major, info, arg

    def item(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _CborError("nesting too deep")
        major, info, arg = self._head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return self._take(arg)
        if major == 3:
            try:
                return self._take(arg).decode("utf-8")
            except UnicodeDecodeError:
                raise _CborError("text string is not valid UTF-8") from None
        if major == 4:
            if arg > len(self.data) - self.pos:
                raise _CborError("array longer than the data")
            return [self.item(depth + 1) for _ in range(arg)]
        if major == 5:
            if arg > (len(self.data) - self.pos) // 2:
                raise _CborError("map longer than the data")
            out: dict[Any, Any] = {}
            for _ in range(arg):
                key = self.item(depth + 1)
                if type(key) not in (int, str):
                    raise _CborError("map keys must be integers or text strings")
                if key in out:
                    raise _CborError(f"duplicate map key {key!r}")
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            if arg not in self.allowed_tags:
                raise _CborError(f"CBOR tag {arg} is not allowed here")
            return Tagged(arg, self.item(depth + 1))
        # major 7
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info == 25:
            return _half_float(arg)
        if info == 26:
            return float(struct.unpack(">f", arg.to_bytes(4, "big"))[0])
        if info == 27:
            return float(struct.unpack(">d", arg.to_bytes(8, "big"))[0])
        raise _CborError(f"simple value {arg} is not allowed")


def _half_float(bits: int) -> float:
    return float(struct.unpack(">e", bits.to_bytes(2, "big"))[0])


def _decode(data: bytes, *, where: str, allowed_tags: frozenset[int] = frozenset()) -> Any:
    try:
        return _Decoder(data, allowed_tags=allowed_tags).decode_all()
    except _CborError as exc:
        raise EnvelopeError(f"{where}: invalid CBOR ({exc})") from None


# --- minimal CBOR encoding helpers ---------------------------------------------------------------
def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([(major << 5) | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([(major << 5) | info]) + arg.to_bytes(size, "big")
    raise ValueError("CBOR argument too large")


def sig_structure(protected_raw: bytes, payload: bytes) -> bytes:
    """CBOR of ``["Signature1", protected, h'', payload]`` (the bytes that are signed)."""
    return (b"\x84" + _head(3, 10) + b"Signature1" + _head(2, len(protected_raw)) + protected_raw
            + b"\x40" + _head(2, len(payload)) + payload)


def _deterministic(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """Same mapping with keys in core deterministic order (bytewise order of their encodings)."""
    import cbor2

    return dict(sorted(mapping.items(), key=lambda kv: cbor2.dumps(kv[0])))


# --- seal ----------------------------------------------------------------------------------------
def seal(request: SignRequest, signer: Signer) -> bytes:
    """Sign ``request.payload`` with ``signer`` and return the COSE_Sign1_Tagged bytes.

    The result is re-opened (parsed and verified) before it is returned.
    """
    import cbor2

    from ocisign.envelope.sealing import call_signer, plan_seal, sealed_chain  # signing only: not on verify's path

    plan = plan_seal(request, signer)
    if not request.payload:
        raise SigningError("payload is empty")
    protected: dict[Any, Any] = {
        LABEL_ALG: plan.alg.cose_alg,
        LABEL_CONTENT_TYPE: PAYLOAD_CONTENT_TYPE,
        H_SIGNING_SCHEME: plan.scheme,
    }
    crit: list[str] = [H_SIGNING_SCHEME]
    if plan.scheme == SCHEME_X509:
        protected[H_SIGNING_TIME] = cbor2.CBORTag(TAG_EPOCH, to_unix(plan.signing_time))
    else:
        protected[H_AUTHENTIC_SIGNING_TIME] = cbor2.CBORTag(TAG_EPOCH, to_unix(plan.signing_time))
        crit.append(H_AUTHENTIC_SIGNING_TIME)
    if plan.expiry is not None:
        protected[H_EXPIRY] = cbor2.CBORTag(TAG_EPOCH, to_unix(plan.expiry))
        crit.append(H_EXPIRY)
    for name, value in plan.extended.items():
        protected[name] = value
    crit.extend(plan.critical_extended)
    protected[LABEL_CRIT] = crit
    try:
        protected_raw = cbor2.dumps(_deterministic(protected))
    except Exception as exc:
        raise SigningError(f"cannot encode the COSE protected header: {exc}") from None
    payload = bytes(request.payload)
    signature = call_signer(signer, sig_structure(protected_raw, payload))
    blob = _serialize(protected_raw, payload, signature, sealed_chain(plan, signer), plan.signing_agent, None)
    try:
        open_envelope(blob)
    except EnvelopeError as exc:
        raise SigningError(f"the signer produced an envelope that does not verify: {exc}") from None
    return blob


def _serialize(protected_raw: bytes, payload: bytes, signature: bytes, chain_der: tuple[bytes, ...],
               signing_agent: str, timestamp_token: bytes | None) -> bytes:
    import cbor2

    unprotected: dict[Any, Any] = {LABEL_X5CHAIN: list(chain_der)}
    if signing_agent:
        unprotected[H_SIGNING_AGENT] = signing_agent
    if timestamp_token:
        unprotected[H_TIMESTAMP_SIGNATURE] = timestamp_token
    message = cbor2.CBORTag(TAG_SIGN1, [protected_raw, _deterministic(unprotected), payload, signature])
    return bytes(cbor2.dumps(message))


def attach_timestamp(blob: bytes, token: bytes) -> bytes:
    """Return ``blob`` (a valid COSE envelope) with ``io.cncf.notary.timestampSignature`` set to ``token``."""
    from ocisign.x509.encoding import certificate_der

    if not token:
        raise SigningError("empty timestamp token")
    content = open_envelope(blob)
    message = _decode(blob[1:], where="COSE envelope")
    return _serialize(message[0], content.payload, content.signature,
                      tuple(certificate_der(c) for c in content.certificate_chain),
                      content.signing_agent or "", token)


# --- open ----------------------------------------------------------------------------------------
def open_envelope(blob: bytes) -> EnvelopeContent:
    """Parse and verify a COSE envelope; any problem raises EnvelopeError (check ``integrity``)."""
    content: EnvelopeContent = open_guarded("COSE", _open, blob)
    return content


def _open(blob: bytes) -> EnvelopeContent:
    if not blob.startswith(b"\xd2\x84"):
        raise EnvelopeError("not a COSE_Sign1_Tagged message (must start with tag 18 and a 4-element array)")
    message = _decode(blob[1:], where="COSE envelope")
    protected_raw, unprotected, payload, signature = message
    if not isinstance(protected_raw, bytes):
        raise EnvelopeError("COSE protected header must be a byte string")
    if not isinstance(unprotected, dict):
        raise EnvelopeError("COSE unprotected header must be a map")
    if payload is None:
        raise EnvelopeError("COSE payload is detached; notation signatures carry the payload")
    if not isinstance(payload, bytes):
        raise EnvelopeError("COSE payload must be a byte string")
    if not payload:
        raise EnvelopeError("COSE payload is empty")
    if not isinstance(signature, bytes) or not signature:
        raise EnvelopeError("COSE signature must be a non-empty byte string")

    protected: Any = {}
    if protected_raw:  # a zero-length protected header means an empty map
        protected = _decode(protected_raw, where="COSE protected header", allowed_tags=frozenset({TAG_EPOCH}))
    if not isinstance(protected, dict):
        raise EnvelopeError("COSE protected header must be a map")
    fields = _parse_protected(protected)
    header = _parse_unprotected(unprotected, protected)

    alg = BY_COSE_ALG[fields["alg"]]
    return verified_content(
        media_type=MT_COSE, alg=alg, alg_label=f"COSE alg {alg.cose_alg} ({alg.jws_alg})", chain_der=header["x5c"],
        chain_label="COSE x5chain", signed=sig_structure(protected_raw, payload), signature=signature,
        pss_salt_auto=False, payload=payload, fields=fields, header=header, extended=fields["extended"],
    )


def _time(protected: dict[Any, Any], label: str) -> tuple[dt.datetime, int]:
    """The tag-1 time ``label`` as (UTC datetime to the microsecond, exact epoch nanoseconds).

    The epoch is an integer or a finite floating-point number of seconds; a float is split as
    go-cose's CBOR decoder (fxamacker/cbor, as notation uses it) does: ``math.Modf`` into whole
    seconds and fraction, nanoseconds = the fraction times 1e9 truncated toward zero. The
    datetime drops sub-microsecond digits (floor); comparisons between header times use the
    nanoseconds.
    """
    value = protected[label]
    if not isinstance(value, Tagged) or value.tag != TAG_EPOCH:
        raise EnvelopeError(f"COSE header {label} must be a CBOR tag 1 (epoch) date/time")
    epoch = value.value
    if type(epoch) is int:
        ns = epoch * 1_000_000_000
    elif type(epoch) is float:
        if not math.isfinite(epoch):
            raise EnvelopeError(f"COSE header {label}: epoch time {epoch!r} is not a finite number")
        fraction, whole = math.modf(epoch)
        ns = int(whole) * 1_000_000_000 + int(fraction * 1e9)
    else:
        raise EnvelopeError(f"COSE header {label} must be tag 1 wrapping an integer or a floating-point number")
    seconds, rest = divmod(ns, 1_000_000_000)
    return from_unix(seconds, where=label) + dt.timedelta(microseconds=rest // 1000), ns


def _parse_protected(protected: dict[Any, Any]) -> dict[str, Any]:
    for label, value in protected.items():
        if isinstance(label, int) and label not in (LABEL_ALG, LABEL_CRIT, LABEL_CONTENT_TYPE):
            raise EnvelopeError(f"COSE protected header label {label} is not supported")
        if isinstance(value, Tagged) and label not in _TIME_LABELS:
            raise EnvelopeError(f"COSE protected header {label!r}: CBOR tags are only allowed on times")
        if label not in _TIME_LABELS and _contains_tag(value):
            raise EnvelopeError(f"COSE protected header {label!r}: CBOR tags are only allowed on times")
    alg = protected.get(LABEL_ALG)
    if type(alg) is not int or alg not in BY_COSE_ALG:
        raise EnvelopeError(f"COSE alg {alg!r} is not supported (one of {', '.join(map(str, BY_COSE_ALG))})")
    cty = protected.get(LABEL_CONTENT_TYPE)
    if not isinstance(cty, str):
        raise EnvelopeError("COSE content type must be a text string")
    if cty != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"COSE payload content type {cty!r} is not supported (want {PAYLOAD_CONTENT_TYPE!r})")
    scheme = protected.get(H_SIGNING_SCHEME)
    if scheme not in (SCHEME_X509, SCHEME_SIGNING_AUTHORITY):
        raise EnvelopeError(f"COSE header {H_SIGNING_SCHEME} {scheme!r} is not supported")
    signing_time, authentic, expiry = scheme_times(
        protected, scheme, lambda name: _time(protected, name)[0],
        expiry_message=lambda: "expiry must be after the signing time",
        exact_time=lambda name: _time(protected, name)[1],
    )

    crit = protected.get(LABEL_CRIT)
    if not isinstance(crit, list) or not crit or not all(type(c) in (int, str) for c in crit):
        raise EnvelopeError("COSE crit must be a non-empty array of labels")
    if len(set(crit)) != len(crit):
        raise EnvelopeError("COSE crit lists a label more than once")
    for label in crit:
        if label not in protected:
            raise EnvelopeError(f"COSE header {label!r} is marked critical but is not present")
    check_required_critical(crit, scheme, expiry)

    extended = {k: v for k, v in protected.items() if isinstance(k, str) and k not in STANDARD_HEADERS}
    plugin = optional_string(protected, H_VERIFICATION_PLUGIN, kind="text string")
    plugin_min = optional_string(protected, H_VERIFICATION_PLUGIN_MIN_VERSION, kind="text string")
    return {"alg": alg, "cty": cty, "scheme": scheme, "signing_time": signing_time,
            "authentic_signing_time": authentic, "expiry": expiry, "crit": crit,
            "plugin": plugin, "plugin_min": plugin_min, "extended": extended}


def _contains_tag(value: Any) -> bool:
    if isinstance(value, Tagged):
        return True
    if isinstance(value, list):
        return any(_contains_tag(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_tag(v) for v in value.values())
    return False


def _parse_unprotected(unprotected: dict[Any, Any], protected: dict[Any, Any]) -> dict[str, Any]:
    for label in unprotected:
        if label in protected:
            raise EnvelopeError(f"COSE header {label!r} appears in both the protected and unprotected header")
        if label in (LABEL_ALG, LABEL_CRIT, LABEL_CONTENT_TYPE) or label in STANDARD_HEADERS:
            raise EnvelopeError(f"COSE header {label!r} must be in the protected header")
    chain = unprotected.get(LABEL_X5CHAIN)
    if not isinstance(chain, list) or not chain:
        raise EnvelopeError("COSE x5chain (label 33) must be a non-empty array of certificates")
    for i, der in enumerate(chain):
        if not isinstance(der, bytes) or not der:
            raise EnvelopeError(f"COSE x5chain[{i}] must be a non-empty byte string")
    agent = unprotected.get(H_SIGNING_AGENT)
    if agent is not None and not isinstance(agent, str):
        raise EnvelopeError(f"COSE header {H_SIGNING_AGENT} must be a text string")
    token = unprotected.get(H_TIMESTAMP_SIGNATURE)
    if token is not None and (not isinstance(token, bytes) or not token):
        raise EnvelopeError(f"COSE header {H_TIMESTAMP_SIGNATURE} must be a non-empty byte string")
    return {"x5c": chain, "agent": agent, "timestamp": token}


# --- registration --------------------------------------------------------------------------------
@hookimpl
def ocisign_envelope_formats() -> Iterator[EnvelopeFormat]:
    """The COSE envelope format."""
    yield EnvelopeFormat(
        name="cose",
        media_type=MT_COSE,
        seal=seal,
        open=open_envelope,
        attach_timestamp=attach_timestamp,
        description="CBOR Object Signing and Encryption (COSE_Sign1), Notary Project COSE envelope",
    )
