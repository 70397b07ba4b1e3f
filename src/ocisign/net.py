"""Network failures in one readable line, and bounded response reads, for every urllib3 client
(registry, OCSP/CRL, TSA). urllib3 is imported only when a failure or response is handled."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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


def read_bounded(resp: Any, *, limit: int, deadline: float, fail: Callable[[str], Exception]) -> bytes:
    """The body of a urllib3 response (``preload_content=False``), at most ``limit`` bytes,
    read before ``deadline`` (``time.monotonic()``); ``fail(reason)`` builds the error raised."""
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise fail(f"response of {declared} bytes exceeds the {limit}-byte limit")
    buf = bytearray()
    while True:
        chunk = resp.read1(min(65536, limit + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise fail(f"response exceeds the {limit}-byte limit")
        if time.monotonic() > deadline:
            raise fail("timed out reading the response")
