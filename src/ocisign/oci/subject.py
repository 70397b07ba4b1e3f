"""Resolving the artifact a command signs or verifies, and checking it is really there.

A tag is resolved (with notation's warning that tags are mutable); a digest must resolve to
itself. Then the manifest itself is fetched — digest and size verified, parsed as the media
type its descriptor declares — so a corrupt, missing or type-confused manifest is never
signed and never "verified" (reliability B1.9, B3.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ocisign.errors import ContentError
from ocisign.oci.model import ALL_MANIFEST_TYPES, Descriptor, is_digest_reference, parse_manifest

if TYPE_CHECKING:
    from ocisign.types import Target


def tag_warning(verb: str, tag: str) -> str:
    """notation's warning for a tag reference (``verb``: sign, verify, list, inspect)."""
    if verb == "sign":
        return (
            f"Always sign the artifact using digest(@sha256:...) rather than a tag(:{tag}) because tags are "
            "mutable and a tag reference can point to a different artifact than the one signed."
        )
    return (
        f"Always {verb} the artifact using digest(@sha256:...) rather than a tag(:{tag}) because resolved "
        "digest may not point to the same signed artifact, as tags are mutable."
    )


def resolve_subject(
    target: Target, reference: str, *, verb: str, warn: Callable[[str], object] | None = None
) -> Descriptor:
    """The plain descriptor of the artifact ``reference`` names in ``target``, content-checked."""
    desc = target.resolve(reference)
    if desc.media_type not in ALL_MANIFEST_TYPES:
        raise ContentError(f"{target.location}: {reference} resolves to {desc.media_type}, not a manifest or index")
    if is_digest_reference(reference):
        if desc.digest != reference:
            raise ContentError(f"user input digest {reference} does not match the resolved digest {desc.digest}")
    elif warn is not None:
        warn(tag_warning(verb, reference))
    data = target.fetch(desc)
    parse_manifest(data, media_type=desc.media_type, where=f"{target.location}@{desc.digest}")
    return desc.plain()
