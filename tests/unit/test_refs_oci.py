"""Reference parsing (notation's rules) and strict descriptor/manifest validation (reliability B3)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocisign.errors import BadReferenceError, ContentError
from ocisign.oci.model import (
    MT_INDEX,
    MT_MANIFEST,
    descriptor_from_json,
    parse_json,
    parse_manifest,
    validate_digest,
    validate_size,
)
from ocisign.oci.refs import looks_like_registry_ref, parse_layout_ref, parse_registry_ref

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "path", "ref"),
    [
        ("./hello-world:v1", "./hello-world", "v1"),
        (f"./hello-world@{D}", "./hello-world", D),
        ("a:b/lay:v1", "a:b/lay", "v1"),
        (f"x@y/lay@{D}", "x@y/lay", D),
        ("/abs/path.tar:v1.2", "/abs/path.tar", "v1.2"),
        ("C:\\x\\lay:v1", "C:\\x\\lay", "v1"),
    ],
)
def test_layout_refs(text: str, path: str, ref: str) -> None:
    parsed = parse_layout_ref(text)
    assert (parsed.path, parsed.reference) == (path, ref)


@pytest.mark.parametrize("text", ["./hello-world", ":v1", "dir:", "dir@sha256:abc", f"@{D}", "dir:bad tag", "C:\\x"])
def test_bad_layout_refs(text: str) -> None:
    with pytest.raises(BadReferenceError):
        parse_layout_ref(text)


def test_registry_refs() -> None:
    r = parse_registry_ref("localhost:5001/hello-world:v1")
    assert (r.registry, r.repository, r.tag, r.digest, r.scope) == ("localhost:5001", "hello-world", "v1", None,
                                                                     "localhost:5001/hello-world")
    r = parse_registry_ref(f"registry.example.com/a/b@{D}")
    assert r.reference == D and str(r) == f"registry.example.com/a/b@{D}"
    for bad in ["hello-world:v1", "localhost:5001/Upper:v1", "localhost:5001/x:", f"localhost/x@sha256:{'A' * 64}"]:
        with pytest.raises(BadReferenceError):
            parse_registry_ref(bad)
    assert looks_like_registry_ref("localhost:5001/x:v1")
    assert not looks_like_registry_ref("./x:v1")


@pytest.mark.parametrize(
    "digest",
    ["", "sha256:", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:" + "a" * 65, D + "\n",
     "sha256:" + "١" * 64, "sha256:../../x", "sha512:" + "a" * 64, "md5:" + "a" * 32, "sha256+b64u:abc", 5, None],
)
def test_bad_digests(digest: object) -> None:
    with pytest.raises(ContentError):
        validate_digest(digest)


@pytest.mark.parametrize("size", [-1, 2**63, 2**64, 1.0, 1e3, "12", True, float("nan")])
def test_bad_sizes(size: object) -> None:
    with pytest.raises(ContentError):
        validate_size(size)


def test_duplicate_keys_nan_and_bom_rejected() -> None:
    for data in [b'{"a":1,"a":2}', b'{"a":NaN}', b"\xef\xbb\xbf{}", b"\xff"]:
        with pytest.raises(ContentError):
            parse_json(data, where="x")


def test_type_confusion_rejected() -> None:
    layer = {"mediaType": "x", "digest": D, "size": 1}
    with pytest.raises(ContentError):
        parse_manifest(b'{"schemaVersion":2,"manifests":[],"layers":[]}', media_type=MT_INDEX, where="m")
    with pytest.raises(ContentError):
        parse_manifest(b'{"schemaVersion":2,"config":{},"manifests":[]}', media_type=MT_MANIFEST, where="m")
    with pytest.raises(ContentError, match="does not match"):
        parse_manifest(b'{"schemaVersion":2,"mediaType":"%s","manifests":[]}' % MT_INDEX.encode(),
                       media_type=MT_MANIFEST, where="m")
    with pytest.raises(ContentError):
        descriptor_from_json({**layer, "annotations": {"a": 1}}, where="d")
    assert descriptor_from_json(layer, where="d").size == 1


@given(st.binary(max_size=200))
def test_manifest_parser_only_raises_content_error(data: bytes) -> None:
    with contextlib.suppress(ContentError):
        parse_manifest(data, media_type=MT_MANIFEST, where="fuzz")


def test_a_parsed_manifest_is_remembered_for_its_bytes_and_media_type_only() -> None:
    data = b'{"schemaVersion":2,"mediaType":"%s","manifests":[]}' % MT_INDEX.encode()
    first = parse_manifest(data, media_type=MT_INDEX, where="a")
    assert parse_manifest(bytes(data), media_type=MT_INDEX, where="b") is first  # parsed once
    with pytest.raises(ContentError, match="does not match"):  # the same bytes as another type still fail
        parse_manifest(data, media_type=MT_MANIFEST, where="m")
    with pytest.raises(ContentError, match="does not match"):  # and failures are not remembered
        parse_manifest(data, media_type=MT_MANIFEST, where="m")
    assert parse_manifest(data + b" ", media_type=MT_INDEX, where="c") is not first


def test_tag_and_digest_checks_match_their_regular_expressions() -> None:
    """is_tag and validate_digest check without compiling a regex (start-up): the same answers."""
    import random
    import re

    from ocisign.errors import ContentError
    from ocisign.oci.model import validate_digest
    from ocisign.oci.refs import TAG_RE, is_tag

    digest_re = re.compile(r"\A(sha256|sha512):([a-f0-9]+)\Z")
    lengths = {"sha256": 64, "sha512": 128}

    def by_regex(value: str) -> bool:
        m = digest_re.match(value)
        return bool(m and len(m.group(2)) == lengths[m.group(1)] and value.isascii())

    def checked(value: str) -> bool:
        try:
            validate_digest(value)
        except ContentError:
            return False
        return True

    rng = random.Random(12)
    alphabet = "abcdefABCDEF0123456789:_.-\n\u00e9 gsh"
    cases = ["sha256:" + "a" * 64, "sha256:" + "a" * 63, "sha512:" + "0" * 128, "sha256:" + "A" * 64,
             "sha256:" + "a" * 64 + "\n", "sha384:" + "a" * 96, ":", "", "sha256:", "sha256:" + "a" * 64 + ":",
             "a" * 128, "a" * 129, "_" + "-" * 127, "-a", ".a", "a.b-c_D9"]
    for _ in range(3000):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 5, 64, 127, 128, 129]))))
        cases.append("sha256:" + "".join(rng.choice("abcdef0123456789g\n") for _ in range(64)))
        cases.append("".join(rng.choice("aZ9_.-") for _ in range(rng.choice([1, 127, 128, 129]))))
    for case in cases:
        assert checked(case) == by_regex(case), case
        assert is_tag(case) == bool(TAG_RE.match(case)), case


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_small_contents_are_checked_with_the_same_digest_as_hashlib(algo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """check_verified hashes small contents with CPython's built-in SHA-2 (no OpenSSL start-up): the
    digests are hashlib's, a changed byte still fails, and a Python without them falls back to hashlib."""
    import hashlib

    from ocisign.errors import ContentError
    from ocisign.oci import model

    for data in (b"", b"{}", bytes(range(256)) * 41):
        digest = f"{algo}:{hashlib.new(algo, data).hexdigest()}"
        small = model._small_hasher(digest)
        small.update(data)
        assert f"{algo}:{small.hexdigest()}" == digest
        assert type(small).__module__ != "_hashlib"  # the built-in one on this CPython
        desc = model.Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))
        model.check_verified(data, desc, where="x")
        if data:
            with pytest.raises(ContentError, match="does not match digest"):
                model.check_verified(bytes([data[0] ^ 1]) + data[1:], desc, where="x")
    real_import = __import__

    def no_builtin_sha(name: str, *args: object, **kwargs: object) -> object:
        if name in ("_sha2", "_sha256", "_sha512"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    import builtins

    monkeypatch.setattr(model, "_BUILTIN_SHA", {})  # looked up again, now without the built-in modules
    monkeypatch.setattr(builtins, "__import__", no_builtin_sha)
    fallback = model._small_hasher(f"{algo}:" + "0" * (64 if algo == "sha256" else 128))
    assert type(fallback).__module__ == "_hashlib"  # hashlib's (OpenSSL) object
