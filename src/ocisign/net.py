"""The one owner of HTTP plumbing for every HTTP client (registry, OCSP/CRL, TSA, plugin downloads),
on the standard library's ``http.client`` (which does the protocol: request framing,
``Content-Length``/chunked bodies, header parsing).

* :class:`HTTPClient` -- keep-alive connections, one thread-safe :class:`ConnectionPool` per
  origin (scheme, host, port): connect and read timeouts, TLS with the system CAs (plus a CA
  file) or without verification when asked for explicitly, no proxies from the environment, no
  redirects and no retries (each client decides those), request bodies as bytes or streamed from
  an iterable of pieces (never held whole).
* :class:`Response` -- one answer: status, headers, ``read1``/``readinto``; :meth:`Response.release`
  hands a fully read connection back to its pool, :meth:`Response.close` drops it.
* :func:`read_bounded` -- a whole small response body, at most ``limit`` bytes, before a
  wall-clock deadline, one socket read at a time (a trickling body meets the deadline).
* :func:`describe_network_error` / :func:`is_timeout` / :func:`is_transient` -- a network failure
  in one readable line, and whether retrying may help.

``http.client`` (and ``ssl``, which it imports) is imported when the first connection is opened:
importing this module costs nothing of it.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock: a re-push never imports threading
import contextlib
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import http.client
    import ssl
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

#: idle keep-alive connections kept per origin (more may be open at once; extras close on release)
DEFAULT_MAXSIZE = 4
#: origins an :class:`HTTPClient` keeps pools for (the least recently used is closed beyond this)
MAX_ORIGINS = 8


# --- errors -------------------------------------------------------------------------------------
class NetworkError(OSError):
    """A network failure classified while connecting (the original exception is ``__cause__``)."""


class NameResolutionError(NetworkError):
    """The host name could not be resolved."""


class ConnectFailedError(NetworkError):
    """The connection was refused or the host is unreachable."""


class ConnectTimeoutError(NetworkError, TimeoutError):
    """The connection (TCP or the TLS handshake) was not established in time."""


def _ssl_error_type() -> type[BaseException] | None:
    """``ssl.SSLError`` if ssl is loaded (no TLS error can exist before it is)."""
    mod = sys.modules.get("ssl")
    return getattr(mod, "SSLError", None) if mod is not None else None


def _http_exception_type() -> type[BaseException] | None:
    mod = sys.modules.get("http.client")
    return getattr(mod, "HTTPException", None) if mod is not None else None


def is_tls_error(exc: BaseException) -> bool:
    """True for a TLS failure (certificate verification, handshake, TLS record errors)."""
    ssl_error = _ssl_error_type()
    return ssl_error is not None and isinstance(exc, ssl_error)


def is_timeout(exc: BaseException) -> bool:
    """True for connect and read timeouts."""
    return isinstance(exc, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """Failures worth retrying: timeouts, resets, closed connections, malformed answers. Not TLS
    failures, refused connections or unresolvable names, which do not heal by retrying."""
    if isinstance(exc, (NameResolutionError, ConnectFailedError)) or is_tls_error(exc):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    http_exception = _http_exception_type()
    return http_exception is not None and isinstance(exc, http_exception)


def network_errors() -> tuple[type[BaseException], ...]:
    """What an HTTP exchange raises for network and protocol failures, for ``except`` clauses:
    ``OSError`` (sockets, TLS, timeouts, :class:`NetworkError`) and ``http.client.HTTPException``
    (malformed or cut answers, invalid URLs)."""
    import http.client

    return (OSError, http.client.HTTPException)


def describe_network_error(exc: BaseException, *, peer: str = "server") -> str:
    """One line for a network failure talking to ``peer`` (no URL, no credentials)."""
    if isinstance(exc, NameResolutionError):
        return "host name could not be resolved"
    if isinstance(exc, ConnectFailedError):
        return "connection refused or host unreachable"
    if isinstance(exc, ConnectTimeoutError):
        return "connection timed out"
    if isinstance(exc, TimeoutError):
        return f"timed out waiting for the {peer}"
    if is_tls_error(exc):
        text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
        return f"TLS error ({text})"
    if isinstance(exc, ConnectionError):
        return f"connection reset or closed by the {peer}"
    http_exception = _http_exception_type()
    if http_exception is not None and isinstance(exc, http_exception):
        # BadStatusLine, IncompleteRead, LineTooLong, too many headers: the exchange broke off
        return f"connection reset or closed by the {peer} ({type(exc).__name__})"
    if isinstance(exc, ValueError):
        return "malformed URL"
    if isinstance(exc, OSError):
        return f"network error ({exc.strerror or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


# --- TLS ----------------------------------------------------------------------------------------
def tls_context(*, ca_file: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client TLS context: system CAs (plus ``ca_file``), or no verification with ``insecure``.

    ``OSError``/``ssl.SSLError`` from loading ``ca_file`` propagate; callers name the flag.
    """
    import ssl

    if insecure:  # nothing is verified: no need to load the system CA store
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


# --- responses ----------------------------------------------------------------------------------
class Response:
    """An open answer from a :class:`ConnectionPool`: ``status``, ``headers`` (case-insensitive
    ``get``/``get_all``/``items``), and the body through :meth:`read1`, :meth:`read` and
    :meth:`readinto`. Release it with :meth:`release` (the connection goes back to the pool when
    the body was read to its end) or :meth:`close`; the headers stay readable afterwards."""

    __slots__ = ("_broken", "_conn", "_pool", "_raw", "headers", "reused", "status")

    def __init__(self, pool: ConnectionPool, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse,
                 reused: bool) -> None:
        self._pool: ConnectionPool | None = pool
        self._conn = conn
        self._raw = raw
        #: a read failed (or the body was cut short): the connection must not be reused
        self._broken = False
        self.status = raw.status
        self.headers = raw.headers
        #: whether the request went out on a kept-alive connection
        self.reused = reused

    @property
    def length_remaining(self) -> int | None:
        """Body bytes still to read when the length is known (``Content-Length``), else None."""
        raw = self._raw
        if raw.chunked:
            return 0 if raw.isclosed() else None
        return raw.length if isinstance(raw.length, int) else (0 if raw.isclosed() else None)

    def read1(self, n: int) -> bytes:
        """At most ``n`` bytes with at most one socket read (``b""`` at the end)."""
        return self._read_with(self._raw.read1, n)

    def read(self, n: int | None = None) -> bytes:
        """Up to ``n`` bytes (all of the rest when None)."""
        return self._read_with(self._raw.read, n)

    def _read_with(self, reader: Callable[[Any], bytes], n: int | None) -> bytes:
        """``reader(n)`` on the open body: an early end is checked against the length, a failure
        marks the connection as not reusable."""
        if self._raw.isclosed():
            self._check_complete()
            return b""
        try:
            data = reader(n)
            if not data and n:
                self._check_complete()
        except BaseException:
            self._broken = True
            raise
        return data

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the body; 0 at the end."""
        if self._raw.isclosed():
            self._check_complete()
            return 0
        try:
            got = self._raw.readinto(buffer)
            if not got and len(buffer):
                self._check_complete()
        except BaseException:
            self._broken = True
            raise
        return got

    def _check_complete(self) -> None:
        """At the end of the body: ``http.client.IncompleteRead`` when the connection closed before
        the ``Content-Length`` it announced (``http.client`` reports that as a plain end for
        partial reads; a cut body must never pass for a whole one)."""
        raw = self._raw
        if not raw.chunked and isinstance(raw.length, int) and raw.length > 0:
            import http.client

            self._broken = True
            raise http.client.IncompleteRead(b"", raw.length)

    def _complete(self) -> bool:
        """Whether the body was read to its announced end (so the connection may be reused)."""
        raw = self._raw
        if self._broken or raw.will_close:
            return False
        return raw.isclosed() if raw.chunked else raw.length == 0

    def release(self) -> None:
        """Hand the connection back to its pool when the body was read to its end (and the server
        keeps it open); otherwise close it. Idempotent."""
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        if self._complete():
            self._raw.close()  # the body's file object; the socket stays with the connection
            pool._put(self._conn)
        else:
            pool._discard(self._conn)

    def close(self) -> None:
        """Close the connection (an unread or endless body is abandoned). Idempotent."""
        pool = self._pool
        self._pool = None
        if pool is not None:
            pool._discard(self._conn)
        else:
            self._conn.close()


# --- connections --------------------------------------------------------------------------------
def _connection_class() -> Callable[..., http.client.HTTPConnection]:
    """The ``http.client.HTTPConnection`` subclass the pools use (built on first use, so that
    importing this module does not import ``http.client``)."""
    global _CONNECTION_CLASS
    if _CONNECTION_CLASS is not None:
        return _CONNECTION_CLASS
    import http.client
    import socket

    class Connection(http.client.HTTPConnection):
        """One keep-alive connection: ``timeout`` for connecting (and the TLS handshake), then
        ``read_timeout`` for every socket operation; TLS when ``ssl_context`` is set. Connect
        failures become :class:`NameResolutionError`, :class:`ConnectFailedError` or
        :class:`ConnectTimeoutError` (TLS errors stay ``ssl.SSLError``)."""

        def __init__(self, host: str, port: int, *, connect_timeout: float, read_timeout: float,
                     ssl_context: ssl.SSLContext | None, server_hostname: str, deadline: float | None) -> None:
            super().__init__(host, port, timeout=connect_timeout)
            self.read_timeout = read_timeout
            self.ssl_context = ssl_context
            self.server_hostname = server_hostname
            #: ``time.monotonic()`` limit of the exchange: reads wait at most what is left of it
            self.deadline = deadline

        def connect(self) -> None:
            # an ASCII host goes to getaddrinfo as bytes: a str would load the idna codec (~1 ms)
            host: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
            try:
                self.sock = socket.create_connection((host, self.port), self.timeout)  # type: ignore[arg-type]
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.ssl_context is not None:
                    self.sock = self.ssl_context.wrap_socket(self.sock, server_hostname=self.server_hostname)
            except socket.gaierror as exc:
                self.close()
                raise NameResolutionError(exc.errno, "host name could not be resolved") from exc
            except TimeoutError as exc:
                self.close()
                raise ConnectTimeoutError(exc.errno, "connection timed out") from exc
            except OSError as exc:
                self.close()
                if is_tls_error(exc):
                    raise
                raise ConnectFailedError(exc.errno, exc.strerror or str(exc)) from exc
            self.sock.settimeout(_left(self.read_timeout, self.deadline))

    _CONNECTION_CLASS = Connection
    return Connection


_CONNECTION_CLASS: Callable[..., http.client.HTTPConnection] | None = None


def _left(timeout: float, deadline: float | None) -> float:
    """``timeout``, cut to what is left before ``deadline``; TimeoutError once it has passed."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's deadline passed")
    return min(timeout, left)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when an idle connection was closed by the server or has unexpected data waiting
    (a poll with no wait; reusing it would fail or mix up answers)."""
    sock = conn.sock
    if sock is None:
        return True
    import select

    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class ConnectionPool:
    """Keep-alive connections to one origin (thread-safe). Requests take an idle connection (or
    open a new one: the number open at once is not limited) and :meth:`Response.release` puts it
    back; at most ``maxsize`` idle connections are kept."""

    def __init__(
        self, scheme: str, host: str, port: int, *, connect_timeout: float, read_timeout: float,
        ssl_context: ssl.SSLContext | None = None, maxsize: int = DEFAULT_MAXSIZE,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {scheme!r}")
        self.scheme = scheme
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.maxsize = maxsize
        self._ssl_context = ssl_context
        if scheme == "https" and ssl_context is None:
            self._ssl_context = tls_context()
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = _thread.allocate_lock()
        self._closed = False
        #: the Host header, given to http.client so that it does not encode the name with idna
        name = f"[{host}]" if ":" in host else host
        default_port = 443 if scheme == "https" else 80
        self._host_header = (name if port == default_port else f"{name}:{port}") if host.isascii() else None

    def _get(self, connect_timeout: float, read_timeout: float,
             deadline: float | None) -> tuple[http.client.HTTPConnection, bool]:
        connect_now, read_now = _left(connect_timeout, deadline), _left(read_timeout, deadline)
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                new = _connection_class()(self.host, self.port, connect_timeout=connect_now, read_timeout=read_timeout,
                                          ssl_context=self._ssl_context, server_hostname=self.host, deadline=deadline)
                return new, False
            if _dropped(conn):
                conn.close()
                continue
            if conn.sock is not None:
                conn.sock.settimeout(read_now)
            return conn, True

    def _put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.maxsize and conn.sock is not None:
                self._idle.append(conn)
                return
        conn.close()

    @staticmethod
    def _discard(conn: http.client.HTTPConnection) -> None:
        conn.close()

    def request(
        self, method: str, target: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | Iterable[bytes | memoryview] | None = None, connect_timeout: float | None = None,
        read_timeout: float | None = None, deadline: float | None = None,
    ) -> Response:
        """Send ``method target`` (``target``: path and query) and return the open response.

        ``body``: bytes, or an iterable of pieces sent as they come (give ``Content-Length`` in
        ``headers``, else they are sent chunked). A server that answers and closes before taking
        the whole body (an early 401 or 413) still has its answer read. ``deadline``
        (``time.monotonic()``): connecting, and each socket operation after it, wait at most what
        is left of it (read the body with :func:`read_bounded` and the same deadline). Network
        errors propagate (:func:`describe_network_error` words them); the connection is then closed.
        """
        conn, reused = self._get(connect_timeout if connect_timeout is not None else self.connect_timeout,
                                 read_timeout if read_timeout is not None else self.read_timeout, deadline)
        try:
            hdrs = dict(headers or {})
            if self._host_header is not None:
                hdrs["Host"] = self._host_header
            # the server may have answered already (an early 401 or 413) and closed its side: read the answer
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, target, body=body, headers=hdrs)
            raw = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        return Response(self, conn, raw, reused)

    def close(self) -> None:
        """Close the idle connections; connections in use close when released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def split_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, target)`` of an absolute ``http(s)`` URL (``target`` is the path and
    query, ``/`` at least). ValueError for anything else."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {parts.scheme or 'relative'}")
    host = parts.hostname
    if not host:
        raise ValueError("URL has no host")
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, host, port, target


class HTTPClient:
    """Connection pools per origin, with shared timeouts and TLS settings (thread-safe).

    ``connect_timeout`` and ``read_timeout`` apply to every request unless one gives its own;
    ``ssl_context`` (default: :func:`tls_context`) serves every https origin.
    """

    def __init__(
        self, *, connect_timeout: float = 30.0, read_timeout: float = 60.0, ssl_context: ssl.SSLContext | None = None,
        maxsize: int = DEFAULT_MAXSIZE, max_origins: int = MAX_ORIGINS,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.maxsize = maxsize
        self.max_origins = max_origins
        self._ssl_context = ssl_context
        self._pools: dict[tuple[str, str, int], ConnectionPool] = {}
        self._lock = _thread.allocate_lock()

    def pool(self, scheme: str, host: str, port: int) -> ConnectionPool:
        """The pool for one origin (created on first use; the least recently used beyond
        ``max_origins`` is closed)."""
        key = (scheme, host.lower(), port)
        with self._lock:
            pool = self._pools.pop(key, None)
            if pool is None:
                ctx = self._ssl_context
                if scheme == "https" and ctx is None:
                    ctx = self._ssl_context = tls_context()
                pool = ConnectionPool(scheme, host, port, connect_timeout=self.connect_timeout,
                                      read_timeout=self.read_timeout, ssl_context=ctx, maxsize=self.maxsize)
            self._pools[key] = pool  # most recently used last
            old = list(self._pools)[: -self.max_origins] if len(self._pools) > self.max_origins else []
            evicted = [self._pools.pop(k) for k in old]
        for p in evicted:
            p.close()
        return pool

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | Iterable[bytes | memoryview] | None = None, connect_timeout: float | None = None,
        read_timeout: float | None = None, deadline: float | None = None,
    ) -> Response:
        """Send one request to an absolute ``http(s)`` URL (see :meth:`ConnectionPool.request`);
        ValueError for a URL that is not one."""
        scheme, host, port, target = split_url(url)
        return self.pool(scheme, host, port).request(method, target, headers=headers, body=body,
                                                     connect_timeout=connect_timeout, read_timeout=read_timeout,
                                                     deadline=deadline)

    def close(self) -> None:
        """Close every pool's idle connections."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            p.close()


# --- bounded reads ------------------------------------------------------------------------------
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
    """The body of a response (a :class:`Response`, or anything with ``headers`` and ``read1`` or
    ``read``), at most ``limit`` bytes, read before ``deadline`` (``time.monotonic()``).

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
