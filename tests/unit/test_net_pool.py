"""ocisign.net's HTTP stack (http.client based) against a loopback server: keep-alive reuse, streamed
and chunked request bodies, early answers, dropped idle connections, timeouts, TLS, thread safety,
and how failures are worded and classified."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocisign import net
from ocisign.testing.loopback import QuietHandler, QuietHTTPServer


class Server:
    """A loopback HTTP/1.1 server that records, per request, (client port, method, path, headers, body)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[tuple[int, str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        outer = self

        class Handler(QuietHandler):
            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if not size:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if "Content-Length" not in (headers or {}):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                path = self.path
                body = b"" if path.startswith("/early") else self._body()
                with outer.lock:
                    outer.seen.append((self.client_address[1], self.command, path,
                                       {k.lower(): v for k, v in self.headers.items()}, body))
                if path.startswith("/data"):
                    self._answer(200, b"x" * int(path.split("=", 1)[1]))
                elif path == "/close":
                    self._answer(200, b"bye", {"Connection": "close"})
                    self.close_connection = True
                elif path == "/hangup":  # closes the connection after the answer, without saying so
                    self._answer(200, b"ok")
                    self.close_connection = True
                elif path == "/slow":
                    outer.release.wait(5)
                    self._answer(200, b"late")
                elif path == "/early413":
                    self._answer(413, b"too large", {"Connection": "close"})
                    self.close_connection = True
                elif path == "/chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for piece in (b"hello ", b"world"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self._answer(201 if self.command in ("PUT", "POST") else 200, b"done")

            do_GET = do_PUT = do_POST = do_HEAD = _handle

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.start("test-net-pool")
        self.port = self.httpd.port

    def connections(self) -> int:
        return len({c for c, *_ in self.seen})

    def close(self) -> None:
        self.release.set()
        self.httpd.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def pool(server: Server, **kw: float) -> net.ConnectionPool:
    return net.ConnectionPool("http", "127.0.0.1", server.port, connect_timeout=kw.get("connect", 5.0),
                              read_timeout=kw.get("read", 5.0), maxsize=int(kw.get("maxsize", 4)))


def test_a_fully_read_answer_hands_its_connection_back(server: Server) -> None:
    p = pool(server)
    first = p.request("GET", "/data=10")
    assert first.status == 200 and first.headers.get("content-length") == "10"
    assert not first.reused
    assert first.read1(100) == b"x" * 10 and first.read1(100) == b""
    first.release()
    second = p.request("HEAD", "/data=5")  # HEAD: no body, the connection is reusable at once
    assert second.reused and second.headers.get("Content-Length") == "5" and second.length_remaining == 0
    second.release()
    third = p.request("GET", "/chunked")
    assert third.reused and third.length_remaining is None
    assert net.read_bounded(third, limit=100, deadline=time.monotonic() + 5, fail=ValueError) == b"hello world"
    third.release()
    assert p.request("GET", "/data=1").reused
    assert server.connections() == 1
    p.close()


def test_an_unread_or_closing_answer_does_not_return_its_connection(server: Server) -> None:
    p = pool(server)
    unread = p.request("GET", "/data=100")
    assert unread.length_remaining == 100
    unread.release()  # body left unread: the connection is closed, not reused with bytes pending
    closing = p.request("GET", "/close")
    assert not closing.reused and closing.read(10) == b"bye"
    closing.release()  # the server said Connection: close
    after = p.request("GET", "/data=1")
    assert not after.reused
    after.read()
    after.release()
    assert server.connections() == 3
    p.close()


def test_an_idle_connection_the_server_closed_is_not_reused(server: Server) -> None:
    p = pool(server)
    resp = p.request("GET", "/hangup")
    assert resp.read() == b"ok"
    resp.release()  # kept: the server did not announce the close
    time.sleep(0.2)
    again = p.request("GET", "/data=2")  # the pool notices the close and opens a new connection
    assert again.status == 200 and not again.reused
    again.read()
    again.release()
    p.close()


def test_streamed_bodies_go_out_with_their_length_or_chunked(server: Server) -> None:
    p = pool(server)
    pieces: list[bytes | memoryview] = [b"a" * 70000, memoryview(b"b" * 5), b"c"]
    resp = p.request("PUT", "/upload", body=iter(pieces), headers={"Content-Length": "70006"})
    assert resp.status == 201
    resp.read()
    resp.release()
    resp = p.request("POST", "/upload", body=iter([b"x" * 10, b"y"]))
    assert resp.status == 201
    resp.read()
    resp.release()
    (_, _, _, h1, b1), (_, _, _, h2, b2) = server.seen
    assert b1 == b"a" * 70000 + b"bbbbbc" and h1["content-length"] == "70006" and "transfer-encoding" not in h1
    assert b2 == b"x" * 10 + b"y" and h2["transfer-encoding"] == "chunked"
    p.close()


def test_an_early_answer_to_a_streamed_upload_is_read(server: Server) -> None:
    p = pool(server)
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB: far more than the socket buffers hold
            sent.append(1)
            yield b"z" * (1 << 20)

    resp = p.request("PUT", "/early413", body=body(), headers={"Content-Length": str(64 << 20)})
    assert resp.status == 413
    assert len(sent) < 64  # the refused body was not sent in full
    resp.close()
    p.close()


def test_read_timeout_is_a_transient_timeout(server: Server) -> None:
    p = pool(server, read=0.3)
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        p.request("GET", "/slow")
    assert time.monotonic() - start < 3
    assert net.is_timeout(info.value) and net.is_transient(info.value)
    assert net.describe_network_error(info.value, peer="registry") == "timed out waiting for the registry"
    p.close()


def test_a_deadline_cuts_every_wait_of_the_exchange(server: Server) -> None:
    p = pool(server, read=30)  # the per-read timeout alone would wait 30 s
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        p.request("GET", "/slow", deadline=time.monotonic() + 0.3)
    assert time.monotonic() - start < 3 and net.is_timeout(info.value)
    ok = p.request("GET", "/data=2", deadline=time.monotonic() + 5)
    ok.read()
    ok.release()
    with pytest.raises(TimeoutError):  # already over: no connection is taken or opened
        p.request("GET", "/data=2", deadline=time.monotonic() - 1)
    assert len(p._idle) == 1
    p.close()


def test_connect_failures_are_classified() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        p = net.ConnectionPool("http", "127.0.0.1", port, connect_timeout=2, read_timeout=2)
        with pytest.raises(net.ConnectFailedError) as refused:
            p.request("GET", "/")
    assert not net.is_transient(refused.value) and not net.is_timeout(refused.value)
    assert net.describe_network_error(refused.value) == "connection refused or host unreachable"


def test_dns_and_connect_timeouts_are_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_name(*_a: object, **_k: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_name)
    p = net.ConnectionPool("http", "registry.invalid", 80, connect_timeout=2, read_timeout=2)
    with pytest.raises(net.NameResolutionError) as dns:
        p.request("GET", "/")
    assert not net.is_transient(dns.value)
    assert net.describe_network_error(dns.value) == "host name could not be resolved"
    monkeypatch.undo()

    def too_slow(*_a: object, **_k: object) -> object:
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", too_slow)
    p = net.ConnectionPool("http", "127.0.0.1", 9, connect_timeout=2, read_timeout=2)
    with pytest.raises(net.ConnectTimeoutError) as slow:
        p.request("GET", "/")
    assert net.is_transient(slow.value) and net.is_timeout(slow.value)
    assert net.describe_network_error(slow.value) == "connection timed out"


def test_a_reset_and_a_garbage_answer_are_transient_and_worded() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve() -> None:
        for reply in (b"", b"SSH-2.0-OpenSSH\r\n\r\n"):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(reply)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p = net.ConnectionPool("http", "127.0.0.1", port, connect_timeout=2, read_timeout=2)
    errors = []
    for _ in range(2):
        with pytest.raises(Exception) as info:
            p.request("GET", "/")
        errors.append(info.value)
    t.join(5)
    listener.close()
    assert all(net.is_transient(e) and isinstance(e, net.network_errors()) for e in errors)
    assert all(net.describe_network_error(e, peer="TSA").startswith("connection reset or closed by the TSA")
               for e in errors)


def test_a_body_cut_short_of_its_length_is_an_error_not_an_end() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(3):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p = net.ConnectionPool("http", "127.0.0.1", port, connect_timeout=2, read_timeout=2)
    readers = (lambda r: net.read_bounded(r, limit=1000, deadline=time.monotonic() + 5, fail=ValueError),
               lambda r: [r.readinto(bytearray(64)) for _ in range(5)], lambda r: [r.read(64) for _ in range(5)])
    for read in readers:
        resp = p.request("GET", "/")
        with pytest.raises(Exception) as info:
            read(resp)
        assert isinstance(info.value, net.network_errors()) and net.is_transient(info.value)
        assert net.describe_network_error(info.value).startswith("connection reset or closed")
        resp.release()
    t.join(5)
    listener.close()
    assert p._idle == []  # a cut connection is never reused
    p.close()


def test_a_cut_manifest_is_a_network_error_for_the_registry_client() -> None:
    from ocisign.errors import RegistryError
    from ocisign.registry.target import RegistryTarget
    from ocisign.types import RemoteOptions

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                     b"Content-Length: 500\r\n\r\n{\"schemaVersion\": 2}")
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    target = RegistryTarget(f"127.0.0.1:{port}", "r", RemoteOptions(timeout=2))
    try:
        with pytest.raises(RegistryError, match="connection reset or closed by the registry"):
            target.resolve("v1")  # the 20 bytes that came are valid JSON: only the length tells
    finally:
        target.close()
        t.join(5)
        listener.close()


def test_concurrent_requests_share_the_pool_safely(server: Server) -> None:
    p = pool(server, maxsize=3)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                resp = p.request("GET", "/data=1000")
                assert resp.read() == b"x" * 1000
                resp.release()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    assert len(server.seen) == 60
    assert len(p._idle) <= 3
    assert server.connections() < 60  # connections were reused
    p.close()
    assert p._idle == []


def test_http_client_keeps_one_pool_per_origin_and_checks_urls(server: Server) -> None:
    client = net.HTTPClient(connect_timeout=2, read_timeout=2, max_origins=2)
    base = f"http://127.0.0.1:{server.port}"
    a = client.request("GET", base + "/echo?x=1")
    a.read()
    a.release()
    assert client.request("GET", f"http://LOCALHOST:{server.port}/data=1").status == 200
    assert client.pool("http", "127.0.0.1", server.port) is client.pool("http", "127.0.0.1", server.port)
    client.pool("http", "example.invalid", 1)  # a third origin: the least recently used pool goes
    assert len(client._pools) == 2
    assert server.seen[0][2] == "/echo?x=1"
    for bad in ("ftp://x/y", "http:///nohost", "/relative"):
        with pytest.raises(ValueError):
            client.request("GET", bad)
    client.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> object:
    from ocisign.testing.registry import make_tls

    return make_tls(tmp_path_factory.mktemp("tls"))


def test_tls_verifies_against_the_system_cas_a_ca_file_or_not_at_all(tls_files: object, tmp_path: Path) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls_files.cert, tls_files.key)  # type: ignore[attr-defined]
    server = Server(tls=server_ctx)
    try:
        untrusted = net.ConnectionPool("https", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5)
        with pytest.raises(ssl.SSLError) as info:
            untrusted.request("GET", "/data=1")
        assert net.is_tls_error(info.value) and not net.is_transient(info.value)
        assert net.describe_network_error(info.value).startswith("TLS error (")
        assert "certificate" in net.describe_network_error(info.value)
        ca = net.tls_context(ca_file=str(tls_files.ca_cert))  # type: ignore[attr-defined]
        trusted = net.ConnectionPool("https", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5,
                                     ssl_context=ca)
        for _ in range(2):
            resp = trusted.request("GET", "/data=4")
            assert resp.read() == b"xxxx"
            resp.release()
        assert server.connections() == 1  # kept alive over TLS too
        insecure = net.ConnectionPool("https", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5,
                                      ssl_context=net.tls_context(insecure=True))
        resp = insecure.request("GET", "/data=2")
        assert resp.status == 200
        resp.close()
        for p in (untrusted, trusted, insecure):
            p.close()
    finally:
        server.close()


def test_importing_net_imports_no_http_client() -> None:
    import subprocess
    import sys

    code = "import sys, ocisign.net; print(sorted(m for m in ('http.client', 'ssl', 'email', 'urllib3') " \
           "if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"



def test_registry_drain_keeps_connections_for_short_leftovers_only(server: Server) -> None:
    from ocisign.registry.transport import MAX_ERROR_BODY, drain

    p = pool(server)
    short = p.request("GET", "/data=100")
    drain(short)  # 100 bytes left: read, and the connection goes back
    head = p.request("HEAD", "/data=1")
    assert head.reused
    drain(head)
    big = p.request("GET", f"/data={MAX_ERROR_BODY + 1}")
    assert big.reused
    drain(big)  # too much to read for nothing: closed
    unknown = p.request("GET", "/chunked")
    assert not unknown.reused
    drain(unknown)  # unknown length: closed
    closed = p.request("GET", "/data=1")
    assert not closed.reused
    drain(closed, close=True)
    assert not p.request("GET", "/data=1").reused
    assert server.connections() == 4
    p.close()
