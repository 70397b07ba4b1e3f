"""A registry repository as a :class:`ocisign.types.Target` (the built-in ``registry`` transport).

Reads: ``resolve`` GETs the manifest (bounded) and hashes it, never trusting a HEAD header;
``referrers`` uses the referrers API when the registry has it and the ``sha256-<hex>`` tag
schema otherwise (validated: it must be an index, and not the subject itself).

Writes (:class:`RegistryWriter`): blobs are uploaded streamed (mounted from another repository
of the same registry when possible); manifests are PUT with their exact bytes. For a manifest
with a ``subject`` the writer records the referrer; when the registry did not answer with
``OCI-Subject`` the ``sha256-<hex>`` index is updated once per subject when the session is
flushed (:meth:`RegistryWriter.flush_referrers`, or on a clean exit): GET, merge with full
entries (no duplicates), PUT, prune stale entries if the registry refuses them, verify by
re-reading, and delete the superseded index (a failed delete is only a warning).

Capabilities beyond the protocol (found with ``getattr`` by :mod:`ocisign.registry.copy`):
``push_blob_from(desc, opener, source=…)`` (retryable streamed upload with cross-repo mount),
``index_referrer(desc, data)`` (index an existing referrer without re-pushing it),
``flush_referrers()``, and ``blob_exists(desc)``.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock: a re-push never imports threading
import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from ocisign.errors import ContentError, NotFoundError, RegistryError
from ocisign.oci.model import (
    ALL_MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    MT_INDEX,
    Descriptor,
    Manifest,
    hasher_for,
    parse_manifest,
)
from ocisign.registry.client import ManifestBlobUnknownError, RegistryClient

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import IO

    from ocisign.types import Credentials, RemoteOptions

#: how often a referrers-index update is re-read and re-applied when another writer raced it
REFERRERS_UPDATE_ATTEMPTS = 3
_CACHE_LIMIT = 256
#: one lock per (registry origin, repository, referrers tag): writers in this process never race
#: each other's GET-merge-PUT of a ``sha256-<hex>`` index (docker-registry 2.8.2 ignores If-Match,
#: so across processes only the re-read check below narrows the race the distribution spec admits)
_INDEX_LOCKS: dict[tuple[str, str, str], _thread.LockType] = {}
_INDEX_LOCKS_GUARD = _thread.allocate_lock()


def _index_lock(key: tuple[str, str, str]) -> _thread.LockType:
    with _INDEX_LOCKS_GUARD:
        return _INDEX_LOCKS.setdefault(key, _thread.allocate_lock())


def _warn(text: str) -> None:
    print(f"Warning: {text}", file=sys.stderr)


class RegistryTarget:
    """One repository on one registry."""

    def __init__(
        self,
        host: str,
        repository: str,
        options: RemoteOptions,
        credentials: Callable[[], Credentials | None] | None = None,
        *,
        warn: Callable[[str], None] = _warn,
    ) -> None:
        self.host = host
        self.repository = repository
        self.options = options
        self.client = RegistryClient(host, options, credentials)
        self.warn = warn
        #: None unknown, True the registry has the referrers API, False it has not
        self.referrers_api: bool | None = None
        #: keep the ``sha256-<hex>`` tag index even when the registry has the referrers API
        #: (notation's ``sign --force-referrers-tag``, oras's ``--to-distribution-spec v1.1-referrers-tag``)
        self.force_referrers_tag = False
        self._cache: dict[str, bytes] = {}
        self._lock = _thread.allocate_lock()

    # --- Target protocol ----------------------------------------------------------------------
    @property
    def location(self) -> str:
        """``host/repository``."""
        return f"{self.host}/{self.repository}"

    def _remember(self, digest: str, data: bytes) -> None:
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.pop(next(iter(self._cache)))
            self._cache[digest] = data

    def resolve(self, reference: str) -> Descriptor:
        """GET the manifest named by a tag or digest; its digest is computed from the bytes."""
        desc, data = self.client.get_manifest(self.repository, reference)
        parse_manifest(data, media_type=desc.media_type, where=f"{self.location}:{reference}")
        self._remember(desc.digest, data)
        return desc

    def fetch(self, desc: Descriptor, *, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """A manifest or small blob, digest and size verified, at most ``max_size`` bytes."""
        if desc.size > max_size:
            raise ContentError(f"{desc.digest}: {desc.size} bytes exceeds the {max_size}-byte limit")
        with self._lock:
            cached = self._cache.get(desc.digest)
        if cached is not None and len(cached) == desc.size:
            return cached
        if desc.media_type in ALL_MANIFEST_TYPES:
            got, data = self.client.get_manifest(self.repository, desc.digest, max_size=max_size)
            if got.size != desc.size:
                raise ContentError(f"manifest {desc.digest}: {got.size} bytes, descriptor says {desc.size}")
            self._remember(desc.digest, data)
            return data
        return self.client.get_blob(self.repository, desc, max_size=max_size)

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[IO[bytes]]:
        """Stream a blob; size and digest are verified at EOF."""
        return self.client.open_blob(self.repository, desc)

    def exists(self, desc: Descriptor) -> bool:
        """HEAD the manifest (with OCI Accept types) or blob."""
        if desc.media_type in ALL_MANIFEST_TYPES:
            return self.client.head_manifest(self.repository, desc.digest) is not None
        return self.blob_exists(desc)

    def blob_exists(self, desc: Descriptor) -> bool:
        """HEAD the blob."""
        size = self.client.head_blob(self.repository, desc.digest)
        return size is not None

    def referrers(self, subject: Descriptor, *, artifact_type: str | None = None) -> list[Descriptor]:
        """Referrers from the API, or from the ``sha256-<hex>`` tag index when there is none."""
        # the referrers-tag helpers are imported where referrers are read or written (never by a re-push)
        from ocisign.oci.referrers_tag import dedupe, filter_type

        if self.referrers_api is not False:
            try:
                found = self.client.referrers_api(self.repository, subject.digest, artifact_type)
            except NotFoundError:
                return []  # no such repository: nothing refers to anything in it
            if found is not None:
                self.referrers_api = True
                return dedupe(found)
            self.referrers_api = False
        entries, _ = self._read_tag_index(subject)
        return filter_type(dedupe(entries), artifact_type)

    def _read_tag_index(self, subject: Descriptor) -> tuple[list[Descriptor], Descriptor | None]:
        """Entries of the ``sha256-<hex>`` index and its descriptor (None when the tag is absent)."""
        from ocisign.oci.referrers_tag import parse_referrers_index, referrers_tag

        tag = referrers_tag(subject.digest)
        try:
            # the full Accept list, so a tag that names something else is noticed, not taken as absent
            desc, data = self.client.get_manifest(self.repository, tag)
        except NotFoundError:
            return [], None
        where = f"referrers tag {self.location}:{tag}"
        if desc.digest == subject.digest or desc.media_type != MT_INDEX:
            raise ContentError(f"{where}: is not a referrers index (it is a {desc.media_type} {desc.digest})")
        return parse_referrers_index(data, where=where), desc

    def writer(self) -> AbstractContextManager[RegistryWriter]:
        """A write session; pending referrers indexes are flushed on a clean exit."""
        return _writer_session(self)

    def close(self) -> None:
        """Release pooled connections."""
        self.client.close()

    # --- helpers for the writer ---------------------------------------------------------------
    def same_registry(self, other: object) -> bool:
        """True when ``other`` is a repository on this registry (same host and scheme)."""
        return isinstance(other, RegistryTarget) and other.client.origin == self.client.origin


@contextlib.contextmanager
def _writer_session(target: RegistryTarget) -> Iterator[RegistryWriter]:
    w = RegistryWriter(target)
    yield w
    w.flush_referrers()


class RegistryWriter:
    """Write side of a :class:`RegistryTarget`."""

    def __init__(self, target: RegistryTarget) -> None:
        self.target = target
        self.client = target.client
        self.repo = target.repository
        self._pending: dict[str, tuple[Descriptor, dict[str, Descriptor]]] = {}
        self._lock = _thread.allocate_lock()

    # --- blobs --------------------------------------------------------------------------------
    def blob_exists(self, desc: Descriptor) -> bool:
        """HEAD the blob at the destination."""
        return self.target.blob_exists(desc)

    def push_blob(self, desc: Descriptor, source: bytes | IO[bytes]) -> None:
        """Upload a blob (skipped when the registry already has it)."""
        if self.target.blob_exists(desc):
            return
        if isinstance(source, (bytes, bytearray)):
            data = bytes(source)

            def opener() -> AbstractContextManager[IO[bytes]]:
                import io

                return contextlib.nullcontext(io.BytesIO(data))

            self.client.upload_blob(self.repo, desc, opener)
            return
        used = False
        start = source.tell() if _seekable(source) else None

        def once() -> AbstractContextManager[IO[bytes]]:
            nonlocal used
            if used:
                if start is None:
                    raise RegistryError(f"upload of {desc.digest} failed and its source stream cannot be replayed")
                source.seek(start)
            used = True
            return contextlib.nullcontext(source)

        self.client.upload_blob(self.repo, desc, once)

    def push_blob_from(
        self,
        desc: Descriptor,
        opener: Callable[[], AbstractContextManager[IO[bytes]]],
        *,
        source: object = None,
        on_bytes: Callable[[int], None] | None = None,
        verify: bool = True,
    ) -> str:
        """Upload from a re-openable source: ``mounted`` or ``uploaded``.

        When ``source`` is another repository of this registry the blob is mounted from it.
        """
        mount_from = None
        if self.target.same_registry(source):
            assert isinstance(source, RegistryTarget)
            if source.repository != self.repo:
                mount_from = source.repository
        return self.client.upload_blob(
            self.repo, desc, opener, mount_from=mount_from, on_bytes=on_bytes, verify_source=verify
        )

    # --- manifests ----------------------------------------------------------------------------
    def push_manifest(self, desc: Descriptor, data: bytes, *, tag: str | None = None, listed: bool = True) -> None:
        """PUT the exact bytes by ``tag`` (or by digest); record a referrer for its subject."""
        _check_bytes(desc, data)
        headers = self.client.put_manifest(self.repo, tag or desc.digest, data, desc.media_type)
        manifest = _parse(desc, data)
        if manifest is None or manifest.subject is None:
            return
        if headers.get("oci-subject"):
            self.target.referrers_api = True
            if not self.target.force_referrers_tag:
                return
        self._record(desc, manifest)

    def index_referrer(self, desc: Descriptor, data: bytes) -> None:
        """Make sure an already-present referrer is listed in its subject's referrers index."""
        _check_bytes(desc, data)
        manifest = _parse(desc, data)
        if manifest is None or manifest.subject is None:
            return
        if self.target.referrers_api and not self.target.force_referrers_tag:
            return
        self._record(desc, manifest)

    def _record(self, desc: Descriptor, manifest: Manifest) -> None:
        from ocisign.oci.referrers_tag import referrer_entry

        assert manifest.subject is not None
        with self._lock:
            _, entries = self._pending.setdefault(manifest.subject.digest, (manifest.subject, {}))
            entries[desc.digest] = referrer_entry(desc, manifest)

    def flush_referrers(self) -> None:
        """Update the ``sha256-<hex>`` index of every subject with recorded referrers."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                digest, (subject, entries) = next(iter(self._pending.items()))
            force = self.target.force_referrers_tag
            if self.target.referrers_api is None and not force:
                self._probe_referrers_api(subject)
            if force or not self.target.referrers_api:
                self._update_tag_index(subject, list(entries.values()))
            with self._lock:
                self._pending.pop(digest, None)

    def _probe_referrers_api(self, subject: Descriptor) -> None:
        try:
            found = self.client.referrers_api(self.repo, subject.digest)
        except NotFoundError:
            return  # still unknown; the tag schema is used meanwhile
        self.target.referrers_api = found is not None

    def _update_tag_index(self, subject: Descriptor, add: list[Descriptor]) -> None:
        from ocisign.oci.referrers_tag import referrers_tag

        tag = referrers_tag(subject.digest)
        with _index_lock((self.client.base, self.repo, tag)):
            self._update_tag_index_locked(subject, add, tag)

    def _update_tag_index_locked(self, subject: Descriptor, add: list[Descriptor], tag: str) -> None:
        from ocisign.oci.referrers_tag import build_index, merge

        where = f"referrers index {self.target.location}:{tag}"
        try:
            for _attempt in range(REFERRERS_UPDATE_ATTEMPTS):
                old, old_desc = self.target._read_tag_index(subject)
                merged = merge(old, add)
                if old_desc is not None and merged == old:
                    return  # already complete (a re-run)
                data = build_index(merged)
                try:
                    self.client.put_manifest(self.repo, tag, data, MT_INDEX)
                except ManifestBlobUnknownError:
                    stale = [d.digest for d in merged if self.client.head_manifest(self.repo, d.digest) is None]
                    if not stale:
                        raise
                    self.target.warn(f"{where}: pruning {len(stale)} entries whose manifests are gone")
                    merged = merge(old, add, remove=stale)
                    data = build_index(merged)
                    self.client.put_manifest(self.repo, tag, data, MT_INDEX)
                check, new_desc = self.target._read_tag_index(subject)
                present = {d.digest for d in check}
                if all(d.digest in present for d in add):
                    if old_desc is not None and new_desc is not None and old_desc.digest != new_desc.digest:
                        self._delete_old_index(old_desc, where)
                    return
            raise RegistryError(f"{where}: lost the update to concurrent writers {REFERRERS_UPDATE_ATTEMPTS} times")
        except (RegistryError, ContentError) as exc:
            raise RegistryError(
                f"the referrer manifests were pushed, but updating the {where} failed: {exc} "
                "(re-run the command to repair the index)"
            ) from None

    def _delete_old_index(self, old: Descriptor, where: str) -> None:
        try:
            self.client.delete_manifest(self.repo, old.digest)
        except (RegistryError, NotFoundError) as exc:
            self.target.warn(
                f"removal of the outdated {where} ({old.digest}) failed: {exc}; garbage collection may be required"
            )


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _check_bytes(desc: Descriptor, data: bytes) -> None:
    if len(data) != desc.size:
        raise ContentError(f"manifest {desc.digest}: {len(data)} bytes, descriptor says {desc.size}")
    h = hasher_for(desc.digest)
    h.update(data)
    if f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}" != desc.digest:
        raise ContentError(f"manifest {desc.digest}: content does not match its digest")


def _parse(desc: Descriptor, data: bytes) -> Manifest | None:
    if desc.media_type not in ALL_MANIFEST_TYPES:
        return None
    return parse_manifest(data, media_type=desc.media_type, where=f"manifest {desc.digest}")
