"""The HTTP client for OCSP responders and CRL distribution points (:mod:`ocisign.verify.revocation`).

:class:`HTTPFetcher` sends one request at a time on :class:`ocisign.net.HTTPClient` (``http.client``,
imported on first use only):
plain ``http`` or ``https`` URLs (the checker itself only starts from ``http``, like notation),
redirects for GET only (at most :data:`MAX_REDIRECTS`, only to http/https), no proxies from the
environment, no credentials (URLs with user information are refused), only HTTP 200 accepted
(notation-core-go #239), bodies bounded by a limit and a hard wall-clock deadline per request
(the exchange runs in a daemon thread that is abandoned when the deadline passes, so neither a
silent nor a dribbling server can stall verification).

:data:`network_guard` is a test seam: tests set it to keep every request on loopback.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse

from ocisign.errors import OcisignError
from ocisign.net import HTTPClient, describe_network_error, read_bounded

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_REDIRECTS = 5
USER_AGENT = "ocisign"

#: test seam: called with each host before it is contacted; a returned string refuses the
#: request with that reason (tests keep the network on loopback with it)
network_guard: Callable[[str], str | None] | None = None


class RevocationError(OcisignError):
    """The revocation status of a certificate could not be established (one server's problem)."""


class HTTPFetcher:
    """A minimal HTTP client for OCSP responders and CRL distribution points.

    Every request has a hard wall-clock deadline (the exchange runs in a daemon thread that is
    abandoned when the deadline passes), reads at most ``limit`` bytes, accepts only HTTP 200,
    follows at most :data:`MAX_REDIRECTS` redirects for GET only and only to http/https URLs,
    never sends credentials and never uses proxies. Thread-safe.
    """

    def __init__(self) -> None:
        self._pool: HTTPClient | None = None
        self._lock = threading.Lock()

    def _manager(self) -> HTTPClient:
        with self._lock:
            if self._pool is None:
                self._pool = HTTPClient(maxsize=4)
            return self._pool

    def close(self) -> None:
        """Drop pooled connections."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def request(self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float, limit: int) -> bytes:
        """The body of a 200 answer to ``method url``; RevocationError for anything else."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["data"] = self._exchange(method, url, body, headers or {}, timeout, limit)
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc

        worker = threading.Thread(target=run, name="ocisign-revocation-http", daemon=True)
        worker.start()
        worker.join(timeout + 0.25)
        if worker.is_alive():
            raise RevocationError(f"request timed out after {timeout:g} s")
        if "error" in box:
            exc = box["error"]
            if isinstance(exc, RevocationError):
                raise exc
            raise RevocationError(_describe(exc)) from None
        data: bytes = box["data"]
        return data

    def _exchange(self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float,
                  limit: int) -> bytes:
        deadline = time.monotonic() + timeout
        pool = self._manager()
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme.lower() not in ("http", "https"):
                raise RevocationError(f"refusing to fetch a {parts.scheme or 'relative'} URL")
            if parts.username is not None or parts.password is not None:
                raise RevocationError("refusing a URL with user information (credentials are never sent)")
            host = parts.hostname
            if not host:
                raise RevocationError("URL has no host")
            guard = network_guard
            if guard is not None:
                refusal = guard(host)
                if refusal:
                    raise RevocationError(refusal)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RevocationError(f"request timed out after {timeout:g} s")
            hdrs = {"User-Agent": USER_AGENT, **headers}
            resp = pool.request(method, url, body=body, headers=hdrs, deadline=deadline)
            try:
                if resp.status in (301, 302, 303, 307, 308) and method == "GET":
                    location = resp.headers.get("Location")
                    if not location:
                        raise RevocationError(f"HTTP {resp.status} redirect without a Location")
                    url = urllib.parse.urljoin(url, location)
                    continue
                if resp.status != 200:
                    raise RevocationError(f"HTTP status {resp.status} (only 200 is accepted)")
                return read_bounded(resp, limit=limit, deadline=deadline, fail=RevocationError)
            finally:
                with contextlib.suppress(Exception):
                    resp.release()
        raise RevocationError(f"more than {MAX_REDIRECTS} redirects")


def _describe(exc: BaseException) -> str:
    """One line for a network exception."""
    return describe_network_error(exc, peer="server")
