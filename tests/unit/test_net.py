"""ocisign.net: the bounded body reader and TLS context every HTTP client uses (the connection pools,
on a loopback server, are in test_net_pool.py)."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

from ocisign import net


class FakeResponse:
    """A response-like object: ``headers`` and ``read1`` over ``chunks``, with an optional delay."""

    def __init__(self, chunks: list[bytes], *, length: str | None = None, delay: float = 0.0) -> None:
        self.headers = {"Content-Length": length} if length is not None else {}
        self._chunks = list(chunks)
        self._delay = delay
        self.reads: list[int] = []

    def _read(self, n: int) -> bytes:
        self.reads.append(n)
        if self._delay:
            time.sleep(self._delay)
        return self._chunks.pop(0) if self._chunks else b""

    def read1(self, n: int) -> bytes:
        return self._read(n)


class Failed(Exception):
    pass


def fail(reason: str) -> Exception:
    return Failed(reason)


def far() -> float:
    return time.monotonic() + 60


def test_reads_the_whole_body_in_pieces() -> None:
    resp = FakeResponse([b"ab", b"cd", b"e"])
    assert net.read_bounded(resp, limit=5, deadline=far(), fail=fail) == b"abcde"
    assert all(n <= 6 for n in resp.reads)  # never asks for more than limit + 1


def test_falls_back_to_read_without_read1() -> None:
    class ReadOnly:
        headers: dict[str, str] = {}  # noqa: RUF012

        def __init__(self) -> None:
            self.chunks = [b"x", b"y"]

        def read(self, n: int) -> bytes:
            return self.chunks.pop(0) if self.chunks else b""

    assert net.read_bounded(ReadOnly(), limit=5, deadline=far(), fail=fail) == b"xy"


def test_declared_length_over_the_limit_fails_before_reading() -> None:
    resp = FakeResponse([b"x" * 10], length="10")
    aborted: list[bool] = []
    with pytest.raises(Failed, match="10 bytes exceeds the 5-byte limit"):
        net.read_bounded(resp, limit=5, deadline=far(), fail=fail, on_abort=lambda: aborted.append(True))
    assert resp.reads == [] and aborted == [True]


def test_body_over_the_limit_fails_or_is_truncated() -> None:
    with pytest.raises(Failed, match="exceeds the 5-byte limit"):
        net.read_bounded(FakeResponse([b"abc", b"def"]), limit=5, deadline=far(), fail=fail)
    got = net.read_bounded(FakeResponse([b"abc", b"def"]), limit=5, deadline=far(), fail=fail, truncate=True)
    assert got == b"abcde"
    assert net.read_bounded(FakeResponse([b"x"], length="9"), limit=5, deadline=far(), fail=fail,
                            truncate=True) == b""


def test_a_slow_body_meets_the_deadline() -> None:
    class Slow(Exception):
        pass

    resp = FakeResponse([b"a"] * 100, delay=0.02)
    start = time.monotonic()
    with pytest.raises(Slow, match="timed out"):
        net.read_bounded(resp, limit=1000, deadline=time.monotonic() + 0.1, fail=fail, slow=Slow)
    assert time.monotonic() - start < 1
    # without ``slow`` the timeout goes to ``fail``
    with pytest.raises(Failed, match="timed out"):
        net.read_bounded(FakeResponse([b"a"] * 100, delay=0.02), limit=1000, deadline=time.monotonic() + 0.1,
                         fail=fail)


def test_tls_context_verifies_by_default_and_loads_a_ca_file(tmp_path: Path) -> None:
    ctx = net.tls_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] > 0 or not ssl.get_default_verify_paths().cafile  # system CAs
    insecure = net.tls_context(insecure=True, ca_file=str(tmp_path / "ignored.pem"))
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    assert insecure.minimum_version >= ssl.TLSVersion.TLSv1_2
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises((OSError, ssl.SSLError)):
        net.tls_context(ca_file=str(bad))
    with pytest.raises(OSError):
        net.tls_context(ca_file=str(tmp_path / "missing.pem"))
