"""The registry transport: pooled HTTP to one distribution-spec registry, on :mod:`ocisign.net`
(the standard library's ``http.client``).

:class:`RegistryTransport` owns everything below the API endpoints
(:mod:`ocisign.registry.client` builds those on it):

* One :class:`ocisign.net.HTTPClient` per client: keep-alive connections per origin, as many
  idle ones kept as the copy runs uploads at once (plus two), connect timeout
  ``min(10 s, --timeout)``, read timeout ``--timeout``; TLS verified by default (system CAs
  plus ``--ca-file``), ``--insecure`` skips verification, plain HTTP with
  ``--plain-http``/``--insecure-registry`` and, as notation and oras do, by default for
  ``localhost``, ``127.0.0.1`` and ``[::1]`` unless ``--ca-file``/``--insecure`` ask for TLS.
* Idempotent requests (GET, HEAD, PUT of a manifest, DELETE, and the body-less POST that opens
  an upload) are retried on connection errors, 408, 429 and 5xx: at most :data:`MAX_RETRIES`
  times, exponential backoff 0.25 s·2ⁿ ±10 % clamped to 0.2–3 s; ``Retry-After`` is honoured
  but capped at :data:`MAX_RETRY_AFTER`. Streamed bodies (:meth:`RegistryTransport.send_stream`)
  are never replayed; the caller restarts the whole upload.
* A 401 re-authenticates once (new token, same request); a second 401 is an AuthError.
* ``Authorization`` only goes to the registry's own origin. Redirects (GET/HEAD only) to another
  origin are followed without it; a scheme downgrade is refused.
* Reads are bounded (:func:`ocisign.net.read_bounded`): error bodies 64 KiB, token responses
  1 MiB, callers pass their own limits; a slow body is cut by per-read timeouts and an overall
  deadline; leftover bodies are drained briefly or the connection is closed (:func:`drain`).
* Error statuses become :class:`RegistryHTTPError`/AuthError/NotFoundError
  (:meth:`RegistryTransport.raise_for`); network failures become one-line RegistryErrors.
"""

from __future__ import annotations

import contextlib
import io
import time
import urllib.parse

from ocisign.errors import AuthError, ContentError, NotFoundError, RegistryError
from ocisign.net import HTTPClient, describe_network_error, is_tls_error, is_transient, read_bounded, tls_context
from ocisign.oci.model import parse_json_object
from ocisign.registry.auth import MAX_TOKEN_RESPONSE, Origin, RegistryAuth, safe_url
from ocisign.types import Credentials

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from ocisign.net import Response
    from ocisign.types import RemoteOptions

MAX_RETRIES = 5
MAX_RETRY_AFTER = 3.0
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 64 * 1024
READ_CHUNK = 1 << 20
#: how long a short leftover body may take to drain before its connection is closed instead
DRAIN_DEADLINE = 5.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "ocisign"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


def _sleep(seconds: float) -> None:
    """The retry wait (a test seam)."""
    time.sleep(seconds)


def backoff(attempt: int) -> float:
    """Delay before retry ``attempt`` (0-based): 0.25 s·2ⁿ ±10 %, clamped to 0.2–3 s."""
    import random

    base = 0.25 * float(2**attempt)
    return float(min(3.0, max(0.2, base * random.uniform(0.9, 1.1))))


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), capped; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(MAX_RETRY_AFTER, float(int(value)))
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    import datetime as dt

    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    delta = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return min(MAX_RETRY_AFTER, max(0.0, delta))


def host_hostname(host: str) -> str:
    """The host name part of ``host[:port]`` (brackets kept for IPv6 literals)."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.0.0.1`` or ``[::1]`` with any port (plain HTTP by default)."""
    import ipaddress

    name = host_hostname(host).lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def use_plain_http(host: str, options: RemoteOptions) -> bool:
    """Whether ``host`` is reached over plain HTTP with ``options``."""
    if options.plain_http:
        return True
    if options.ca_file or options.insecure:
        return False
    return is_loopback_host(host)


class RegistryHTTPError(RegistryError):
    """A registry answered with an error status; ``status`` and ``codes`` say which."""

    def __init__(self, message: str, *, status: int, codes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = tuple(codes)


class ManifestBlobUnknownError(RegistryHTTPError):
    """A manifest PUT was refused because a referenced blob or child manifest is missing."""


def error_summary(status: int, body: bytes) -> tuple[str, list[str]]:
    """The ``errors`` of a distribution-spec error body in one line, and their codes."""
    codes: list[str] = []
    parts: list[str] = []
    try:
        obj = parse_json_object(body, where="error body") if body else {}
        for err in obj.get("errors") or []:
            if isinstance(err, dict):
                code = err.get("code")
                msg = err.get("message")
                if isinstance(code, str):
                    codes.append(code)
                parts.append(" ".join(str(x) for x in (code, msg) if isinstance(x, str)))
    except ContentError:
        first = body[:200].decode("utf-8", "replace").strip().splitlines()
        if first and first[0].isprintable():
            parts.append(first[0])
    text = "; ".join(p for p in parts if p)[:300]
    return text, codes


def status_phrase(status: int) -> str:
    """A short phrase for an HTTP status (``not found``, ``HTTP 418``)."""
    return {
        400: "bad request",
        401: "unauthorized",
        403: "denied",
        404: "not found",
        405: "method not allowed",
        408: "request timeout",
        413: "request too large",
        416: "range not satisfiable",
        429: "too many requests",
        500: "internal server error",
        502: "bad gateway",
        503: "service unavailable",
        504: "gateway timeout",
    }.get(status, f"HTTP {status}")


def media_type_of(value: str | None) -> str:
    """The bare, lower-cased media type of a ``Content-Type`` header value."""
    return (value or "").split(";", 1)[0].strip().lower()


class RegistryTransport:
    """Pooled HTTP to one registry host: auth, retries, redirects, error mapping, bounded reads."""

    def __init__(
        self,
        host: str,
        options: RemoteOptions,
        credentials: Callable[[], Credentials | None] | None = None,
    ) -> None:
        self.host = host
        self.options = options
        self.scheme = "http" if use_plain_http(host, options) else "https"
        self.base = f"{self.scheme}://{host}"
        self.origin = Origin.of(self.base)
        #: the overall deadline of reading one (small) response body
        self._deadline = max(60.0, options.timeout * 4)
        self._http = HTTPClient(
            connect_timeout=min(10.0, options.timeout), read_timeout=options.timeout,
            maxsize=max(4, options.concurrency + 2),
            ssl_context=self._ssl_context(options) if self.scheme == "https" else None,
        )

        def lookup() -> Credentials | None:
            if options.username is not None or options.password is not None:
                return Credentials(username=options.username or "", password=options.password or "")
            return credentials() if credentials else None

        self.auth = RegistryAuth(self.origin, lookup, self._token_fetch)

    @staticmethod
    def _ssl_context(options: RemoteOptions) -> ssl.SSLContext:
        try:
            return tls_context(ca_file=options.ca_file, insecure=options.insecure)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise RegistryError(f"--ca-file {options.ca_file}: cannot load CA certificates: {exc}") from None

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    # --- low level ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of a registry path (``/v2/…``)."""
        return self.base + path

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` is on the registry's own origin (scheme, host and port)."""
        return Origin.of(url) == self.origin

    def _token_fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Token endpoint request: no redirects, bounded body, retried on transient failures."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                resp = self._http.request(method, url, body=body, headers={"User-Agent": USER_AGENT, **headers})
            except Exception as exc:
                if attempt < MAX_RETRIES and transient(exc):
                    self.pause(backoff(attempt))
                    continue
                raise AuthError(f"token server {safe_url(url)}: {describe(exc)}") from None
            if resp.status in RETRY_STATUSES and attempt < MAX_RETRIES:
                drain(resp)
                self.pause(retry_after(resp.headers.get("Retry-After")) or backoff(attempt))
                continue
            try:
                data = self._read_bounded(resp, MAX_TOKEN_RESPONSE, what="token response")
            finally:
                resp.release()
            return resp.status, dict(resp.headers.items()), data
        raise AuthError(f"token server {safe_url(url)}: too many retries")  # pragma: no cover

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        follow_redirects: bool = True,
        retry: bool = True,
        what: str = "",
    ) -> Response:
        """Send a request (body already in memory, so replayable) and return the open response.

        Handles auth (one re-authentication on 401), retries and redirects. Error statuses
        are returned, not raised; callers use :meth:`raise_for`. The caller must release the
        response (:func:`drain`, or read it and ``release()``).
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        attempt = 0
        redirects = 0
        auth_retried = False
        while True:
            hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
            sent_auth: str | None = None
            if self.same_origin(url):
                sent_auth = self.auth.authorization(scopes)
                if sent_auth:
                    hdrs["Authorization"] = sent_auth
            try:
                resp = self._http.request(method, url, body=body, headers=hdrs)
            except Exception as exc:
                if retry and attempt < MAX_RETRIES and transient(exc):
                    self.pause(backoff(attempt))
                    attempt += 1
                    continue
                raise RegistryError(f"{what or method} {self._display(url)}: {describe(exc)}") from None
            status = resp.status
            if status == 401 and self.same_origin(url):
                if auth_retried:
                    drain(resp)
                    raise AuthError(f"{what or method} {self._display(url)}: unauthorized")
                self.reauthenticate(resp, scopes, sent_auth)
                auth_retried = True
                continue
            if status in RETRY_STATUSES and retry and attempt < MAX_RETRIES:
                wait = retry_after(resp.headers.get("Retry-After"))
                drain(resp)
                self.pause(wait if wait is not None else backoff(attempt))
                attempt += 1
                continue
            if status in (301, 302, 303, 307, 308) and follow_redirects and method in ("GET", "HEAD"):
                location = resp.headers.get("Location")
                drain(resp)
                if not location or redirects >= MAX_REDIRECTS:
                    raise RegistryError(f"{what or method} {self._display(url)}: too many or empty redirects")
                new_url = urllib.parse.urljoin(url, location)
                new = Origin.of(new_url)
                if new.scheme not in ("http", "https"):
                    raise RegistryError(f"{what or method} {self._display(url)}: refusing redirect to {new.scheme}")
                if self.origin.scheme == "https" and new.scheme == "http":
                    raise RegistryError(f"{what or method} {self._display(url)}: refusing redirect to plain http")
                url = new_url
                redirects += 1
                continue
            return resp

    def _display(self, url: str) -> str:
        """URL for messages: path only for the registry, no query (upload state, signatures)."""
        p = urllib.parse.urlsplit(url)
        if self.same_origin(url):
            return f"{self.host}{p.path}"
        return safe_url(url)

    def raise_for(self, resp: Response, what: str, *, not_found: str | None = None) -> None:
        """Drain an error response and raise the matching error (NotFoundError for 404)."""
        status = resp.status
        try:
            body = self._read_bounded(resp, MAX_ERROR_BODY, what="error body", strict=False)
        except RegistryError:
            body = b""
        finally:
            resp.release()
        detail, codes = error_summary(status, body)
        if status == 400 and self.scheme == "http" and (not detail or "HTTPS" in detail):
            detail = (detail + "; " if detail else "") + (
                "the registry may speak HTTPS: plain HTTP is used for localhost/127.0.0.1/[::1] and with "
                "--plain-http; pass --ca-file or --insecure for TLS"
            )
        msg = f"{what}: {status_phrase(status)}" + (f" ({detail})" if detail else "")
        if status == 404 and not_found is not None:
            raise NotFoundError(not_found)
        if status in (401, 403):
            raise AuthError(msg)
        if "MANIFEST_BLOB_UNKNOWN" in codes or ("MANIFEST_UNKNOWN" in codes and status == 400):
            raise ManifestBlobUnknownError(msg, status=status, codes=codes)
        raise RegistryHTTPError(msg, status=status, codes=codes)

    def _read_bounded(
        self, resp: Response, limit: int, *, what: str, strict: bool = True
    ) -> bytes:
        """Read a whole small body: more than ``limit`` bytes is a ContentError (``strict``) or cut
        to ``limit``; a body slower than the client's deadline is a RegistryError."""
        try:
            return read_bounded(
                resp, limit=limit, deadline=time.monotonic() + self._deadline, truncate=not strict,
                fail=lambda why: ContentError(f"{what}: {why}"),
                slow=lambda _why: RegistryError(f"{what}: body too slow (over {self._deadline:.0f} s)"),
                on_abort=lambda: drain(resp, close=True),
            )
        except (ContentError, RegistryError):
            raise
        except Exception as exc:
            raise RegistryError(f"{what}: {describe(exc)}") from None

    def send_stream(
        self, method: str, url: str, body: Iterable[bytes | memoryview], *, headers: Mapping[str, str],
        scopes: Sequence[str],
    ) -> tuple[Response, str | None]:
        """Send one request whose body is streamed (so never replayed): no retry, no redirect;
        ``Authorization`` only on the registry's own origin. Returns the open response and the
        authorization sent (for :meth:`reauthenticate`); network errors propagate unchanged."""
        hdrs = {"User-Agent": USER_AGENT, **headers}
        sent_auth = self.auth.authorization(scopes) if self.same_origin(url) else None
        if sent_auth:
            hdrs["Authorization"] = sent_auth
        resp = self._http.request(method, url, body=body, headers=hdrs)
        return resp, sent_auth

    def reauthenticate(self, resp: Response, scopes: Sequence[str], sent_auth: str | None) -> None:
        """After a 401: release the response and let the auth state learn from its challenge."""
        challenge = resp.headers.get_all("WWW-Authenticate") or []
        drain(resp)
        self.auth.on_unauthorized(challenge, scopes, sent_auth)

    @staticmethod
    def pause(seconds: float) -> None:
        """Wait before a retry (tests replace the module's ``_sleep`` to record waits)."""
        _sleep(seconds)


class ResponseStream(io.RawIOBase):
    """A response body as a raw stream; network errors become RegistryError."""

    def __init__(self, resp: Response, what: str) -> None:
        super().__init__()
        self._resp = resp
        self._what = what
        self.at_eof = False

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` from the response body."""
        try:
            n = self._resp.readinto(buffer)
        except Exception as exc:
            raise RegistryError(f"{self._what}: {describe(exc)}") from None
        if not n:
            self.at_eof = True
        return n

    def close(self) -> None:
        """The response is released by the caller (:meth:`ocisign.registry.client.RegistryClient.open_blob`)."""
        super().close()


def drain(resp: Response, *, close: bool = False) -> None:
    """Release a response's connection: a short known-length body is read so the connection is
    reused; anything else (unknown length, large or endless bodies) closes the connection."""
    try:
        remaining = resp.length_remaining
        if not close and remaining is not None and remaining <= MAX_ERROR_BODY:
            # one socket read per call and a deadline: a trickled body is cut, not waited for
            deadline = time.monotonic() + DRAIN_DEADLINE
            while resp.read1(READ_CHUNK):
                if time.monotonic() > deadline:
                    resp.close()
                    return
            resp.release()
            return
        resp.close()
    except Exception:
        with contextlib.suppress(Exception):
            resp.close()


def transient(exc: BaseException) -> bool:
    """Connection-level failures worth retrying (not TLS failures, refused connections or
    unresolvable names: :func:`ocisign.net.is_transient`)."""
    return is_transient(exc)


def describe(exc: BaseException) -> str:
    """One line for a network failure talking to a registry."""
    text = describe_network_error(exc, peer="registry")
    if is_tls_error(exc):
        text += "; use --ca-file to trust its CA, or --insecure"
    return text
