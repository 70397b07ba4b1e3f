"""Tar headers from :func:`ocisign.oci.tar_write.member_header` (built with ``tarfile.TarInfo.tobuf``):
the strict indexer, Python's tarfile and GNU tar read back the names, sizes and types written."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ocisign.oci.tar_index import index_tar
from ocisign.oci.tar_write import BLOCK, end_of_archive, member_header, padding

LONG_DIR = "extra/" + "d" * 120 + "/"
NAMES = ["blobs/", "blobs/sha256/", "index.json", "a" * 100, "p" * 60 + "/" + "n" * 90, "é-file.txt",
         "x" * 130]


def _archive(members: list[tuple[str, bytes, bool]]) -> bytes:
    out = b""
    for name, data, is_dir in members:
        out += member_header(name, len(data), is_dir=is_dir, mtime=1_700_000_000) + data + padding(len(data))
    return out + end_of_archive(len(out))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    members: list[tuple[str, bytes, bool]] = [(LONG_DIR, b"", True), (LONG_DIR + "é-file", b"long", False)]
    members += [(n, b"" if n.endswith("/") else n.encode(), n.endswith("/")) for n in NAMES]
    path = tmp_path / "a.tar"
    path.write_bytes(_archive(members))
    return path


def test_short_ascii_names_are_one_ustar_block() -> None:
    hdr = member_header("index.json", 123, mtime=5)
    assert len(hdr) == BLOCK
    assert hdr[257:263] == b"ustar\0" and hdr[156:157] == b"0"
    assert hdr[:10] == b"index.json" and hdr[124:136] == b"%011o\0" % 123
    dir_hdr = member_header("blobs", 0, is_dir=True)
    assert dir_hdr[:6] == b"blobs/" and dir_hdr[156:157] == b"5" and dir_hdr[100:107] == b"0000755"


def test_long_non_ascii_and_huge_members_get_a_pax_header() -> None:
    for name, size in (("é", 1), ("y" * 101, 1), ("big", 8**11)):
        hdr = member_header(name, size)
        assert len(hdr) == 3 * BLOCK
        assert hdr[156:157] == b"x"
        assert hdr[BLOCK * 2 + 156: BLOCK * 2 + 157] == b"0"
    assert b" size=%d\n" % 8**11 in member_header("big", 8**11)


def test_strict_indexer_reads_every_name(archive: Path) -> None:
    fd = os.open(archive, os.O_RDONLY)
    try:
        index = index_tar(fd, location=str(archive))
    finally:
        os.close(fd)
    member = index.get(LONG_DIR + "é-file")
    assert member is not None and member.size == 4
    for name in NAMES:
        if not name.endswith("/"):
            found = index.get(name)
            assert found is not None and found.size == len(name.encode()), name


def test_python_tarfile_reads_back_the_same_members(archive: Path) -> None:
    with tarfile.open(archive) as tf:
        got = {m.name: (m.size, m.isdir(), m.mode, m.uid, m.gid) for m in tf.getmembers()}
    assert got[LONG_DIR.rstrip("/")] == (0, True, 0o755, 0, 0)
    assert got[LONG_DIR + "é-file"] == (4, False, 0o644, 0, 0)
    assert got["é-file.txt"][0] == len("é-file.txt".encode())


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_tar_lists_the_names(archive: Path) -> None:
    listing = subprocess.run(["tar", "-tf", str(archive)], check=True, capture_output=True, text=True).stdout
    assert LONG_DIR in listing.splitlines()
    assert LONG_DIR + "é-file" in listing.splitlines()
    assert not any(line in ("", "/") for line in listing.splitlines())


def test_end_of_archive_pads_to_a_record() -> None:
    data = io.BytesIO(_archive([("f", b"x", False)]))
    assert len(data.getvalue()) % (20 * BLOCK) == 0
