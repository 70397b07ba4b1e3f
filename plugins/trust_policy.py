"""Built-in plugin ``trust_policy``: the Notary Project verification algorithm.

``ocisign_evaluate_policy`` verifies the signatures in ``context.envelopes`` one by one, in the
order they were found, against ``context.policy`` (the statement chosen for the scope). The
first signature that passes wins; the plugin passes only then. Each signature runs notation's
checks in notation's order (``notation-go`` ``verifier.processSignature`` then ``Verify``):

1. ``integrity`` (always enforced): the envelope parses as its media type, its signature
   verifies with the leaf key, the algorithm matches the key, the certificate chain obeys the
   Notary certificate rules (strict DER, as Go parses it), no unknown extended attribute is
   critical unless a verification plugin is named (the spec's rule; notation only enforces it
   through plugins), and the payload is a ``{"targetArtifact": descriptor}`` object;
2. ``verificationPlugin`` (always enforced): a signature that names a notation verification plugin
   needs it installed (``<config>/plugins/<name>``), SemVer and at least the minimum version, with a
   ``SIGNATURE_VERIFIER.*`` capability; the plugin then takes over trusted identity and/or
   revocation, and after step 7 its ``verify-signature`` answer is applied: every critical extended
   attribute must be processed, a trusted-identity failure counts under the authenticity action, a
   revocation failure under the revocation action (:mod:`ocisign.extplugin.verification`);
3. ``authenticity``: some certificate of the chain is byte-identical to a certificate of a trust
   store named by the policy with the type of the signing scheme (``ca`` for ``notary.x509``,
   ``signingAuthority`` for ``notary.x509.signingAuthority``); a missing or invalid store fails;
4. ``trustedIdentity`` (under the authenticity action): ``*``, or the leaf subject (rendered as
   Go does and parsed as a DN) contains every attribute of one ``x509.subject`` identity;
5. ``expiry``: fails when ``now >= io.cncf.notary.expiry``;
6. ``authenticTimestamp``: ``notary.x509`` without a ``tsa`` store (or ``afterCertExpiry`` with an
   unexpired chain): every chain certificate valid now; otherwise the RFC 3161 countersignature
   is verified (:mod:`ocisign.verify.timestamp`); ``notary.x509.signingAuthority``: the authentic
   signing time lies in every certificate's validity;
7. ``revocation``: every non-root certificate is checked with OCSP, falling back to its CRLs
   (:mod:`ocisign.verify.revocation`, notation 1.3's rules and timeouts); revoked or unknown fails,
   certificates without OCSP/CRL endpoints are not revocable (OK). With ``revocation: skip`` no
   server is contacted; a chain that did not pass authenticity (``audit``) is not looked up
   either (its status is unknown). A timestamp's TSA chain is checked the same way as part of 6;
8. ``targetMismatch`` (always enforced): the payload's mediaType, digest and size equal the artifact's;
9. ``userMetadata`` (always enforced): every ``-m k=v`` is in the payload annotations.

The statement's level and overrides decide for 3–7 whether a failure is enforced (the
signature fails, later checks are not run), logged (a warning) or skipped. Any unexpected
exception inside a check is an enforced failure of that check — never a pass.

The module is over 500 lines because it is the verification algorithm in one place, its checks
in the order the spec gives them; the crypto it calls lives in :mod:`ocisign.x509`,
:mod:`ocisign.envelope` and :mod:`ocisign.verify`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocisign.envelope.headers import (
    H_VERIFICATION_PLUGIN,
    H_VERIFICATION_PLUGIN_MIN_VERSION,
    PAYLOAD_CONTENT_TYPE,
    SCHEME_SIGNING_AUTHORITY,
    SCHEME_X509,
)
from ocisign.errors import OcisignError
from ocisign.goformat import go_quote as _q
from ocisign.lazy_plugins import hookimpl
from ocisign.oci.model import Descriptor, descriptor_from_json, parse_json_object
from ocisign.types import PolicyResult
from ocisign.x509.memo import CertMemo

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.config.trustpolicy import TrustPolicyStatement
    from ocisign.extplugin.verification import PluginPlan
    from ocisign.types import EnvelopeContent, SignatureBlob, VerificationContext
    from ocisign.verify.revocation import RevocationChecker

SOURCE = "trust_policy"

#: check identifiers, in the order they run (the names of the conformance set)
CHECK_ORDER = (
    "integrity",
    "verificationPlugin",
    "authenticity",
    "trustedIdentity",
    "expiry",
    "authenticTimestamp",
    "revocation",
    "targetMismatch",
    "userMetadata",
)
#: the validation type whose action governs each check
_ACTION_OF = {
    "authenticity": "authenticity",
    "trustedIdentity": "authenticity",
    "expiry": "expiry",
    "authenticTimestamp": "authenticTimestamp",
    "revocation": "revocation",
}

TrustStoreLookup = Callable[[str, str], "Sequence[x509.Certificate] | None"]



class CheckFailed(Exception):
    """A check failed with a message (``unsupported`` when ocisign cannot do the check yet)."""

    def __init__(self, message: str, *, unsupported: bool = False, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.unsupported = unsupported
        self.details = details


class Passed:
    """A passing check's message with structured details (for ``-o json``).

    Plain classes (here and :class:`CheckResult`): every ``verify`` makes them, and processing a
    dataclass costs about half a millisecond of start-up.
    """

    __slots__ = ("details", "message")

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"Passed(message={self.message!r}, details={self.details!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Passed):
            return NotImplemented
        return (self.message, self.details) == (other.message, other.details)

    def __hash__(self) -> int:  # as the frozen dataclass it was (details must then be None)
        return hash((self.message, self.details))


class CheckResult:
    """The result of one check of one signature."""

    __slots__ = ("action", "check", "details", "message", "status")

    def __init__(self, check: str, action: str, status: str, message: str = "",
                 details: dict[str, Any] | None = None) -> None:
        self.check = check
        #: enforce | log | skip
        self.action = action
        #: pass | fail | skipped | unsupported (unsupported counts as a failure)
        self.status = status
        self.message = message
        #: structured facts (the revocation check's per-certificate results)
        self.details = details

    def _fields(self) -> tuple[str, str, str, str, dict[str, Any] | None]:
        return self.check, self.action, self.status, self.message, self.details

    def __repr__(self) -> str:
        return ("CheckResult(check={!r}, action={!r}, status={!r}, message={!r}, details={!r})"
                .format(*self._fields()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckResult):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    @property
    def failed(self) -> bool:
        """True for fail and unsupported."""
        return self.status in ("fail", "unsupported")

    def to_json(self) -> dict[str, Any]:
        """JSON form for ``-o json``."""
        out: dict[str, Any] = {"check": self.check, "action": self.action, "result": self.status}
        if self.message:
            out["message"] = self.message
        if self.details is not None:
            out["details"] = self.details
        return out


class SignatureVerdict:
    """Everything decided about one signature (a plain class, like :class:`CheckResult`)."""

    __slots__ = ("abort", "content", "failing_check", "index", "manifest", "media_type", "reason", "results",
                 "target")

    def __init__(self, index: int, manifest: Descriptor | None, media_type: str,
                 results: list[CheckResult] | None = None, content: EnvelopeContent | None = None,
                 target: Descriptor | None = None, failing_check: str | None = None, reason: str = "",
                 abort: bool = False) -> None:
        self.index = index
        self.manifest = manifest
        self.media_type = media_type
        self.results: list[CheckResult] = [] if results is None else results
        self.content = content
        self.target = target
        #: the first enforced failure, if any
        self.failing_check = failing_check
        self.reason = reason
        #: True when notation would abort the whole verification here (unfetchable signature)
        self.abort = abort

    def __repr__(self) -> str:
        return (f"SignatureVerdict(index={self.index!r}, media_type={self.media_type!r}, "
                f"failing_check={self.failing_check!r}, reason={self.reason!r}, results={self.results!r})")

    @property
    def passed(self) -> bool:
        """True when no check failed under enforcement."""
        return self.failing_check is None

    @property
    def logged(self) -> list[CheckResult]:
        """Failures recorded under the ``log`` action."""
        return [r for r in self.results if r.failed and r.action == "log"]

    @property
    def logged_types(self) -> list[str]:
        """Validation types (notation's names) whose failures were only logged, deduplicated.

        A trusted-identity failure belongs to notation's ``authenticity`` type.
        """
        out: list[str] = []
        for r in self.logged:
            t = _ACTION_OF.get(r.check, r.check)
            if t not in out:
                out.append(t)
        return out

    def warnings(self) -> list[str]:
        """notation's warning lines for logged failures (``<type> was set to "log" and failed …``)."""
        return [f'{_ACTION_OF.get(r.check, r.check)} was set to "log" and failed with error: {r.message}'
                for r in self.logged]

    @property
    def user_metadata(self) -> dict[str, str]:
        """The signed user metadata (payload annotations)."""
        return dict(self.target.annotations or {}) if self.target else {}

    def to_json(self) -> dict[str, Any]:
        """JSON form for ``-o json`` (a PolicyResult detail)."""
        out: dict[str, Any] = {
            "digest": self.manifest.digest if self.manifest else None,
            "mediaType": self.media_type,
            "result": "pass" if self.passed else "fail",
            "failedCheck": self.failing_check,
            "reason": self.reason,
            "checks": [r.to_json() for r in self.results],
            "loggedFailures": self.logged_types,
        }
        c = self.content
        if c is not None:
            from ocisign.envelope.times import format_time

            out["signingScheme"] = c.signing_scheme
            out["signatureAlgorithm"] = c.signature_algorithm
            t = c.signing_time or c.authentic_signing_time
            out["signingTime"] = format_time(t) if t else None
            out["expiry"] = format_time(c.expiry) if c.expiry else None
            out["signer"] = _subject_string(c.certificate_chain[0]) if c.certificate_chain else None
            out["certificateSHA256"] = [_fingerprint(cert) for cert in c.certificate_chain]
            out["timestamped"] = c.timestamp_token is not None
        if self.target is not None:
            signed = self.target  # its plain form (Descriptor.plain().to_json()), without building that descriptor
            out["signedArtifact"] = {"mediaType": signed.media_type, "digest": signed.digest, "size": signed.size}
            out["userMetadata"] = self.user_metadata
        return out


# --- helpers ------------------------------------------------------------------------------------
#: per-process memos of pure functions of certificate bytes (a batch meets the same chain in every
#: signature): DER encodings, subjects, fingerprints (by certificate object, see
#: :mod:`ocisign.x509.memo`), the chain-rule verdict per (chain, signing scheme) and the parsed
#: leaf subject per rendered subject
_MEMO_LIMIT = 1024
_CHAIN_RULES_MEMO: dict[tuple[tuple[bytes, ...], str], str | None] = {}
_IDENTITY_DN_MEMO: dict[str, dict[str, str]] = {}
#: the same verdicts by the identities of the chain's certificate objects (kept alive by the entry)
_CHAIN_RULES_BY_ID: dict[tuple[tuple[int, ...], str], tuple[Any, str | None]] = {}
#: authenticity per (store type, chain, trusted certificates), by the certificates' identities: the
#: value keeps them alive, so an identity is never reused while its entry exists; (chain, trusted,
#: passing message or None)
_AUTHENTICITY_MEMO: dict[tuple[Any, ...], tuple[Any, Any, str | None]] = {}
#: trusted identity per (statement, leaf subject): (statement, passed, message); the statement is kept alive
_IDENTITY_MEMO: dict[tuple[int, str], tuple[Any, bool, str]] = {}
#: the interval every certificate of a chain is valid in, by the identities of its certificates
_WINDOW_MEMO: dict[tuple[int, ...], tuple[Any, dt.datetime, dt.datetime]] = {}
#: the passing revocation check of a chain result (its details are shared: read-only, like the result)
_REVOCATION_PASSED: dict[int, tuple[Any, Passed]] = {}


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _compute_fingerprint(cert: x509.Certificate) -> str:
    from ocisign.x509.chain import cert_fingerprint_sha256

    return cert_fingerprint_sha256(cert)


def _compute_subject(cert: x509.Certificate) -> str:
    from ocisign.x509.chain import go_dn_string

    return go_dn_string(cert.subject)


def _der(cert: x509.Certificate) -> bytes:
    from ocisign.x509.encoding import certificate_der

    return certificate_der(cert)


_fingerprint = CertMemo(_compute_fingerprint)
#: the subject as Go's ``pkix.Name.String()`` renders it (notation's messages and identity matching)
_subject_string = CertMemo(_compute_subject)


def _leaf_identity(subject: str) -> dict[str, str]:
    """The leaf subject parsed as an identity DN (once per distinct subject; DNError is not remembered)."""
    found = _IDENTITY_DN_MEMO.get(subject)
    if found is None:
        from ocisign.x509.dn import parse_identity_dn

        found = parse_identity_dn(subject)
        _remember(_IDENTITY_DN_MEMO, subject, found)
    return found


def _rfc1123z(t: dt.datetime) -> str:
    """Go's ``time.RFC1123Z`` layout in ``t``'s own offset: ``Mon, 02 Jan 2006 15:04:05 -0700``."""
    if t.tzinfo is _UTC:  # what the envelopes' times are
        return (f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} "
                f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000")
    offset = t.utcoffset()
    off = 0 if offset is None else (offset.days * 86400 + offset.seconds) // 60
    sign = "-" if off < 0 else "+"
    zone = f"{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}"
    return (f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} {zone}")


_UTC = dt.timezone.utc
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _compute_validity(cert: x509.Certificate) -> tuple[dt.datetime, dt.datetime]:
    return cert.not_valid_before_utc, cert.not_valid_after_utc


#: (notBefore, notAfter) in UTC (``cryptography`` builds a new datetime on every access)
_validity = CertMemo(_compute_validity)


def _not_before(cert: x509.Certificate) -> dt.datetime:
    return _validity(cert)[0]


def _not_after(cert: x509.Certificate) -> dt.datetime:
    return _validity(cert)[1]


def chain_rules_problem(chain: Sequence[x509.Certificate], scheme: str) -> str | None:
    """Why ``chain`` breaks the Notary certificate rules (strict DER, chain rules for ``scheme``), or
    None; evaluated once per distinct chain and scheme (validity periods are checked elsewhere)."""
    quick = (tuple(map(id, chain)), scheme)
    seen = _CHAIN_RULES_BY_ID.get(quick)
    if seen is not None:  # the same certificate objects (kept alive by the entry)
        return seen[1]
    key = (tuple(_der(c) for c in chain), scheme)
    if key in _CHAIN_RULES_MEMO:
        found = _CHAIN_RULES_MEMO[key]
        _remember(_CHAIN_RULES_BY_ID, quick, (tuple(chain), found))
        return found
    from ocisign.x509.der import certificate_encoding_problem

    problem: str | None = None
    for i, der in enumerate(key[0]):
        found = certificate_encoding_problem(der)
        if found:
            problem = f"certificate #{i} of the chain is malformed: {found}"
            break
    if problem is None:
        try:
            from ocisign.envelope.chain import validate_signing_chain

            validate_signing_chain(list(chain), at=None, scheme=scheme)
        except OcisignError as exc:
            problem = f"certificate chain is invalid: {exc}"
    _remember(_CHAIN_RULES_MEMO, key, problem)
    _remember(_CHAIN_RULES_BY_ID, quick, (tuple(chain), problem))
    return problem


# --- the checks ---------------------------------------------------------------------------------
def check_integrity(
    blob: SignatureBlob, open_envelope: Callable[[str, bytes], EnvelopeContent]
) -> tuple[EnvelopeContent, Descriptor]:
    """Parse and verify the envelope, validate the chain and decode the payload target."""
    if blob.envelope is None:
        raise CheckFailed(blob.error or "the signature envelope could not be fetched")
    try:
        content = open_envelope(blob.media_type, blob.envelope)
    except OcisignError as exc:
        raise CheckFailed(str(exc)) from None
    if content.payload_content_type != PAYLOAD_CONTENT_TYPE:
        raise CheckFailed(f"payload content type {_q(content.payload_content_type)} is not supported")
    if not content.certificate_chain:
        raise CheckFailed("the signature has no certificate chain")
    problem = chain_rules_problem(content.certificate_chain, content.signing_scheme)
    if problem:
        raise CheckFailed(problem)
    extended = content.extended_attributes
    if extended and content.verification_plugin is None and H_VERIFICATION_PLUGIN not in extended:
        # spec: unknown critical attributes fail verification; notation only enforces this through
        # verification plugins (a deliberate, stricter difference; see tests/test_verify.py)
        unknown = [n for n in content.critical
                   if n in content.extended_attributes and n != H_VERIFICATION_PLUGIN_MIN_VERSION]
        if unknown:
            raise CheckFailed(f"the signature has critical attribute(s) {', '.join(map(_q, unknown))} that "
                              "ocisign does not understand and no verification plugin is named to process them")
    try:
        obj = parse_json_object(content.payload, where="signature payload")
        raw_target = obj.get("targetArtifact")
        if raw_target is None:
            raise CheckFailed("signature payload has no targetArtifact")
        target = descriptor_from_json(raw_target, where="signature payload targetArtifact")
    except OcisignError as exc:
        raise CheckFailed(str(exc)) from None
    return content, target


def check_verification_plugin(
    content: EnvelopeContent, lookup: Callable[[str], Any] | None = None,
    plugin_config: Mapping[str, str] | None = None,
) -> PluginPlan | None:
    """Locate the verification plugin the envelope names (None: it names none).

    The plugin must be installed, SemVer, at least the minimum version, and declare a verifier
    capability (:func:`ocisign.extplugin.verification.plan_verification`); otherwise CheckFailed.
    """
    if content.verification_plugin is None and H_VERIFICATION_PLUGIN not in content.extended_attributes:
        return None  # names no plugin (the module below is imported only for a signature that does)
    from ocisign.extplugin.verification import plan_verification

    try:
        return plan_verification(content, lookup, plugin_config)
    except OcisignError as exc:
        raise CheckFailed(str(exc)) from None


def _store_type_for(scheme: str) -> str:
    if scheme == SCHEME_X509:
        return "ca"
    if scheme == SCHEME_SIGNING_AUTHORITY:
        return "signingAuthority"
    raise CheckFailed(f"unrecognised signing scheme {_q(scheme)}")


def load_trust_certs(
    statement: TrustPolicyStatement, store_type: str, lookup: TrustStoreLookup
) -> list[x509.Certificate]:
    """Certificates of every store of ``store_type`` in the statement; CheckFailed on missing/invalid stores."""
    certs: list[x509.Certificate] = []
    for ref in statement.stores_of_type(store_type):
        try:
            found = lookup(ref.type, ref.name)
        except OcisignError as exc:
            raise CheckFailed(f"{exc}. Make sure the trust store is configured correctly") from None
        if found is None:
            raise CheckFailed(f"the trust store {_q(ref.name)} of type {_q(ref.type)} does not exist")
        certs.extend(found)
    return certs


def check_authenticity(content: EnvelopeContent, statement: TrustPolicyStatement, lookup: TrustStoreLookup) -> str:
    """Some chain certificate must equal (DER bytes) a trusted certificate of the scheme's store type."""
    store_type = _store_type_for(content.signing_scheme)
    trusted = load_trust_certs(statement, store_type, lookup)
    if not trusted:
        raise CheckFailed(
            f"no trusted certificates are found to verify authenticity: the trust policy statement "
            f"{_q(statement.name)} has no trust store of type {_q(store_type)} "
            f"(signing scheme {content.signing_scheme})"
        )
    chain = content.certificate_chain
    key = (store_type, tuple(map(id, chain)), tuple(map(id, trusted)))
    hit = _AUTHENTICITY_MEMO.get(key)
    if hit is None:  # once per distinct chain and set of trusted certificates: compared by DER bytes
        trusted_der = {_der(c) for c in trusted}
        found = next((c for c in chain if _der(c) in trusted_der), None)
        message = None if found is None else \
            f"certificate {_q(_subject_string(found))} is in a trust store of type {_q(store_type)}"
        hit = (tuple(chain), tuple(trusted), message)
        _remember(_AUTHENTICITY_MEMO, key, hit)
    if hit[2] is None:
        raise CheckFailed("the signature's certificate chain does not contain any trusted certificate")
    return hit[2]


def check_trusted_identity(content: EnvelopeContent, statement: TrustPolicyStatement) -> str:
    """The leaf subject must contain every attribute of one ``x509.subject`` identity (or ``*``).

    Decided once per statement and leaf subject.
    """
    if statement.trusts_any_identity:
        return "any identity is trusted ('*')"
    subject = _subject_string(content.certificate_chain[0])
    key = (id(statement), subject)
    hit = _IDENTITY_MEMO.get(key)
    if hit is None:
        try:
            hit = (statement, True, _trusted_identity(statement, subject))
        except CheckFailed as exc:
            hit = (statement, False, str(exc))
        _remember(_IDENTITY_MEMO, key, hit)
    if not hit[1]:
        raise CheckFailed(hit[2])
    return hit[2]


def _trusted_identity(statement: TrustPolicyStatement, subject: str) -> str:
    from ocisign.x509.dn import DNError, is_subset_dn

    if not statement.x509_identities:
        raise CheckFailed(f"no x509 trusted identities are configured in the trust policy {_q(statement.name)}")
    try:
        leaf_dn = _leaf_identity(subject)
    except DNError as exc:
        raise CheckFailed(f"error while parsing the certificate subject from the digital signature: {exc}") from None
    for identity in statement.x509_identities:
        if is_subset_dn(identity, leaf_dn):
            return f"signing certificate {_q(subject)} matches a trusted identity"
    raise CheckFailed(
        f"signing certificate {_q(subject)} does not match the X.509 trusted identities "
        f"{[i for i in statement.trusted_identities if i.startswith('x509.subject:')]} "
        f"defined in the trust policy {_q(statement.name)}"
    )


def check_expiry(content: EnvelopeContent, now: dt.datetime) -> str:
    """Fail when ``now >= expiry``."""
    if content.expiry is None:
        return "the signature has no expiry"
    if now >= content.expiry:
        raise CheckFailed(f"digital signature has expired on {_q(_rfc1123z(content.expiry))}")
    return f"the signature expires on {_rfc1123z(content.expiry)}"


def _chain_valid_at(chain: Sequence[x509.Certificate], t: dt.datetime, what: str) -> None:
    key = tuple(map(id, chain))
    window = _WINDOW_MEMO.get(key)
    if window is None:  # the latest notBefore and earliest notAfter of the chain (kept alive with it)
        window = (tuple(chain), max(_not_before(c) for c in chain), min(_not_after(c) for c in chain))
        _remember(_WINDOW_MEMO, key, window)
    if window[1] <= t <= window[2]:
        return
    for cert in chain:  # which certificate: the first one in chain order, as notation reports it
        if t < _not_before(cert):
            raise CheckFailed(
                f"{what} is before certificate {_q(_subject_string(cert))} validity period, "
                f"it will be valid from {_q(_rfc1123z(_not_before(cert)))}"
            )
        if t > _not_after(cert):
            raise CheckFailed(
                f"{what} is after certificate {_q(_subject_string(cert))} validity period, "
                f"it was expired at {_q(_rfc1123z(_not_after(cert)))}"
            )


def check_authentic_timestamp(
    content: EnvelopeContent, statement: TrustPolicyStatement, lookup: TrustStoreLookup, now: dt.datetime,
    *, revocation: RevocationChecker | None = None,
) -> str | Passed:
    """notation's ``verifyAuthenticTimestamp`` (the TSA chain is revocation-checked with ``revocation``)."""
    chain = content.certificate_chain
    if content.signing_scheme == SCHEME_SIGNING_AUTHORITY:
        t = content.authentic_signing_time
        if t is None:
            raise CheckFailed("the signature has no authentic signing time")
        for cert in chain:
            if t < _not_before(cert) or t > _not_after(cert):
                raise CheckFailed(
                    f"certificate {_q(_subject_string(cert))} was not valid when the digital signature "
                    f"was produced at {_q(_rfc1123z(t))}"
                )
        return "every certificate was valid at the authentic signing time"
    if content.signing_scheme != SCHEME_X509:
        raise CheckFailed(f"unrecognised signing scheme {_q(content.signing_scheme)}")
    perform = bool(statement.stores_of_type("tsa"))
    if perform and statement.verify_timestamp == "afterCertExpiry":
        perform = any(now > _not_after(c) for c in chain)
    if not perform:
        _chain_valid_at(chain, now, "verification time")
        return "every certificate is valid now (no timestamp verification)"
    if not content.timestamp_token:
        raise CheckFailed("no timestamp countersignature was found in the signature envelope")
    from ocisign.verify.timestamp import verify_countersignature

    tsa_roots = load_trust_certs(statement, "tsa", lookup)
    if not tsa_roots:
        raise CheckFailed("no trusted TSA certificate found in trust store")
    try:
        stamp = verify_countersignature(content.timestamp_token, content.signature, tsa_roots)
    except CheckFailed:
        raise
    except OcisignError as exc:
        raise CheckFailed(str(exc), unsupported=bool(getattr(exc, "unsupported", False))) from None
    for cert in chain:
        if stamp.earliest < _not_before(cert):
            raise CheckFailed(
                f"timestamp can be before certificate {_q(_subject_string(cert))} validity period, "
                f"it will be valid from {_q(_rfc1123z(_not_before(cert)))}"
            )
        if stamp.latest > _not_after(cert):
            raise CheckFailed(
                f"timestamp can be after certificate {_q(_subject_string(cert))} validity period, "
                f"it was expired at {_q(_rfc1123z(_not_after(cert)))}"
            )
    from ocisign.verify.revocation import RevocationChecker

    checker = revocation if revocation is not None else RevocationChecker.from_env(now=now)
    tsa_status = checker.check_chain(stamp.tsa_chain)
    details = {"timestampRevocation": tsa_status.to_json()}
    if not tsa_status.ok:
        raise CheckFailed(tsa_status.message("timestamping"), details=details)
    return Passed(f"timestamped at {stamp.describe()} by {_q(_subject_string(stamp.tsa_chain[0]))}", details)


def revocation_endpoints(chain: Sequence[x509.Certificate]) -> str | None:
    """Describe the first non-root certificate that names OCSP or CRL endpoints (None: none do)."""
    from ocisign.verify.revocation import crl_urls, ocsp_urls

    for cert in chain[:-1] if len(chain) > 1 else chain:
        if len(chain) == 1 and cert.issuer == cert.subject:
            break  # a self-signed leaf is its own root: never revocation-checked
        urls = ocsp_urls(cert) + crl_urls(cert)
        if urls:
            return f"{_q(_subject_string(cert))} names OCSP/CRL endpoints ({', '.join(urls[:3])})"
    return None


#: why an untrusted chain's OCSP/CRL servers are not contacted
UNTRUSTED_CHAIN = ("not looked up: the certificate chain did not pass authenticity, so its OCSP/CRL "
                   "servers were not contacted")


def check_revocation(
    content: EnvelopeContent, *, revocation: RevocationChecker | None = None, trusted: bool = True,
    now: dt.datetime | None = None,
) -> Passed:
    """notation's ``verifyRevocation``: OCSP, falling back to CRL, for every non-root certificate.

    The authentic signing time counts only for ``notary.x509.signingAuthority``. An untrusted
    chain (``trusted=False``) is never looked up: certificates naming servers are unknown.
    """
    checker = revocation
    if checker is None:
        from ocisign.verify.revocation import RevocationChecker

        checker = RevocationChecker.from_env(now=now)
    signing_time = content.authentic_signing_time if content.signing_scheme == SCHEME_SIGNING_AUTHORITY else None
    status = checker.check_chain(content.certificate_chain, signing_time=signing_time,
                                 offline_reason=None if trusted else UNTRUSTED_CHAIN)
    if not status.ok:
        raise CheckFailed(status.message("signing"), details=status.to_json())
    hit = _REVOCATION_PASSED.get(id(status))
    if hit is None or hit[0] is not status:  # a checker hands out one result per chain decided offline
        hit = (status, Passed(status.summary(), status.to_json()))
        _remember(_REVOCATION_PASSED, id(status), hit)
    return hit[1]


def check_target(target: Descriptor, subject: Descriptor) -> str:
    """The signed targetArtifact must equal the artifact on mediaType, digest and size."""
    if target.key() != subject.key():
        diffs = [
            f"{name} {_q(got)} != {_q(want)}"
            for name, got, want in (
                ("mediaType", target.media_type, subject.media_type),
                ("digest", target.digest, subject.digest),
                ("size", target.size, subject.size),
            )
            if got != want
        ]
        raise CheckFailed(
            "content descriptor mismatch: the signature is for another artifact (" + "; ".join(diffs) + ")"
        )
    return "the signed targetArtifact is the artifact"


def check_user_metadata(target: Descriptor, wanted: Mapping[str, str]) -> str:
    """Every requested key/value must be in the signed annotations."""
    if not wanted:
        return "no user metadata requested"
    signed = target.annotations or {}
    missing = [f"{k}={v}" for k, v in wanted.items() if signed.get(k) != v]
    if missing:
        raise CheckFailed(f"unable to find specified metadata in the signature: {', '.join(missing)}")
    return "the requested user metadata is signed"


# --- per-signature algorithm --------------------------------------------------------------------
#: the integrity check's message by signature algorithm (the six of the algorithm table)
_INTEGRITY_PASSED: dict[str, str] = {}


def evaluate_signature(
    index: int,
    blob: SignatureBlob,
    *,
    statement: TrustPolicyStatement,
    subject: Descriptor,
    user_metadata: Mapping[str, str],
    now: dt.datetime,
    trust_store: TrustStoreLookup,
    open_envelope: Callable[[str, bytes], EnvelopeContent],
    revocation: RevocationChecker | None = None,
    verification_plugin: Callable[[str], Any] | None = None,
    plugin_config: Mapping[str, str] | None = None,
) -> SignatureVerdict:
    """Run every check on one signature, in notation's order, applying the statement's actions.

    ``revocation`` checks certificates against OCSP/CRL servers (a fresh one from the environment
    when omitted); it is only used when a chain names servers and the check is not skipped.
    It is longer than 80 lines because it is the spec's ordered list of checks read top to bottom
    (integrity, verificationPlugin, the five policy steps, targetMismatch, userMetadata), each
    recorded as one CheckResult; the checks themselves are the ``check_*`` functions.
    """
    v = SignatureVerdict(index, blob.manifest, blob.media_type)
    results = v.results

    def run(check: str, fn: Callable[..., str | Passed | None], *args: Any, action: str = "enforce") -> bool:
        """Record one check, ``fn(*args)``; False when verification of this signature must stop."""
        if action == "skip":
            results.append(CheckResult(check, action, "skipped", "skipped by the trust policy"))
            return True
        try:
            outcome = fn(*args)
        except Exception as exc:
            return _record_failure(v, check, action, exc)
        results.append(_pass_result(check, action, outcome))
        return True

    if blob.envelope is None:
        v.abort = True
    try:
        content, target = check_integrity(blob, open_envelope)
    except Exception as exc:
        _record_failure(v, "integrity", "enforce", exc)
        return v
    v.content, v.target = content, target
    algorithm = content.signature_algorithm
    message = _INTEGRITY_PASSED.get(algorithm)
    if message is None:
        message = _INTEGRITY_PASSED[algorithm] = \
            f"{algorithm} signature over the payload verifies with the signing certificate"
    results.append(CheckResult("integrity", "enforce", "pass", message))

    try:
        plan = check_verification_plugin(content, verification_plugin, plugin_config)
    except Exception as exc:
        _record_failure(v, "verificationPlugin", "enforce", exc)
        return v
    if plan is None:
        results.append(CheckResult("verificationPlugin", "enforce", "pass", "no verification plugin is required"))
    else:
        results.append(CheckResult("verificationPlugin", "enforce", "pass", f"verification plugin {_q(plan.name)} "
                                   f"{plan.version} verifies {', '.join(plan.capabilities)}"))
    act = statement.action
    if revocation is None:
        from ocisign.verify.revocation import RevocationChecker

        revocation = RevocationChecker.from_env(now=now)
    checker = revocation

    def revoked() -> Passed:  # only a chain that passed authenticity is looked up
        return check_revocation(content, revocation=checker, trusted=authentic[0])

    authentic = [False]
    takes_identity = takes_revocation = False
    if plan is not None:  # the protocol module is imported only for a signature that names a plugin
        from ocisign.extplugin.protocol import CAP_REVOCATION, CAP_TRUSTED_IDENTITY

        takes_identity, takes_revocation = plan.takes(CAP_TRUSTED_IDENTITY), plan.takes(CAP_REVOCATION)

    def timestamp() -> str | Passed:
        return check_authentic_timestamp(content, statement, trust_store, now, revocation=checker)

    def delegated() -> str:
        assert plan is not None
        return f"delegated to verification plugin {_q(plan.name)}"

    # each step: (check, function, its arguments), under the statement's action for the check
    steps: tuple[tuple[str, Callable[..., str | Passed | None], tuple[Any, ...]], ...] = (
        ("authenticity", check_authenticity, (content, statement, trust_store)),
        ("trustedIdentity", *((delegated, ()) if takes_identity else (check_trusted_identity, (content, statement)))),
        ("expiry", check_expiry, (content, now)),
        ("authenticTimestamp", timestamp, ()),
        ("revocation", delegated if takes_revocation else revoked, ()),
    )
    for check, fn, args in steps:  # run() inlined: these steps are most of a verification's Python
        action = act(_ACTION_OF[check])
        if action == "skip":
            results.append(CheckResult(check, action, "skipped", "skipped by the trust policy"))
            continue
        try:
            outcome = fn(*args)
        except Exception as exc:
            if not _record_failure(v, check, action, exc):
                return v
            continue
        results.append(CheckResult(check, action, "pass", outcome) if type(outcome) is str and outcome
                       else _pass_result(check, action, outcome))
        if check == "authenticity":
            authentic[0] = True
    if plan is not None and not _run_plugin(plan, content, statement, plugin_config, run, act):
        return v
    if not run("targetMismatch", check_target, target, subject):
        return v
    run("userMetadata", check_user_metadata, target, user_metadata)
    return v


def _pass_result(check: str, action: str, outcome: str | Passed | None) -> CheckResult:
    """The result of a check that returned ``outcome`` (its message, or a :class:`Passed`)."""
    if isinstance(outcome, Passed):
        return CheckResult(check, action, "pass", outcome.message, outcome.details)
    return CheckResult(check, action, "pass", outcome or "")


def _record_failure(v: SignatureVerdict, check: str, action: str, exc: Exception) -> bool:
    """Record check ``check`` failing with ``exc`` under ``action``; False when verification of
    this signature must stop (an enforced failure; an unexpected exception is always enforced:
    a bug must never look like a pass)."""
    if isinstance(exc, CheckFailed):
        status = "unsupported" if exc.unsupported else "fail"
        v.results.append(CheckResult(check, action, status, str(exc), exc.details))
    else:
        v.results.append(CheckResult(check, "enforce", "fail", f"internal error: {type(exc).__name__}: {exc}"))
        action = "enforce"
    if action == "enforce":
        v.failing_check = check
        v.reason = v.results[-1].message
        return False
    return True


def _run_plugin(
    plan: PluginPlan, content: EnvelopeContent, statement: TrustPolicyStatement,
    plugin_config: Mapping[str, str] | None, run: Callable[..., bool], act: Callable[[str], str],
) -> bool:
    """``verify-signature`` and its results under the statement's actions; False stops this signature.

    As notation-go: REVOCATION_CHECK is not asked for when revocation is skipped; missing results
    or unprocessed critical attributes fail (enforced); a trusted-identity failure counts under
    the authenticity action, a revocation failure under the revocation action.
    """
    from ocisign.extplugin.protocol import CAP_REVOCATION
    from ocisign.extplugin.verification import PluginOutcome, run_verification, unprocessed_critical

    caps = [c for c in plan.capabilities if not (c == CAP_REVOCATION and act("revocation") == "skip")]
    outcomes: list[PluginOutcome] = []

    def verify() -> str:
        if not caps:  # nothing to ask: a critical attribute can then never be processed
            missing = unprocessed_critical(content, ())
            if missing:
                raise CheckFailed(f"extended critical attribute {_q(missing[0])} was not processed by the "
                                  f"verification plugin {_q(plan.name)} (no capability to verify was requested)")
            return f"verification plugin {_q(plan.name)} was not needed (revocation is skipped)"
        try:
            outcomes.append(run_verification(plan, content, statement, caps, plugin_config))
        except OcisignError as exc:
            raise CheckFailed(str(exc)) from None
        return f"verification plugin {_q(plan.name)} answered for {', '.join(caps)}"

    if not run("verificationPlugin", verify):
        return False
    if not outcomes:
        return True
    out = outcomes[0]
    if out.trusted_identity is not None and not out.trusted_identity.success:
        reason = out.trusted_identity.reason

        def identity() -> str:
            raise CheckFailed(f"trusted identify verification by plugin {_q(plan.name)} failed with reason "
                              f"{_q(reason)}")

        if not run("trustedIdentity", identity, action=act("authenticity")):
            return False
    if out.revocation is not None:
        result = out.revocation

        def revoked() -> str:
            if not result.success:
                raise CheckFailed(f"revocation check by verification plugin {_q(plan.name)} failed with reason "
                                  f"{_q(result.reason)}")
            return f"verification plugin {_q(plan.name)} found the certificates not revoked"

        if not run("revocation", revoked, action=act("revocation")):
            return False
    return True


def evaluate(context: VerificationContext) -> tuple[PolicyResult, list[SignatureVerdict]]:
    """The built-in decision on ``context`` plus the per-signature verdicts."""
    statement = getattr(context, "policy", None)
    display = getattr(context, "reference", "the artifact")
    if statement is None:
        return PolicyResult(source=SOURCE, outcome="fail", reason="no trust policy statement was selected",
                            details={"failedCheck": "policy"}), []
    base: dict[str, Any] = {"policy": statement.name, "level": statement.level_label}
    if statement.is_skip:
        return PolicyResult(
            source=SOURCE, outcome="pass",
            reason=f"Trust policy is configured to skip signature verification for {display}",
            details={**base, "skipped": True, "signatures": []},
        ), []
    if not context.envelopes:
        return PolicyResult(
            source=SOURCE, outcome="fail",
            reason=f"no signature is associated with {_q(display)}, make sure the artifact was signed successfully",
            details={**base, "failedCheck": "no-signature", "signatures": []},
        ), []
    if context.trust_store is None or context.open_envelope is None:
        return PolicyResult(source=SOURCE, outcome="fail",
                            reason="verification context lacks trust store or envelope access",
                            details={**base, "failedCheck": "policy"}), []
    now = context.verification_time or dt.datetime.now(dt.timezone.utc)
    from ocisign.verify.revocation import RevocationChecker

    # one checker for every signature: OCSP/CRL answers and CRLs are reused, cache problems are warnings
    checker = RevocationChecker.from_env(now=context.verification_time)
    verdicts: list[SignatureVerdict] = []
    for i, blob in enumerate(context.envelopes[: context.max_signatures]):
        verdict = evaluate_signature(
            i, blob, statement=statement, subject=context.subject, user_metadata=context.user_metadata,
            now=now, trust_store=context.trust_store, open_envelope=context.open_envelope, revocation=checker,
            verification_plugin=getattr(context, "verification_plugin", None), plugin_config=context.plugin_config,
        )
        verdicts.append(verdict)
        if verdict.passed:
            sig = verdict.manifest.digest if verdict.manifest else None
            what = f"signature {sig}" if sig else "the signature"
            return PolicyResult(
                source=SOURCE, outcome="pass",
                reason=f"{what} verified under trust policy {_q(statement.name)} ({statement.level_label})",
                details={**base, "failedCheck": None, "signatures": [x.to_json() for x in verdicts],
                         "warnings": [*checker.warnings, *verdict.warnings()], "userMetadata": verdict.user_metadata,
                         "verifiedSignature": sig},
            ), verdicts
        if verdict.abort:
            break
    first = verdicts[0]
    if verdicts[-1].abort:
        reason = f"signature verification stopped: {verdicts[-1].reason}"
        failed = verdicts[-1].failing_check
    elif len(verdicts) >= context.max_signatures:
        reason = (f"signature evaluation stopped. The configured limit of {context.max_signatures} "
                  "signatures to verify per artifact exceeded")
        failed = first.failing_check
    else:
        reason = f"signature verification failed for all the signatures associated with {display}"
        failed = first.failing_check
    return PolicyResult(
        source=SOURCE, outcome="fail", reason=reason,
        details={**base, "failedCheck": failed, "signatures": [x.to_json() for x in verdicts],
                 "warnings": list(checker.warnings)},
    ), verdicts


@hookimpl
def ocisign_evaluate_policy(context: VerificationContext) -> PolicyResult | None:
    """The Notary Project trust-policy verification (see the module docstring)."""
    return evaluate(context)[0]
