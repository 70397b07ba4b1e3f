"""Blob uploads to a registry: monolithic POST→PUT, restarts, cross-repository mounts, chunked fallback.

:class:`RegistryUploads` adds the upload endpoints to
:class:`ocisign.registry.transport.RegistryTransport`; :class:`ocisign.registry.client.RegistryClient`
builds the read endpoints on it.

* Uploads are monolithic POST→PUT with ``Content-Length`` streamed from the source and hashed on
  the fly (never a whole blob in memory; one piece is held back so a wrong source is refused
  before the registry can commit it).
* A failed attempt restarts from a fresh POST with a reopened source, at most
  :data:`UPLOAD_ATTEMPTS` times; a 401 re-authenticates once; a 413 on the PUT falls back to
  chunked PATCH uploads of :data:`CHUNK_SIZE`.
* An upload ``Location`` on another origin (or a scheme downgrade) is refused: credentials are
  never sent there.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

from ocisign.errors import AuthError, ContentError, RegistryError
from ocisign.oci.model import Descriptor, hasher_for
from ocisign.registry.auth import Origin, repository_scope
from ocisign.registry.transport import (
    READ_CHUNK,
    RETRY_STATUSES,
    RegistryHTTPError,
    RegistryTransport,
    backoff,
    describe,
    drain,
    retry_after,
    status_phrase,
    transient,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import IO

    from ocisign.net import Response

__all__ = ["CHUNK_SIZE", "UPLOAD_ATTEMPTS", "RegistryUploads", "add_query"]

#: how many times a blob upload is restarted from a fresh POST
UPLOAD_ATTEMPTS = 3
#: chunk size for the chunked-upload fallback
CHUNK_SIZE = 8 << 20


class _RetryUpload(Exception):
    """A transient failure of one upload attempt: ``error`` if it was the last, ``wait`` from
    ``Retry-After`` (None: back off)."""

    def __init__(self, error: Exception, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


class RegistryUploads(RegistryTransport):
    """Blob upload endpoints against one registry host."""

    def _upload_location(self, resp: Response, request_url: str, what: str) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: registry sent no upload Location")
        url = urllib.parse.urljoin(request_url, location)
        if not self.same_origin(url):
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
            drain(resp)
            return None, True
        if resp.status in (401, 403) and mount:
            drain(resp)
            return self.start_upload(repo)
        if resp.status != 202:
            self.raise_for(resp, what)
        drain(resp)
        return self._upload_location(resp, self.url(path), what), False

    def cancel_upload(self, url: str) -> None:
        """DELETE an upload session (best effort)."""
        with contextlib.suppress(Exception):
            resp = self.request("DELETE", url, scopes=[], retry=False, what="cancel upload")
            drain(resp)

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
        sent and refuses to finish an upload whose content does not match ``desc``. A 401
        re-authenticates once; a 413 falls back to :meth:`upload_blob_chunked`.
        """
        what = f"upload blob {desc.digest} to {self.host}/{repo}"
        scopes = [repository_scope(repo, "pull", "push")]
        last: _RetryUpload | None = None
        auth_retried = False
        attempt = 0
        while attempt < UPLOAD_ATTEMPTS:
            mount = (desc.digest, mount_from) if mount_from and mount_from != repo else None
            location, mounted = self.start_upload(repo, mount=mount)
            if mounted:
                return "mounted"
            assert location is not None
            try:
                resp, sent_auth, sent = self._stream_blob(location, desc, opener, scopes, what, on_bytes,
                                                          verify_source)
            except _RetryUpload as retry:
                last = retry
            else:
                status = resp.status
                if status in (201, 204, 200):
                    drain(resp)
                    got = resp.headers.get("Docker-Content-Digest")
                    if got and got.split(":", 1)[0] == desc.digest.split(":", 1)[0] and got != desc.digest:
                        raise ContentError(f"{what}: registry stored {got}")
                    return "uploaded"
                if on_bytes and sent:
                    on_bytes(-sent)
                if status == 401 and not auth_retried:
                    self.reauthenticate(resp, scopes, sent_auth)
                    auth_retried = True
                    continue
                if status == 413:
                    drain(resp)
                    self.cancel_upload(location)
                    return self.upload_blob_chunked(repo, desc, opener, on_bytes=on_bytes,
                                                    verify_source=verify_source)
                if status not in RETRY_STATUSES:
                    self.raise_for(resp, what)
                wait = retry_after(resp.headers.get("Retry-After"))
                drain(resp)
                last = _RetryUpload(RegistryHTTPError(f"{what}: {status_phrase(status)}", status=status), wait)
            attempt += 1
            if attempt < UPLOAD_ATTEMPTS:
                self.pause(last.wait if last.wait is not None else backoff(attempt - 1))
        assert last is not None
        raise last.error

    def _stream_blob(
        self,
        location: str,
        desc: Descriptor,
        opener: Callable[[], AbstractContextManager[IO[bytes]]],
        scopes: Sequence[str],
        what: str,
        on_bytes: Callable[[int], None] | None,
        verify_source: bool,
    ) -> tuple[Response, str | None, int]:
        """One monolithic ``PUT ?digest=`` streamed from a freshly opened source: the open
        response, the authorization sent and the bytes counted to ``on_bytes``. A transient
        network failure is a :class:`_RetryUpload`; a bad source cancels the upload."""
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            if on_bytes:
                on_bytes(n)

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)}
        try:
            with opener() as src:
                body = _hashing_chunks(src, desc, count if on_bytes else None, verify=verify_source)
                resp, sent_auth = self.send_stream("PUT", add_query(location, "digest", desc.digest), body,
                                                   headers=headers, scopes=scopes)
        except ContentError:
            self.cancel_upload(location)
            raise
        except Exception as exc:
            if on_bytes and sent:
                on_bytes(-sent)
            if isinstance(exc, OSError) and not transient(exc):
                raise RegistryError(f"{what}: cannot read the source: {exc}") from None
            error = RegistryError(f"{what}: {describe(exc)}")
            if not transient(exc):
                raise error from None
            raise _RetryUpload(error) from None
        return resp, sent_auth, sent

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
                drain(resp)
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
            "PUT", add_query(location, "digest", desc.digest), scopes=scopes, body=b"",
            headers={"Content-Length": "0", "Content-Type": "application/octet-stream"}, retry=False, what=what,
        )
        if resp.status not in (201, 204):
            self.raise_for(resp, what)
        drain(resp)
        return "uploaded"


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


def add_query(url: str, key: str, value: str) -> str:
    """``url`` with ``key=value`` added to its query."""
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{sep}{urllib.parse.urlencode({key: value})}"
