"""``ocisign layout check|extract|pack``: whole-layout verification, safe extraction, reproducible packing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from ocisign.plugins.oci_archive import ArchiveLayout
from ocisign.plugins.oci_dir import DirLayout

from ocisign.oci.layout_tools import check_layout, pack_layout
from ocisign.oci.model import MT_INDEX, MT_MANIFEST, canonical_json, sha256_digest
from ocisign.testing.sample_image import write_image_layout


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    root = tmp_path / "layout"
    write_image_layout(root, layer_sizes=(5000, 1234))
    return root


def blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.split(":")[1]


def add_blob(root: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    blob(root, digest).write_bytes(data)
    return digest


def manifest_of(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((root / "index.json").read_text())
    entry = index["manifests"][0]
    return entry, json.loads(blob(root, entry["digest"]).read_text())


def tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


# --- check -------------------------------------------------------------------------------------------
def test_check_ok_directory_and_tar(layout: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("layout", "check", str(layout))
    assert res.rc == 0 and "OK" in res.out and "1 manifests, 4 blobs" in res.out
    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    res = run_cli("layout", "check", "-o", "json", str(tar))
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert doc["ok"] is True and doc["layoutType"] == "oci-archive" and doc["layoutVersion"] == "1.0.0"
    assert doc["manifests"] == 1 and doc["blobs"] == 4 and doc["problems"] == []
    entry, m = manifest_of(layout)
    small = blob(layout, entry["digest"]).stat().st_size + blob(layout, m["config"]["digest"]).stat().st_size
    assert doc["bytesVerified"] == 5000 + 1234 + small


def test_check_reports_every_problem_and_writes_nothing(layout: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _, m = manifest_of(layout)
    l0, l1 = m["layers"][0]["digest"], m["layers"][1]["digest"]
    blob(layout, l0).unlink()  # missing
    with open(blob(layout, l1), "ab") as fh:  # wrong size
        fh.write(b"x")
    cfg = blob(layout, m["config"]["digest"])
    data = bytearray(cfg.read_bytes())
    data[3] ^= 1  # digest mismatch, same size
    cfg.write_bytes(bytes(data))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"2.0.0"}')
    before = snapshot(layout)
    res = run_cli("layout", "check", "-o", "json", str(layout))
    assert res.rc == 1
    doc = json.loads(res.out)
    msgs = [p["message"] for p in doc["problems"]]
    assert len(msgs) == 4, msgs
    assert any("imageLayoutVersion" in x for x in msgs)
    assert any(l0 in x and "missing" in x for x in msgs)
    assert any(l1 in x and "descriptor says 1234" in x for x in msgs)
    assert any(m["config"]["digest"] in x and "does not match" in x for x in msgs)
    res = run_cli("layout", "check", str(layout))
    assert res.rc == 1 and res.out.count("problem:") == 4
    assert res.err.count("\n") == 1 and "4 problems found" in res.err
    assert snapshot(layout) == before


def _write_index(root: Path, entries: list[dict[str, Any]]) -> None:
    (root / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}))


def test_check_media_type_confusion(layout: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    entry, _ = manifest_of(layout)
    inner = {"mediaType": MT_MANIFEST, "digest": entry["digest"], "size": entry["size"]}
    index_bytes = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [inner]})
    index_digest = add_blob(layout, index_bytes)
    # an index listed as a manifest, and a manifest listed as an index
    _write_index(layout, [
        {"mediaType": MT_MANIFEST, "digest": index_digest, "size": len(index_bytes)},
        {"mediaType": MT_INDEX, "digest": entry["digest"], "size": entry["size"]},
    ])
    res = run_cli("layout", "check", "-o", "json", str(layout))
    assert res.rc == 1
    problems = json.loads(res.out)["problems"]
    assert len(problems) == 2
    assert index_digest in problems[0]["message"] and "does not match descriptor" in problems[0]["message"]
    assert entry["digest"] in problems[1]["message"]


def test_check_walks_nested_indexes_and_tolerates_foreign_layers(layout: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _, m = manifest_of(layout)
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "digest": "sha256:" + "ab" * 32, "size": 99, "urls": ["https://example.invalid/layer"]}
    m["layers"].append(foreign)
    mbytes = canonical_json(m)
    mdigest = add_blob(layout, mbytes)
    child = {"mediaType": MT_MANIFEST, "digest": mdigest, "size": len(mbytes)}
    idx = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [child]})
    idigest = add_blob(layout, idx)
    _write_index(layout, [{"mediaType": MT_INDEX, "digest": idigest, "size": len(idx),
                           "annotations": {"org.opencontainers.image.ref.name": "v1"}}])
    res = run_cli("layout", "check", "-o", "json", str(layout))
    doc = json.loads(res.out)
    assert res.rc == 0, doc
    assert doc["manifests"] == 2 and doc["missingExternalBlobs"] == 1
    blob(layout, m["layers"][1]["digest"]).unlink()
    res = run_cli("layout", "check", "-o", "json", str(layout))
    assert res.rc == 1
    assert m["layers"][1]["digest"] in json.loads(res.out)["problems"][0]["message"]


def test_check_bad_index_and_ambiguous_tag(layout: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    entry, _ = manifest_of(layout)
    other = dict(entry, digest="sha256:" + "1" * 64)
    _write_index(layout, [entry, other])
    res = run_cli("layout", "check", "-o", "json", str(layout))
    msgs = [p["message"] for p in json.loads(res.out)["problems"]]
    assert res.rc == 1 and any("ambiguous" in x for x in msgs) and any("missing" in x for x in msgs)
    (layout / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[]}garbage')
    res = run_cli("layout", "check", str(layout))
    assert res.rc == 1 and "index.json" in res.out


def test_check_tar_finds_same_problems(layout: Path, tmp_path: Path) -> None:
    _, m = manifest_of(layout)
    blob(layout, m["layers"][0]["digest"]).unlink()
    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    a = check_layout(DirLayout(layout), layout_type="oci")
    b = check_layout(ArchiveLayout(tar), layout_type="oci-archive")
    assert [p.message.split(" is ")[0] for p in a.problems] == [p.message.split(" is ")[0] for p in b.problems]
    assert len(a.problems) == 1


# --- extract -------------------------------------------------------------------------------------------
def test_extract_round_trip(layout: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (layout / "docs").mkdir()
    (layout / "docs" / "README").write_text("unreferenced files are kept")
    tar = tmp_path / "x.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(layout), "."], check=True)
    out = tmp_path / "out"
    out.mkdir()  # empty directory is fine
    res = run_cli("layout", "extract", str(tar), str(out))
    assert res.rc == 0, res.err
    assert tree(out) == tree(layout)
    assert all(p.stat().st_mode & 0o7777 == 0o644 & ~_umask() for p in out.rglob("*") if p.is_file())
    assert [p.name for p in tmp_path.iterdir() if "ocisign" in p.name] == []
    assert check_layout(DirLayout(out), layout_type="oci").ok


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_extract_usage_errors(layout: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("mine")
    afile = tmp_path / "afile"
    afile.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    for dest, needle in ((full, "not empty"), (afile, "not a directory"), (link, "symbolic link"),
                         (tmp_path / "no" / "such", "parent directory")):
        res = run_cli("layout", "extract", str(tar), str(dest))
        assert res.rc == 2, (dest, res)
        assert needle in res.err
    assert (full / "keep").read_text() == "mine" and not (tmp_path / "elsewhere").exists()


def test_extract_corrupt_blob_writes_nothing(layout: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _, m = manifest_of(layout)
    p = blob(layout, m["layers"][0]["digest"])
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    res = run_cli("layout", "extract", str(tar), str(tmp_path / "out"))
    assert res.rc == 1 and "does not match its name" in res.err
    assert not (tmp_path / "out").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["layout", "x.tar"]


def test_extract_failure_midway_leaves_nothing(layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocisign.errors import LayoutError
    from ocisign.oci.layout_tools import extract_archive

    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    calls = {"n": 0}
    real = os.fsync

    def flaky(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", flaky)
    with pytest.raises(LayoutError, match="No space left"):
        extract_archive(tar, tmp_path / "out")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["layout", "x.tar"]


# --- pack ----------------------------------------------------------------------------------------------
def test_pack_is_reproducible(layout: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    pack_layout(layout, a)
    copy = tmp_path / "copy"
    shutil.copytree(layout, copy)
    for p in copy.rglob("*"):
        os.utime(p, (1_000_000, 2_000_000))
        p.chmod(0o700 if p.is_dir() else 0o600)
    pack_layout(copy, b)
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names == ["blobs", "blobs/sha256", *sorted(n for n in names if n.startswith("blobs/sha256/")),
                     "index.json", "oci-layout"]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0)
        assert m.mode == (0o755 if m.isdir() else 0o644)
    assert a.stat().st_size % 10240 == 0


def test_pack_readable_by_gnu_tar_and_skopeo(layout: Path, tmp_path: Path, skopeo: str) -> None:
    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    out = tmp_path / "gnu"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(tar), "-C", str(out)], check=True)
    assert tree(out) == tree(layout)
    raw = subprocess.run([skopeo, "inspect", "--raw", f"oci-archive:{tar}:v1"], check=True, capture_output=True).stdout
    assert sha256_digest(raw) == manifest_of(layout)[0]["digest"]


def test_pack_long_and_non_ascii_names(layout: Path, tmp_path: Path) -> None:
    deep = layout / "extra" / ("d" * 120) / "é-file"
    deep.parent.mkdir(parents=True)
    deep.write_text("long")
    tar = tmp_path / "x.tar"
    pack_layout(layout, tar)
    lay = ArchiveLayout(tar)
    assert lay.tar_index.get(f"extra/{'d' * 120}/é-file") is not None
    listing = subprocess.run(["tar", "-tf", str(tar)], check=True, capture_output=True, text=True).stdout
    assert f"extra/{'d' * 120}/é-file" in listing


def test_pack_overwrite_rules(layout: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    tar = tmp_path / "x.tar"
    tar.write_bytes(b"precious")
    res = run_cli("layout", "pack", str(layout), str(tar))
    assert res.rc == 2 and "--force" in res.err and tar.read_bytes() == b"precious"
    (layout / "blobs" / "evil").symlink_to("/etc/passwd")
    res = run_cli("layout", "pack", "--force", str(layout), str(tar))
    assert res.rc == 1 and "symbolic link" in res.err
    assert tar.read_bytes() == b"precious"  # a failed pack never truncates the old file
    (layout / "blobs" / "evil").unlink()
    res = run_cli("layout", "pack", "--force", str(layout), str(tar))
    assert res.rc == 0, res.err
    assert ArchiveLayout(tar).resolve("v1")
    link = tmp_path / "link.tar"
    link.symlink_to(tar)
    assert run_cli("layout", "pack", "--force", str(layout), str(link)).rc == 2
    assert run_cli("layout", "pack", str(layout), str(tmp_path)).rc == 2
    assert run_cli("layout", "pack", str(layout), str(layout / "inside.tar")).rc == 2
    (layout / "oci-layout").unlink()
    assert run_cli("layout", "pack", str(layout), str(tmp_path / "y.tar")).rc == 1
    assert sorted(p.name for p in tmp_path.iterdir() if "ocisign" in p.name) == []
