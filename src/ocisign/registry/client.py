"""The distribution-spec endpoints of a registry: the client every registry caller uses.

Three layers, one class at the top:

* :class:`ocisign.registry.transport.RegistryTransport` -- pooled HTTP, auth, retries,
  redirects, error mapping, bounded reads.
* :class:`ocisign.registry.uploads.RegistryUploads` -- blob uploads (monolithic, restarted,
  mounted, chunked fallback).
* :class:`RegistryClient` (here) -- ping, manifests, blobs, referrers, tags:

  * Manifests are read bounded (4 MiB), hashed and checked against a digest reference and the
    ``Docker-Content-Digest`` header; their media type is taken from ``Content-Type`` or the body.
  * Blobs stream through a :class:`~ocisign.oci.streams.VerifyingReader` (size and digest
    checked at EOF); redirects to another origin are followed without credentials.
  * Referrers follow ``Link: rel="next"`` on the same origin only, at most :data:`MAX_PAGES` pages.

The lower layers' names that callers and tests use (retry and upload limits,
``is_loopback_host``, ``retry_after``, ``use_plain_http``, the HTTP error classes) are
re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import urllib.parse
from collections.abc import Iterator, Mapping

from ocisign.errors import ContentError, NotFoundError, RegistryError
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
from ocisign.registry.auth import repository_scope
from ocisign.registry.transport import (
    MAX_ERROR_BODY,
    MAX_REDIRECTS,
    MAX_RETRIES,
    MAX_RETRY_AFTER,
    ManifestBlobUnknownError,
    RegistryHTTPError,
    ResponseStream,
    drain,
    error_summary,
    is_loopback_host,
    media_type_of,
    retry_after,
    use_plain_http,
)
from ocisign.registry.uploads import CHUNK_SIZE, UPLOAD_ATTEMPTS, RegistryUploads

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import IO

    from ocisign.net import Response

__all__ = [
    "CHUNK_SIZE",
    "MANIFEST_ACCEPT",
    "MAX_PAGES",
    "MAX_REDIRECTS",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "UPLOAD_ATTEMPTS",
    "ManifestBlobUnknownError",
    "RegistryClient",
    "RegistryHTTPError",
    "is_loopback_host",
    "retry_after",
    "use_plain_http",
]

#: every manifest type we can read, for Accept headers (2.8.2 answers 404 without an OCI type)
MANIFEST_ACCEPT = ", ".join([MT_MANIFEST, MT_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_ARTIFACT_MANIFEST])
MAX_PAGES = 100


class RegistryClient(RegistryUploads):
    """Distribution API calls against one registry host."""

    # --- ping, manifests -----------------------------------------------------------------
    def ping(self) -> None:
        """``GET /v2/``: reachability and credentials check (learns the auth scheme)."""
        resp = self.request("GET", "/v2/", scopes=[], what="ping")
        if resp.status != 200:
            self.raise_for(resp, f"registry {self.host}")
        drain(resp)

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
            resp.release()
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
        ct = media_type_of(content_type)
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
        resp = self._head(repo, f"/v2/{repo}/manifests/{reference}", "check manifest",
                          f"{self.host}/{repo}@{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if resp is None:
            return None
        digest = resp.headers.get("Docker-Content-Digest") or (reference if ":" in reference else "")
        length = resp.headers.get("Content-Length", "")
        try:
            return Descriptor(
                media_type=media_type_of(resp.headers.get("Content-Type")) or "application/octet-stream",
                digest=validate_digest(digest, where="Docker-Content-Digest"),
                size=int(length) if length.isdigit() else 0,
            )
        except ContentError:
            return Descriptor(media_type="application/octet-stream", digest=reference, size=0)

    def _head(
        self, repo: str, path: str, action: str, target: str, *, headers: Mapping[str, str] | None = None
    ) -> Response | None:
        """``HEAD path`` with pull scope: the released 200 response (headers only), None on 404;
        any other status raises (``action target`` in the message)."""
        resp = self.request("HEAD", path, scopes=[repository_scope(repo, "pull")], headers=headers, what=action)
        if resp.status == 404:
            drain(resp)
            return None
        if resp.status != 200:
            self.raise_for(resp, f"{action} {target}")
        drain(resp)
        return resp

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> Mapping[str, str]:
        """PUT a manifest by tag or digest; returns the response headers (``OCI-Subject``…)."""
        resp = self.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", scopes=[repository_scope(repo, "pull", "push")],
            headers={"Content-Type": media_type}, body=data, what="push manifest",
        )
        if resp.status not in (200, 201, 202):
            self.raise_for(resp, f"push manifest {self.host}/{repo}:{reference}")
        drain(resp)
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
        drain(resp)

    # --- blobs ---------------------------------------------------------------------------
    def head_blob(self, repo: str, digest: str) -> int | None:
        """Size of a blob the repository holds, or None."""
        resp = self._head(repo, f"/v2/{repo}/blobs/{digest}", "check blob", f"{self.host}/{repo}@{digest}")
        if resp is None:
            return None
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
            drain(resp, close=True)
            raise ContentError(f"blob {desc.digest}: registry sends {declared} bytes, descriptor says {desc.size}")
        raw = ResponseStream(resp, f"fetch blob {desc.digest} from {self.host}/{repo}")
        reader = VerifyingReader(raw, desc, where=f"{self.host}/{repo}: blob")  # type: ignore[arg-type]
        try:
            yield reader  # type: ignore[misc]
        finally:
            drain(resp, close=not raw.at_eof)

    # --- referrers, tags -----------------------------------------------------------------------
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
                resp.release()
                _, codes = error_summary(404, body)
                if "NAME_UNKNOWN" in codes:
                    raise NotFoundError(f"repository {self.host}/{repo} not found")
                return None
            if resp.status != 200:
                self.raise_for(resp, f"list referrers of {digest} in {self.host}/{repo}")
            if media_type_of(resp.headers.get("Content-Type")) != MT_INDEX:
                drain(resp)
                if first:
                    return None
                raise ContentError(f"referrers of {digest}: page is not an image index")
            try:
                data = self._read_bounded(resp, MAX_MANIFEST_SIZE, what=f"referrers of {digest}")
            finally:
                resp.release()
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
            if not self.same_origin(nxt_url):
                raise RegistryError(f"list referrers of {digest}: refusing pagination Link to another origin")
            if nxt_url in seen_urls:
                raise RegistryError(f"list referrers of {digest}: pagination Link loops")
            url = nxt_url
        raise RegistryError(f"list referrers of {digest}: more than {MAX_PAGES} pages")

    def list_tags(self, repo: str) -> list[str]:
        """Tags of a repository (one page; used by tests and diagnostics)."""
        resp = self.request("GET", f"/v2/{repo}/tags/list", scopes=[repository_scope(repo, "pull")], what="list tags")
        if resp.status == 404:
            drain(resp)
            return []
        if resp.status != 200:
            self.raise_for(resp, f"list tags of {self.host}/{repo}")
        try:
            data = self._read_bounded(resp, MAX_MANIFEST_SIZE, what="tag list")
        finally:
            resp.release()
        tags = parse_json_object(data, where="tag list").get("tags") or []
        return [t for t in tags if isinstance(t, str)]


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
