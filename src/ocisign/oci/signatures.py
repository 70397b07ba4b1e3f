"""Finding the Notary signatures of an artifact, for ``list``, ``inspect`` and ``verify``.

Candidates come from ``target.referrers(subject)`` (a graph walk in layouts, the referrers
API or tag schema on registries), in the order returned. Each candidate's manifest is fetched
(≤ 4 MiB) and kept only if it is a Notary signature manifest in one of the forms notation
writes or reads (:func:`ocisign.oci.model.is_signature_manifest`: legacy config media type, new
``artifactType`` + empty config, legacy artifact manifest) whose ``subject`` is the artifact.
At most ``max_signatures`` are returned; ``truncated`` tells that more exist (notation's
"exceeded configured limit of max signatures" condition).
"""

from __future__ import annotations

from ocisign.errors import ContentError, UsageError
from ocisign.oci.model import (
    MAX_ENVELOPE_SIZE,
    MT_NOTARY_SIGNATURE,
    Descriptor,
    Manifest,
    is_signature_manifest,
    parse_manifest,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.types import Target

DEFAULT_MAX_SIGNATURES = 100


class SignatureList(list[Descriptor]):
    """Signature manifest descriptors, plus the parsed manifests and whether the limit cut the list."""

    def __init__(self) -> None:
        super().__init__()
        #: True when more signatures exist than ``max_signatures`` allowed
        self.truncated = False
        self.max_signatures = 0
        #: parsed signature manifests by digest (so callers need not fetch them again)
        self.manifests: dict[str, Manifest] = {}

    def exceeded_message(self) -> str:
        """notation's wording for the truncation warning."""
        return f"exceeded configured limit of max signatures {self.max_signatures} to examine"


def check_max_signatures(value: int) -> int:
    """``--max-signatures`` must be a positive number."""
    if value <= 0:
        raise UsageError(f"max-signatures value {value} must be a positive number")
    return value


def _is_layout_reader(target: Target) -> bool:
    if not callable(getattr(target, "manifest", None)):
        return False
    from ocisign.oci.layout_reader import LayoutReader  # a target with manifest(): already imported

    return isinstance(target, LayoutReader)


def load_signature_manifest(target: Target, desc: Descriptor, subject: Descriptor) -> Manifest | None:
    """The parsed manifest when ``desc`` is a Notary signature of ``subject``, else None."""
    m: Manifest
    if _is_layout_reader(target):  # parsed once per session (its referrers walk already did)
        m = target.manifest(desc)  # type: ignore[attr-defined]
    else:
        data = target.fetch(desc)
        m = parse_manifest(data, media_type=desc.media_type, where=f"{target.location}@{desc.digest}")
    if not is_signature_manifest(m):
        return None
    if m.subject is None or m.subject.digest != subject.digest or m.subject.size != subject.size:
        return None
    return m


def find_signatures(
    target: Target, subject: Descriptor, *, max_signatures: int = DEFAULT_MAX_SIGNATURES
) -> SignatureList:
    """Signature manifests of ``subject`` in ``target`` (at most ``max_signatures``), in referrers order."""
    check_max_signatures(max_signatures)
    out = SignatureList()
    out.max_signatures = max_signatures
    for desc in target.referrers(subject, artifact_type=MT_NOTARY_SIGNATURE):
        if desc.digest in out.manifests:
            continue  # listed twice (e.g. a referrers-tag index and index.json)
        m = load_signature_manifest(target, desc, subject)
        if m is None:
            continue
        if len(out) >= max_signatures:
            out.truncated = True
            break
        out.append(desc)
        out.manifests[desc.digest] = m
    return out


def envelope_layer(m: Manifest, *, where: str) -> Descriptor:
    """The single envelope layer of a signature manifest (≠ 1 layer, or too big, is an error)."""
    if len(m.layers) != 1:
        raise ContentError(f"{where}: signature manifest must have exactly one layer, found {len(m.layers)}")
    layer = m.layers[0]
    if layer.size > MAX_ENVELOPE_SIZE:
        raise ContentError(f"{where}: signature envelope of {layer.size} bytes exceeds the {MAX_ENVELOPE_SIZE} limit")
    return layer
