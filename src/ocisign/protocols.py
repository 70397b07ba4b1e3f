"""The protocols plugins implement (:class:`Target`, :class:`TargetWriter`, :class:`Signer`)
and the ``Literal`` types of the records (``KeySpec``, ``Outcome``).

Import them from :mod:`ocisign.types` (as always) or from here: this module imports
:mod:`typing`, so :mod:`ocisign.types` loads it only when one of these names is used at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Literal, Protocol, runtime_checkable

from ocisign.oci.model import MAX_MANIFEST_SIZE, Descriptor

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from cryptography import x509

__all__ = ["KeySpec", "Outcome", "Signer", "Target", "TargetWriter"]

#: outcome of a policy plugin (see :class:`ocisign.types.PolicyResult`)
Outcome = Literal["pass", "fail", "log"]


# --- content stores ----------------------------------------------------------------------------
@runtime_checkable
class Target(Protocol):
    """A content store: an OCI layout directory, a layout tar, or a registry repository.

    Read methods never modify anything. Writes go through :meth:`writer`.
    """

    @property
    def location(self) -> str:
        """Human-readable location (``./hello-world``, ``localhost:5001/hello-world``)."""
        ...

    def resolve(self, reference: str) -> Descriptor:
        """Resolve a tag or ``sha256:…`` digest to the descriptor of a manifest or index.

        Raises NotFoundError, or LayoutError for an ambiguous tag.
        """
        ...

    def fetch(self, desc: Descriptor, *, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """Whole content of a small blob/manifest, digest and size verified; bounded by max_size."""
        ...

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[IO[bytes]]:
        """Stream a blob of exactly ``desc.size`` bytes; the stream verifies the digest at EOF."""
        ...

    def exists(self, desc: Descriptor) -> bool:
        """True when the store holds the content of ``desc``."""
        ...

    def referrers(self, subject: Descriptor, *, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``subject``, optionally filtered by artifact type.

        Returned descriptors carry ``artifact_type`` and ``annotations`` where known.
        """
        ...

    def writer(self) -> AbstractContextManager[TargetWriter]:
        """A write session. Changes become visible atomically when the context exits cleanly."""
        ...

    def close(self) -> None:
        """Release files, sockets and pools."""
        ...


class TargetWriter(Protocol):
    """Write side of a :class:`Target`, valid inside ``with target.writer() as w:``.

    ``push_blob`` must be thread-safe: ``ocisign cp`` calls it from up to ``--concurrency``
    threads at once (manifests are pushed from one thread). Optional extras the copy engine
    uses when present are listed in :mod:`ocisign.registry.copy`.
    """

    def push_blob(self, desc: Descriptor, source: bytes | IO[bytes]) -> None:
        """Store a blob (config, layer, envelope). Verifies digest and size while writing."""
        ...

    def push_manifest(self, desc: Descriptor, data: bytes, *, tag: str | None = None, listed: bool = True) -> None:
        """Store a manifest or index.

        ``tag`` names it; ``listed`` (layouts only) adds an untagged entry to ``index.json`` —
        what notation does for signature manifests. Children of an index pass ``listed=False``.
        Registries maintain the referrers index for manifests with a ``subject``.
        """
        ...


KeySpec = Literal["RSA-2048", "RSA-3072", "RSA-4096", "EC-256", "EC-384", "EC-521"]


class Signer(Protocol):
    """A signing key with its certificate chain (leaf first)."""

    @property
    def key_spec(self) -> KeySpec:
        """Key type and size; selects the algorithm (PS256…ES512)."""
        ...

    def certificate_chain(self) -> Sequence[x509.Certificate]:
        """Leaf first, root last."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Raw signature over ``data``: RSASSA-PSS (salt = hash length) or ECDSA raw ``r||s``."""
        ...


