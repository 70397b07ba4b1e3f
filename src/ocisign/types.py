"""Records that plugins return from registration hooks, and the protocols they implement.

Registration hooks (``ocisign_layout_handlers``, ``ocisign_signers``, ``ocisign_envelope_formats``,
``ocisign_transports``) yield frozen dataclasses from this module; the plugin manager merges
them by name and refuses duplicates. Heavy libraries are referenced only under TYPE_CHECKING.

The records are dataclasses made by :mod:`ocisign.lazy_dataclass`: declaring them costs nothing,
the first instance of one gets the generated methods without importing :mod:`dataclasses`, and
:func:`dataclasses.is_dataclass`, :func:`~dataclasses.fields`, :func:`~dataclasses.replace` and
:func:`~dataclasses.asdict` work on every instance (of the class itself once it has an instance,
or after :func:`ocisign.lazy_dataclass.materialize`).

The protocols (:class:`Target`, :class:`TargetWriter`, :class:`Signer`) and the ``Literal`` types
(``KeySpec``, ``Outcome``) live in :mod:`ocisign.protocols`, which imports :mod:`typing`; they are
importable from here as before (``from ocisign.types import Target``), loaded on first use, so
that the commands that never name them at run time (``list``) do not import :mod:`typing`.
"""

from __future__ import annotations

from ocisign.lazy_dataclass import dataclass, field
from ocisign.oci.model import Descriptor

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from ocisign.protocols import KeySpec, Outcome, Signer, Target, TargetWriter

__all__ = [
    "Credentials",
    "EnvelopeContent",
    "EnvelopeFormat",
    "GeneratedEnvelope",
    "KeySpec",
    "LayoutHandler",
    "Outcome",
    "PolicyResult",
    "RemoteOptions",
    "SignRequest",
    "SignatureBlob",
    "Signer",
    "SignerFactory",
    "Target",
    "TargetWriter",
    "Transport",
    "VerificationContext",
]

if TYPE_CHECKING:  # annotations only (datetime and pathlib are not imported by ``list``)
    import datetime as dt
    from pathlib import Path

    from cryptography import x509

    from ocisign.config.trustpolicy import TrustPolicyStatement


@dataclass(frozen=True, kw_only=True)
class LayoutHandler:
    """A kind of local OCI layout (``oci`` directory, ``oci-archive`` tar, …).

    ``detect(path)`` returns True when this handler recognises ``path``; exactly one handler
    must claim a path unless ``--layout-type`` names one. ``open(path)`` returns a Target.
    """

    name: str
    detect: Callable[[Path], bool]
    open: Callable[[Path], Target]
    #: create(path) initialises a new, empty layout (for ``cp --to-oci-layout``); None if unsupported
    create: Callable[[Path], Target] | None = None
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class RemoteOptions:
    """How to reach a registry (from CLI flags, config and the environment)."""

    plain_http: bool = False
    insecure: bool = False
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    concurrency: int = 4
    timeout: float = 30.0
    progress: bool = False
    #: credentials for a registry host when no username/password is given (the CLI passes
    #: ``pm.registry_credentials``); None means anonymous unless username/password are set
    credential_lookup: Callable[[str], Credentials | None] | None = None


@dataclass(frozen=True, kw_only=True)
class Transport:
    """A way to reach remote content (the built-in ``registry`` speaks the distribution API)."""

    name: str
    #: open(registry_host, repository, options) -> Target
    open: Callable[[str, str, RemoteOptions], Target]
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Registry credentials: username/password, or an identity (refresh) token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""


# --- signing -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class GeneratedEnvelope:
    """An envelope made whole by a signer (a ``SIGNATURE_GENERATOR.ENVELOPE`` notation plugin).

    A Signer may offer, besides the :class:`Signer` protocol, these optional members that
    :func:`ocisign.sign.signing.sign_artifact` uses when present:

    * ``generate_envelope(request, envelope_format) -> GeneratedEnvelope``: the signer builds the
      whole envelope itself (checked by the signer; its ``annotations`` go on the signature manifest);
    * ``chain_after_signing = True``: ``certificate_chain()`` is only known after ``sign`` (RAW
      plugins return the chain with the signature), so the chain is validated after sealing;
    * ``signing_agent_suffix``: appended to the signing agent (``ocisign/1.0 <plugin>/<version>``).
    """

    envelope: bytes
    certificate_chain: Sequence[x509.Certificate]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SignerFactory:
    """Creates Signers for a key scheme: ``file`` (built-in), or ``vault``, ``awskms``… from plugins.

    ``create(key)`` receives the signing-key record from signingkeys.json (``name``, and
    ``keyPath``/``certPath`` or ``id``/``pluginName``/``pluginConfig``) and returns a Signer.
    """

    name: str
    create: Callable[[Mapping[str, Any]], Signer]
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class SignRequest:
    """Everything an envelope format needs to seal a payload."""

    payload: bytes
    signing_time: dt.datetime
    expiry: dt.datetime | None = None
    signing_scheme: str = "notary.x509"
    signing_agent: str = ""
    extended_attributes: Mapping[str, Any] = field(default_factory=dict)
    #: names of ``extended_attributes`` to list in ``crit`` (the verificationPlugin headers
    #: are always critical)
    critical_attributes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EnvelopeContent:
    """A parsed envelope whose cryptographic signature verified against its leaf certificate."""

    media_type: str
    payload: bytes
    payload_content_type: str
    signing_scheme: str
    signature_algorithm: str  # RSASSA-PSS-SHA-256 … ECDSA-SHA-512
    certificate_chain: Sequence[x509.Certificate]
    signature: bytes
    signing_time: dt.datetime | None = None
    authentic_signing_time: dt.datetime | None = None
    expiry: dt.datetime | None = None
    signing_agent: str | None = None
    timestamp_token: bytes | None = None
    verification_plugin: str | None = None
    verification_plugin_min_version: str | None = None
    #: extended (non-standard) protected attributes: name -> value
    extended_attributes: Mapping[str, Any] = field(default_factory=dict)
    #: names listed in ``crit``
    critical: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EnvelopeFormat:
    """A signature envelope format, keyed by media type (and short name for ``--signature-format``).

    ``seal(request, signer)`` returns envelope bytes; ``open(blob)`` parses, checks headers and
    verifies the signature with the leaf key, raising VerificationError on any problem.
    """

    name: str
    media_type: str
    seal: Callable[[SignRequest, Signer], bytes]
    open: Callable[[bytes], EnvelopeContent]
    description: str = ""
    #: ``attach_timestamp(blob, token)``: the envelope with the unsigned RFC 3161 timestamp header set
    #: (None: the format cannot carry a timestamp, so ``sign --timestamp-url`` refuses it)
    attach_timestamp: Callable[[bytes, bytes], bytes] | None = None


# --- verification ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class VerificationContext:
    """What a policy plugin sees when asked to decide on an artifact."""

    target: Target
    #: the artifact as resolved (plain descriptor)
    subject: Descriptor
    #: the reference the user typed (for messages)
    reference: str
    #: policy scope: ``registry/repository`` (``--scope`` for layouts)
    scope: str
    #: signature manifests found for the subject (at most max_signatures)
    signatures: Sequence[Descriptor]
    user_metadata: Mapping[str, str] = field(default_factory=dict)
    max_signatures: int = 100
    #: extra options a policy plugin may read (``--plugin-config k=v``)
    plugin_config: Mapping[str, str] = field(default_factory=dict)
    #: the fetched envelopes of ``signatures``, same order (filled by :mod:`ocisign.verify.verification`)
    envelopes: Sequence[SignatureBlob] = ()
    #: the trust policy statement selected for ``scope`` (None only for ad-hoc contexts)
    policy: TrustPolicyStatement | None = None
    #: trust store lookup (``pm.trust_store``): certificates, None for an unknown store; raises
    #: OcisignError for an invalid store
    trust_store: Callable[[str, str], Sequence[x509.Certificate] | None] | None = None
    #: envelope parser: (media type, envelope bytes) -> EnvelopeContent (``pm.envelope_format``)
    open_envelope: Callable[[str, bytes], EnvelopeContent] | None = None
    #: the time to verify at (None: now); tests freeze the clock with it
    verification_time: dt.datetime | None = None
    #: installed notation verification plugin by name (``pm.verification_plugin``); raises
    #: OcisignError when it is not installed; None: no plugin can run
    # name -> an installed notation verification plugin (an ocisign.extplugin.discovery.ExternalPlugin); typed
    # loosely so that the plugin contract does not import the external-plugin machinery
    verification_plugin: Callable[[str], Any] | None = None


@dataclass(frozen=True, kw_only=True)
class SignatureBlob:
    """One signature as fetched for verification: its manifest and its envelope bytes."""

    #: the signature manifest descriptor (None for a detached envelope)
    manifest: Descriptor | None
    #: the envelope media type (the manifest layer's ``mediaType``)
    media_type: str
    #: envelope bytes; None when the signature could not be fetched (``error`` says why)
    envelope: bytes | None = None
    error: str | None = None




@dataclass(frozen=True, kw_only=True)
class PolicyResult:
    """One plugin's decision on an artifact. ``details`` is JSON-able (shown with ``-o json``)."""

    source: str
    outcome: Outcome
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


_PROTOCOLS = frozenset({"KeySpec", "Outcome", "Signer", "Target", "TargetWriter"})


def __getattr__(name: str) -> Any:
    """The protocols and Literal types of :mod:`ocisign.protocols`, imported on first use."""
    if name in _PROTOCOLS:
        from ocisign import protocols

        value = getattr(protocols, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ocisign.types' has no attribute {name!r}")
