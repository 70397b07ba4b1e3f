"""The one place that verifies a raw signature with a public key, by key type and scheme.

Envelope signatures (:mod:`ocisign.envelope.algorithms`), OCSP responses
(:mod:`ocisign.verify.revocation`) and RFC 3161 SignerInfos (:mod:`ocisign.verify.timestamp`)
all come here; each caller turns the :data:`Outcome` into its own error type and text.

Schemes: ``pkcs1v15`` and ``pss`` (RSA; PSS with MGF1 over the same hash, salt length
auto-detected or exactly the digest length), ``ecdsa`` (a DER ``ECDSA-Sig-Value``) and ``eddsa``
(Ed25519/Ed448, no hash). ``cryptography`` is imported inside the function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes

__all__ = ["Outcome", "Scheme", "verify_signature"]

Scheme = Literal["pkcs1v15", "pss", "ecdsa", "eddsa"]
#: ``ok``; ``invalid`` (the signature does not verify); ``wrong-key`` (the key type cannot be used
#: with the scheme, or a hash is missing); ``error`` (``cryptography`` refused the inputs)
Outcome = Literal["ok", "invalid", "wrong-key", "error"]


def verify_signature(
    key: object,
    signature: bytes,
    data: bytes,
    *,
    scheme: Scheme,
    hash_alg: hashes.HashAlgorithm | None,
    pss_salt_auto: bool = True,
) -> Outcome:
    """Verify ``signature`` over ``data`` with ``key`` under ``scheme``; never raises for bad input.

    ``hash_alg`` is required for every scheme but ``eddsa``; ``pss_salt_auto`` chooses between an
    auto-detected PSS salt length (golang-jwt, OCSP) and exactly the digest length (go-cose, CMS).
    """
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

    try:
        if scheme in ("pkcs1v15", "pss") and isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
            pad: padding.AsymmetricPadding
            if scheme == "pss":
                salt = padding.PSS.AUTO if pss_salt_auto else padding.PSS.DIGEST_LENGTH
                pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=salt)
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, data, pad, hash_alg)
        elif scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
            key.verify(signature, data, ec.ECDSA(hash_alg))
        elif scheme == "eddsa" and isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return "wrong-key"
    except InvalidSignature:
        return "invalid"
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "error"
    return "ok"
