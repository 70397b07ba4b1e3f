"""The copy engine reads the destination tag before anything else: which failures mean "push the
tag" and which fail the copy (a registry that cannot be reached or keeps failing)."""

from __future__ import annotations

import pytest

from ocisign.errors import AuthError, ContentError, LayoutError, NotFoundError, OcisignError, RegistryError
from ocisign.oci.model import MT_MANIFEST, Descriptor
from ocisign.registry.copy import Copier
from ocisign.registry.transport import RegistryHTTPError

ROOT = Descriptor(media_type=MT_MANIFEST, digest="sha256:" + "a" * 64, size=10)
OTHER = Descriptor(media_type=MT_MANIFEST, digest="sha256:" + "b" * 64, size=10)


class Dst:
    """A destination whose ``resolve`` returns a descriptor or raises."""

    location = "dst"

    def __init__(self, answer: Descriptor | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def resolve(self, reference: str) -> Descriptor:
        self.asked.append(reference)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def tagged(answer: Descriptor | Exception) -> bool:
    dst = Dst(answer)
    copier = Copier(object(), dst, warn=lambda _t: None)  # type: ignore[arg-type]
    result = copier._tagged_already("v1", ROOT.digest)
    assert dst.asked == ["v1"]
    return result


def test_a_tag_naming_the_root_is_in_place() -> None:
    assert tagged(ROOT) is True


def test_a_tag_naming_another_manifest_is_pushed() -> None:
    assert tagged(OTHER) is False


@pytest.mark.parametrize(
    "error",
    [NotFoundError("no tag"), ContentError("not a manifest"), LayoutError("no index.json"),
     AuthError("denied"), RegistryHTTPError("not found", status=404), RegistryHTTPError("bad", status=400)],
)
def test_a_missing_unreadable_or_refused_tag_is_pushed(error: OcisignError) -> None:
    assert tagged(error) is False


@pytest.mark.parametrize(
    "error",
    [RegistryError("connection refused or host unreachable"), RegistryHTTPError("too many requests", status=429),
     RegistryHTTPError("service unavailable", status=503), RegistryHTTPError("request timeout", status=408)],
)
def test_a_registry_that_keeps_failing_fails_the_copy(error: RegistryError) -> None:
    with pytest.raises(RegistryError) as info:
        tagged(error)
    assert info.value is error
