"""The Notary payload (``{"targetArtifact": …}``) exactly as notation emits it, and user metadata rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ocisign.envelope.headers import RESERVED_ANNOTATION_PREFIX
from ocisign.errors import ContentError, SigningError, UsageError
from ocisign.goformat import go_marshal
from ocisign.oci.model import MT_COSE, MT_JWS, Descriptor, parse_json


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
        return go_marshal({"targetArtifact": target}, sort_keys=envelope_media_type == MT_JWS)
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
        return go_marshal(obj, sort_keys=True)
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise SigningError(f"payload format error: {str(exc).splitlines()[0]}") from None
