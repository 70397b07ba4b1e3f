"""A fault-injecting HTTP proxy in front of a registry, for reliability tests (loopback only).

:class:`FaultProxy` forwards HTTP to an upstream registry (Host header kept, so the registry's
absolute ``Location`` URLs point at the proxy) and lets a test script faults per request with a
:data:`Rule` returning an :class:`Action`: answer with a status, cut the request body after N
bytes, redirect, rewrite headers. It records every request (:class:`ProxyRequest`: method,
path, headers) for assertions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import socket
import threading
import urllib.parse
from collections.abc import Callable, Mapping

from ocisign.testing.loopback import QuietHandler, QuietHTTPServer

__all__ = ["Action", "FaultProxy", "ProxyRequest", "Rule"]


@dataclasses.dataclass
class ProxyRequest:
    """A request the proxy saw."""

    method: str
    path: str
    headers: dict[str, str]
    #: the proxy's own origin (``http://127.0.0.1:PORT``)
    origin: str

    def header(self, name: str) -> str | None:
        """Header value by case-insensitive name."""
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclasses.dataclass
class Action:
    """What the proxy does with a request (returned by a rule; None means forward)."""

    #: answer with this status instead of forwarding
    status: int | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    #: forward, but cut the connection after this many request-body bytes
    cut_after: int | None = None
    #: forward, then add/replace these response headers
    response_headers: Mapping[str, str] | None = None
    #: forward, then rewrite the response Location with this function
    rewrite_location: Callable[[str], str] | None = None
    #: send this many bytes of body endlessly (for bounded-read tests), with this Content-Type
    endless: bool = False


Rule = Callable[[ProxyRequest], "Action | None"]


class FaultProxy:
    """A threaded HTTP proxy on loopback in front of a plain-HTTP upstream registry.

    ``rule(request)`` decides per request; ``inject_authorization`` is added upstream when the
    client sent none (to serve content to a "foreign origin" test server).
    """

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        rule: Rule | None = None,
        inject_authorization: str | None = None,
    ) -> None:
        up = urllib.parse.urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        self.upstream_host = up.hostname or "127.0.0.1"
        self.upstream_port = up.port or 80
        self.rule = rule
        self.inject_authorization = inject_authorization
        self.requests: list[ProxyRequest] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

        self._server = QuietHTTPServer((host, 0), Handler)
        self.port = self._server.port
        self.host = f"{host}:{self.port}"
        self.origin = f"http://{self.host}"
        self._server.start("test-fault-proxy")

    def seen(self, method: str | None = None, contains: str = "") -> list[ProxyRequest]:
        """Recorded requests filtered by method and path substring."""
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and contains in r.path]

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self.requests.clear()

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        req = ProxyRequest(h.command, h.path, dict(h.headers.items()), self.origin)
        with self._lock:
            self.requests.append(req)
        action = self.rule(req) if self.rule else None
        length = int(h.headers.get("Content-Length") or 0)
        if action is not None and action.status is not None:
            self._discard_body(h, length)
            body = action.body
            h.send_response(action.status)
            for k, v in action.headers.items():
                h.send_header(k, v)
            if action.endless:
                if not any(k.lower() == "content-type" for k in action.headers):  # never send it twice
                    h.send_header("Content-Type", "application/json")
                h.end_headers()
                with contextlib.suppress(OSError):
                    chunk = b" " * 65536
                    for _ in range(100_000):
                        h.wfile.write(chunk)
                h.close_connection = True
                return
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
            return
        self._forward(h, length, action)

    @staticmethod
    def _discard_body(h: http.server.BaseHTTPRequestHandler, length: int) -> None:
        left = length
        while left > 0:
            piece = h.rfile.read(min(left, 1 << 20))
            if not piece:
                break
            left -= len(piece)

    def _forward(self, h: http.server.BaseHTTPRequestHandler, length: int, action: Action | None) -> None:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            has_auth = False
            for k, v in h.headers.items():
                if k.lower() in ("connection", "keep-alive", "proxy-connection"):
                    continue
                has_auth = has_auth or k.lower() == "authorization"
                conn.putheader(k, v)
            if not has_auth and self.inject_authorization:
                conn.putheader("Authorization", self.inject_authorization)
            conn.endheaders()
            left = length
            sent = 0
            while left > 0:
                piece = h.rfile.read(min(left, 1 << 20))
                if not piece:
                    break
                if action is not None and action.cut_after is not None and sent + len(piece) > action.cut_after:
                    # cut: drop both connections mid-body
                    h.close_connection = True
                    with contextlib.suppress(OSError):
                        h.connection.shutdown(socket.SHUT_RDWR)
                    return
                conn.send(piece)
                sent += len(piece)
                left -= len(piece)
            resp = conn.getresponse()
            body = b"" if h.command == "HEAD" else None
            headers = [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in ("connection", "keep-alive", "transfer-encoding")]
            if action is not None and action.response_headers:
                names = {k.lower() for k in action.response_headers}
                headers = [(k, v) for k, v in headers if k.lower() not in names]
                headers += list(action.response_headers.items())
            if action is not None and action.rewrite_location:
                headers = [(k, action.rewrite_location(v) if k.lower() == "location" else v) for k, v in headers]
            declared = resp.getheader("Content-Length")
            if body is None and declared is None:
                body = resp.read()
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
            h.send_response(resp.status)
            for k, v in headers:
                h.send_header(k, v)
            h.end_headers()
            if body is not None:
                if body:
                    h.wfile.write(body)
                resp.read()
                return
            while True:
                piece = resp.read(1 << 20)
                if not piece:
                    break
                h.wfile.write(piece)
        except OSError:
            h.close_connection = True
        finally:
            conn.close()

    def close(self) -> None:
        """Stop serving."""
        self._server.stop()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
