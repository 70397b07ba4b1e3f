"""Per-process memos of pure functions of a parsed certificate.

Certificates are parsed once per process (:mod:`ocisign.envelope.certificates` returns the same
object for the same DER), so facts derived from one — its DER, its Go-rendered subject, its public
key, its OCSP/CRL endpoints — can be computed once and found again by the object's identity.
Looking a certificate up by identity avoids hashing it (``cryptography`` hashes the whole DER);
the memo keeps the certificate alive, so an identity is never reused while it is remembered.
Failures are not remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: each memo forgets everything when it reaches this many certificates
MEMO_LIMIT = 1024


class CertMemo(Generic[T]):
    """``memo(cert)`` is ``compute(cert)``, computed once per certificate object."""

    def __init__(self, compute: Callable[[Any], T], *, limit: int = MEMO_LIMIT) -> None:
        self._compute = compute
        self._limit = limit
        self._known: dict[int, tuple[Any, T]] = {}

    def __call__(self, cert: Any) -> T:
        """The remembered value for ``cert``, computing it the first time."""
        hit = self._known.get(id(cert))
        if hit is not None and hit[0] is cert:
            return hit[1]
        value = self._compute(cert)
        if len(self._known) >= self._limit:
            self._known.clear()
        self._known[id(cert)] = (cert, value)
        return value

    def remember(self, cert: Any, value: T) -> None:
        """Record ``value`` for ``cert`` (known without computing it)."""
        if len(self._known) >= self._limit:
            self._known.clear()
        self._known[id(cert)] = (cert, value)

    def clear(self) -> None:
        """Forget everything."""
        self._known.clear()
