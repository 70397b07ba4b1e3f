"""A distribution-spec client on urllib3: pooled, thread-safe, bounded, retrying, origin-safe.

* One ``PoolManager`` per client, ``maxsize`` above the copy concurrency; TLS verified by
  default (system CAs plus ``--ca-file``), ``--insecure`` skips verification, plain HTTP with
  ``--plain-http``/``--insecure-registry`` and, as notation and oras do, by default for
  ``localhost``, ``127.0.0.1`` and ``[::1]`` unless ``--ca-file``/``--insecure`` ask for TLS.
* Idempotent requests (GET, HEAD, PUT of a manifest, DELETE, and the body-less POST that opens
  an upload) are retried on connection errors, 408, 429 and 5xx: at most :data:`MAX_RETRIES`
  times, exponential backoff 0.25 s·2ⁿ ±10 % clamped to 0.2–3 s; ``Retry-After`` is honoured
  but capped at :data:`MAX_RETRY_AFTER`. A streamed blob body is never replayed blindly: the
  upload restarts from a fresh POST with a reopened source.
* A 401 re-authenticates once (new token, same request); a second 401 is an AuthError.
* ``Authorization`` only goes to the registry's own origin. Redirects (GET/HEAD only) to another
  origin are followed without it; an upload ``Location`` or a pagination ``Link`` on another
  origin (or a scheme downgrade) is refused.
* Reads are bounded: manifests 4 MiB, error bodies 64 KiB, token responses 1 MiB; a slow body
  is cut by per-read timeouts and an overall deadline.
* Uploads are monolithic POST→PUT with ``Content-Length`` streamed from the source and hashed on
  the fly (never a whole blob in memory); a 413 on the PUT falls back to chunked PATCH uploads.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

from ocisign.errors import AuthError, ContentError, NotFoundError, RegistryError
from ocisign.net import describe_network_error
from ocisign.oci.model import (
    ALL_MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    MT_ARTIFACT_MANIFEST,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_INDEX,
    MT_MANIFEST,
    Descriptor,
    descriptor_from_json,
    hasher_for,
    parse_json_object,
    validate_digest,
)
from ocisign.oci.streams import VerifyingReader
from ocisign.registry.auth import MAX_TOKEN_RESPONSE, Origin, RegistryAuth, repository_scope, safe_url
from ocisign.types import Credentials, RemoteOptions

if TYPE_CHECKING:
    import urllib3

#: every manifest type we can read, for Accept headers (2.8.2 answers 404 without an OCI type)
MANIFEST_ACCEPT = ", ".join([MT_MANIFEST, MT_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_ARTIFACT_MANIFEST])
MAX_RETRIES = 5
MAX_RETRY_AFTER = 3.0
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 64 * 1024
MAX_PAGES = 100
#: how many times a blob upload is restarted from a fresh POST
UPLOAD_ATTEMPTS = 3
#: chunk size for the chunked-upload fallback
CHUNK_SIZE = 8 << 20
READ_CHUNK = 1 << 20
#: how long a short leftover body may take to drain before its connection is closed instead
DRAIN_DEADLINE = 5.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "ocisign"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}


def _sleep(seconds: float) -> None:
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


def _error_summary(status: int, body: bytes) -> tuple[str, list[str]]:
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


def _status_phrase(status: int) -> str:
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


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class RegistryClient:
    """Distribution API calls against one registry host."""

    def __init__(
        self,
        host: str,
        options: RemoteOptions,
        credentials: Callable[[], Credentials | None] | None = None,
    ) -> None:
        import urllib3

        self.host = host
        self.options = options
        self.scheme = "http" if use_plain_http(host, options) else "https"
        self.base = f"{self.scheme}://{host}"
        self.origin = Origin.of(self.base)
        self._timeout = urllib3.Timeout(connect=min(10.0, options.timeout), read=options.timeout)
        self._deadline = max(60.0, options.timeout * 4)
        maxsize = max(4, options.concurrency + 2)
        pool_kw: dict[str, Any] = {"num_pools": 8, "maxsize": maxsize, "block": False, "blocksize": READ_CHUNK}
        if self.scheme == "https":
            pool_kw["ssl_context"] = self._ssl_context(options)
            if options.insecure:  # asked for explicitly; urllib3 need not warn on every request
                pool_kw["cert_reqs"] = "CERT_NONE"
                pool_kw["assert_hostname"] = False
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._pool = urllib3.PoolManager(retries=False, timeout=self._timeout, **pool_kw)

        def lookup() -> Credentials | None:
            if options.username is not None or options.password is not None:
                return Credentials(username=options.username or "", password=options.password or "")
            return credentials() if credentials else None

        self.auth = RegistryAuth(self.origin, lookup, self._token_fetch)
        self._mount_lock = threading.Lock()

    @staticmethod
    def _ssl_context(options: RemoteOptions) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if options.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif options.ca_file:
            try:
                ctx.load_verify_locations(cafile=options.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError(f"--ca-file {options.ca_file}: cannot load CA certificates: {exc}") from None
        return ctx

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()

    # --- low level ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of a registry path (``/v2/…``)."""
        return self.base + path

    def _same_origin(self, url: str) -> bool:
        return Origin.of(url) == self.origin

    def _token_fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Token endpoint request: no redirects, bounded body, retried on transient failures."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                resp = self._pool.urlopen(
                    method, url, body=body, headers={"User-Agent": USER_AGENT, **headers},
                    redirect=False, retries=False, preload_content=False, timeout=self._timeout,
                )
            except Exception as exc:
                if attempt < MAX_RETRIES and _transient(exc):
                    _sleep(backoff(attempt))
                    continue
                raise AuthError(f"token server {safe_url(url)}: {_describe(exc)}") from None
            if resp.status in RETRY_STATUSES and attempt < MAX_RETRIES:
                _drain(resp)
                _sleep(retry_after(resp.headers.get("Retry-After")) or backoff(attempt))
                continue
            try:
                data = self._read_bounded(resp, MAX_TOKEN_RESPONSE, what="token response")
            finally:
                resp.release_conn()
            return resp.status, dict(resp.headers), data
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
    ) -> urllib3.BaseHTTPResponse:
        """Send a request (body already in memory, so replayable) and return the open response.

        Handles auth (one re-authentication on 401), retries and redirects. Error statuses
        are returned, not raised; callers use :meth:`raise_for`. The caller must release the
        response (``read``/``drain``/``release_conn``).
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        attempt = 0
        redirects = 0
        auth_retried = False
        while True:
            hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
            sent_auth: str | None = None
            if self._same_origin(url):
                sent_auth = self.auth.authorization(scopes)
                if sent_auth:
                    hdrs["Authorization"] = sent_auth
            try:
                resp = self._pool.urlopen(
                    method, url, body=body, headers=hdrs, redirect=False, retries=False,
                    preload_content=False, timeout=self._timeout,
                )
            except Exception as exc:
                if retry and attempt < MAX_RETRIES and _transient(exc):
                    _sleep(backoff(attempt))
                    attempt += 1
                    continue
                raise RegistryError(f"{what or method} {self._display(url)}: {_describe(exc)}") from None
            status = resp.status
            if status == 401 and self._same_origin(url):
                challenge = resp.headers.getlist("WWW-Authenticate") if hasattr(resp.headers, "getlist") else []
                _drain(resp)
                if auth_retried:
                    raise AuthError(f"{what or method} {self._display(url)}: unauthorized")
                self.auth.on_unauthorized(challenge, scopes, sent_auth)
                auth_retried = True
                continue
            if status in RETRY_STATUSES and retry and attempt < MAX_RETRIES:
                wait = retry_after(resp.headers.get("Retry-After"))
                _drain(resp)
                _sleep(wait if wait is not None else backoff(attempt))
                attempt += 1
                continue
            if status in (301, 302, 303, 307, 308) and follow_redirects and method in ("GET", "HEAD"):
                location = resp.headers.get("Location")
                _drain(resp)
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
        if self._same_origin(url):
            return f"{self.host}{p.path}"
        return safe_url(url)

    def raise_for(self, resp: urllib3.BaseHTTPResponse, what: str, *, not_found: str | None = None) -> None:
        """Drain an error response and raise the matching error (NotFoundError for 404)."""
        status = resp.status
        try:
            body = self._read_bounded(resp, MAX_ERROR_BODY, what="error body", strict=False)
        except RegistryError:
            body = b""
        finally:
            resp.release_conn()
        detail, codes = _error_summary(status, body)
        if status == 400 and self.scheme == "http" and (not detail or "HTTPS" in detail):
            detail = (detail + "; " if detail else "") + (
                "the registry may speak HTTPS: plain HTTP is used for localhost/127.0.0.1/[::1] and with "
                "--plain-http; pass --ca-file or --insecure for TLS"
            )
        msg = f"{what}: {_status_phrase(status)}" + (f" ({detail})" if detail else "")
        if status == 404 and not_found is not None:
            raise NotFoundError(not_found)
        if status in (401, 403):
            raise AuthError(msg)
        if "MANIFEST_BLOB_UNKNOWN" in codes or ("MANIFEST_UNKNOWN" in codes and status == 400):
            raise ManifestBlobUnknownError(msg, status=status, codes=codes)
        raise RegistryHTTPError(msg, status=status, codes=codes)

    def _read_bounded(
        self, resp: urllib3.BaseHTTPResponse, limit: int, *, what: str, strict: bool = True
    ) -> bytes:
        """Read a whole small body: refuse more than ``limit`` bytes and bodies slower than the deadline."""
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            _drain(resp, close=True)
            if strict:
                raise ContentError(f"{what}: {declared} bytes exceeds the {limit}-byte limit")
            return b""
        buf = bytearray()
        deadline = time.monotonic() + self._deadline
        # read1: at most one socket read per call, so a trickling body (slowloris) meets the
        # deadline check below instead of blocking until a whole 1 MiB piece has arrived
        read = getattr(resp, "read1", None) or resp.read
        try:
            while True:
                chunk = read(min(READ_CHUNK, limit + 1 - len(buf)) or 1)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > limit:
                    _drain(resp, close=True)
                    if strict:
                        raise ContentError(f"{what}: more than {limit} bytes (limit)")
                    return bytes(buf[:limit])
                if time.monotonic() > deadline:
                    _drain(resp, close=True)
                    raise RegistryError(f"{what}: body too slow (over {self._deadline:.0f} s)")
        except Exception as exc:
            if isinstance(exc, (ContentError, RegistryError)):
                raise
            raise RegistryError(f"{what}: {_describe(exc)}") from None
        return bytes(buf)

    # --- API: ping, manifests -----------------------------------------------------------------
    def ping(self) -> None:
        """``GET /v2/``: reachability and credentials check (learns the auth scheme)."""
        resp = self.request("GET", "/v2/", scopes=[], what="ping")
        if resp.status != 200:
            self.raise_for(resp, f"registry {self.host}")
        _drain(resp)

    def get_manifest(
        self, repo: str, reference: str, *, max_size: int = MAX_MANIFEST_SIZE, accept: str = MANIFEST_ACCEPT
    ) -> tuple[Descriptor, bytes]:
        """Fetch a manifest by tag or digest; the body is hashed and checked against the reference.

        Returns the plain descriptor (media type from the response, digest of the bytes read).
        """
        what = f"{self.host}/{repo}:{reference}" if ":" not in reference else f"{self.host}/{repo}@{reference}"
        resp = self.request(
            "GET", f"/v2/{repo}/manifests/{reference}", scopes=[repository_scope(repo, "pull")],
            headers={"Accept": accept}, what="fetch manifest",
        )
        if resp.status != 200:
            self.raise_for(resp, f"fetch manifest {what}", not_found=f"{what}: not found")
        try:
            data = self._read_bounded(resp, max_size, what=f"manifest {what}")
        finally:
            resp.release_conn()
        is_digest = reference.startswith(("sha256:", "sha512:"))
        algo_digest = validate_digest(reference, where="reference") if is_digest else None
        if algo_digest:
            h = hasher_for(algo_digest)
            h.update(data)
            computed = f"{algo_digest.split(':', 1)[0]}:{h.hexdigest()}"
            if computed != algo_digest:
                raise ContentError(f"manifest {what}: content digest {computed} does not match the reference")
            digest = algo_digest
        else:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        header_digest = resp.headers.get("Docker-Content-Digest")
        if header_digest and header_digest.split(":", 1)[0] == digest.split(":", 1)[0] and header_digest != digest:
            raise ContentError(
                f"manifest {what}: registry says Docker-Content-Digest {header_digest} but the content is {digest}"
            )
        media_type = self._manifest_media_type(resp.headers.get("Content-Type"), data, what)
        return Descriptor(media_type=media_type, digest=digest, size=len(data)), data

    @staticmethod
    def _manifest_media_type(content_type: str | None, data: bytes, what: str) -> str:
        ct = _media_type(content_type)
        declared: object = None
        try:
            obj = parse_json_object(data, where=f"manifest {what}")
            declared = obj.get("mediaType")
        except ContentError:
            if ct not in ALL_MANIFEST_TYPES:
                raise
        if ct in ALL_MANIFEST_TYPES:
            if declared is not None and declared != ct:
                raise ContentError(f"manifest {what}: Content-Type {ct} differs from its mediaType {declared!r}")
            return ct
        if isinstance(declared, str) and declared in ALL_MANIFEST_TYPES:
            return declared
        raise ContentError(f"manifest {what}: unsupported manifest media type {ct or 'missing'!r}")

    def head_manifest(self, repo: str, reference: str) -> Descriptor | None:
        """HEAD a manifest (with the OCI Accept types): its descriptor, or None when absent."""
        resp = self.request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", scopes=[repository_scope(repo, "pull")],
            headers={"Accept": MANIFEST_ACCEPT}, what="check manifest",
        )
        if resp.status == 404:
            _drain(resp)
            return None
        if resp.status != 200:
            self.raise_for(resp, f"check manifest {self.host}/{repo}@{reference}")
        _drain(resp)
        digest = resp.headers.get("Docker-Content-Digest") or (reference if ":" in reference else "")
        length = resp.headers.get("Content-Length", "")
        try:
            return Descriptor(
                media_type=_media_type(resp.headers.get("Content-Type")) or "application/octet-stream",
                digest=validate_digest(digest, where="Docker-Content-Digest"),
                size=int(length) if length.isdigit() else 0,
            )
        except ContentError:
            return Descriptor(media_type="application/octet-stream", digest=reference, size=0)

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> Mapping[str, str]:
        """PUT a manifest by tag or digest; returns the response headers (``OCI-Subject``…)."""
        resp = self.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", scopes=[repository_scope(repo, "pull", "push")],
            headers={"Content-Type": media_type}, body=data, what="push manifest",
        )
        if resp.status not in (200, 201, 202):
            self.raise_for(resp, f"push manifest {self.host}/{repo}:{reference}")
        _drain(resp)
        expected = "sha256:" + hashlib.sha256(data).hexdigest()
        got = resp.headers.get("Docker-Content-Digest")
        if got and got.startswith("sha256:") and got != expected:
            raise ContentError(f"push manifest {self.host}/{repo}:{reference}: registry stored {got}, sent {expected}")
        return {k.lower(): v for k, v in resp.headers.items()}

    def delete_manifest(self, repo: str, digest: str) -> None:
        """DELETE a manifest by digest."""
        resp = self.request(
            "DELETE", f"/v2/{repo}/manifests/{digest}", scopes=[repository_scope(repo, "delete")],
            what="delete manifest",
        )
        if resp.status not in (200, 202, 204):
            self.raise_for(resp, f"delete {self.host}/{repo}@{digest}")
        _drain(resp)

    # --- API: blobs ---------------------------------------------------------------------------
    def head_blob(self, repo: str, digest: str) -> int | None:
        """Size of a blob the repository holds, or None."""
        resp = self.request(
            "HEAD", f"/v2/{repo}/blobs/{digest}", scopes=[repository_scope(repo, "pull")], what="check blob",
        )
        if resp.status == 404:
            _drain(resp)
            return None
        if resp.status != 200:
            self.raise_for(resp, f"check blob {self.host}/{repo}@{digest}")
        _drain(resp)
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else -1

    def get_blob(self, repo: str, desc: Descriptor, *, max_size: int | None = None) -> bytes:
        """A small blob, whole, digest and size verified."""
        limit = desc.size if max_size is None else min(desc.size, max_size)
        if desc.size > limit:
            raise ContentError(f"blob {desc.digest}: {desc.size} bytes exceeds the {limit}-byte limit")
        with self.open_blob(repo, desc) as fh:
            data = fh.read()
        return data

    @contextlib.contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[IO[bytes]]:
        """Stream a blob (redirects followed without credentials off-origin), verified at EOF."""
        resp = self.request(
            "GET", f"/v2/{repo}/blobs/{desc.digest}", scopes=[repository_scope(repo, "pull")], what="fetch blob",
        )
        if resp.status != 200:
            self.raise_for(resp, f"fetch blob {self.host}/{repo}@{desc.digest}",
                           not_found=f"{self.host}/{repo}: blob {desc.digest} not found")
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) != desc.size:
            _drain(resp, close=True)
            raise ContentError(f"blob {desc.digest}: registry sends {declared} bytes, descriptor says {desc.size}")
        raw = _ResponseStream(resp, f"fetch blob {desc.digest} from {self.host}/{repo}")
        reader = VerifyingReader(raw, desc, where=f"{self.host}/{repo}: blob")  # type: ignore[arg-type]
        try:
            yield reader  # type: ignore[misc]
        finally:
            _drain(resp, close=not raw.at_eof)

    def _upload_location(self, resp: urllib3.BaseHTTPResponse, request_url: str, what: str) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: registry sent no upload Location")
        url = urllib.parse.urljoin(request_url, location)
        if not self._same_origin(url):
            raise RegistryError(
                f"{what}: refusing upload Location on another origin ({Origin.of(url).scheme}://"
                f"{Origin.of(url).host}:{Origin.of(url).port}); credentials are not sent there"
            )
        return url

    def start_upload(self, repo: str, *, mount: tuple[str, str] | None = None) -> tuple[str | None, bool]:
        """POST an upload session; with ``mount=(digest, from_repo)`` try a cross-repo mount.

        Returns (upload URL, mounted). A refused mount (401/403) retries without mounting.
        """
        scopes = [repository_scope(repo, "pull", "push")]
        path = f"/v2/{repo}/blobs/uploads/"
        if mount:
            scopes.append(repository_scope(mount[1], "pull"))
            path += "?" + urllib.parse.urlencode({"mount": mount[0], "from": mount[1]})
        what = f"upload to {self.host}/{repo}"
        try:
            resp = self.request("POST", path, scopes=scopes, body=b"", headers={"Content-Length": "0"}, what=what)
        except AuthError:
            if mount:
                return self.start_upload(repo)
            raise
        if mount and resp.status == 201:
            _drain(resp)
            return None, True
        if resp.status in (401, 403) and mount:
            _drain(resp)
            return self.start_upload(repo)
        if resp.status != 202:
            self.raise_for(resp, what)
        _drain(resp)
        return self._upload_location(resp, self.url(path), what), False

    def cancel_upload(self, url: str) -> None:
        """DELETE an upload session (best effort)."""
        with contextlib.suppress(Exception):
            resp = self.request("DELETE", url, scopes=[], retry=False, what="cancel upload")
            _drain(resp)

    def upload_blob(
        self,
        repo: str,
        desc: Descriptor,
        opener: Callable[[], AbstractContextManager[IO[bytes]]],
        *,
        mount_from: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
        verify_source: bool = True,
    ) -> str:
        """Upload a blob: ``mounted`` or ``uploaded``. Restarts from a fresh POST on failure.

        ``opener`` opens the source afresh for each attempt. ``verify_source`` hashes what is
        sent and refuses to finish an upload whose content does not match ``desc``.
        """
        what = f"upload blob {desc.digest} to {self.host}/{repo}"
        scopes = [repository_scope(repo, "pull", "push")]
        last: Exception | None = None
        auth_retried = False
        attempt = 0
        while attempt < UPLOAD_ATTEMPTS:
            mount = (desc.digest, mount_from) if mount_from and mount_from != repo else None
            location, mounted = self.start_upload(repo, mount=mount)
            if mounted:
                return "mounted"
            assert location is not None
            sent = 0

            def count(n: int) -> None:
                nonlocal sent
                sent += n
                if on_bytes:
                    on_bytes(n)

            put_url = _add_query(location, "digest", desc.digest)
            hdrs = {
                "User-Agent": USER_AGENT,
                "Content-Type": "application/octet-stream",
                "Content-Length": str(desc.size),
            }
            sent_auth = self.auth.authorization(scopes)
            if sent_auth:
                hdrs["Authorization"] = sent_auth
            try:
                with opener() as src:
                    body = _hashing_chunks(src, desc, count if on_bytes else None, verify=verify_source)
                    resp = self._pool.urlopen(
                        "PUT", put_url, body=body, headers=hdrs, redirect=False, retries=False,
                        preload_content=False, timeout=self._timeout, chunked=False,
                    )
            except ContentError:
                self.cancel_upload(location)
                raise
            except Exception as exc:
                if on_bytes and sent:
                    on_bytes(-sent)
                if isinstance(exc, OSError) and not _transient(exc):
                    raise RegistryError(f"{what}: cannot read the source: {exc}") from None
                last = RegistryError(f"{what}: {_describe(exc)}")
                if not _transient(exc):
                    raise last from None
                attempt += 1
                if attempt < UPLOAD_ATTEMPTS:
                    _sleep(backoff(attempt - 1))
                continue
            status = resp.status
            if status in (201, 204, 200):
                _drain(resp)
                got = resp.headers.get("Docker-Content-Digest")
                if got and got.split(":", 1)[0] == desc.digest.split(":", 1)[0] and got != desc.digest:
                    raise ContentError(f"{what}: registry stored {got}")
                return "uploaded"
            if on_bytes and sent:
                on_bytes(-sent)
            if status == 401 and not auth_retried:
                challenge = resp.headers.getlist("WWW-Authenticate") if hasattr(resp.headers, "getlist") else []
                _drain(resp)
                self.auth.on_unauthorized(challenge, scopes, sent_auth)
                auth_retried = True
                continue
            if status == 413:
                _drain(resp)
                self.cancel_upload(location)
                return self.upload_blob_chunked(repo, desc, opener, on_bytes=on_bytes, verify_source=verify_source)
            if status in RETRY_STATUSES:
                wait = retry_after(resp.headers.get("Retry-After"))
                last_resp_status = status
                _drain(resp)
                last = RegistryHTTPError(f"{what}: {_status_phrase(last_resp_status)}", status=status)
                attempt += 1
                if attempt < UPLOAD_ATTEMPTS:
                    _sleep(wait if wait is not None else backoff(attempt - 1))
                continue
            self.raise_for(resp, what)
        assert last is not None
        raise last

    def upload_blob_chunked(
        self,
        repo: str,
        desc: Descriptor,
        opener: Callable[[], AbstractContextManager[IO[bytes]]],
        *,
        on_bytes: Callable[[int], None] | None = None,
        verify_source: bool = True,
        chunk_size: int | None = None,
    ) -> str:
        """Chunked upload: POST, PATCH each chunk to the newest Location, PUT ``?digest=``."""
        what = f"chunked upload of {desc.digest} to {self.host}/{repo}"
        scopes = [repository_scope(repo, "pull", "push")]
        chunk_size = chunk_size or CHUNK_SIZE
        location, _ = self.start_upload(repo)
        assert location is not None
        h = hasher_for(desc.digest)
        offset = 0
        with opener() as src:
            while offset < desc.size:
                piece = src.read(min(chunk_size, desc.size - offset))
                if not piece:
                    raise ContentError(f"blob {desc.digest}: source ended after {offset} of {desc.size} bytes")
                h.update(piece)
                end = offset + len(piece) - 1
                resp = self.request(
                    "PATCH", location, scopes=scopes, body=piece, retry=False, what=what,
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end}",
                             "Content-Length": str(len(piece))},
                )
                if resp.status != 202:
                    self.raise_for(resp, what)
                _drain(resp)
                location = self._upload_location(resp, location, what)
                offset += len(piece)
                if on_bytes:
                    on_bytes(len(piece))
            if src.read(1):
                raise ContentError(f"blob {desc.digest}: source is longer than {desc.size} bytes")
        if verify_source and f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}" != desc.digest:
            self.cancel_upload(location)
            raise ContentError(f"blob {desc.digest}: source content does not match its digest")
        resp = self.request(
            "PUT", _add_query(location, "digest", desc.digest), scopes=scopes, body=b"",
            headers={"Content-Length": "0", "Content-Type": "application/octet-stream"}, retry=False, what=what,
        )
        if resp.status not in (201, 204):
            self.raise_for(resp, what)
        _drain(resp)
        return "uploaded"

    # --- API: referrers -----------------------------------------------------------------------
    def referrers_api(self, repo: str, digest: str, artifact_type: str | None = None) -> list[Descriptor] | None:
        """Referrers through ``GET /v2/<repo>/referrers/<digest>``; None when the API is missing.

        Follows ``Link: <…>; rel="next"`` on the same origin only, at most :data:`MAX_PAGES`
        pages. NotFoundError when the repository does not exist (``NAME_UNKNOWN``).
        """
        path = f"/v2/{repo}/referrers/{digest}"
        if artifact_type:
            path += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
        url = self.url(path)
        out: list[Descriptor] = []
        seen_urls: set[str] = set()
        first = True
        for _page in range(MAX_PAGES):
            seen_urls.add(url)
            resp = self.request("GET", url, scopes=[repository_scope(repo, "pull")],
                                headers={"Accept": MT_INDEX}, what="list referrers")
            if resp.status == 404 and first:
                body = self._read_bounded(resp, MAX_ERROR_BODY, what="referrers", strict=False)
                resp.release_conn()
                _, codes = _error_summary(404, body)
                if "NAME_UNKNOWN" in codes:
                    raise NotFoundError(f"repository {self.host}/{repo} not found")
                return None
            if resp.status != 200:
                self.raise_for(resp, f"list referrers of {digest} in {self.host}/{repo}")
            if _media_type(resp.headers.get("Content-Type")) != MT_INDEX:
                _drain(resp)
                if first:
                    return None
                raise ContentError(f"referrers of {digest}: page is not an image index")
            try:
                data = self._read_bounded(resp, MAX_MANIFEST_SIZE, what=f"referrers of {digest}")
            finally:
                resp.release_conn()
            obj = parse_json_object(data, where=f"referrers of {digest}")
            if obj.get("mediaType", MT_INDEX) != MT_INDEX:
                raise ContentError(f"referrers of {digest}: response mediaType {obj.get('mediaType')!r} is not "
                                   "an image index")
            manifests = obj.get("manifests")
            if not isinstance(manifests, list):
                raise ContentError(f"referrers of {digest}: manifests must be a list")
            filtered = "artifacttype" in resp.headers.get("OCI-Filters-Applied", "").lower()
            for i, entry in enumerate(manifests):
                d = descriptor_from_json(entry, where=f"referrers of {digest}.manifests[{i}]")
                if artifact_type and not filtered and d.artifact_type != artifact_type:
                    continue
                out.append(d)
            first = False
            nxt = _next_link(resp.headers.get("Link"))
            if not nxt:
                return out
            nxt_url = urllib.parse.urljoin(url, nxt)
            if not self._same_origin(nxt_url):
                raise RegistryError(f"list referrers of {digest}: refusing pagination Link to another origin")
            if nxt_url in seen_urls:
                raise RegistryError(f"list referrers of {digest}: pagination Link loops")
            url = nxt_url
        raise RegistryError(f"list referrers of {digest}: more than {MAX_PAGES} pages")

    def list_tags(self, repo: str) -> list[str]:
        """Tags of a repository (one page; used by tests and diagnostics)."""
        resp = self.request("GET", f"/v2/{repo}/tags/list", scopes=[repository_scope(repo, "pull")], what="list tags")
        if resp.status == 404:
            _drain(resp)
            return []
        if resp.status != 200:
            self.raise_for(resp, f"list tags of {self.host}/{repo}")
        try:
            data = self._read_bounded(resp, MAX_MANIFEST_SIZE, what="tag list")
        finally:
            resp.release_conn()
        tags = parse_json_object(data, where="tag list").get("tags") or []
        return [t for t in tags if isinstance(t, str)]


class _ResponseStream(io.RawIOBase):
    """A urllib3 response as a raw stream; network errors become RegistryError."""

    def __init__(self, resp: urllib3.BaseHTTPResponse, what: str) -> None:
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
            raise RegistryError(f"{self._what}: {_describe(exc)}") from None
        if not n:
            self.at_eof = True
        return n

    def close(self) -> None:
        """The response is released by :meth:`RegistryClient.open_blob`."""
        super().close()


def _hashing_chunks(
    src: IO[bytes], desc: Descriptor, on_bytes: Callable[[int], None] | None, *, verify: bool
) -> Iterator[memoryview | bytes]:
    """Yield the source in 1 MiB pieces while hashing it.

    One piece is held back, so a size or digest mismatch raises ContentError before the body
    is complete and the registry never commits wrong content. Two buffers alternate, so a
    yielded piece stays intact until the HTTP layer has sent it.
    """
    h = hasher_for(desc.digest) if verify else None
    readinto = getattr(src, "readinto", None)
    bufs = (bytearray(READ_CHUNK), bytearray(READ_CHUNK))
    cur = 0
    total = 0
    pending: memoryview | bytes | None = None
    while True:
        if readinto is not None:
            mv = memoryview(bufs[cur])
            n = readinto(mv) or 0
            piece: memoryview | bytes = mv[:n]
            cur ^= 1
        else:
            piece = src.read(READ_CHUNK)
            n = len(piece)
        if not n:
            break
        total += n
        if total > desc.size:
            raise ContentError(f"blob {desc.digest}: source is longer than {desc.size} bytes")
        if h is not None:
            h.update(piece)
        if pending is not None:
            yield pending
            if on_bytes:
                on_bytes(len(pending))
        pending = piece
    if total != desc.size:
        raise ContentError(f"blob {desc.digest}: source has {total} bytes, descriptor says {desc.size}")
    if h is not None and f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}" != desc.digest:
        raise ContentError(f"blob {desc.digest}: source content does not match its digest")
    if pending is not None:
        yield pending
        if on_bytes:
            on_bytes(len(pending))


def _add_query(url: str, key: str, value: str) -> str:
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{sep}{urllib.parse.urlencode({key: value})}"


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        part = part.strip()
        if part.startswith("<") and ">" in part:
            target, _, params = part[1:].partition(">")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return target
    return None


def _drain(resp: Any, *, close: bool = False) -> None:
    """Release a response's connection: a short known-length body is read so the connection is
    reused; anything else (unknown length, large or endless bodies) closes the connection."""
    try:
        remaining = getattr(resp, "length_remaining", None)
        if not close and remaining is not None and remaining <= MAX_ERROR_BODY:
            # one socket read per call and a deadline: a trickled body is cut, not waited for
            read = getattr(resp, "read1", None) or resp.read
            deadline = time.monotonic() + DRAIN_DEADLINE
            while read(READ_CHUNK):
                if time.monotonic() > deadline:
                    resp.close()
                    break
            resp.release_conn()
            return
        resp.close()
        resp.release_conn()
    except Exception:
        with contextlib.suppress(Exception):
            resp.close()


def _transient(exc: BaseException) -> bool:
    """Connection-level failures worth retrying (not TLS verification failures)."""
    import urllib3.exceptions as ue

    if isinstance(exc, (ue.SSLError, ue.NewConnectionError)):
        return False  # TLS verification failures and refused connections do not heal by retrying
    if isinstance(exc, ue.MaxRetryError):
        return _transient(exc.reason) if exc.reason else True
    return isinstance(exc, (ue.HTTPError, ConnectionError, TimeoutError))


def _describe(exc: BaseException) -> str:
    """One line for a network failure talking to a registry."""
    text = describe_network_error(exc, peer="registry")
    if text.startswith("TLS error"):
        text += "; use --ca-file to trust its CA, or --insecure"
    return text
