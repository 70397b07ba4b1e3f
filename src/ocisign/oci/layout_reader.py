"""Reading OCI image layouts, whatever holds the files (a directory or a tar).

:class:`LayoutReader` implements the read side of :class:`ocisign.types.Target` (resolve,
fetch, open_blob, exists, referrers) on top of three primitives that a concrete layout
provides: ``_read_small(relpath, max_size)``, ``_open_file(relpath)`` and ``_file_size(relpath)``.
Discovery of referrers is a graph walk from ``index.json`` as oras-go's OCI store does it:
a signature manifest must be reachable from ``index.json`` to be found.
"""

from __future__ import annotations

import abc
import contextlib
import os

from ocisign.errors import ContentError, LayoutError, NotFoundError
from ocisign.oci.model import (
    ALL_MANIFEST_TYPES,
    ANN_REF_NAME,
    INDEX_TYPES,
    MAX_INDEX_DEPTH,
    MAX_MANIFEST_SIZE,
    MT_INDEX,
    Descriptor,
    Manifest,
    check_verified,
    digest_hex,
    manifest_from_object,
    parse_json_object,
    parse_manifest,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

#: index.json may list many entries, but not without bound
MAX_INDEX_JSON_SIZE = 64 * 1024 * 1024
LAYOUT_VERSION = "1.0.0"
#: a reader keeps up to this many verified small blobs of at most this size (one layout's
#: manifests and envelopes), so one session reads and hashes each of them once
_REMEMBER_BLOBS = 256
_REMEMBER_BLOB_SIZE = 256 * 1024


def path_str(path: str | os.PathLike[str]) -> str:
    """``str(pathlib.PurePosixPath(path))`` without importing pathlib: ``.`` components and repeated
    or trailing slashes dropped (``./img/`` -> ``img``), ``..`` kept, ``""`` -> ``.``."""
    text = os.fspath(path)
    lead = "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    rest = "/".join(part for part in text.split("/") if part and part != ".")
    return lead + rest if lead or rest else "."


def blob_relpath(digest: str) -> str:
    """``blobs/<alg>/<hex>`` for a validated digest."""
    return f"blobs/{digest.split(':', 1)[0]}/{digest_hex(digest)}"


class LayoutReader(abc.ABC):
    """Read side of an OCI image layout. Subclasses provide the file primitives."""

    def __init__(self, location: str) -> None:
        self._location = location
        self._index: list[Descriptor] | None = None
        self._manifests: dict[tuple[str, str], Manifest] = {}
        #: small blobs (manifests, envelopes) already read and verified against their digest in
        #: this session: a verification reads a signature manifest for discovery and again as a
        #: signature, the subject manifest for resolution and for its referrers
        self._verified: dict[str, bytes] = {}

    # --- primitives -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _read_small(self, relpath: str, max_size: int) -> bytes:
        """Whole content of a regular file; NotFoundError if absent; LayoutError if too big/odd."""

    @abc.abstractmethod
    def _open_file(self, relpath: str) -> IO[bytes]:
        """A binary stream of a regular file (NotFoundError if absent)."""

    @abc.abstractmethod
    def _file_size(self, relpath: str) -> int | None:
        """Size of a regular file, None when absent."""

    def _read_upto(self, relpath: str, limit: int) -> bytes:
        """At most ``limit`` bytes from the start of a regular file (NotFoundError if absent)."""
        with self._open_file(relpath) as fh:
            chunks: list[bytes] = []
            got = 0
            while got < limit:
                chunk = fh.read(limit - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        return b"".join(chunks)

    # --- Target: read side -----------------------------------------------------------------------
    @property
    def location(self) -> str:
        """The layout path as the user gave it."""
        return self._location

    def check_layout_file(self) -> None:
        """Validate ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``)."""
        where = f"{self._location}: invalid OCI layout: oci-layout"
        try:
            data = self._read_small("oci-layout", 4096)
        except NotFoundError:
            raise LayoutError(f"{self._location}: invalid OCI layout: oci-layout file is missing") from None
        try:
            obj = parse_json_object(data, where=where)
        except ContentError as exc:
            raise LayoutError(str(exc)) from None
        version = obj.get("imageLayoutVersion")
        if version != LAYOUT_VERSION:
            raise LayoutError(f"{where}: unsupported imageLayoutVersion {version!r} (want {LAYOUT_VERSION!r})")

    def index_entries(self) -> list[Descriptor]:
        """Descriptors listed in ``index.json`` (validated, cached)."""
        if self._index is None:
            self.check_layout_file()
            where = f"{self._location}: index.json"
            try:
                data = self._read_small("index.json", MAX_INDEX_JSON_SIZE)
            except NotFoundError:
                raise LayoutError(f"{where} is missing") from None
            try:
                obj = parse_json_object(data, where=where)
                if obj.get("mediaType", MT_INDEX) != MT_INDEX:
                    raise ContentError(f"{where}: mediaType must be {MT_INDEX}")
                index = manifest_from_object(obj, media_type=MT_INDEX, where=where) if len(
                    data
                ) <= MAX_MANIFEST_SIZE else self._parse_big_index(obj, where)
            except ContentError as exc:
                raise LayoutError(str(exc)) from None
            self._index = list(index.manifests)
        return self._index

    @staticmethod
    def _parse_big_index(obj: dict[str, object], where: str) -> Manifest:
        from ocisign.oci.model import descriptor_from_json

        if "config" in obj or "layers" in obj or obj.get("schemaVersion") != 2:
            raise ContentError(f"{where}: not an image index")
        items = obj.get("manifests")
        if not isinstance(items, list):
            raise ContentError(f"{where}: manifests must be a list")
        descs = tuple(descriptor_from_json(d, where=f"{where}.manifests[{i}]") for i, d in enumerate(items))
        return Manifest(media_type=MT_INDEX, raw={}, manifests=descs)

    def resolve(self, reference: str) -> Descriptor:
        """Tag via ``org.opencontainers.image.ref.name`` (ambiguity is an error) or a digest."""
        entries = self.index_entries()
        if reference.startswith(("sha256:", "sha512:")):
            for desc in self._walk():
                if desc.digest == reference and desc.media_type in ALL_MANIFEST_TYPES:
                    return desc
            # like a tag, a digest must be part of the layout's graph: a blob that index.json does not
            # reach is not an artifact of this layout (reliability B1.9)
            hint = " (a blob with this digest exists but index.json does not list it)" if self._file_size(
                blob_relpath(reference)) is not None else ""
            raise NotFoundError(f"{self._location}@{reference}: not found in the layout{hint}")
        found = [d for d in entries if d.ref_name == reference]
        if not found:
            tags = sorted({d.ref_name for d in entries if d.ref_name})
            shown = ", ".join(tags[:10]) + (f", … ({len(tags) - 10} more)" if len(tags) > 10 else "")
            have = f"the layout's tags: {shown}" if tags else "the layout has no tags"
            raise NotFoundError(f"{self._location}:{reference}: tag not found in index.json ({have})")
        if len({d.digest for d in found}) > 1:
            raise LayoutError(
                f"{self._location}:{reference}: tag is ambiguous: index.json lists it for "
                + ", ".join(sorted({d.digest for d in found}))
            )
        if found[0].media_type not in ALL_MANIFEST_TYPES:
            raise ContentError(f"{self._location}:{reference}: {found[0].media_type} is not a manifest type")
        return found[0]

    def fetch(self, desc: Descriptor, *, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """Whole blob, verified against ``desc`` (digest and size), bounded by ``max_size``."""
        where = f"{self._location}: blob"
        if desc.size > max_size:
            raise ContentError(f"{where} {desc.digest} is {desc.size} bytes, over the {max_size}-byte limit")
        known = self._verified.get(desc.digest)
        if known is not None and len(known) == desc.size:
            return known
        data = self._read_upto(blob_relpath(desc.digest), desc.size + 1)
        check_verified(data, desc, where=where)
        if desc.size <= _REMEMBER_BLOB_SIZE:
            if len(self._verified) >= _REMEMBER_BLOBS:
                self._verified.clear()
            self._verified[desc.digest] = data
        return data

    @contextlib.contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[IO[bytes]]:
        """Stream a blob; the stream raises ContentError at EOF on a digest/size mismatch."""
        from ocisign.oci.streams import VerifyingReader  # streaming: not for manifests and envelopes

        raw = self._open_file(blob_relpath(desc.digest))
        reader = VerifyingReader(raw, desc, where=f"{self._location}: blob")
        try:
            yield reader  # type: ignore[misc]
        finally:
            reader.close()

    def exists(self, desc: Descriptor) -> bool:
        """True when the blob file exists with the declared size."""
        return self._file_size(blob_relpath(desc.digest)) == desc.size

    def manifest(self, desc: Descriptor) -> Manifest:
        """Fetch and parse a manifest or index (cached by digest)."""
        key = (desc.digest, desc.media_type)
        cached = self._manifests.get(key)
        if cached is not None:
            return cached
        data = self.fetch(desc)
        m = parse_manifest(data, media_type=desc.media_type, where=f"{self._location}@{desc.digest}")
        self._manifests[key] = m
        return m

    def _walk(self) -> Iterator[Descriptor]:
        """Every manifest/index descriptor reachable from index.json (bounded depth, no repeats)."""
        seen: set[str] = set()
        level = [d for d in self.index_entries()]
        depth = 0
        while level:
            if depth > MAX_INDEX_DEPTH:
                raise LayoutError(f"{self._location}: indexes nested deeper than {MAX_INDEX_DEPTH} levels")
            nxt: list[Descriptor] = []
            for desc in level:
                if desc.digest in seen:
                    continue
                seen.add(desc.digest)
                yield desc
                if desc.media_type in INDEX_TYPES:
                    with contextlib.suppress(NotFoundError):
                        nxt.extend(self.manifest(desc).manifests)
            level = nxt
            depth += 1

    def referrers(self, subject: Descriptor, *, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests reachable from index.json whose ``subject`` equals ``subject`` (mediaType, digest, size)."""
        out: list[Descriptor] = []
        for desc in self._walk():
            if desc.media_type not in ALL_MANIFEST_TYPES or desc.digest == subject.digest:
                continue
            try:
                m = self.manifest(desc)
            except NotFoundError:
                continue
            if m.subject is None or m.subject.key() != subject.key():
                continue
            at = m.effective_artifact_type
            if artifact_type is not None and at != artifact_type:
                continue
            out.append(
                Descriptor(
                    media_type=desc.media_type,
                    digest=desc.digest,
                    size=desc.size,
                    artifact_type=at,
                    annotations=m.annotations,
                )
            )
        return out

    def tags(self) -> list[tuple[str, Descriptor]]:
        """(tag, descriptor) pairs from index.json, in file order."""
        return [(d.ref_name, d) for d in self.index_entries() if d.ref_name is not None]

    def close(self) -> None:
        """Drop caches."""
        self._manifests.clear()
        self._verified.clear()
        self._index = None


def index_entry(desc: Descriptor, *, tag: str | None) -> Descriptor:
    """The descriptor to record in index.json: ref.name set to ``tag`` when tagging."""
    annotations = dict(desc.annotations or {})
    annotations.pop(ANN_REF_NAME, None)
    if tag:
        annotations[ANN_REF_NAME] = tag
    return Descriptor(
        media_type=desc.media_type,
        digest=desc.digest,
        size=desc.size,
        annotations=annotations or None,
        artifact_type=desc.artifact_type,
        platform=desc.platform,
    )


def merge_index(entries: list[Descriptor], added: list[tuple[Descriptor, str | None]]) -> list[Descriptor]:
    """New index.json entries: a tag moves to its new digest; untagged entries are not duplicated."""
    out = list(entries)
    for desc, tag in added:
        entry = index_entry(desc, tag=tag)
        if tag:
            out = [e for e in out if e.ref_name != tag]
            out.append(entry)
        elif not any(e.digest == desc.digest and e.ref_name is None for e in out):
            out.append(entry)
    return out
