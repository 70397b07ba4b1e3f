"""OCI model: media types, descriptors, strict digest/size validation, manifest parsing.

Pure functions, no I/O. Everything read from disk or the network passes through
:func:`parse_json` (duplicate keys, BOMs, non-objects rejected) and
:func:`descriptor_from_json` (digest and size validated before use).
"""

from __future__ import annotations

import json

from ocisign.errors import ContentError
from ocisign.lazy_dataclass import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "ALL_MANIFEST_TYPES",
    "ANN_CREATED",
    "ANN_REF_NAME",
    "ANN_THUMBPRINT",
    "EMPTY_JSON",
    "EMPTY_JSON_DIGEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "MAX_ENVELOPE_SIZE",
    "MAX_INDEX_DEPTH",
    "MAX_MANIFEST_SIZE",
    "MT_ARTIFACT_MANIFEST",
    "MT_COSE",
    "MT_DOCKER_LIST",
    "MT_DOCKER_MANIFEST",
    "MT_EMPTY",
    "MT_IMAGE_CONFIG",
    "MT_INDEX",
    "MT_JWS",
    "MT_MANIFEST",
    "MT_NOTARY_PAYLOAD",
    "MT_NOTARY_SIGNATURE",
    "Descriptor",
    "Manifest",
    "canonical_json",
    "check_verified",
    "descriptor_from_json",
    "digest_hex",
    "hasher_for",
    "is_digest_reference",
    "is_signature_manifest",
    "parse_json",
    "parse_json_object",
    "parse_manifest",
    "sha256_digest",
    "validate_digest",
    "validate_size",
]

# --- media types -------------------------------------------------------------------------------
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_EMPTY = "application/vnd.oci.empty.v1+json"
MT_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
MT_JWS = "application/jose+json"
MT_COSE = "application/cose"
MT_NOTARY_PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"

MANIFEST_TYPES = frozenset({MT_MANIFEST, MT_ARTIFACT_MANIFEST, MT_DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MT_INDEX, MT_DOCKER_LIST})
ALL_MANIFEST_TYPES = MANIFEST_TYPES | INDEX_TYPES

ANN_REF_NAME = "org.opencontainers.image.ref.name"
ANN_CREATED = "org.opencontainers.image.created"
ANN_THUMBPRINT = "io.cncf.notary.x509chain.thumbprint#S256"

EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#: readers refuse manifests larger than this (as notation/oras do)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
#: readers refuse signature envelopes larger than this
MAX_ENVELOPE_SIZE = 32 * 1024 * 1024
#: bound on nested index depth when walking
MAX_INDEX_DEPTH = 16

_HEX_LEN = {"sha256": 64, "sha512": 128}
_LOWER_HEX = "0123456789abcdef"
_MAX_SIZE = 2**63 - 1


def validate_digest(value: object, *, where: str = "digest") -> str:
    """Return ``value`` if it is a registered, well-formed digest, else raise ContentError."""
    if not isinstance(value, str):
        raise ContentError(f"{where}: digest must be a string, got {type(value).__name__}")
    # r"\A(sha256|sha512):([a-f0-9]+)\Z" with the algorithm's length, without compiling a regex
    algo, _, hex_part = value.partition(":")
    if len(hex_part) != _HEX_LEN.get(algo) or hex_part.strip(_LOWER_HEX):
        raise ContentError(f"{where}: invalid digest {value!r} (want sha256:<64 lowercase hex>)")
    return value


def digest_ok(value: str) -> bool:
    """:func:`validate_digest`'s verdict on a string, without a regular expression or a message."""
    algorithm, colon, hex_part = value.partition(":")
    return bool(colon) and _HEX_LEN.get(algorithm) == len(hex_part) and not hex_part.strip("0123456789abcdef")


def validate_size(value: object, *, where: str = "size") -> int:
    """Return ``value`` if it is a non-negative int below 2**63 (bools and floats refused)."""
    if type(value) is not int or value < 0 or value > _MAX_SIZE:
        raise ContentError(f"{where}: invalid size {value!r} (want a non-negative integer)")
    return value


def is_digest_reference(reference: str) -> bool:
    """True when a tag-or-digest reference is a digest (``sha256:…``/``sha512:…``)."""
    return reference.startswith(("sha256:", "sha512:"))


def digest_hex(digest: str) -> str:
    """The hex part of a validated digest."""
    return digest.split(":", 1)[1]


def hasher_for(digest: str) -> Any:
    """A new hashlib object for the algorithm of ``digest``."""
    algo = digest.split(":", 1)[0]
    if algo not in _HEX_LEN:
        raise ContentError(f"unsupported digest algorithm {algo!r}")
    import hashlib

    return hashlib.new(algo)


#: whole contents up to this size are hashed by CPython's own SHA-2 when it has one
SMALL_CONTENT = 1 << 20


def _small_hasher(digest: str) -> Any:
    """A hash object for a small in-memory content (a manifest, an index, an envelope).

    CPython's built-in SHA-2 (``_sha2`` since 3.12, ``_sha256``/``_sha512`` before: the
    implementations :mod:`hashlib` itself falls back to) gives the same digests and needs no
    OpenSSL start-up, which is about 4 ms of a ~35 ms ``list``; OpenSSL is faster per byte, so
    blobs and streams keep :func:`hasher_for`. A Python without them (e.g. a FIPS build) gets
    :func:`hasher_for`'s object. The constructor is looked up once per algorithm (a failed
    import searches ``sys.path`` every time it is tried).
    """
    algo = digest.split(":", 1)[0]
    try:
        make = _BUILTIN_SHA[algo]
    except KeyError:
        make = _BUILTIN_SHA[algo] = _builtin_sha(algo)
    return make() if make is not None else hasher_for(digest)


#: algorithm -> CPython's built-in constructor for it (None: there is none, use hashlib)
_BUILTIN_SHA: dict[str, Any] = {}


def _builtin_sha(algo: str) -> Any:
    if algo not in _HEX_LEN:
        return None
    for module in ("_sha2", "_sha256" if algo == "sha256" else "_sha512"):
        try:
            return getattr(__import__(module), algo)
        except (ImportError, AttributeError):
            continue
    return None


def check_verified(data: bytes, desc: Descriptor, *, where: str) -> None:
    """ContentError unless ``data`` (read up to one byte past ``desc.size``) is exactly the content of ``desc``
    (how a whole small blob — a manifest, an envelope — is checked once it is read).

    The messages are those of :class:`VerifyingReader`.
    """
    if len(data) < desc.size:
        raise ContentError(f"{where}: {desc.digest} is truncated ({len(data)} of {desc.size} bytes)")
    if len(data) > desc.size:
        raise ContentError(f"{where}: {desc.digest} is larger than its declared size {desc.size}")
    h = _small_hasher(desc.digest) if len(data) <= SMALL_CONTENT else hasher_for(desc.digest)
    h.update(data)
    actual = f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}"
    if actual != desc.digest:
        raise ContentError(f"{where}: content does not match digest {desc.digest} (got {actual})")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Descriptor:
    """An OCI content descriptor. Equality for graph purposes is :meth:`key`."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    artifact_type: str | None = None
    platform: Mapping[str, Any] | None = None
    urls: tuple[str, ...] | None = None
    data: str | None = None

    def key(self) -> tuple[str, str, int]:
        """(mediaType, digest, size): how oras-go compares nodes of the content graph."""
        return (self.media_type, self.digest, self.size)

    def plain(self) -> Descriptor:
        """Only mediaType, digest and size (what notation signs and records as subject)."""
        return Descriptor(media_type=self.media_type, digest=self.digest, size=self.size)

    @property
    def ref_name(self) -> str | None:
        """The ``org.opencontainers.image.ref.name`` annotation, if any."""
        return (self.annotations or {}).get(ANN_REF_NAME)

    def to_json(self) -> dict[str, Any]:
        """JSON object in OCI field order (mediaType, digest, size, …)."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.data is not None:
            out["data"] = self.data
        if self.platform:
            out["platform"] = dict(self.platform)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # name the first key seen twice
        seen: set[str] = set()
        for k, _v in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_DECODERS: list[json.JSONDecoder] = []
_OPENERS = ("{", "[")


def _strict_decoder() -> json.JSONDecoder:
    """One decoder for every strict parse (``json.loads`` with options builds a new one per call)."""
    if not _DECODERS:
        _DECODERS.append(json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant))
    return _DECODERS[0]


def parse_json(data: bytes, *, where: str) -> Any:
    """Strict JSON: UTF-8 without BOM, no duplicate keys, no NaN/Infinity."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ContentError(f"{where}: JSON must not start with a byte order mark")
    try:
        text = data.decode("utf-8")
        decoder = _DECODERS[0] if _DECODERS else _strict_decoder()
        if text[:1] in _OPENERS:  # no leading whitespace: the C scanner directly (decode's own steps in Python)
            try:
                obj, end = decoder.scan_once(text, 0)  # type: ignore[attr-defined]  # set in __init__
            except StopIteration:
                pass  # decode() raises its own error below
            else:
                if end == len(text):
                    return obj
        return decoder.decode(text)  # whitespace around the value, trailing data, the error messages
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ContentError(f"{where}: invalid JSON ({str(exc).splitlines()[0]})") from None


def parse_json_object(data: bytes, *, where: str) -> dict[str, Any]:
    """:func:`parse_json` that must yield an object."""
    obj = parse_json(data, where=where)
    if not isinstance(obj, dict):
        raise ContentError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _opt_str_map(value: object, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ContentError(f"{where}: annotations must map strings to strings")
    return value


def _check_embedded_data(data: object, digest: str, size: int, where: str) -> None:
    """A descriptor's ``data`` must be strict base64 of exactly the content it describes (image-spec MUST).

    ocisign never reads content from ``data``; an inconsistent descriptor is refused instead of being
    signed, listed or copied as if it were fine.
    """
    import base64
    import binascii

    if not isinstance(data, str):
        raise ContentError(f"{where}: data must be a base64 string")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise ContentError(f"{where}.data: not valid base64") from None
    h = hasher_for(digest)
    h.update(raw)
    if len(raw) != size or h.hexdigest() != digest_hex(digest):
        raise ContentError(f"{where}.data: embedded data does not match the descriptor's digest {digest} and size")


_PLAIN_KEYS = frozenset({"mediaType", "digest", "size"})


def descriptor_from_json(obj: object, *, where: str) -> Descriptor:
    """Validate a descriptor JSON object and build a :class:`Descriptor`."""
    if not isinstance(obj, dict):
        raise ContentError(f"{where}: descriptor must be an object")
    mt = obj.get("mediaType")
    if not isinstance(mt, str) or not mt:
        raise ContentError(f"{where}: descriptor mediaType missing or not a string")
    digest = obj.get("digest")
    if type(digest) is not str or not digest_ok(digest):  # messages (and their where) only on failure
        digest = validate_digest(digest, where=f"{where}.digest")
    size = obj.get("size")
    if type(size) is not int or size < 0 or size > _MAX_SIZE:
        size = validate_size(size, where=f"{where}.size")
    if obj.keys() == _PLAIN_KEYS:  # what a signature payload's targetArtifact usually is
        return Descriptor(media_type=mt, digest=digest, size=size)
    at = obj.get("artifactType")
    if at is not None and not isinstance(at, str):
        raise ContentError(f"{where}: artifactType must be a string")
    urls = obj.get("urls")
    if urls is not None and (not isinstance(urls, list) or not all(isinstance(u, str) for u in urls)):
        raise ContentError(f"{where}: urls must be a list of strings")
    data = obj.get("data")
    if data is not None:
        _check_embedded_data(data, digest, size, where)
    platform = obj.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ContentError(f"{where}: platform must be an object")
    annotations = obj.get("annotations")
    return Descriptor(
        media_type=mt,
        digest=digest,
        size=size,
        annotations=None if annotations is None else _opt_str_map(annotations, f"{where}.annotations"),
        artifact_type=at or None,
        platform=platform,
        urls=tuple(urls) if urls else None,
        data=data,
    )


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A parsed image manifest, artifact manifest or index (one class; ``is_index`` says which)."""

    media_type: str
    raw: Mapping[str, Any]
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = None

    @property
    def is_index(self) -> bool:
        """True for image indexes / docker manifest lists."""
        return self.media_type in INDEX_TYPES

    def children(self) -> tuple[Descriptor, ...]:
        """Successors in the content graph: config, layers, manifests (not the subject)."""
        head = (self.config,) if self.config else ()
        return head + self.layers + self.manifests

    @property
    def effective_artifact_type(self) -> str | None:
        """``artifactType`` or, when absent, ``config.mediaType`` (how registries derive it)."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config else None


def _desc_list(obj: dict[str, Any], key: str, where: str) -> tuple[Descriptor, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ContentError(f"{where}: {key} must be a list")
    return tuple(descriptor_from_json(d, where=f"{where}.{key}[{i}]") for i, d in enumerate(value))


#: manifests parsed in this process, by (exact bytes, descriptor media type): parsing is a pure
#: function of both, and a batch meets the same manifests again (a manifest is read by resolution,
#: then by referrer discovery, then as a signature); failures are never remembered
_PARSED_MANIFESTS: dict[tuple[bytes, str], Manifest] = {}
_PARSED_MANIFESTS_LIMIT = 512
_PARSED_MANIFEST_MAX_BYTES = 64 * 1024


def parse_manifest(data: bytes, *, media_type: str, where: str) -> Manifest:
    """Parse manifest/index bytes fetched for a descriptor of ``media_type``.

    Rejects type confusion: an index with config/layers, a manifest with ``manifests``,
    a ``mediaType`` field disagreeing with the descriptor. The same bytes and media type are
    parsed once per process (the result is immutable; callers must not change ``raw``).
    """
    if len(data) > _PARSED_MANIFEST_MAX_BYTES:
        return _parse_manifest(data, media_type=media_type, where=where)
    key = (bytes(data), media_type)
    found = _PARSED_MANIFESTS.get(key)
    if found is None:
        found = _parse_manifest(key[0], media_type=media_type, where=where)
        if len(_PARSED_MANIFESTS) >= _PARSED_MANIFESTS_LIMIT:
            _PARSED_MANIFESTS.clear()
        _PARSED_MANIFESTS[key] = found
    return found


def _parse_manifest(data: bytes, *, media_type: str, where: str) -> Manifest:
    if len(data) > MAX_MANIFEST_SIZE:
        raise ContentError(f"{where}: manifest of {len(data)} bytes exceeds the {MAX_MANIFEST_SIZE} limit")
    return manifest_from_object(parse_json_object(data, where=where), media_type=media_type, where=where)


def manifest_from_object(obj: dict[str, Any], *, media_type: str, where: str) -> Manifest:
    """:func:`parse_manifest` for an already parsed JSON object (``index.json``, read once)."""
    declared = obj.get("mediaType")
    if declared is not None and declared != media_type:
        raise ContentError(f"{where}: mediaType {declared!r} does not match descriptor {media_type!r}")
    if media_type in INDEX_TYPES:
        if "config" in obj or "layers" in obj or "blobs" in obj:
            raise ContentError(f"{where}: an index must not have config or layers")
        if obj.get("schemaVersion") != 2:
            raise ContentError(f"{where}: schemaVersion must be 2")
        if not isinstance(obj.get("manifests"), list):
            raise ContentError(f"{where}: manifests must be a list")
    elif media_type in (MT_MANIFEST, MT_DOCKER_MANIFEST):
        if "manifests" in obj:
            raise ContentError(f"{where}: an image manifest must not have manifests")
        if obj.get("schemaVersion") != 2:
            raise ContentError(f"{where}: schemaVersion must be 2")
        if "config" not in obj:
            raise ContentError(f"{where}: image manifest has no config")
    elif media_type == MT_ARTIFACT_MANIFEST:
        if "manifests" in obj or "config" in obj:
            raise ContentError(f"{where}: an artifact manifest must not have config or manifests")
    else:
        raise ContentError(f"{where}: {media_type!r} is not a manifest media type")
    config = descriptor_from_json(obj["config"], where=f"{where}.config") if "config" in obj else None
    layer_key = "blobs" if media_type == MT_ARTIFACT_MANIFEST else "layers"
    subject = obj.get("subject")
    at = obj.get("artifactType")
    if at is not None and not isinstance(at, str):
        raise ContentError(f"{where}: artifactType must be a string")
    return Manifest(
        media_type=media_type,
        raw=obj,
        config=config,
        layers=_desc_list(obj, layer_key, where),
        manifests=_desc_list(obj, "manifests", where),
        subject=descriptor_from_json(subject, where=f"{where}.subject") if subject is not None else None,
        artifact_type=at or None,
        annotations=_opt_str_map(obj.get("annotations"), f"{where}.annotations"),
    )


def is_signature_manifest(m: Manifest) -> bool:
    """True for Notary signature manifests in any form notation writes or reads.

    Legacy (released notation): config.mediaType == notary signature, no artifactType.
    New (notation-go main): artifactType == notary signature with an empty config.
    Legacy artifact manifest: artifactType == notary signature.
    """
    if m.media_type == MT_ARTIFACT_MANIFEST:
        return m.artifact_type == MT_NOTARY_SIGNATURE
    if m.media_type != MT_MANIFEST or m.config is None:
        return False
    if m.artifact_type is None:
        return m.config.media_type == MT_NOTARY_SIGNATURE
    return m.artifact_type == MT_NOTARY_SIGNATURE and m.config.media_type in (MT_EMPTY, MT_NOTARY_SIGNATURE)


def canonical_json(obj: Any) -> bytes:
    """Compact JSON bytes (no spaces), key order as given — how Go's encoder writes structs."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
