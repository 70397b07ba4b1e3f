"""The referrers tag schema (distribution-spec fallback when a registry has no referrers API).

Referrers of ``sha256:<hex>`` are listed by an image index tagged ``sha256-<hex>``. Each entry
is the referrer's descriptor plus ``artifactType`` (the manifest's, or its config media type)
and all of the manifest's ``annotations``, as oras-go's ``generateIndex`` writes them. Pure
functions; the I/O lives in :mod:`ocisign.registry.target`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ocisign.errors import ContentError
from ocisign.oci.model import (
    ALL_MANIFEST_TYPES,
    MT_INDEX,
    Descriptor,
    Manifest,
    canonical_json,
    descriptor_from_json,
    parse_json_object,
)

_TAG_BAD = re.compile(r"[^a-zA-Z0-9._-]")


def referrers_tag(digest: str) -> str:
    """``<alg>-<hex>``: algorithm cut to 32 characters, hex to 64, other characters as ``-``."""
    alg, _, hexpart = digest.partition(":")
    return _TAG_BAD.sub("-", alg[:32]) + "-" + _TAG_BAD.sub("-", hexpart[:64])


def referrer_entry(desc: Descriptor, manifest: Manifest) -> Descriptor:
    """The index entry for a referrer: plain descriptor + artifactType + the manifest's annotations."""
    return Descriptor(
        media_type=desc.media_type,
        digest=desc.digest,
        size=desc.size,
        artifact_type=manifest.effective_artifact_type,
        annotations=dict(manifest.annotations) if manifest.annotations else None,
    )


def parse_referrers_index(data: bytes, *, where: str) -> list[Descriptor]:
    """Entries of a referrers index; invalid or non-manifest entries are refused."""
    obj = parse_json_object(data, where=where)
    if obj.get("mediaType", MT_INDEX) != MT_INDEX or obj.get("schemaVersion") != 2:
        raise ContentError(f"{where}: not an OCI image index")
    manifests = obj.get("manifests")
    if manifests is None:
        return []
    if not isinstance(manifests, list):
        raise ContentError(f"{where}: manifests must be a list")
    out = []
    for i, entry in enumerate(manifests):
        d = descriptor_from_json(entry, where=f"{where}.manifests[{i}]")
        if d.media_type not in ALL_MANIFEST_TYPES:
            raise ContentError(f"{where}.manifests[{i}]: {d.media_type!r} is not a manifest type")
        out.append(d)
    return out


def dedupe(entries: Iterable[Descriptor]) -> list[Descriptor]:
    """Keep the first entry per digest, in order."""
    seen: set[str] = set()
    out = []
    for d in entries:
        if d.digest not in seen:
            seen.add(d.digest)
            out.append(d)
    return out


def merge(old: Sequence[Descriptor], add: Sequence[Descriptor], *, remove: Iterable[str] = ()) -> list[Descriptor]:
    """``old`` without duplicates and without digests in ``remove``, with ``add`` merged in.

    An added descriptor replaces an old entry for the same digest (so entries written without
    ``artifactType``/annotations by other tools get completed); new ones are appended.
    """
    gone = set(remove)
    by_digest = {d.digest: d for d in add}
    out: list[Descriptor] = []
    for d in dedupe(old):
        if d.digest in gone:
            continue
        out.append(by_digest.pop(d.digest, d))
    out.extend(d for d in dedupe(add) if d.digest in by_digest)
    return out


def build_index(entries: Sequence[Descriptor]) -> bytes:
    """Compact JSON of the referrers index (``manifests`` always an array)."""
    return canonical_json(
        {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [d.to_json() for d in entries]}
    )


def filter_type(entries: Iterable[Descriptor], artifact_type: str | None) -> list[Descriptor]:
    """Entries of ``artifact_type`` (all when None)."""
    return [d for d in entries if artifact_type is None or d.artifact_type == artifact_type]
