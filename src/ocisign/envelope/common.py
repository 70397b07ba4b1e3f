"""Shared pieces of the Notary signature envelopes (JWS and COSE).

* the algorithm table: key spec <-> JWS ``alg`` <-> COSE ``alg`` <-> hash <-> signature algorithm name;
* :func:`key_spec_of`: the exact key specs notation accepts (RSA 2048/3072/4096, EC P-256/384/521);
* RFC 3339 time helpers (emit ``YYYY-MM-DDTHH:MM:SSZ``; parse ``Z`` and ``±hh:mm`` offsets);
* :func:`build_payload`: the ``{"targetArtifact": …}`` payload exactly as notation emits it;
* :func:`verify_raw_signature` / :func:`raw_ecdsa`: RSASSA-PSS and raw ``r||s`` ECDSA;
* :func:`go_json`: compact JSON encoded the way Go's ``encoding/json`` writes it;
* :func:`check_user_metadata`: refuses reserved ``io.cncf.notary`` annotation keys.

``cryptography`` is imported inside functions only (plugin modules import this module eagerly).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from ocisign.errors import ContentError, OcisignError, SigningError, UsageError, VerificationError
from ocisign.lazy_re import lazy_re
from ocisign.oci.model import MAX_ENVELOPE_SIZE, MT_COSE, MT_JWS, Descriptor, parse_json

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from ocisign.types import KeySpec

# --- header names --------------------------------------------------------------------------------
#: the only payload content type of Notary signatures
PAYLOAD_CONTENT_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"
SIGNING_SCHEMES = (SCHEME_X509, SCHEME_SIGNING_AUTHORITY)

H_SIGNING_SCHEME = "io.cncf.notary.signingScheme"
H_SIGNING_TIME = "io.cncf.notary.signingTime"
H_AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
H_EXPIRY = "io.cncf.notary.expiry"
H_SIGNING_AGENT = "io.cncf.notary.signingAgent"
H_TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"
H_VERIFICATION_PLUGIN = "io.cncf.notary.verificationPlugin"
H_VERIFICATION_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"

#: prefix of annotation keys users may not set with ``-m``
RESERVED_ANNOTATION_PREFIX = "io.cncf.notary"


# --- errors --------------------------------------------------------------------------------------
class EnvelopeError(VerificationError):
    """A signature envelope is malformed or its signature does not verify.

    ``check`` names the verification step the failure belongs to (``integrity`` unless said
    otherwise), so the verification engine can report it under the right heading.
    """

    check: str = "integrity"

    def __init__(self, message: str, *, check: str | None = None) -> None:
        super().__init__(message)
        if check is not None:
            self.check = check


class UnsupportedKeyError(SigningError, VerificationError):
    """A key or certificate whose type/size is not one of the six Notary key specs.

    Both a SigningError (when signing) and a VerificationError (when verifying).
    """

    check: str = "integrity"


# --- algorithm table -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Algorithm:
    """One row of the Notary algorithm table (``signature-specification.md#algorithm-selection``)."""

    key_spec: KeySpec
    jws_alg: str
    cose_alg: int
    hash_name: Literal["SHA-256", "SHA-384", "SHA-512"]
    signature_algorithm: str
    key_type: Literal["RSA", "EC"]
    #: RSA modulus bits, or EC curve bits
    size: int

    @property
    def digest_size(self) -> int:
        """Hash output length in bytes (also the PSS salt length notation uses)."""
        return {"SHA-256": 32, "SHA-384": 48, "SHA-512": 64}[self.hash_name]

    @property
    def ec_coordinate_size(self) -> int:
        """Bytes of one ECDSA coordinate (32/48/66); 0 for RSA."""
        return (self.size + 7) // 8 if self.key_type == "EC" else 0

    @property
    def hashlib_name(self) -> str:
        """``sha256``/``sha384``/``sha512`` (hashlib and OCI digest algorithm name)."""
        return self.hash_name.replace("-", "").lower()

    def hash(self) -> hashes.HashAlgorithm:
        """A fresh ``cryptography`` hash object for this algorithm."""
        from cryptography.hazmat.primitives import hashes

        if self.hash_name == "SHA-256":
            return hashes.SHA256()
        if self.hash_name == "SHA-384":
            return hashes.SHA384()
        return hashes.SHA512()


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("RSA-2048", "PS256", -37, "SHA-256", "RSASSA-PSS-SHA-256", "RSA", 2048),
    Algorithm("RSA-3072", "PS384", -38, "SHA-384", "RSASSA-PSS-SHA-384", "RSA", 3072),
    Algorithm("RSA-4096", "PS512", -39, "SHA-512", "RSASSA-PSS-SHA-512", "RSA", 4096),
    Algorithm("EC-256", "ES256", -7, "SHA-256", "ECDSA-SHA-256", "EC", 256),
    Algorithm("EC-384", "ES384", -35, "SHA-384", "ECDSA-SHA-384", "EC", 384),
    Algorithm("EC-521", "ES512", -36, "SHA-512", "ECDSA-SHA-512", "EC", 521),
)
BY_KEY_SPEC: Mapping[str, Algorithm] = {a.key_spec: a for a in ALGORITHMS}
BY_JWS_ALG: Mapping[str, Algorithm] = {a.jws_alg: a for a in ALGORITHMS}
BY_COSE_ALG: Mapping[int, Algorithm] = {a.cose_alg: a for a in ALGORITHMS}
BY_SIGNATURE_ALGORITHM: Mapping[str, Algorithm] = {a.signature_algorithm: a for a in ALGORITHMS}
KEY_SPECS: tuple[str, ...] = tuple(a.key_spec for a in ALGORITHMS)


def algorithm_for(key_spec: str) -> Algorithm:
    """The table row of ``key_spec`` (``RSA-2048`` …); UnsupportedKeyError for anything else."""
    alg = BY_KEY_SPEC.get(key_spec)
    if alg is None:
        raise UnsupportedKeyError(
            f"unsupported key spec {key_spec!r}; supported: {', '.join(KEY_SPECS)}"
        )
    return alg


_CURVE_BITS = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}


def key_spec_of(key: object, *, what: str = "key") -> KeySpec:
    """The Notary key spec of a public (or private) key, like notation's ``ExtractKeySpec``.

    Only RSA 2048/3072/4096 and EC P-256/P-384/P-521 are accepted; everything else (RSA-1024,
    RSA-2560, RSA-8192, other curves, Ed25519, DSA …) raises UnsupportedKeyError naming ``what``.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        # Go: key.Size()*8, i.e. the modulus length rounded up to whole bytes
        bits = (key.key_size + 7) // 8 * 8
        if bits in (2048, 3072, 4096):
            return f"RSA-{bits}"  # type: ignore[return-value]
        raise UnsupportedKeyError(f"{what}: RSA key size {key.key_size} bits is not supported "
                                  "(use 2048, 3072 or 4096)")
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve_bits = _CURVE_BITS.get(key.curve.name)
        if curve_bits is not None:
            return f"EC-{curve_bits}"  # type: ignore[return-value]
        raise UnsupportedKeyError(f"{what}: EC curve {key.curve.name} is not supported "
                                  "(use P-256, P-384 or P-521)")
    kind = type(key).__name__.lstrip("_")
    raise UnsupportedKeyError(f"{what}: key type {kind} is not supported "
                              "(use RSA 2048/3072/4096 or EC P-256/P-384/P-521)")


# --- signatures ----------------------------------------------------------------------------------
def resolve_algorithm(alg: Algorithm | str) -> Algorithm:
    """An Algorithm from itself, a key spec (``EC-256``), a JWS alg (``ES256``) or a signature
    algorithm name (``ECDSA-SHA-256``); UnsupportedKeyError otherwise."""
    if isinstance(alg, Algorithm):
        return alg
    for table in (BY_KEY_SPEC, BY_JWS_ALG, BY_SIGNATURE_ALGORITHM):
        if alg in table:
            return table[alg]
    raise UnsupportedKeyError(f"unsupported signature algorithm {alg!r}")


def _coordinate_size(curve: object) -> int:
    if isinstance(curve, int):
        return curve
    if isinstance(curve, Algorithm):
        return curve.ec_coordinate_size
    return (int(curve.key_size) + 7) // 8  # type: ignore[attr-defined]


def raw_ecdsa(der_sig: bytes, curve: object) -> bytes:
    """Convert a DER ECDSA signature to fixed-width ``r || s``.

    ``curve`` is the coordinate size in bytes (32/48/66), an ``ec.EllipticCurve`` or an Algorithm.
    """
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    size = _coordinate_size(curve)
    r, s = decode_dss_signature(der_sig)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def der_ecdsa(raw_sig: bytes, curve: object) -> bytes:
    """Convert a raw ``r || s`` ECDSA signature of exactly twice the coordinate size to DER.

    ``curve`` as for :func:`raw_ecdsa`; a wrong length raises EnvelopeError (DER is refused).
    """
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    coordinate_size = _coordinate_size(curve)
    if len(raw_sig) != 2 * coordinate_size:
        raise EnvelopeError(
            f"ECDSA signature has {len(raw_sig)} bytes, expected {2 * coordinate_size} (raw r||s)"
        )
    r = int.from_bytes(raw_sig[:coordinate_size], "big")
    s = int.from_bytes(raw_sig[coordinate_size:], "big")
    return encode_dss_signature(r, s)


def verify_raw_signature(
    public_key: PublicKeyTypes, alg: Algorithm | str, data: bytes, sig: bytes, *, pss_salt_auto: bool
) -> None:
    """Verify ``sig`` over ``data`` with ``public_key`` using ``alg``; EnvelopeError on failure.

    RSA: RSASSA-PSS, MGF1 with the same hash; salt length auto-detected when ``pss_salt_auto``
    (JWS, like golang-jwt) else exactly the hash length (COSE, like go-cose).
    ECDSA: raw ``r || s`` of exactly twice the coordinate size (DER refused).
    The key must have exactly the key spec of ``alg`` (an Algorithm, key spec, JWS alg or
    signature algorithm name).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    alg = resolve_algorithm(alg)
    spec = key_spec_of(public_key, what="signing certificate")
    if spec != alg.key_spec:
        raise EnvelopeError(
            f"signature algorithm {alg.jws_alg} does not match the {spec} key of the signing certificate"
        )
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            salt = padding.PSS.AUTO if pss_salt_auto else padding.PSS.DIGEST_LENGTH
            public_key.verify(sig, data, padding.PSS(mgf=padding.MGF1(alg.hash()), salt_length=salt),
                              alg.hash())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(der_ecdsa(sig, alg.ec_coordinate_size), data, ec.ECDSA(alg.hash()))
        else:  # pragma: no cover - key_spec_of refused it
            raise EnvelopeError("unsupported key type")
    except InvalidSignature:
        raise EnvelopeError(f"signature is invalid ({alg.signature_algorithm})") from None


# --- base64 --------------------------------------------------------------------------------------
def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode_strict(text: object, *, where: str) -> bytes:
    """Decode canonical base64url without padding; anything else raises EnvelopeError.

    Padding, whitespace, the standard alphabet (``+/``) and non-zero trailing bits are refused.
    """
    if not isinstance(text, str):
        raise EnvelopeError(f"{where}: expected a base64url string, got {_json_type(text)}")
    if not text.isascii():
        raise EnvelopeError(f"{where}: not base64url (non-ASCII characters)")
    if len(text) % 4 == 1:
        raise EnvelopeError(f"{where}: not base64url (bad length)")
    try:
        raw = base64.b64decode(text.translate(_URL_TO_STD) + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{where}: not base64url without padding") from None
    if b64url_encode(raw) != text:
        raise EnvelopeError(f"{where}: not canonical base64url without padding")
    return raw


def b64std_decode_strict(text: object, *, where: str) -> bytes:
    """Decode canonical standard base64 *with* padding (Go's ``[]byte`` JSON encoding)."""
    if not isinstance(text, str):
        raise EnvelopeError(f"{where}: expected a base64 string, got {_json_type(text)}")
    if not text.isascii():
        raise EnvelopeError(f"{where}: not base64 (non-ASCII characters)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{where}: not standard base64 with padding") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise EnvelopeError(f"{where}: not canonical standard base64 with padding")
    return raw


_URL_TO_STD = str.maketrans({"-": "+", "_": "/", "+": "!", "/": "!"})


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


# --- JSON ----------------------------------------------------------------------------------------
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE = lazy_re("[<>&\u2028\u2029]")


def go_json(obj: Any, *, sort_keys: bool) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it (HTML-safe escapes, raw UTF-8).

    ``sort_keys`` mimics Go maps (sorted keys); without it the given key order is kept (Go structs).
    Lone surrogates and NaN/Infinity raise ValueError.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys,
                      allow_nan=False)
    text = _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group(0)], text)
    return text.encode("utf-8")


def open_guarded(format_name: str, parse: Callable[[bytes], Any], blob: bytes) -> Any:
    """Run an envelope parser so hostile input only ever raises EnvelopeError (check ``integrity``).

    ``parse`` receives ``bytes`` no larger than MAX_ENVELOPE_SIZE.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise EnvelopeError(f"{format_name} envelope must be bytes")
    blob = bytes(blob)
    if len(blob) > MAX_ENVELOPE_SIZE:
        raise EnvelopeError(f"{format_name} envelope of {len(blob)} bytes exceeds the {MAX_ENVELOPE_SIZE} limit")
    try:
        return parse(blob)
    except EnvelopeError:
        raise
    except OcisignError as exc:
        raise EnvelopeError(f"invalid {format_name} envelope: {exc}") from None
    except Exception as exc:  # hostile input must never escape as another exception type
        raise EnvelopeError(f"invalid {format_name} envelope: {type(exc).__name__}: {exc}") from None


def parse_json_strict(data: bytes, *, where: str) -> Any:
    """Strict JSON (UTF-8 without BOM, no duplicate keys, no NaN); EnvelopeError otherwise."""
    try:
        return parse_json(data, where=where)
    except ContentError as exc:
        raise EnvelopeError(str(exc)) from None


# --- time ----------------------------------------------------------------------------------------
_RFC3339_RE = lazy_re(
    r"\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z"
)


def require_aware(t: dt.datetime, *, what: str) -> dt.datetime:
    """Return ``t`` if it carries a UTC offset; SigningError for naive datetimes."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise SigningError(f"{what} must be a timezone-aware datetime")
    return t


def truncate_seconds(t: dt.datetime) -> dt.datetime:
    """``t`` converted to UTC with fractional seconds dropped (notation's ``Truncate(time.Second)``)."""
    return require_aware(t, what="time").astimezone(dt.timezone.utc).replace(microsecond=0)


def format_time(t: dt.datetime) -> str:
    """RFC 3339 in UTC, whole seconds: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return truncate_seconds(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, *, where: str = "time") -> dt.datetime:
    """Parse an RFC 3339 date-time (``Z`` or ``±hh:mm`` offset, optional fraction); EnvelopeError otherwise.

    The result is timezone-aware and keeps the given offset; sub-microsecond digits are dropped.
    """
    if not isinstance(text, str):
        raise EnvelopeError(f"{where}: expected an RFC 3339 time string, got {_json_type(text)}")
    m = _RFC3339_RE.match(text)
    if not m:
        raise EnvelopeError(f"{where}: {text!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7), m.group(8)
    try:
        if zone == "Z":
            tz = dt.timezone.utc
        else:
            oh, om = int(zone[1:3]), int(zone[4:6])
            if oh > 23 or om > 59:
                raise ValueError("offset out of range")
            delta = dt.timedelta(hours=oh, minutes=om)
            tz = dt.timezone(-delta if zone[0] == "-" else delta)
        micro = int((frac or "0").ljust(6, "0")[:6])
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except (ValueError, OverflowError):
        raise EnvelopeError(f"{where}: {text!r} is not a valid RFC 3339 date-time") from None


def to_unix(t: dt.datetime) -> int:
    """Whole seconds since the epoch (truncated), for COSE tag-1 times."""
    t = require_aware(t, what="time")
    return int((t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(seconds=1))


def from_unix(seconds: int, *, where: str = "time") -> dt.datetime:
    """UTC datetime of an epoch second count; EnvelopeError when out of range."""
    try:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise EnvelopeError(f"{where}: epoch time {seconds} is out of range") from None


# --- payload -------------------------------------------------------------------------------------
def check_user_metadata(metadata: Mapping[str, str]) -> None:
    """Refuse user metadata (``-m k=v``) with reserved keys (prefix ``io.cncf.notary``) or bad types."""
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise UsageError("user metadata keys and values must be strings")
        if not k:
            raise UsageError("user metadata key must not be empty")
        if k.startswith(RESERVED_ANNOTATION_PREFIX):
            raise UsageError(f"user metadata key {k!r} is reserved (prefix {RESERVED_ANNOTATION_PREFIX!r})")


def build_payload(desc: Descriptor, *, envelope_media_type: str = MT_JWS) -> bytes:
    """The Notary payload for ``desc``, byte-identical to notation's.

    The target descriptor is sanitized to ``mediaType, digest, size, annotations`` (annotations
    only when non-empty). JWS (``application/jose+json``): every object with sorted keys, as
    golang-jwt re-marshals the claims map. COSE (``application/cose``): Go struct order
    ``mediaType, digest, size, annotations`` (annotation keys sorted).
    """
    if envelope_media_type not in (MT_JWS, MT_COSE):
        raise SigningError(f"unsupported envelope media type {envelope_media_type!r}")
    target: dict[str, Any] = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
    if desc.annotations:
        target["annotations"] = dict(sorted(desc.annotations.items()))
    try:
        return go_json({"targetArtifact": target}, sort_keys=envelope_media_type == MT_JWS)
    except (ValueError, UnicodeEncodeError) as exc:
        raise SigningError(f"cannot encode the signature payload: {exc}") from None


def normalize_jws_payload(payload: bytes) -> bytes:
    """Re-encode a JSON-object payload the way golang-jwt does (sorted keys, Go escaping)."""
    try:
        obj = parse_json(payload, where="payload")
    except ContentError as exc:
        raise SigningError(f"payload format error: {exc}") from None
    if not isinstance(obj, dict):
        raise SigningError("payload format error: payload must be a JSON object")
    try:
        return go_json(obj, sort_keys=True)
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise SigningError(f"payload format error: {str(exc).splitlines()[0]}") from None


# --- sealing -------------------------------------------------------------------------------------
#: protected-header names that are not extended attributes (JWS names; COSE adds int labels 1-3)
STANDARD_HEADERS = frozenset(
    {"alg", "cty", "crit", H_SIGNING_SCHEME, H_SIGNING_TIME, H_AUTHENTIC_SIGNING_TIME, H_EXPIRY}
)
#: extended attributes that are always critical
ALWAYS_CRITICAL = (H_VERIFICATION_PLUGIN, H_VERIFICATION_PLUGIN_MIN_VERSION)


@dataclasses.dataclass(frozen=True)
class SealPlan:
    """A validated :class:`~ocisign.types.SignRequest` plus the signer's algorithm and chain."""

    alg: Algorithm
    chain_der: tuple[bytes, ...]
    scheme: str
    #: UTC, whole seconds
    signing_time: dt.datetime
    expiry: dt.datetime | None
    extended: Mapping[str, Any]
    #: extended attribute names to mark critical, in request order
    critical_extended: tuple[str, ...]
    signing_agent: str


def plan_seal(request: Any, signer: Any) -> SealPlan:
    """Validate a SignRequest against a Signer; SigningError on any problem.

    Checks the signing scheme, times (aware; expiry strictly after signing time), extended
    attribute names, the chain (non-empty) and that the signer's key spec equals the leaf's.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    if request.signing_scheme not in SIGNING_SCHEMES:
        raise SigningError(f"unsupported signing scheme {request.signing_scheme!r}; "
                           f"use {SCHEME_X509} or {SCHEME_SIGNING_AUTHORITY}")
    signing_time = truncate_seconds(require_aware(request.signing_time, what="signing time"))
    expiry = None
    if request.expiry is not None:
        expiry = truncate_seconds(require_aware(request.expiry, what="expiry"))
        if expiry <= signing_time:
            raise SigningError(f"expiry {format_time(expiry)} must be after the signing time "
                               f"{format_time(signing_time)}")
    try:
        alg = algorithm_for(signer.key_spec)
        chain = tuple(signer.certificate_chain())
    except SigningError:
        raise
    except Exception as exc:
        raise SigningError(f"signer failed: {exc}") from exc
    if not chain:
        raise SigningError("the signing key has an empty certificate chain")
    leaf_spec = key_spec_of(chain[0].public_key(), what="signing certificate")
    if leaf_spec != alg.key_spec:
        raise SigningError(f"signing key spec {alg.key_spec} does not match the {leaf_spec} key "
                           "of the leaf certificate")
    extended = dict(request.extended_attributes)
    for name in extended:
        if not isinstance(name, str) or not name:
            raise SigningError(f"extended attribute name must be a non-empty string, got {name!r}")
        if name in STANDARD_HEADERS or name.lower() in {h.lower() for h in STANDARD_HEADERS}:
            raise SigningError(f"extended attribute {name!r} collides with a standard header")
    wanted = set(request.critical_attributes)
    for name in wanted - set(extended):
        raise SigningError(f"critical attribute {name!r} is not an extended attribute")
    critical = [n for n in extended if n in wanted or n in ALWAYS_CRITICAL]
    return SealPlan(
        alg=alg,
        chain_der=tuple(c.public_bytes(Encoding.DER) for c in chain),
        scheme=request.signing_scheme,
        signing_time=signing_time,
        expiry=expiry,
        extended=extended,
        critical_extended=tuple(critical),
        signing_agent=request.signing_agent or "",
    )


def call_signer(signer: Any, data: bytes) -> bytes:
    """``signer.sign(data)``; non-ocisign exceptions become SigningError."""
    try:
        sig = signer.sign(data)
    except OcisignError:
        raise
    except Exception as exc:
        raise SigningError(f"signing failed: {exc}") from exc
    if not isinstance(sig, (bytes, bytearray)) or not sig:
        raise SigningError("signer returned an empty signature")
    return bytes(sig)


#: certificates already parsed and checked in this process, by DER (a batch meets the same chain in
#: every signature; certificates are immutable, so sharing them is safe)
_PARSED_CERTS: dict[bytes, Any] = {}
_PARSED_CERTS_LIMIT = 1024


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
    return cert


def _parse_der_certificate(der: bytes, *, where: str) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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
        canonical = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
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


def _der_items(data: bytes) -> list[bytes]:
    """The encoded TLVs directly inside ``data`` (DER, definite lengths only)."""
    items, pos = [], 0
    while pos < len(data):
        start = pos
        pos += 1
        if data[start] & 0x1F == 0x1F:
            raise ValueError("high tag numbers are not expected here")
        first = data[pos]
        pos += 1
        if first < 0x80:
            length = first
        else:
            n = first & 0x7F
            if n == 0 or n > 4:
                raise ValueError("unsupported DER length")
            length = int.from_bytes(data[pos:pos + n], "big")
            pos += n
        pos += length
        if pos > len(data):
            raise ValueError("truncated DER")
        items.append(data[start:pos])
    return items


def _raw_spki(tbs: bytes) -> bytes:
    """The SubjectPublicKeyInfo TLV exactly as encoded in a TBSCertificate."""
    (seq,) = _der_items(tbs)
    header = 2 if seq[1] < 0x80 else 2 + (seq[1] & 0x7F)
    fields = _der_items(seq[header:])
    if fields and fields[0][0] == 0xA0:  # explicit [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    return fields[5]
