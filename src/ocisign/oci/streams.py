"""Streams that hash as they go: content is read once and checked against its descriptor."""

from __future__ import annotations

import io

from ocisign.errors import ContentError
from ocisign.oci.model import Descriptor, check_verified, hasher_for

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import IO, Any

#: check_verified lives in ocisign.oci.model (reading a layout's manifests needs no stream)
__all__ = ["VerifyingReader", "check_verified"]


class VerifyingReader(io.RawIOBase):
    """Read exactly ``desc.size`` bytes from ``raw``; raise ContentError at EOF on a digest/size mismatch.

    The check fires when the last byte has been read (or when the source ends early, or has
    more bytes than declared), so a consumer that reads to EOF cannot miss it.
    """

    def __init__(self, raw: IO[bytes], desc: Descriptor, *, where: str) -> None:
        super().__init__()
        self._raw = raw
        self._desc = desc
        self._where = where
        self._hash: Any = hasher_for(desc.digest)
        self._left = desc.size
        self._checked = False

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the source, hashing what passes."""
        if self._left <= 0:
            self._finish()
            return 0
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._left)
        n = self._raw.readinto(view[:want]) if hasattr(self._raw, "readinto") else self._copy(view, want)
        if not n:
            raise ContentError(
                f"{self._where}: {self._desc.digest} is truncated ({self._desc.size - self._left} of "
                f"{self._desc.size} bytes)"
            )
        self._hash.update(view[:n])
        self._left -= n
        if self._left == 0:
            self._finish()
        return n

    def _copy(self, view: memoryview, want: int) -> int:
        data = self._raw.read(want)
        view[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._raw.read(1):
            raise ContentError(f"{self._where}: {self._desc.digest} is larger than its declared size {self._desc.size}")
        actual = f"{self._desc.digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if actual != self._desc.digest:
            raise ContentError(f"{self._where}: content does not match digest {self._desc.digest} (got {actual})")

    def close(self) -> None:
        """Close the underlying stream too."""
        try:
            self._raw.close()
        finally:
            super().close()
