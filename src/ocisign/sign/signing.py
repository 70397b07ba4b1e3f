"""Signing an artifact into a layout or registry: notation's ``sign``, byte for byte.

:func:`sign_artifact` resolves the reference (a tag warns and the resolved digest is signed; a
``@digest`` must be what the target holds), refuses reserved ``io.cncf.notary*`` metadata
keys, validates the signer's certificate chain against the Notary rules at signing time,
builds the payload, seals it with the envelope format (and, with ``--timestamp-url``, attaches an
RFC 3161 timestamp over the signature) and re-opens the result, then stores:

1. the envelope blob (layer media type = envelope media type),
2. the ``{}`` config blob (``application/vnd.cncf.notary.signature``),
3. the signature manifest in the form every released notation writes (schemaVersion 2, image
   manifest, ``subject`` = plain descriptor, thumbprint and created annotations), listed in
   ``index.json`` without a tag and with the manifest annotations copied (as oras does).

All writes go through one ``target.writer()`` session, so a layout is updated atomically under
its lock and a registry gets blobs before the manifest.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ocisign import __version__
from ocisign.errors import SigningError, UsageError
from ocisign.lazy_dataclass import dataclass
from ocisign.lazy_re import lazy_re
from ocisign.oci.model import (
    ANN_CREATED,
    ANN_THUMBPRINT,
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    MT_MANIFEST,
    MT_NOTARY_SIGNATURE,
    Descriptor,
    canonical_json,
    sha256_digest,
)
from ocisign.oci.subject import resolve_subject

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.manager import OcisignPluginManager
    from ocisign.sign.timestamping import TimestampOptions
    from ocisign.types import EnvelopeFormat, GeneratedEnvelope, Signer, Target
    from ocisign.x509.memo import CertMemo

SIGNING_AGENT = f"ocisign/{__version__}"

Warn = Callable[[str], None]


@dataclass(frozen=True)
class SignResult:
    """What :func:`sign_artifact` stored."""

    #: the signed artifact (plain descriptor)
    subject: Descriptor
    #: the signature manifest as listed (annotations copied from the manifest)
    signature: Descriptor
    envelope: Descriptor
    manifest_bytes: bytes


_DURATION_RE = lazy_re(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9}


def parse_duration(text: str) -> dt.timedelta:
    """A Go ``time.ParseDuration`` string (``24h``, ``30m``, ``1h30m``, ``10s``, ``1.5h``) in whole seconds.

    ``0`` means no expiry (zero delta); negative values and sub-second precision are refused,
    as notation refuses them.
    """
    s = text.strip()
    if not s:
        raise UsageError("--expiry: empty duration")
    neg = s.startswith("-")
    body = s.lstrip("+-")
    if body == "0":
        return dt.timedelta(0)
    pos = 0
    total_ns = 0
    while pos < len(body):
        m = _DURATION_RE.match(body, pos)
        if not m or m.group(1) in ("", "."):
            raise UsageError(f"--expiry: invalid duration {text!r} (examples: 24h, 30m, 1h30m, 10s)")
        number, unit = m.group(1), m.group(2)
        whole, _, frac = number.partition(".")
        ns = int(whole or "0") * _UNIT_NS[unit]
        if frac:
            ns += int(frac) * _UNIT_NS[unit] // 10 ** len(frac)
        total_ns += ns
        pos = m.end()
    if neg and total_ns:
        raise UsageError(f"--expiry: duration {text!r} must not be negative")
    if total_ns % 10**9:
        raise UsageError(f"--expiry: duration {text!r} must be a whole number of seconds")
    seconds = total_ns // 10**9
    if seconds > 100 * 366 * 86400:
        raise UsageError(f"--expiry: duration {text!r} is too long")
    return dt.timedelta(seconds=seconds)


def thumbprints_annotation(chain: Sequence[x509.Certificate] | Sequence[bytes]) -> str:
    """``["<sha256 hex of each cert, lowercase>", …]`` compact, in chain order.

    ``chain`` holds certificates or their DER bytes.
    """
    import hashlib

    return json.dumps([hashlib.sha256(c if isinstance(c, bytes) else _der(c)).hexdigest() for c in chain],
                      separators=(",", ":"))


def signature_manifest(subject: Descriptor, envelope: Descriptor, annotations: Mapping[str, str]) -> bytes:
    """The signature manifest bytes in released notation's (legacy) form, compact, Go field order."""
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_NOTARY_SIGNATURE, "digest": EMPTY_JSON_DIGEST, "size": len(EMPTY_JSON)},
        "layers": [{"mediaType": envelope.media_type, "digest": envelope.digest, "size": envelope.size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": dict(annotations),
    })


def created_annotation(t: dt.datetime) -> str:
    """``org.opencontainers.image.created``: UTC RFC 3339, whole seconds."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_artifact(
    pm: OcisignPluginManager,
    target: Target,
    reference: str,
    *,
    signer: Signer,
    envelope_format: EnvelopeFormat,
    expiry: dt.timedelta | None = None,
    user_metadata: Mapping[str, str] | None = None,
    signing_agent: str = SIGNING_AGENT,
    warn: Warn | None = None,
    now: dt.datetime | None = None,
    timestamp: TimestampOptions | None = None,
) -> SignResult:
    """Sign ``reference`` in ``target`` and store the signature (see the module docstring).

    With ``timestamp`` the envelope gets an RFC 3161 countersignature from that TSA before
    anything is stored (:mod:`ocisign.sign.timestamping`); any timestamping problem fails the sign.
    """
    from ocisign.envelope.chain import validate_signing_chain
    from ocisign.envelope.payload import build_payload, check_user_metadata
    from ocisign.types import SignRequest

    metadata = dict(user_metadata or {})
    check_user_metadata(metadata)
    subject = resolve_subject(target, reference, verb="sign", warn=warn)
    signing_time = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)
    # notation plugin signers (see ocisign.types.GeneratedEnvelope) know their chain only after signing
    generate = getattr(signer, "generate_envelope", None)
    chain_later = callable(generate) or bool(getattr(signer, "chain_after_signing", False))
    if not chain_later:
        chain = _signer_chain(signer)
        validate_signing_chain(chain, at=signing_time, scheme="notary.x509")
    suffix = getattr(signer, "signing_agent_suffix", "")
    if suffix:
        signing_agent = f"{signing_agent} {suffix}"

    payload = build_payload(
        Descriptor(media_type=subject.media_type, digest=subject.digest, size=subject.size,
                   annotations=metadata or None),
        envelope_media_type=envelope_format.media_type,
    )
    request = SignRequest(
        payload=payload,
        signing_time=signing_time,
        expiry=signing_time + expiry if expiry else None,
        signing_agent=signing_agent,
    )
    extra_annotations: Mapping[str, str] = {}
    if callable(generate):
        generated: GeneratedEnvelope = generate(request, envelope_format)
        blob, chain, extra_annotations = generated.envelope, list(generated.certificate_chain), generated.annotations
        content = envelope_format.open(blob)
        payload, scheme = content.payload, content.signing_scheme  # the plugin's (it may add annotations)
    else:
        blob = envelope_format.seal(request, signer)
        scheme = request.signing_scheme
        if chain_later:
            chain = _signer_chain(signer)
    if chain_later:
        validate_signing_chain(chain, at=signing_time, scheme=scheme)
    if timestamp is not None:
        from ocisign.sign.timestamping import timestamp_envelope

        blob = timestamp_envelope(blob, envelope_format, timestamp)
    chain_der = _signer_chain_der(signer, chain, own=not callable(generate))
    _check_envelope(envelope_format, blob, payload, chain_der)

    envelope = Descriptor(media_type=envelope_format.media_type, digest=sha256_digest(blob), size=len(blob))
    annotations = {**extra_annotations, ANN_THUMBPRINT: thumbprints_annotation(chain_der),
                   ANN_CREATED: created_annotation(signing_time)}
    manifest = signature_manifest(subject, envelope, annotations)
    sig = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(manifest), size=len(manifest),
                     annotations=annotations)
    config = Descriptor(media_type=MT_NOTARY_SIGNATURE, digest=EMPTY_JSON_DIGEST, size=len(EMPTY_JSON))
    with target.writer() as w:
        w.push_blob(envelope, blob)
        w.push_blob(config, EMPTY_JSON)
        w.push_manifest(sig, manifest, listed=True)
    pm.signature_created(target, subject, sig)
    return SignResult(subject=subject, signature=sig, envelope=envelope, manifest_bytes=manifest)


def _signer_chain(signer: Signer) -> list[x509.Certificate]:
    try:
        return list(signer.certificate_chain())
    except SigningError:
        raise
    except Exception as exc:
        raise SigningError(f"signing key: cannot read its certificate chain: {exc}") from exc


def _signer_chain_der(signer: Signer, chain: list[x509.Certificate], *, own: bool) -> tuple[bytes, ...]:
    """The DER of ``chain``. When ``chain`` is the signer's own ``certificate_chain()`` (``own``) and the
    signer carries its DER (``certificate_chain_der()``, the file signer does), those bytes; else each
    certificate encoded once per certificate object."""
    carried = getattr(signer, "certificate_chain_der", None) if own else None
    if callable(carried):
        try:
            ders = tuple(carried())
        except Exception:  # an optional extra of the signer: encode the certificates instead
            ders = ()
        if len(ders) == len(chain) and all(isinstance(d, bytes) for d in ders):
            return ders
    return tuple(_der(c) for c in chain)


def _der_of(cert: x509.Certificate) -> bytes:
    from ocisign.x509.encoding import encoding_enum

    der: bytes = cert.public_bytes(encoding_enum().DER)
    return der


def _der(cert: x509.Certificate) -> bytes:
    """The DER of ``cert``, encoded once per certificate object (envelope certificates are parsed
    once per process, so a batch meets the same objects again)."""
    global _DER_MEMO
    if _DER_MEMO is None:
        from ocisign.x509.memo import CertMemo

        _DER_MEMO = CertMemo(_der_of)
    return _DER_MEMO(cert)


_DER_MEMO: CertMemo[bytes] | None = None


def _check_envelope(fmt: EnvelopeFormat, blob: bytes, payload: bytes, chain_der: Sequence[bytes]) -> None:
    """The sealed envelope must open (parse and verify), carry our payload and the signer's chain."""
    from ocisign.errors import OcisignError

    try:
        content = fmt.open(blob)
    except OcisignError as exc:
        raise SigningError(f"the produced {fmt.name} envelope does not verify: {exc}") from None
    if json.loads(content.payload) != json.loads(payload):
        raise SigningError(f"the produced {fmt.name} envelope does not carry the signed payload")
    got = [_der(c) for c in content.certificate_chain]
    if got != list(chain_der):
        raise SigningError(f"the produced {fmt.name} envelope does not carry the signing certificate chain")
