"""Certificate-chain rules for Notary signing chains (notary-spec §7, notation-core-go ``x509``).

:func:`validate_signing_chain` checks an envelope chain (leaf first, root last):

* order: each certificate's issuer equals the next one's subject and its signature verifies
  with the next one's key (:func:`ocisign.x509.chain.check_signature_from`, Go
  ``CheckSignatureFrom``: the issuer must be a CA with keyCertSign when it has keyUsage;
  SHA-1/MD5 signatures are refused);
* the last certificate is a self-signed CA; no earlier certificate is self-signed;
  a single certificate must be self-issued and self-signed and is checked against leaf rules only;
* CA rules: basicConstraints cA=TRUE, keyUsage present + critical + keyCertSign, pathLen;
* leaf rules: basicConstraints absent or cA=FALSE; keyUsage present + critical with
  digitalSignature and none of keyEncipherment, dataEncipherment, keyAgreement, keyCertSign,
  cRLSign, encipherOnly, decipherOnly; no serverAuth/clientAuth/emailProtection/timeStamping/
  OCSPSigning EKU; key spec RSA-2048/3072/4096 or EC-256/384/521;
* validity at ``at`` (inclusive) when given.

The rules live with the envelopes (they need the key specs, the signing schemes and the envelope
errors); the Go x509 primitives they use are :mod:`ocisign.x509.chain`.
``cryptography`` is imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ocisign.envelope.algorithms import key_spec_of
from ocisign.envelope.errors import EnvelopeError, UnsupportedKeyError
from ocisign.envelope.headers import SCHEME_SIGNING_AUTHORITY, SCHEME_X509
from ocisign.errors import SigningError
from ocisign.x509.chain import check_signature_from as _verify_signed_by
from ocisign.x509.chain import self_signature_problem as _self_signature_problem
from ocisign.x509.chain import who as _who
from ocisign.x509.extensions import find_extension as _ext

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["CertificateChainError", "check_ca_rules", "check_leaf_rules", "validate_signing_chain"]


class CertificateChainError(EnvelopeError, SigningError):
    """A signing certificate chain breaks a Notary rule (an integrity failure when verifying).

    When the chain is only outside its validity period, ``check`` is ``authenticTimestamp``.
    """


def _fail(cert: x509.Certificate, rule: str, *, check: str | None = None) -> CertificateChainError:
    return CertificateChainError(f'certificate "{_who(cert)}": {rule}', check=check)


def _extensions_parse(cert: x509.Certificate) -> None:
    try:
        _ = cert.extensions
    except Exception as exc:
        raise _fail(cert, f"has malformed extensions ({exc})") from None


def _check_time(cert: x509.Certificate, at: dt.datetime) -> None:
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if at < nb or at > na:
        stamp = at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise _fail(
            cert,
            f"is not valid at {stamp} (valid from {nb:%Y-%m-%dT%H:%M:%SZ} to {na:%Y-%m-%dT%H:%M:%SZ})",
            check="authenticTimestamp",
        )


def _check_key_usage_present(cert: x509.Certificate) -> Any:
    from cryptography import x509

    ku = _ext(cert, x509.oid.ExtensionOID.KEY_USAGE)
    if ku is None:
        raise _fail(cert, "key usage extension must be present")
    if not ku.critical:
        raise _fail(cert, "key usage extension must be marked critical")
    return ku.value


def check_leaf_rules(cert: x509.Certificate) -> None:
    """Notary code-signing leaf rules (basicConstraints, keyUsage, EKU, key spec)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    _extensions_parse(cert)
    bc = _ext(cert, x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None and bc.value.ca:
        raise _fail(cert, "a signing (leaf) certificate must not be a CA "
                          "(basicConstraints cA must be absent or FALSE)")
    ku = _check_key_usage_present(cert)
    if not ku.digital_signature:
        raise _fail(cert, "key usage must include digitalSignature")
    bad = [label for label, attr in (
        ("KeyEncipherment", "key_encipherment"), ("DataEncipherment", "data_encipherment"),
        ("KeyAgreement", "key_agreement"), ("CertSign", "key_cert_sign"), ("CRLSign", "crl_sign"),
    ) if getattr(ku, attr)]
    if ku.key_agreement:
        bad += [label for label, attr in (("EncipherOnly", "encipher_only"), ("DecipherOnly", "decipher_only"))
                if getattr(ku, attr)]
    if bad:
        raise _fail(cert, f"key usage must not include {', '.join(bad)}")
    eku = _ext(cert, x509.oid.ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is not None:
        forbidden = {
            ExtendedKeyUsageOID.SERVER_AUTH: "ServerAuth",
            ExtendedKeyUsageOID.CLIENT_AUTH: "ClientAuth",
            ExtendedKeyUsageOID.EMAIL_PROTECTION: "EmailProtection",
            ExtendedKeyUsageOID.TIME_STAMPING: "TimeStamping",
            ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
        }
        found = [forbidden[o] for o in eku.value if o in forbidden]
        if found:
            raise _fail(cert, f"extended key usage must not include {', '.join(found)}")
    try:
        key = cert.public_key()
    except Exception as exc:
        raise _fail(cert, f"has an unsupported public key ({exc})") from None
    try:
        key_spec_of(key, what="public key")
    except UnsupportedKeyError as exc:
        raise _fail(cert, f"{exc}") from None


def check_ca_rules(cert: x509.Certificate, ca_below: int) -> None:
    """Notary CA rules; ``ca_below`` = number of CA certificates between this one and the leaf."""
    from cryptography import x509

    _extensions_parse(cert)
    bc = _ext(cert, x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None or not bc.value.ca:
        raise _fail(cert, "ca field in basic constraints must be present, critical, and set to true")
    path_len = bc.value.path_length
    if path_len is not None and path_len < ca_below:
        raise _fail(cert, f"expected path length of {ca_below} but certificate has path length {path_len}")
    ku = _check_key_usage_present(cert)
    if not ku.key_cert_sign:
        raise _fail(cert, "key usage must include keyCertSign")


def validate_signing_chain(
    chain: Sequence[x509.Certificate], *, at: dt.datetime | None = None, scheme: str = SCHEME_X509
) -> None:
    """Check a signing certificate chain (leaf first) against the Notary rules of notary-spec §7.

    ``at`` (timezone-aware) additionally requires every certificate to be valid at that time
    (signing time at sign time; omitted during integrity checks). ``scheme`` is accepted for
    symmetry with the envelope; both schemes use the same chain rules.
    Raises CertificateChainError naming the certificate subject and the broken rule.
    """
    if scheme not in (SCHEME_X509, SCHEME_SIGNING_AUTHORITY):
        raise CertificateChainError(f"unsupported signing scheme {scheme!r}")
    if not chain:
        raise CertificateChainError("certificate chain must contain at least one certificate")
    if at is not None and (at.tzinfo is None or at.utcoffset() is None):
        raise ValueError("validate_signing_chain: 'at' must be timezone-aware")
    key = _chain_key(chain)
    if key is not None and key in _RULES_PASSED:
        # the time-independent rules passed for these exact certificates before: only the
        # validity periods remain (the only check that can fail, so the first failure is the same)
        if at is not None:
            for cert in chain:
                _check_time(cert, at)
        return
    try:
        _validate(chain, at)
    except CertificateChainError:
        raise
    except Exception as exc:  # a malformed certificate must fail closed with a clear error
        raise CertificateChainError(f"certificate chain: malformed certificate ({type(exc).__name__}: {exc})") from None
    if key is not None:
        if len(_RULES_PASSED) >= _RULES_PASSED_LIMIT:
            _RULES_PASSED.clear()
        _RULES_PASSED.add(key)


#: chains (DER of every certificate, leaf first) that passed every time-independent rule in this
#: process: a batch signs with the same chain again and again (failures are never remembered)
_RULES_PASSED: set[tuple[bytes, ...]] = set()
_RULES_PASSED_LIMIT = 256


def _der(cert: x509.Certificate) -> bytes:
    from ocisign.x509.encoding import certificate_der

    return certificate_der(cert)


def _chain_key(chain: Sequence[x509.Certificate]) -> tuple[bytes, ...] | None:
    try:
        return tuple(_der(c) for c in chain)
    except Exception:  # not a real certificate: no memo, the rules will say what is wrong
        return None


def _is_self_signed(cert: x509.Certificate) -> bool:
    return _verify_signed_by(cert, cert) is None


def _validate(chain: Sequence[x509.Certificate], at: dt.datetime | None) -> None:
    for cert in chain:
        _extensions_parse(cert)
    if len(chain) == 1:
        cert = chain[0]
        if at is not None:
            _check_time(cert, at)
        if cert.issuer.public_bytes() != cert.subject.public_bytes():
            raise _fail(cert, "a single-certificate chain must be self-issued (issuer equals subject)")
        why = _self_signature_problem(cert)
        if why:
            raise _fail(cert, f"invalid self-signed certificate: {why}")
        check_leaf_rules(cert)
        return
    last = len(chain) - 1
    for i, cert in enumerate(chain):
        if at is not None:
            _check_time(cert, at)
        if i == last:
            why = _verify_signed_by(cert, cert)
            if why is not None:
                raise _fail(cert, "the chain must end with a valid self-signed root certificate "
                                  f"(root is not self-signed: {why})")
        else:
            if _is_self_signed(cert):
                kind = "leaf" if i == 0 else "intermediate"
                raise _fail(cert, f"{kind} certificate is self-signed; only the last certificate "
                                  "of the chain may be self-signed")
            why = _verify_signed_by(cert, chain[i + 1])
            if why is not None:
                raise _fail(cert, f'is not issued by "{_who(chain[i + 1])}": {why} '
                                  "(the chain must be ordered leaf first, root last)")
        if i == 0:
            check_leaf_rules(cert)
        else:
            check_ca_rules(cert, i - 1)
