"""The ``oci`` directory layout: resolution, strict reading, crash-safe writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ocisign.plugins.oci_dir import DirLayout, create_layout

from ocisign.errors import ContentError, LayoutError, NotFoundError
from ocisign.oci.model import MT_MANIFEST, Descriptor, canonical_json, sha256_digest


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_resolve_tag_and_digest(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    layout = DirLayout(root)
    desc = layout.resolve("v1")
    assert desc.media_type == MT_MANIFEST
    assert layout.resolve(desc.digest).digest == desc.digest
    with pytest.raises(NotFoundError):
        layout.resolve("v2")
    with pytest.raises(NotFoundError):
        layout.resolve("sha256:" + "0" * 64)


def test_unlisted_manifest_is_not_found(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    desc = DirLayout(root).resolve("v1")
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    with pytest.raises(NotFoundError, match=r"index\.json does not list it"):
        DirLayout(root).resolve(desc.digest)


def test_ambiguous_tag_is_an_error(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    index = json.loads((root / "index.json").read_text())
    other = {"mediaType": MT_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 3,
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    index["manifests"].append(other)
    (root / "index.json").write_text(json.dumps(index))
    with pytest.raises(LayoutError, match="ambiguous"):
        DirLayout(root).resolve("v1")


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b'{"schemaVersion":2,"manifests":[]}garbage', b"\xef\xbb\xbf{}", b"[]",
     b'{"schemaVersion":2,"manifests":null}', b'{"schemaVersion":2,"manifests":[],"layers":[]}',
     b'{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:AB","size":1}]}',
     b'{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:' + b"a" * 64 + b'","size":-1}]}'],
)
def test_bad_index_json_is_rejected_and_nothing_written(make_layout, content: bytes) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    (root / "index.json").write_bytes(content)
    before = snapshot(root)
    with pytest.raises(LayoutError, match=r"index\.json"):
        DirLayout(root).resolve("v1")
    assert snapshot(root) == before


def test_missing_oci_layout_file_is_rejected(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    (root / "oci-layout").unlink()
    with pytest.raises(LayoutError, match="oci-layout"):
        DirLayout(root).resolve("v1")
    assert not (root / "oci-layout").exists()


def test_symlinked_blob_and_fifo_are_refused(make_layout, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    layout = DirLayout(root)
    desc = layout.resolve("v1")
    blob = root / "blobs" / "sha256" / desc.digest.split(":")[1]
    outside = tmp_path / "outside"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(LayoutError, match="symbolic link"):
        DirLayout(root).fetch(desc)
    blob.unlink()
    os.mkfifo(blob)
    with pytest.raises(LayoutError, match="not a regular file"):
        DirLayout(root).fetch(desc)


def test_corrupt_blob_is_detected(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    desc = DirLayout(root).resolve("v1")
    blob = root / "blobs" / "sha256" / desc.digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[10] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(ContentError, match="does not match"):
        DirLayout(root).fetch(desc)
    with pytest.raises(ContentError), DirLayout(root).open_blob(desc) as fh:
        fh.read()


def test_writer_adds_untagged_referrer_once(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    layout = DirLayout(root)
    subject = layout.resolve("v1").plain()
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.notary.signature", "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [], "subject": subject.to_json()})
    desc = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(manifest), size=len(manifest))
    for _ in range(2):
        with layout.writer() as w:
            w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"{}"), size=2), b"{}")
            w.push_manifest(desc, manifest)
    index = json.loads((root / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]].count(desc.digest) == 1
    refs = DirLayout(root).referrers(subject)
    assert [r.digest for r in refs] == [desc.digest]
    assert refs[0].artifact_type == "application/vnd.cncf.notary.signature"


def test_writer_rejects_mismatched_content(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    layout = DirLayout(root)
    before = snapshot(root)
    with pytest.raises(ContentError), layout.writer() as w:
        w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"abc"), size=3), b"abd")
    assert snapshot(root) == before


def test_create_layout_initialises_empty_dir(tmp_path: Path) -> None:
    layout = create_layout(tmp_path / "new")
    assert layout.index_entries() == []
    assert json.loads((tmp_path / "new" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def _signature_manifest(subject: Descriptor) -> tuple[Descriptor, bytes]:
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.notary.signature", "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [], "subject": subject.to_json()})
    return Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(manifest), size=len(manifest)), manifest


def test_new_blobs_are_durable_before_index_json_names_them(make_layout, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each file is fsynced before its rename, all before the first rename (no file is created between
    two fsyncs, and the files are synced together); the blobs directory once, after the blob renames
    and before index.json is replaced; the layout directory last."""
    root = make_layout()
    layout = DirLayout(root)
    desc, manifest = _signature_manifest(layout.resolve("v1").plain())
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with layout.writer() as w:
        w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"{}"), size=2), b"{}")
        w.push_manifest(desc, manifest)
    blobs = str((root / "blobs" / "sha256").resolve())
    index = str((root / "index.json").resolve())
    kinds = [(kind, "blobs-dir" if path == blobs else "root" if path == str(root.resolve())
              else "index" if path == index else "index-tmp" if "/.index.json." in path
              else "blob-tmp" if path.startswith(blobs + "/.tmp-") else "blob" if path.startswith(blobs)
              else path) for kind, path in events]
    # the three temp files are synced concurrently: in any order, all before the first rename
    assert sorted(kinds[:3]) == [("fsync", "blob-tmp"), ("fsync", "blob-tmp"), ("fsync", "index-tmp")]
    assert kinds[3:] == [("replace", "blob"), ("replace", "blob"), ("fsync", "blobs-dir"), ("replace", "index"),
                         ("fsync", "root")]
    assert not [p for p in (root / "blobs" / "sha256").iterdir() if p.name.startswith(".")]  # no temp left


def test_a_failed_session_leaves_no_staged_file(make_layout) -> None:  # type: ignore[no-untyped-def]
    """Blobs staged in a session that fails are removed; nothing of them becomes visible."""
    root = make_layout()
    layout = DirLayout(root)
    desc, manifest = _signature_manifest(layout.resolve("v1").plain())
    before = snapshot(root)
    with pytest.raises(RuntimeError), layout.writer() as w:
        w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"{}"), size=2), b"{}")
        w.push_manifest(desc, manifest)
        assert [p for p in (root / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp-")]
        raise RuntimeError("boom")
    assert snapshot(root) == before
    assert not [p for p in (root / "blobs" / "sha256").iterdir() if p.name.startswith(".")]


def test_many_staged_blobs_are_published_early(make_layout, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A session never holds more than the staging limit of temp files open; all blobs end up stored."""
    import ocisign.plugins.oci_dir as oci_dir

    monkeypatch.setattr(oci_dir, "_STAGE_LIMIT", 3)
    root = make_layout()
    layout = DirLayout(root)
    blobs = [f"blob {i}".encode() for i in range(7)]
    with layout.writer() as w:
        for data in blobs:
            w.push_blob(Descriptor(media_type="x", digest=sha256_digest(data), size=len(data)), data)
            assert len(w._staged) < 3
    for data in blobs:
        assert (root / "blobs" / "sha256" / sha256_digest(data).split(":")[1]).read_bytes() == data
    assert not [p for p in (root / "blobs" / "sha256").iterdir() if p.name.startswith(".")]


def test_a_session_reads_each_small_blob_once(make_layout, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Resolution, referrer discovery and fetching read a manifest from disk (and hash it) once."""
    root = make_layout()
    layout = DirLayout(root)
    subject = layout.resolve("v1").plain()
    desc, manifest = _signature_manifest(subject)
    with layout.writer() as w:
        w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"{}"), size=2), b"{}")
        w.push_manifest(desc, manifest)
    layout.close()
    reads: list[str] = []
    real = DirLayout._read_upto

    def counting(self: DirLayout, relpath: str, limit: int) -> bytes:
        reads.append(relpath)
        return real(self, relpath, limit)

    monkeypatch.setattr(DirLayout, "_read_upto", counting)
    layout = DirLayout(root)
    for _ in range(3):
        assert layout.fetch(subject)
        assert [r.digest for r in layout.referrers(subject)] == [desc.digest]
        assert layout.fetch(desc) == manifest
    assert sorted(reads) == sorted({f"blobs/sha256/{d.digest.split(':')[1]}" for d in (subject, desc)})
    layout.close()
    reads.clear()
    assert DirLayout(root).fetch(desc) == manifest  # a new session reads (and verifies) again
    assert len(reads) == 1


def test_directories_are_opened_once_and_closed_with_the_layout(make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    before = len(os.listdir("/proc/self/fd"))
    layout = DirLayout(root)
    desc = layout.resolve("v1")
    layout.fetch(desc)
    assert len(os.listdir("/proc/self/fd")) == before + 3  # the layout, blobs, blobs/sha256
    layout.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_blobs_directory_replaced_by_a_symlink_is_refused(make_layout, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    desc = DirLayout(root).resolve("v1")
    moved = tmp_path / "elsewhere"
    (root / "blobs").rename(moved)
    (root / "blobs").symlink_to(moved)
    with pytest.raises(LayoutError, match="symbolic link"):
        DirLayout(root).fetch(desc)
