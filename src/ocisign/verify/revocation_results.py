"""What revocation checking reports: one result per server, per certificate and for the chain.

:class:`ChainResult` holds the per-certificate :class:`CertResult` (each with the
:class:`ServerResult` of every OCSP responder or CRL distribution point asked) and computes
notation's final verdict (``revocationFinalResult``); the checking itself is
:mod:`ocisign.verify.revocation`.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from ocisign.lazy_dataclass import dataclass

__all__ = ["NON_REVOCABLE", "OK", "REVOKED", "UNKNOWN", "CertResult", "ChainResult", "ServerResult"]

OK = "ok"
REVOKED = "revoked"
UNKNOWN = "unknown"
NON_REVOCABLE = "nonRevocable"


@dataclass(frozen=True)
class ServerResult:
    """What one OCSP responder or CRL distribution point said."""

    method: str
    url: str
    result: str
    reason: str = ""

    def describe(self) -> str:
        """``OCSP http://…: reason``."""
        if not self.url:
            return self.reason or self.result
        return f"{self.method} {_display_url(self.url)}: {self.reason or self.result}"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"method": self.method, "url": _display_url(self.url), "result": self.result}
        if self.reason:
            out["reason"] = self.reason
        return out


class CertResult:
    """The revocation status of one certificate of a chain (immutable).

    A plain class (like :class:`ChainResult`): every ``verify`` makes them, and processing a
    dataclass costs about half a millisecond of start-up.
    """

    __slots__ = ("index", "method", "result", "servers", "subject")

    def __init__(self, index: int, subject: str, result: str, method: str,
                 servers: tuple[ServerResult, ...] = ()) -> None:
        #: position in the chain, 0 = leaf
        self.index = index
        #: the subject as Go prints it
        self.subject = subject
        #: ok | revoked | unknown | nonRevocable
        self.result = result
        #: OCSP | CRL | OCSPFallbackCRL | none | root
        self.method = method
        self.servers = servers

    def _fields(self) -> tuple[int, str, str, str, tuple[ServerResult, ...]]:
        return self.index, self.subject, self.result, self.method, self.servers

    def __repr__(self) -> str:
        return "CertResult(index={!r}, subject={!r}, result={!r}, method={!r}, servers={!r})".format(*self._fields())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CertResult):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def at(self, index: int) -> CertResult:
        """The same result for the certificate at ``index`` of another chain."""
        return CertResult(index, self.subject, self.result, self.method, self.servers)

    @property
    def reason(self) -> str:
        """One line explaining the result."""
        if self.method == "root":
            return "root certificate (never checked)"
        if self.result == NON_REVOCABLE:
            return "neither an OCSP nor a CRL revocation method"
        return "; ".join(s.describe() for s in self.servers) or self.result

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"index": self.index, "subject": self.subject, "result": self.result, "method": self.method,
                "reason": self.reason, "servers": [s.to_json() for s in self.servers]}


class ChainResult:
    """Per-certificate results for a chain, leaf first (immutable)."""

    __slots__ = ("certificates",)

    def __init__(self, certificates: tuple[CertResult, ...]) -> None:
        self.certificates = certificates

    def __repr__(self) -> str:
        return f"ChainResult(certificates={self.certificates!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChainResult):
            return NotImplemented
        return self.certificates == other.certificates

    def __hash__(self) -> int:
        return hash(self.certificates)

    def final(self) -> tuple[str, CertResult | None]:
        """notation's ``revocationFinalResult``: (ok | revoked | unknown, the certificate to blame)."""
        problem: CertResult | None = None
        revoked: CertResult | None = None
        for r in reversed(self.certificates):
            if r.result in (OK, NON_REVOCABLE):
                continue
            problem = r
            if r.result == REVOKED:
                revoked = r
        if revoked is not None:
            return REVOKED, revoked
        if problem is not None:
            return UNKNOWN, problem
        return OK, None

    @property
    def ok(self) -> bool:
        """True when no certificate is revoked or unknown."""
        return self.final()[0] == OK

    def message(self, role: str = "signing") -> str:
        """notation's message (``<role> certificate with subject "…" is revoked`` …) plus the reasons."""
        verdict, cert = self.final()
        if cert is None:
            return "no certificate of the chain is revoked"
        what = "is revoked" if verdict == REVOKED else "revocation status is unknown"
        return f"{role} certificate with subject {json.dumps(cert.subject, ensure_ascii=False)} {what} ({cert.reason})"

    def summary(self) -> str:
        """One line for a passing check: each certificate's status."""
        parts = []
        for r in self.certificates:
            how = r.method if r.method not in ("none", "root") else r.reason
            parts.append(f"#{r.index + 1} {r.result} ({how})")
        return "certificate chain revocation status: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """JSON form (``details`` of the revocation check)."""
        verdict, _ = self.final()
        return {"result": verdict, "certificates": [c.to_json() for c in self.certificates]}


def _display_url(url: str) -> str:
    """The URL without query string or user info (for messages)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        shown = f"{parts.scheme}://{host}{parts.path}"
    except ValueError:
        return "<malformed URL>"
    return shown if len(shown) <= 200 else shown[:200] + "…"
