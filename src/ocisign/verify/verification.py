"""Verification core: policy → scope → artifact → signatures → policy plugins → one verdict.

:func:`verify_artifact` does what ``notation verify`` does for an artifact in a Target (a
layout or a registry repository):

1. load the trust policy and validate all of it (:class:`~ocisign.config.trustpolicy.PolicyError`,
   exit 2, before the artifact is touched);
2. choose the statement for the scope — exact match before ``*`` — (failing check ``scope``);
3. resolve the reference; a digest must resolve to itself, a tag gets a "tags are mutable"
   warning;
4. level ``skip``: no signature is fetched, the artifact is accepted;
5. collect up to ``max_signatures`` signature manifests (referrers of the artifact that are
   Notary signature manifests whose subject is the artifact), fetch each (≤ 4 MiB) and its
   single envelope layer (≤ 32 MiB); a signature that cannot be fetched is recorded and, like
   notation, stops the evaluation when it is reached;
6. build a :class:`~ocisign.types.VerificationContext` and ask every ``ocisign_evaluate_policy``
   implementation (the built-in ``trust_policy`` plugin runs the Notary algorithm);
7. combine: the built-in ``trust_policy`` result decides and must pass; other plugins can only
   veto (``fail`` denies) or abstain (``pass``/None); ``log`` results become warnings; a plugin
   that raises denies. ``trust_policy`` can't be blocked (:data:`ocisign.manager.ESSENTIAL_PLUGINS`).

:func:`verify_envelope` does the same for a detached envelope and a target descriptor (blob
signatures, conformance vectors). Both return a :class:`VerificationReport`; only policy
errors (:class:`~ocisign.errors.ConfigError`) and artifact access errors are raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

from ocisign.config.trustpolicy import (
    NoApplicablePolicyError,
    PolicyKind,
    TrustPolicyDocument,
    TrustPolicyStatement,
    load_policy,
)
from ocisign.errors import ContentError, NotFoundError, OcisignError, PluginError, VerificationError
from ocisign.goformat import go_quote as _q
from ocisign.oci.model import MAX_ENVELOPE_SIZE, MAX_MANIFEST_SIZE, MT_NOTARY_SIGNATURE, Descriptor
from ocisign.oci.subject import resolve_subject
from ocisign.types import PolicyResult, SignatureBlob, VerificationContext

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.config.configdir import ConfigDir
    from ocisign.manager import OcisignPluginManager
    from ocisign.types import EnvelopeContent, EnvelopeFormat, Target, TargetWriter  # protocols: not at run time

DEFAULT_MAX_SIGNATURES = 100
BUILTIN_SOURCE = "trust_policy"
#: the module that must be registered as :data:`BUILTIN_SOURCE`
BUILTIN_MODULE = "ocisign.plugins.trust_policy"



class VerificationReport:
    """The verdict on one artifact, with everything a person or a build needs to know why.

    A plain class (keyword or positional arguments in this order, attributes set freely): every
    ``verify`` makes one, and processing a dataclass costs about a millisecond of start-up.
    """

    __slots__ = ("failed_check", "message", "plugin_results", "policy", "policy_file", "reference", "scope",
                 "signatures", "skipped", "subject", "user_metadata", "verified", "verified_signature", "warnings")

    def __init__(
        self,
        reference: str,
        verified: bool,
        failed_check: str | None = None,
        message: str = "",
        subject: Descriptor | None = None,
        scope: str | None = None,
        policy: TrustPolicyStatement | None = None,
        policy_file: str | None = None,
        skipped: bool = False,
        signatures: list[dict[str, Any]] | None = None,
        plugin_results: list[PolicyResult] | None = None,
        warnings: list[str] | None = None,
        user_metadata: dict[str, str] | None = None,
        verified_signature: str | None = None,
    ) -> None:
        #: what was verified, as printed (``./layout@sha256:…``, ``registry/repo@sha256:…``)
        self.reference = reference
        self.verified = verified
        #: the first failing check of the whole verification (``scope``, ``no-signature``, a
        #: per-signature check, or ``policy`` when a plugin denied), None on success
        self.failed_check = failed_check
        #: one-line summary (the error message on failure)
        self.message = message
        self.subject = subject
        self.scope = scope
        self.policy = policy
        self.policy_file = policy_file
        self.skipped = skipped
        #: per-signature details from the built-in plugin (JSON-able dicts)
        self.signatures: list[dict[str, Any]] = [] if signatures is None else signatures
        #: every plugin's decision
        self.plugin_results: list[PolicyResult] = [] if plugin_results is None else plugin_results
        self.warnings: list[str] = [] if warnings is None else warnings
        #: the signed user metadata of the signature that passed
        self.user_metadata: dict[str, str] = {} if user_metadata is None else user_metadata
        self.verified_signature = verified_signature

    def __repr__(self) -> str:
        return (f"VerificationReport(reference={self.reference!r}, verified={self.verified!r}, "
                f"failed_check={self.failed_check!r}, message={self.message!r})")

    def to_json(self) -> dict[str, Any]:
        """The report for ``-o json``."""
        return {
            "reference": self.reference,
            "verified": self.verified,
            "skipped": self.skipped,
            "failedCheck": self.failed_check,
            "message": self.message,
            "artifact": self.subject.plain().to_json() if self.subject else None,
            "scope": self.scope,
            "trustPolicy": (
                {"name": self.policy.name, "level": self.policy.level, "override": dict(self.policy.override),
                 "file": self.policy_file}
                if self.policy else None
            ),
            "verifiedSignature": self.verified_signature,
            "userMetadata": self.user_metadata,
            "warnings": list(self.warnings),
            "signatures": list(self.signatures),
            "plugins": [
                {"source": r.source, "outcome": r.outcome, "reason": r.reason} for r in self.plugin_results
            ],
        }


# --- collecting signatures ----------------------------------------------------------------------
def collect_signatures(
    target: Target, subject: Descriptor, *, max_signatures: int = DEFAULT_MAX_SIGNATURES
) -> list[SignatureBlob]:
    """Fetch up to ``max_signatures`` signatures of ``subject`` (manifest + envelope), in referrers order.

    A signature manifest that cannot be fetched or is malformed (not one layer, too large) is
    returned as a SignatureBlob with ``error`` set instead of raising.
    """
    from ocisign.oci.signatures import envelope_layer, load_signature_manifest

    out: list[SignatureBlob] = []
    seen: set[str] = set()
    for desc in target.referrers(subject, artifact_type=MT_NOTARY_SIGNATURE):
        if len(out) >= max_signatures:
            break
        if desc.digest in seen:
            continue
        if desc.artifact_type is not None and desc.artifact_type != MT_NOTARY_SIGNATURE:
            continue
        seen.add(desc.digest)
        where = f"signature manifest {desc.digest}"
        try:
            if desc.size > MAX_MANIFEST_SIZE:
                raise ContentError(f"{where}: {desc.size} bytes exceeds the {MAX_MANIFEST_SIZE} byte limit")
            m = load_signature_manifest(target, desc, subject)
            if m is None:
                continue
            layer = envelope_layer(m, where=where)
            if layer.size > MAX_ENVELOPE_SIZE:  # pragma: no cover - envelope_layer checks it
                raise ContentError(f"{where}: envelope exceeds {MAX_ENVELOPE_SIZE} bytes")
            envelope = target.fetch(layer, max_size=MAX_ENVELOPE_SIZE)
            out.append(SignatureBlob(manifest=desc, media_type=layer.media_type, envelope=envelope))
        except OcisignError as exc:
            out.append(SignatureBlob(manifest=desc, media_type="", envelope=None,
                                     error=f"failed to fetch the signature: {exc}"))
    return out


# --- combining plugin results -------------------------------------------------------------------
def _call_plugins(pm: OcisignPluginManager, context: VerificationContext) -> tuple[list[PolicyResult], str | None]:
    """Every plugin's result, or an error message when a plugin raised or the built-in is missing."""
    builtin = pm.get_plugin(BUILTIN_SOURCE)
    if getattr(builtin, "__name__", None) != BUILTIN_MODULE:
        return [], f"the built-in Notary verification plugin {BUILTIN_SOURCE!r} is not registered"
    try:
        results = pm.evaluate_policy(context)
    except PluginError:  # a plugin that raised, named by the manager: exit 3, never a pass
        raise
    except Exception as exc:  # a plugin crash denies; never a pass
        return [], f"policy plugin failed: {type(exc).__name__}: {exc}"
    bad = [r for r in results if not isinstance(r, PolicyResult) or r.outcome not in ("pass", "fail", "log")]
    if bad:
        valid = [r for r in results if isinstance(r, PolicyResult)]
        return valid, f"a policy plugin returned an invalid result: {bad[0]!r}"
    return results, None


def _combine(report: VerificationReport, results: list[PolicyResult], error: str | None) -> VerificationReport:
    """One verdict: the built-in Notary result decides; other plugins can only veto (``fail``) or abstain.

    A plugin's ``pass`` is recorded but never stands in for the Notary result; the built-in's
    result must be present exactly once (a second result claiming its source denies).
    """
    report.plugin_results = list(results)
    own = [r for r in results if r.source == BUILTIN_SOURCE]
    builtin = own[0] if len(own) == 1 else None
    if builtin is not None:
        d = builtin.details
        report.signatures = list(d.get("signatures") or [])
        report.warnings.extend(d.get("warnings") or [])
        report.user_metadata = dict(d.get("userMetadata") or {})
        report.verified_signature = d.get("verifiedSignature")
        report.skipped = bool(d.get("skipped"))
    for r in results:
        if r.outcome == "log":
            report.warnings.append(f"{r.source}: {r.reason}")
    fails = [r for r in results if r.outcome == "fail"]
    if error is None and len(own) > 1:
        error = f"{len(own)} policy results claim to come from {BUILTIN_SOURCE!r}; a plugin is impersonating it"
    if error is None and builtin is None:
        error = f"the built-in Notary verification ({BUILTIN_SOURCE}) returned no result"
    if error is not None:
        report.verified, report.failed_check, report.message = False, "policy", error
    elif fails:
        first = builtin if builtin in fails else fails[0]
        report.verified = False
        report.failed_check = first.details.get("failedCheck") if first is builtin else "policy"
        report.message = first.reason if first is builtin else f"denied by plugin {first.source}: {first.reason}"
    elif builtin is None or builtin.outcome != "pass":
        report.verified, report.failed_check = False, "policy"
        report.message = f"the built-in Notary verification ({BUILTIN_SOURCE}) did not pass"
    else:
        report.verified = True
        report.failed_check = None
        report.message = builtin.reason
    return report


# --- public API ---------------------------------------------------------------------------------
TrustStoreLookup = Callable[[str, str], "Sequence[x509.Certificate] | None"]


def trust_store_lookup(pm: OcisignPluginManager, config: ConfigDir) -> TrustStoreLookup:
    """A lookup that asks the plugins for each trust store once (errors are remembered too);
    one per run, shared by every artifact a batch verifies."""
    cache: dict[tuple[str, str], Sequence[x509.Certificate] | None] = {}
    errors: dict[tuple[str, str], OcisignError] = {}

    def lookup(store_type: str, name: str) -> Sequence[x509.Certificate] | None:
        key = (store_type, name)
        if key in errors:
            raise errors[key]
        if key not in cache:
            try:
                cache[key] = pm.trust_store(store_type, name, config.root)
            except OcisignError as exc:
                errors[key] = exc
                raise
        return cache[key]

    return lookup


def envelope_opener(pm: OcisignPluginManager) -> Callable[[str, bytes], EnvelopeContent]:
    """``open(media_type, blob)``: parse and verify an envelope with the format plugin of its media type
    (the formats are asked for once per opener)."""
    found: list[dict[str, EnvelopeFormat]] = []

    def open_envelope(media_type: str, blob: bytes) -> EnvelopeContent:
        if not found:
            found.append(pm.envelope_formats())
        formats = found[0]
        fmt = formats.get(media_type)
        if fmt is None:
            known = ", ".join(sorted(formats)) or "none"
            raise VerificationError(
                f"unsupported signature envelope media type {_q(media_type)} (supported: {known})"
            )
        return fmt.open(blob)

    return open_envelope


def _run_plugins(
    pm: OcisignPluginManager,
    config: ConfigDir,
    report: VerificationReport,
    *,
    target: Target,
    subject: Descriptor,
    scope: str,
    statement: TrustPolicyStatement,
    envelopes: Sequence[SignatureBlob],
    user_metadata: Mapping[str, str] | None,
    max_signatures: int,
    plugin_config: Mapping[str, str] | None,
    verification_time: dt.datetime | None,
    trust_store: TrustStoreLookup | None = None,
) -> VerificationReport:
    """Build the VerificationContext (artifact or detached envelope), run the verification plugins
    and fold their results into ``report``."""
    context = VerificationContext(
        target=target,
        subject=subject,
        reference=report.reference,
        scope=scope,
        signatures=[b.manifest for b in envelopes if b.manifest is not None],
        user_metadata=dict(user_metadata or {}),
        max_signatures=max_signatures,
        plugin_config=dict(plugin_config or {}),
        envelopes=envelopes,
        policy=statement,
        trust_store=trust_store or trust_store_lookup(pm, config),
        open_envelope=envelope_opener(pm),
        verification_time=verification_time,
        verification_plugin=lambda name: pm.verification_plugin(name, config.root),
    )
    results, error = _call_plugins(pm, context)
    return _combine(report, results, error)


def verify_artifact(
    pm: OcisignPluginManager,
    config: ConfigDir,
    target: Target,
    reference: str,
    *,
    location: str,
    scope: str,
    user_metadata: Mapping[str, str] | None = None,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
    plugin_config: Mapping[str, str] | None = None,
    verification_time: dt.datetime | None = None,
    policy: TrustPolicyDocument | None = None,
    warn: Callable[[str], object] | None = None,
    trust_store: TrustStoreLookup | None = None,
) -> VerificationReport:
    """Verify the artifact ``reference`` (tag or digest) in ``target`` (see the module docstring).

    ``trust_store`` (from :func:`trust_store_lookup`) lets several verifications share the trust
    stores they read; by default each call reads them afresh.

    ``location`` is how the artifact is shown (``./layout`` or ``registry/repo``); ``scope`` is the
    policy scope. ``warn`` receives warnings as they happen (tag use). Raises ConfigError for a
    missing/invalid policy and OcisignError when the reference cannot be resolved.
    """
    from ocisign.oci.signatures import check_max_signatures

    check_max_signatures(max_signatures)
    doc = policy if policy is not None else load_policy(config)
    report = VerificationReport(reference=f"{location}:{reference}", verified=False, scope=scope,
                                policy_file=str(doc.path) if doc.path else None)
    try:
        statement = doc.statement_for_scope(scope)
    except NoApplicablePolicyError as exc:
        report.failed_check, report.message = "scope", str(exc)
        return report
    report.policy = statement

    def record_warning(message: str) -> None:
        report.warnings.append(message)
        if warn:
            warn(message)

    subject = resolve_subject(target, reference, verb="verify", warn=record_warning)
    report.subject = subject
    report.reference = f"{location}@{subject.digest}"
    envelopes: list[SignatureBlob] = []
    if not statement.is_skip:
        envelopes = collect_signatures(target, subject, max_signatures=max_signatures)
    return _run_plugins(pm, config, report, target=target, subject=subject, scope=scope, statement=statement,
                        envelopes=envelopes, user_metadata=user_metadata, max_signatures=max_signatures,
                        plugin_config=plugin_config, verification_time=verification_time,
                        trust_store=trust_store)


class DetachedTarget:
    """A stand-in Target for verifying a detached envelope: it holds nothing."""

    def __init__(self, location: str = "-") -> None:
        self._location = location

    @property
    def location(self) -> str:
        """Where the envelope came from."""
        return self._location

    def resolve(self, reference: str) -> Descriptor:
        """Nothing can be resolved."""
        raise NotFoundError(f"{self._location}: a detached signature has no references")

    def fetch(self, desc: Descriptor, *, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """Nothing can be fetched."""
        raise NotFoundError(f"{self._location}: {desc.digest} not found")

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[IO[bytes]]:
        """Nothing can be read."""
        raise NotFoundError(f"{self._location}: {desc.digest} not found")

    def exists(self, desc: Descriptor) -> bool:
        """Nothing exists."""
        return False

    def referrers(self, subject: Descriptor, *, artifact_type: str | None = None) -> list[Descriptor]:
        """No referrers."""
        return []

    def writer(self) -> AbstractContextManager[TargetWriter]:
        """Read-only."""
        raise VerificationError("a detached signature target is read-only")

    def close(self) -> None:
        """Nothing to release."""


def verify_envelope(
    pm: OcisignPluginManager,
    config: ConfigDir,
    envelope: bytes,
    media_type: str,
    target: Descriptor,
    *,
    scope: str | None = None,
    policy_name: str | None = None,
    kind: PolicyKind = "oci",
    user_metadata: Mapping[str, str] | None = None,
    verification_time: dt.datetime | None = None,
    policy: TrustPolicyDocument | None = None,
    location: str = "-",
) -> VerificationReport:
    """Verify one detached envelope (bytes + media type) against the ``target`` descriptor.

    OCI policies select the statement by ``scope``; blob policies (``kind="blob"``) by
    ``policy_name``, else the ``globalPolicy`` statement.
    """
    doc = policy if policy is not None else load_policy(config, kind)
    subject = target.plain()
    report = VerificationReport(reference=f"{location}@{subject.digest}", verified=False, scope=scope,
                                subject=subject, policy_file=str(doc.path) if doc.path else None)
    try:
        if kind == "blob":
            statement = doc.statement_by_name(policy_name)
        else:
            if scope is None:
                raise NoApplicablePolicyError("a scope is required to select an OCI trust policy statement")
            statement = doc.statement_for_scope(scope)
    except NoApplicablePolicyError as exc:
        report.failed_check, report.message = "scope", str(exc)
        return report
    report.policy = statement
    blobs = [] if statement.is_skip else [SignatureBlob(manifest=None, media_type=media_type, envelope=bytes(envelope))]
    return _run_plugins(pm, config, report, target=DetachedTarget(location), subject=subject, scope=scope or "",
                        statement=statement, envelopes=blobs, user_metadata=user_metadata,
                        max_signatures=DEFAULT_MAX_SIGNATURES, plugin_config=None,
                        verification_time=verification_time)
