"""The ``oci-archive`` layout: tars from three producers read in place, signed by whole-archive
replacement (original members' bytes kept, kernel copy), crash safety, concurrency, and the
sign → list → verify → extract → verify flow through the CLI."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from ocisign.plugins.oci_archive import ArchiveLayout, create_archive
from ocisign.plugins.oci_dir import DirLayout

from ocisign.errors import ContentError, LayoutError
from ocisign.oci.layout_tools import check_layout
from ocisign.oci.model import (
    EMPTY_JSON_DIGEST,
    MT_EMPTY,
    MT_MANIFEST,
    MT_NOTARY_SIGNATURE,
    Descriptor,
    canonical_json,
    sha256_digest,
)
from ocisign.testing.sample_image import write_image_layout

PRODUCERS = ("python", "gnu", "gnu-posix", "skopeo", "ocisign-pack")
EMPTY = Descriptor(media_type=MT_EMPTY, digest=EMPTY_JSON_DIGEST, size=2)


def produce(kind: str, root: Path, out: Path) -> Path:
    """A layout tar of ``root`` written by ``kind``."""
    if kind == "python":
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
            for child in sorted(root.iterdir()):
                tf.add(child, arcname=child.name)
    elif kind == "gnu":
        subprocess.run(["tar", "-cf", str(out), "-C", str(root), "."], check=True)
    elif kind == "gnu-posix":
        subprocess.run(["tar", "--format=posix", "-cf", str(out), "-C", str(root), "index.json", "oci-layout",
                        "blobs"], check=True)
    elif kind == "skopeo":
        if not shutil.which("skopeo"):
            pytest.skip("skopeo not installed")
        subprocess.run(["skopeo", "copy", "-q", "--preserve-digests", f"oci:{root}:v1", f"oci-archive:{out}:v1"],
                       check=True)
    elif kind == "ocisign-pack":
        from ocisign.oci.layout_tools import pack_layout

        pack_layout(root, out)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return out


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src-layout"
    write_image_layout(root, layer_sizes=(3000, 70_000))
    return root


@pytest.fixture(params=PRODUCERS)
def archive(request: pytest.FixtureRequest, source_dir: Path, tmp_path: Path) -> Path:
    return produce(request.param, source_dir, tmp_path / "image.tar")


def signature_manifest(subject: Descriptor, salt: str = "") -> tuple[Descriptor, bytes, Descriptor, bytes]:
    """A (fake-envelope) notation-style signature manifest for ``subject``."""
    envelope = json.dumps({"payload": "x", "salt": salt}).encode()
    env_desc = Descriptor(media_type="application/jose+json", digest=sha256_digest(envelope), size=len(envelope))
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": MT_MANIFEST, "artifactType": MT_NOTARY_SIGNATURE,
        "config": EMPTY.to_json(), "layers": [env_desc.to_json()], "subject": subject.plain().to_json(),
    })
    return Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(manifest), size=len(manifest)), manifest, \
        env_desc, envelope


def add_signature(layout: ArchiveLayout, subject: Descriptor, salt: str = "") -> Descriptor:
    desc, manifest, env_desc, envelope = signature_manifest(subject, salt)
    with layout.writer() as w:
        w.push_blob(EMPTY, b"{}")
        w.push_blob(env_desc, envelope)
        w.push_manifest(desc, manifest)
    return desc


def keep_ranges(layout: ArchiveLayout) -> list[tuple[int, int]]:
    """Byte ranges of the archive a rewrite must copy unchanged (all but index.json)."""
    tar = layout.tar_index
    out, pos = [], 0
    idx = tar.get("index.json")
    assert idx is not None
    if idx.header_offset > 0:
        out.append((0, idx.header_offset))
    pos = idx.end_offset
    if tar.end_offset > pos:
        out.append((pos, tar.end_offset))
    return out


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "ocisign-" in p.name)


# --- reading ---------------------------------------------------------------------------------------
def test_reads_in_place_from_every_producer(archive: Path, source_dir: Path, pm) -> None:  # type: ignore[no-untyped-def]
    target = pm.open_layout(archive)
    assert isinstance(target, ArchiveLayout)
    desc = target.resolve("v1")
    assert desc.digest == DirLayout(source_dir).resolve("v1").digest
    assert target.resolve(desc.digest).digest == desc.digest
    m = target.manifest(desc)
    for layer in m.layers:
        with target.open_blob(layer) as fh:
            data = fh.read()
        assert sha256_digest(data) == layer.digest
        assert target.exists(layer)
    report = check_layout(target, layout_type="oci-archive")
    assert report.ok, report.problems
    assert report.bytes_verified == sum(d.size for d in m.layers) + m.config.size + desc.size  # type: ignore[union-attr]
    target.close()


def test_blob_streams_are_bounded_slices(source_dir: Path, tmp_path: Path) -> None:
    layout = ArchiveLayout(produce("gnu", source_dir, tmp_path / "x.tar"))
    layer = layout.manifest(layout.resolve("v1")).layers[1]
    with layout._open_file(f"blobs/sha256/{layer.digest.split(':')[1]}") as fh:
        fh.seek(0)
        head = fh.read(100)
        fh.seek(-5, os.SEEK_END)
        tail = fh.read()
        assert len(tail) == 5 and fh.read() == b""
    with layout.open_blob(layer) as fh:
        whole = fh.read()
    assert whole[:100] == head and whole[-5:] == tail and len(whole) == layer.size


def test_tampered_blob_in_archive_is_detected(source_dir: Path, tmp_path: Path) -> None:
    path = produce("python", source_dir, tmp_path / "x.tar")
    layout = ArchiveLayout(path)
    layer = layout.manifest(layout.resolve("v1")).layers[0]
    m = layout.tar_index.get(f"blobs/sha256/{layer.digest.split(':')[1]}")
    assert m is not None
    layout.close()
    data = bytearray(path.read_bytes())
    data[m.data_offset + 7] ^= 0xFF
    path.write_bytes(bytes(data))
    layout = ArchiveLayout(path)
    with pytest.raises(ContentError, match="does not match"), layout.open_blob(layer) as fh:
        fh.read()
    report = check_layout(layout, layout_type="oci-archive")
    assert not report.ok and layer.digest in report.problems[0].message


# --- writing ---------------------------------------------------------------------------------------
def test_sign_rewrites_archive_keeping_original_bytes(archive: Path, tmp_path: Path) -> None:
    layout = ArchiveLayout(archive)
    old = archive.read_bytes()
    ranges = keep_ranges(layout)
    subject = layout.resolve("v1")
    sig = add_signature(layout, subject)
    new = archive.read_bytes()
    kept = b"".join(old[s:e] for s, e in ranges)
    assert new.startswith(kept)
    assert len(new) % 512 == 0 and new.endswith(bytes(1024))
    # our reader (same object, reloaded, and a fresh one) sees the signature
    assert [r.digest for r in layout.referrers(subject.plain())] == [sig.digest]
    fresh = ArchiveLayout(archive)
    assert [r.artifact_type for r in fresh.referrers(subject.plain())] == [MT_NOTARY_SIGNATURE]
    assert fresh.resolve("v1").digest == subject.digest
    assert check_layout(fresh, layout_type="oci-archive").ok
    # GNU tar lists and extracts it; the extracted directory is the same layout
    listing = subprocess.run(["tar", "-tvf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert sig.digest.split(":")[1] in listing
    out = tmp_path / "gnu-extract"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(out)], check=True)
    d = DirLayout(out)
    assert [r.digest for r in d.referrers(subject.plain())] == [sig.digest]
    assert check_layout(d, layout_type="oci").ok
    assert temps(archive.parent) == []


@pytest.mark.skopeo
def test_skopeo_reads_signed_archive(source_dir: Path, tmp_path: Path, skopeo: str) -> None:
    for kind in ("gnu", "skopeo"):
        path = produce(kind, source_dir, tmp_path / f"{kind}.tar")
        layout = ArchiveLayout(path)
        subject = layout.resolve("v1")
        add_signature(layout, subject)
        out = subprocess.run([skopeo, "inspect", "--raw", f"oci-archive:{path}:v1"], capture_output=True,
                             check=True).stdout
        assert sha256_digest(out) == subject.digest


def test_second_session_does_not_duplicate(source_dir: Path, tmp_path: Path) -> None:
    path = produce("python", source_dir, tmp_path / "x.tar")
    layout = ArchiveLayout(path)
    subject = layout.resolve("v1")
    desc, manifest, env_desc, envelope = signature_manifest(subject)
    for _ in range(2):
        with layout.writer() as w:
            w.push_blob(EMPTY, b"{}")
            w.push_blob(env_desc, envelope)
            w.push_manifest(desc, manifest)
    names = [m.name for m in ArchiveLayout(path).tar_index.ordered]
    assert len(names) == len(set(names))
    index = json.loads(ArchiveLayout(path)._read_small("index.json", 1 << 20))
    assert [e["digest"] for e in index["manifests"]].count(desc.digest) == 1
    before = path.read_bytes()
    with layout.writer():
        pass  # nothing pushed: the archive is not rewritten
    assert path.read_bytes() == before


def test_streamed_blob_and_tag(source_dir: Path, tmp_path: Path) -> None:
    import io

    path = produce("gnu", source_dir, tmp_path / "x.tar")
    layout = ArchiveLayout(path)
    big = os.urandom(3 * (1 << 20) + 7)
    desc = Descriptor(media_type="application/octet-stream", digest=sha256_digest(big), size=len(big))
    subject = layout.resolve("v1")
    with layout.writer() as w:
        w.push_blob(desc, io.BytesIO(big))
        w.push_manifest(subject, layout.fetch(subject), tag="v2")
    fresh = ArchiveLayout(path)
    assert fresh.resolve("v2").digest == subject.digest
    with fresh.open_blob(desc) as fh:
        assert fh.read() == big
    # names mirror the producer's "./" style
    assert all(m.raw_name.startswith("./") for m in fresh.tar_index.ordered)


def test_concurrent_pushes_in_one_session(source_dir: Path, tmp_path: Path) -> None:
    """cp pushes blobs from several threads into one writer: nothing may overlap or get lost."""
    import concurrent.futures
    import io
    import random

    path = produce("gnu", source_dir, tmp_path / "x.tar")
    layout = ArchiveLayout(path)
    rng = random.Random(5)
    blobs = [os.urandom(rng.choice([0, 1, 511, 512, 513, 70_000, 1_500_000])) for _ in range(40)]
    descs = [Descriptor(media_type="application/octet-stream", digest=sha256_digest(b), size=len(b)) for b in blobs]
    bad = Descriptor(media_type="x", digest=sha256_digest(b"good"), size=4)

    def push(w: Any, i: int) -> None:
        src = blobs[i % len(blobs)]
        w.push_blob(descs[i % len(blobs)], io.BytesIO(src) if i % 2 else src)

    with layout.writer() as w:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(push, w, i) for i in range(2 * len(blobs))]
            bad_future = pool.submit(w.push_blob, bad, b"evil")
            for f in futures:
                f.result()
            with pytest.raises(ContentError):
                bad_future.result()
        w.push_manifest(layout.resolve("v1"), layout.fetch(layout.resolve("v1")), tag="v2")
    fresh = ArchiveLayout(path)
    for d, b in zip(descs, blobs, strict=True):
        assert fresh.fetch(d, max_size=1 << 21) == b
    assert not fresh.exists(bad)
    names = [m.name for m in fresh.tar_index.ordered]
    assert len(names) == len(set(names))
    assert check_layout(fresh, layout_type="oci-archive").ok


def test_mismatched_content_and_failure_leave_original_untouched(source_dir: Path, tmp_path: Path) -> None:
    import io

    path = produce("python", source_dir, tmp_path / "x.tar")
    before = path.read_bytes()
    layout = ArchiveLayout(path)
    with pytest.raises(ContentError), layout.writer() as w:
        w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"abc"), size=3), b"abd")
    with pytest.raises(ContentError), layout.writer() as w:
        w.push_blob(Descriptor(media_type="x", digest=sha256_digest(b"abc"), size=3), io.BytesIO(b"abcd"))
    with pytest.raises(RuntimeError), layout.writer() as w:
        w.push_blob(EMPTY, b"{}")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == before
    assert temps(tmp_path) == []


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_failed_rename_or_write_leaves_original(source_dir: Path, tmp_path: Path, err: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = produce("gnu", source_dir, tmp_path / "x.tar")
    before = path.read_bytes()
    layout = ArchiveLayout(path)
    subject = layout.resolve("v1")

    def boom(*a: Any, **k: Any) -> None:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "replace" if err == errno.EIO else "fsync", boom)
    with pytest.raises(LayoutError) as info:
        add_signature(layout, subject)
    assert "\n" not in str(info.value)
    if err == errno.ENOSPC:
        assert "no space left" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert temps(tmp_path) == []
    add_signature(layout, subject)  # works again afterwards
    assert len(ArchiveLayout(path).referrers(subject.plain())) == 1


def test_ctrl_c_during_commit_leaves_original(source_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import ocisign.oci.tar_write

    path = produce("python", source_dir, tmp_path / "x.tar")
    before = path.read_bytes()
    layout = ArchiveLayout(path)
    subject = layout.resolve("v1")

    def interrupted(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ocisign.oci.tar_write, "copy_range", interrupted)
    with pytest.raises(KeyboardInterrupt):
        add_signature(layout, subject)
    assert path.read_bytes() == before and temps(tmp_path) == []


@pytest.mark.parametrize("fallback", ["sendfile", "userspace"])
def test_copy_fallbacks_give_same_archive(source_dir: Path, tmp_path: Path, fallback: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = produce("python", source_dir, tmp_path / "x.tar")
    layout = ArchiveLayout(path)
    old, ranges = path.read_bytes(), keep_ranges(layout)

    def nosys(*a: Any, **k: Any) -> int:
        raise OSError(errno.ENOSYS, "not supported")

    monkeypatch.setattr(os, "copy_file_range", nosys)
    if fallback == "userspace":
        monkeypatch.setattr(os, "sendfile", nosys)
    add_signature(layout, layout.resolve("v1"))
    assert path.read_bytes().startswith(b"".join(old[s:e] for s, e in ranges))
    assert check_layout(ArchiveLayout(path), layout_type="oci-archive").ok


def test_open_reader_keeps_old_content_across_commit(source_dir: Path, tmp_path: Path) -> None:
    path = produce("gnu", source_dir, tmp_path / "x.tar")
    reader = ArchiveLayout(path)
    subject = reader.resolve("v1")
    layer = reader.manifest(subject).layers[1]
    stream = reader.open_blob(layer)
    fh = stream.__enter__()
    first = fh.read(1000)
    add_signature(ArchiveLayout(path), subject)
    rest = fh.read()
    stream.__exit__(None, None, None)
    assert sha256_digest(first + rest) == layer.digest
    assert reader.referrers(subject.plain()) == []  # its snapshot is the old archive
    assert len(ArchiveLayout(path).referrers(subject.plain())) == 1


def test_stale_layout_object_sees_other_writers_commit(source_dir: Path, tmp_path: Path) -> None:
    path = produce("python", source_dir, tmp_path / "x.tar")
    a, b = ArchiveLayout(path), ArchiveLayout(path)
    subject = a.resolve("v1")
    s1 = add_signature(a, subject, "one")
    s2 = add_signature(b, subject, "two")  # b indexed before a's commit: must re-read under the lock
    assert {r.digest for r in ArchiveLayout(path).referrers(subject.plain())} == {s1.digest, s2.digest}


def test_symlinked_archive_is_replaced_behind_the_link(source_dir: Path, tmp_path: Path) -> None:
    real = produce("gnu", source_dir, tmp_path / "real.tar")
    link = tmp_path / "link.tar"
    link.symlink_to(real.name)
    layout = ArchiveLayout(link)
    add_signature(layout, layout.resolve("v1"))
    assert link.is_symlink() and os.readlink(link) == "real.tar"
    assert len(ArchiveLayout(real).referrers(layout.resolve("v1").plain())) == 1


def test_mode_is_preserved(source_dir: Path, tmp_path: Path) -> None:
    path = produce("gnu", source_dir, tmp_path / "x.tar")
    path.chmod(0o640)
    layout = ArchiveLayout(path)
    add_signature(layout, layout.resolve("v1"))
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_directory_fails_before_writing(source_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    path = produce("gnu", source_dir, d / "x.tar")
    d.chmod(0o555)
    try:
        layout = ArchiveLayout(path)
        with pytest.raises(LayoutError, match="permission denied"):
            add_signature(layout, layout.resolve("v1"))
    finally:
        d.chmod(0o755)


def test_unwritable_archive_fails_before_writing(source_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = produce("gnu", source_dir, tmp_path / "x.tar")
    before = path.read_bytes()
    layout = ArchiveLayout(path)
    subject = layout.resolve("v1")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # as for a read-only dir/file (root ignores modes)
    with pytest.raises(LayoutError, match="permission denied"):
        add_signature(layout, subject)
    monkeypatch.undo()
    assert path.read_bytes() == before and temps(tmp_path) == []


_KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from ocisign.plugins.oci_archive import ArchiveLayout
    sys.path.insert(0, sys.argv[2])
    from helper import add_signature
    layout = ArchiveLayout(sys.argv[1])
    real_replace = os.replace
    def stall(*a, **k):
        print("READY", flush=True)
        time.sleep(60)
    os.replace = stall
    add_signature(layout, layout.resolve("v1"), "killed")
""")

_HELPER = textwrap.dedent("""
    import json
    from ocisign.oci.model import *
    EMPTY = Descriptor(media_type=MT_EMPTY, digest=EMPTY_JSON_DIGEST, size=2)
    def add_signature(layout, subject, salt=""):
        envelope = json.dumps({"payload": "x", "salt": salt}).encode()
        env = Descriptor(media_type="application/jose+json", digest=sha256_digest(envelope), size=len(envelope))
        manifest = canonical_json({"schemaVersion": 2, "mediaType": MT_MANIFEST,
            "artifactType": MT_NOTARY_SIGNATURE, "config": EMPTY.to_json(), "layers": [env.to_json()],
            "subject": subject.plain().to_json()})
        desc = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(manifest), size=len(manifest))
        with layout.writer() as w:
            w.push_blob(EMPTY, b"{}")
            w.push_blob(env, envelope)
            w.push_manifest(desc, manifest)
        return desc
""")


def test_sigkill_during_commit_leaves_original(source_dir: Path, tmp_path: Path) -> None:
    path = produce("gnu", source_dir, tmp_path / "x.tar")
    before = path.read_bytes()
    helper = tmp_path / "helper-dir"
    helper.mkdir()
    (helper / "helper.py").write_text(_HELPER)
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(path), str(helper)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert path.read_bytes() == before
    assert temps(tmp_path)  # the killed session's temp files are left behind…
    layout = ArchiveLayout(path)
    add_signature(layout, layout.resolve("v1"))
    assert temps(tmp_path) == []  # …and cleaned by the next writer holding the lock
    assert check_layout(ArchiveLayout(path), layout_type="oci-archive").ok


def test_concurrent_writers_all_land(source_dir: Path, tmp_path: Path) -> None:
    path = produce("python", source_dir, tmp_path / "x.tar")
    helper = tmp_path / "helper-dir"
    helper.mkdir()
    (helper / "helper.py").write_text(_HELPER)
    script = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, sys.argv[2])
        from helper import add_signature
        from ocisign.plugins.oci_archive import ArchiveLayout
        while time.time() < float(sys.argv[4]):
            time.sleep(0.005)
        layout = ArchiveLayout(sys.argv[1])
        print(add_signature(layout, layout.resolve("v1"), sys.argv[3]).digest)
    """)
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(helper), f"w{i}", str(start)],
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    digests = set()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        digests.add(out.strip())
    layout = ArchiveLayout(path)
    found = {r.digest for r in layout.referrers(layout.resolve("v1").plain())}
    assert found == digests and len(found) == 4
    assert check_layout(layout, layout_type="oci-archive").ok
    assert temps(tmp_path) == []


# --- create and detection ----------------------------------------------------------------------------
def test_create_new_archive_and_fill_it(source_dir: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "new.tar"
    target = pm.open_layout(path, create=True)
    assert isinstance(target, ArchiveLayout)
    assert target.index_entries() == []
    src = DirLayout(source_dir)
    desc = src.resolve("v1")
    with target.writer() as w:
        for child in src.manifest(desc).children():
            with src.open_blob(child) as fh:
                w.push_blob(child, fh)
        w.push_manifest(desc, src.fetch(desc), tag="v1")
    assert ArchiveLayout(path).resolve("v1").digest == desc.digest
    assert check_layout(ArchiveLayout(path), layout_type="oci-archive").ok
    listing = subprocess.run(["tar", "-tf", str(path)], capture_output=True, text=True, check=True).stdout
    assert "oci-layout" in listing and "index.json" in listing
    with pytest.raises(LayoutError, match="already exists"):
        create_archive(path)


def test_directory_named_tar_is_a_directory(source_dir: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "dir.tar"
    shutil.copytree(source_dir, d)
    assert isinstance(pm.open_layout(d), DirLayout)
    empty = tmp_path / "empty.tar"
    empty.mkdir()
    assert isinstance(pm.open_layout(empty, create=True), DirLayout)
    with pytest.raises(LayoutError, match="not a regular file"):
        pm.open_layout(d, layout_type="oci-archive")
    tar = produce("gnu", source_dir, tmp_path / "plainname")
    assert isinstance(pm.open_layout(tar), ArchiveLayout)


# --- end to end through the CLI ---------------------------------------------------------------------
def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _trust(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy = {"version": "1.0", "trustPolicies": [{
        "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:e2e"], "trustedIdentities": ["*"]}]}
    pfile = tmp_path / "policy.json"
    pfile.write_text(json.dumps(policy))
    res = run_cli("policy", "import", "--force", str(pfile))
    assert res.rc == 0, res.err


def _verify(run_cli, ref: str) -> Any:  # type: ignore[no-untyped-def]
    return run_cli("verify", "--oci-layout", ref, "--scope", "local/hello-world")


@pytest.mark.slow
@pytest.mark.parametrize("producer", ["python", "gnu", "skopeo"])
def test_cli_sign_list_verify_extract_verify(producer: str, source_dir: Path, tmp_path: Path,
                                             run_cli) -> None:  # type: ignore[no-untyped-def]
    for mod in ("ocisign.cli.commands.sign", "ocisign.cli.commands.list", "ocisign.cli.commands.cert"):
        if not _have(mod):
            pytest.skip(f"{mod} not available yet")
    can_verify = _have("ocisign.cli.commands.verify") and _have("ocisign.cli.commands.policy")
    path = produce(producer, source_dir, tmp_path / "hello-world.tar")
    digest = ArchiveLayout(path).resolve("v1").digest
    assert run_cli("cert", "generate-test", "--default", "e2e").rc == 0
    res = run_cli("sign", "--oci-layout", f"{path}:v1")
    assert res.rc == 0, res.err
    assert digest in res.out
    res = run_cli("sign", "--oci-layout", f"{path}@{digest}", "--signature-format", "cose")
    assert res.rc == 0, res.err
    res = run_cli("list", "--oci-layout", f"{path}@{digest}")
    assert res.rc == 0, res.err
    sigs = ArchiveLayout(path).referrers(ArchiveLayout(path).resolve(digest).plain())
    assert len(sigs) == 2 and all(s.digest in res.out for s in sigs)
    res = run_cli("list", "--layout-type", "oci-archive", "--oci-layout", f"{path}:v1")
    assert res.rc == 0 and all(s.digest in res.out for s in sigs)
    res = run_cli("list", "--layout-type", "oci", "--oci-layout", f"{path}:v1")
    assert res.rc == 1  # forced to the directory handler, the tar is not a layout directory
    if _have("ocisign.cli.commands.inspect"):
        res = run_cli("inspect", "--oci-layout", f"{path}@{digest}")
        assert res.rc == 0, res.err
        assert "application/jose+json" in res.out and "application/cose" in res.out
    subprocess.run(["tar", "-tf", str(path)], check=True, capture_output=True)
    if shutil.which("skopeo"):
        subprocess.run(["skopeo", "inspect", f"oci-archive:{path}:v1"], check=True, capture_output=True)
    assert run_cli("layout", "check", str(path)).rc == 0
    if can_verify:
        _trust(run_cli, tmp_path)
        res = _verify(run_cli, f"{path}@{digest}")
        assert res.rc == 0, res.err
    out = tmp_path / "extracted"
    res = run_cli("layout", "extract", str(path), str(out))
    assert res.rc == 0, res.err
    res = run_cli("list", "--oci-layout", f"{out}@{digest}")
    assert res.rc == 0 and all(s.digest in res.out for s in sigs)
    if can_verify:
        res = _verify(run_cli, f"{out}@{digest}")
        assert res.rc == 0, res.err
        # flipping one byte of each signature envelope inside the tar makes verification fail
        bad = tmp_path / "bad.tar"
        data = bytearray(path.read_bytes())
        layout = ArchiveLayout(path)
        for sig in sigs:
            env = layout.manifest(sig).layers[0]
            m = layout.tar_index.get(f"blobs/sha256/{env.digest.split(':')[1]}")
            assert m is not None
            data[m.data_offset + m.size // 2] ^= 1
        bad.write_bytes(bytes(data))
        res = _verify(run_cli, f"{bad}@{digest}")
        assert res.rc == 1 and "Successfully" not in res.out
    else:
        pytest.skip("sign/list/extract checked; verify/policy commands not available yet")


@pytest.mark.registry
def test_cli_cp_from_archive_to_registry(source_dir: Path, tmp_path: Path, run_cli, registry_plain,  # type: ignore[no-untyped-def]
                                         repo_name: str) -> None:
    for mod in ("ocisign.cli.commands.sign", "ocisign.cli.commands.cp", "ocisign.cli.commands.cert"):
        if not _have(mod):
            pytest.skip(f"{mod} not available yet")
    path = produce("gnu", source_dir, tmp_path / "hello-world.tar")
    assert run_cli("cert", "generate-test", "--default", "e2e").rc == 0
    assert run_cli("sign", "--oci-layout", f"{path}:v1").rc == 0
    before = path.read_bytes()
    dst = f"{registry_plain.host}/{repo_name}:v1"
    res = run_cli("cp", "-r", "--from-oci-layout", f"{path}:v1", dst)
    assert res.rc == 0, res.err
    assert path.read_bytes() == before  # the source is never modified
    back = tmp_path / "back.tar"
    res = run_cli("cp", "-r", "--to-oci-layout", dst, f"{back}:v1")
    assert res.rc == 0, res.err
    layout = ArchiveLayout(back)
    subject = layout.resolve("v1")
    assert len(layout.referrers(subject.plain())) == 1
    assert check_layout(layout, layout_type="oci-archive").ok
