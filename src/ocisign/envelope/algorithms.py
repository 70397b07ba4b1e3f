"""The Notary algorithm table and the key/signature rules around it.

* :class:`Algorithm` rows: key spec <-> JWS ``alg`` <-> COSE ``alg`` <-> hash <-> signature
  algorithm name (``signature-specification.md#algorithm-selection``);
* :func:`key_spec_of`: the exact key specs notation accepts (RSA 2048/3072/4096, EC P-256/384/521);
* :func:`raw_ecdsa` / :func:`der_ecdsa`: ECDSA signatures between DER and raw ``r||s``;
* :func:`verify_raw_signature`: RSASSA-PSS and raw ``r||s`` ECDSA envelope signatures (the
  primitive check itself is :func:`ocisign.x509.signatures.verify_signature`).

``cryptography`` is imported inside functions only (plugin modules import this module eagerly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, NamedTuple

from ocisign.envelope.errors import EnvelopeError, UnsupportedKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from ocisign.types import KeySpec


class Algorithm(NamedTuple):
    """One row of the Notary algorithm table (``signature-specification.md#algorithm-selection``).

    A named tuple, not a dataclass: the table is built when the module is imported, and
    processing a dataclass would cost about a millisecond of every ``verify``'s start-up.
    """

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
    coordinate_size = _coordinate_size(curve)
    if len(raw_sig) != 2 * coordinate_size:
        raise EnvelopeError(
            f"ECDSA signature has {len(raw_sig)} bytes, expected {2 * coordinate_size} (raw r||s)"
        )
    body = _der_integer(raw_sig[:coordinate_size]) + _der_integer(raw_sig[coordinate_size:])
    return b"\x30" + _der_length(len(body)) + body  # what encode_dss_signature(r, s) gives


def _der_integer(big_endian: bytes) -> bytes:
    """DER INTEGER of a non-negative big-endian number: minimal octets, a 0x00 before a high bit."""
    value = big_endian.lstrip(b"\x00")
    if not value or value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + _der_length(len(value)) + value


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


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
    alg = resolve_algorithm(alg)
    spec = key_spec_of(public_key, what="signing certificate")
    if spec != alg.key_spec:
        raise EnvelopeError(
            f"signature algorithm {alg.jws_alg} does not match the {spec} key of the signing certificate"
        )
    verify_checked_signature(public_key, alg, data, sig, pss_salt_auto=pss_salt_auto)


#: per (key spec, salt mode): the ``verify`` arguments after signature and data, and the exceptions
#: that mean "does not verify" (built once: padding and hash objects are immutable)
_VERIFY_ARGS: dict[tuple[str, bool], tuple[tuple[object, ...], tuple[type[BaseException], ...]]] = {}


def _verify_args(alg: Algorithm, pss_salt_auto: bool) -> tuple[tuple[object, ...], tuple[type[BaseException], ...]]:
    key = (alg.key_spec, pss_salt_auto)
    found = _VERIFY_ARGS.get(key)
    if found is None:
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric import ec, padding

        h = alg.hash()
        args: tuple[object, ...]
        if alg.key_type == "RSA":
            salt = padding.PSS.AUTO if pss_salt_auto else padding.PSS.DIGEST_LENGTH
            args = (padding.PSS(mgf=padding.MGF1(h), salt_length=salt), h)
        else:
            args = (ec.ECDSA(h),)
        found = _VERIFY_ARGS[key] = (args, (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm))
    return found


def verify_checked_signature(public_key: object, alg: Algorithm, data: bytes, sig: bytes, *,
                             pss_salt_auto: bool) -> None:
    """:func:`verify_raw_signature` for a key already known to have exactly ``alg``'s key spec.

    The one primitive check per envelope: the padding and hash objects are made once per
    algorithm; every failure (an invalid signature, inputs ``cryptography`` refuses) raises
    EnvelopeError.
    """
    args, failures = _verify_args(alg, pss_salt_auto)
    if alg.key_type != "RSA":
        sig = der_ecdsa(sig, alg.ec_coordinate_size)
    try:
        public_key.verify(sig, data, *args)  # type: ignore[attr-defined]
    except failures:
        raise EnvelopeError(f"signature is invalid ({alg.signature_algorithm})") from None
