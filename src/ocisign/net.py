"""The one owner of HTTP plumbing for every urllib3 client (registry, OCSP/CRL, TSA).

* :func:`pool_manager` -- the urllib3 ``PoolManager`` set-up: urllib3 retries off (each client
  decides what to retry), timeouts, pool sizes, TLS (system CAs, an extra CA file, or no
  verification when asked for explicitly).
* :func:`read_bounded` -- a whole small response body, at most ``limit`` bytes, before a
  wall-clock deadline, one socket read at a time (a trickling body meets the deadline).
* :func:`describe_network_error` / :func:`is_timeout` -- a network failure in one readable line.

urllib3 and ssl are imported only when a pool is built or a failure or response is handled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import urllib3


def tls_context(*, ca_file: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client TLS context: system CAs (plus ``ca_file``), or no verification with ``insecure``.

    ``OSError``/``ssl.SSLError`` from loading ``ca_file`` propagate; callers name the flag.
    """
    import ssl

    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def pool_manager(
    *,
    timeout: urllib3.Timeout | None = None,
    maxsize: int = 4,
    blocksize: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
    insecure: bool = False,
) -> urllib3.PoolManager:
    """The urllib3 pool every client uses: urllib3's own retries off, up to 8 hosts of
    ``maxsize`` non-blocking connections each, optional default ``timeout`` and read
    ``blocksize``, and the TLS context for https (``insecure`` also silences urllib3's
    per-request warning, since the user asked for it)."""
    import urllib3

    kw: dict[str, Any] = {"num_pools": 8, "maxsize": maxsize, "block": False}
    if timeout is not None:
        kw["timeout"] = timeout
    if blocksize is not None:
        kw["blocksize"] = blocksize
    if ssl_context is not None:
        kw["ssl_context"] = ssl_context
    if insecure:
        kw["cert_reqs"] = "CERT_NONE"
        kw["assert_hostname"] = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return urllib3.PoolManager(retries=False, **kw)


def is_timeout(exc: BaseException) -> bool:
    """True for connect/read timeouts (also when wrapped in MaxRetryError)."""
    import urllib3.exceptions as ue

    if isinstance(exc, ue.MaxRetryError) and exc.reason is not None:
        return is_timeout(exc.reason)
    if isinstance(exc, ue.NewConnectionError):  # a ConnectTimeoutError subclass in urllib3 2
        return False
    return isinstance(exc, (ue.TimeoutError, TimeoutError))


def describe_network_error(exc: BaseException, *, peer: str = "server") -> str:
    """One line for a urllib3/socket failure talking to ``peer`` (no URL, no credentials)."""
    import urllib3.exceptions as ue

    if isinstance(exc, ue.MaxRetryError) and exc.reason is not None:
        return describe_network_error(exc.reason, peer=peer)
    if isinstance(exc, ue.NameResolutionError):
        return "host name could not be resolved"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first
    if isinstance(exc, ue.NewConnectionError):
        return "connection refused or host unreachable"
    if isinstance(exc, ue.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, (ue.ReadTimeoutError, TimeoutError)):
        return f"timed out waiting for the {peer}"
    if isinstance(exc, ue.SSLError):
        inner = exc.args[0] if exc.args else exc
        text = getattr(inner, "verify_message", None) or getattr(inner, "reason", None) or str(inner)
        return f"TLS error ({text})"
    if isinstance(exc, (ue.ProtocolError, ConnectionError)):
        return f"connection reset or closed by the {peer}"
    if isinstance(exc, ue.LocationParseError):
        return "malformed URL"
    if isinstance(exc, ue.HTTPError):
        return f"HTTP error ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def read_bounded(
    resp: Any,
    *,
    limit: int,
    deadline: float,
    fail: Callable[[str], Exception],
    slow: Callable[[str], Exception] | None = None,
    truncate: bool = False,
    on_abort: Callable[[], None] | None = None,
) -> bytes:
    """The body of a urllib3 response (``preload_content=False``), at most ``limit`` bytes,
    read before ``deadline`` (``time.monotonic()``).

    Too large (declared or read): ``fail(reason)`` is raised, or with ``truncate`` the first
    ``limit`` bytes (``b""`` when the declared length is too large) are returned. Too slow:
    ``slow(reason)`` (default ``fail``) is raised. ``on_abort`` runs before either (callers
    close the connection there). Network errors propagate unchanged.
    """

    def abort() -> None:
        if on_abort is not None:
            on_abort()

    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        abort()
        if truncate:
            return b""
        raise fail(f"response of {declared} bytes exceeds the {limit}-byte limit")
    buf = bytearray()
    # read1: at most one socket read per call, so a trickling body (slowloris) meets the
    # deadline check below instead of blocking until a whole piece has arrived
    read = getattr(resp, "read1", None) or resp.read
    while True:
        chunk = read(min(65536, limit + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            abort()
            if truncate:
                return bytes(buf[:limit])
            raise fail(f"response exceeds the {limit}-byte limit")
        if time.monotonic() > deadline:
            abort()
            raise (slow or fail)("timed out reading the response")
