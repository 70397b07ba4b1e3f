"""Hostile layout tars (reliability B2, B1), built from raw 512-byte headers, not tarfile helpers.

Every hostile archive must end in one clear one-line LayoutError naming the member (exit 1 from
the CLI) with nothing written anywhere; accepted variants (``./`` prefixes, PAX and GNU long
names, any member order, ustar prefix fields, base-256 sizes) must read as a layout.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from ocisign.plugins.oci_archive import ArchiveLayout

from ocisign.errors import LayoutError
from ocisign.oci.layout_tools import check_layout
from ocisign.testing.sample_image import write_image_layout

BLOCK = 512
END = bytes(2 * BLOCK)


# --- a raw tar factory ---------------------------------------------------------------------------
def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def header(
    name: str | bytes,
    *,
    size: int = 0,
    typeflag: bytes = b"0",
    linkname: bytes = b"",
    gnu: bool = False,
    magic: bytes | None = None,
    prefix: bytes = b"",
    size_field: bytes | None = None,
    bad_checksum: bool = False,
) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    h = bytearray(BLOCK)
    h[0 : min(len(raw), 100)] = raw[:100]
    h[100:108] = _octal(0o644, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = size_field if size_field is not None else _octal(size, 12)
    h[136:148] = _octal(1700000000, 12)
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[157 : 157 + len(linkname)] = linkname
    if magic is not None:
        h[257 : 257 + len(magic)] = magic
    elif gnu:
        h[257:265] = b"ustar  \0"
    else:
        h[257:263] = b"ustar\0"
        h[263:265] = b"00"
    h[345 : 345 + len(prefix)] = prefix
    chk = sum(h) + (1 if bad_checksum else 0)
    h[148:156] = b"%06o\0 " % chk
    return bytes(h)


def pad(n: int) -> bytes:
    return bytes(-n % BLOCK)


def member(name: str | bytes, data: bytes = b"", **kw: object) -> bytes:
    return header(name, size=len(data), **kw) + data + pad(len(data))  # type: ignore[arg-type]


def pax(records: dict[str, bytes | str], *, typeflag: bytes = b"x") -> bytes:
    body = b""
    for k, v in records.items():
        val = v.encode() if isinstance(v, str) else v
        rec = b" " + k.encode() + b"=" + val + b"\n"
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n:
            n = len(str(n)) + len(rec)
        body += str(n).encode() + rec
    return member("././@PaxHeader", body, typeflag=typeflag)


def longname(name: bytes, typeflag: bytes = b"L") -> bytes:
    return member("././@LongLink", name + b"\0", typeflag=typeflag, gnu=True)


def directory(name: str) -> bytes:
    return header(name, typeflag=b"5")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """(name, content) of a valid hello-world layout."""
    root = tmp_path_factory.mktemp("src") / "layout"
    write_image_layout(root)
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out.append((p.relative_to(root).as_posix(), p.read_bytes()))
    return out


def plain(files: list[tuple[str, bytes]], prefix: str = "") -> bytes:
    return b"".join(member(prefix + n, d) for n, d in files)


def write(tmp_path: Path, data: bytes, name: str = "x.tar") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*")) if not p.is_symlink()}


# --- accepted variants -----------------------------------------------------------------------------
def _pax_all(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for n, d in files:
        out += pax({"path": "./" + n, "mtime": "1700000000.5", "uname": "someone"}) + member("x" * 99, d)
    return out


def _gnu_all(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for n, d in files:
        out += longname(("./" + n).encode()) + member(n[:100], d, gnu=True)
    return out


def _ustar_prefix(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for n, d in files:
        head, _, tail = n.rpartition("/")
        out += member(tail, d, prefix=head.encode()) if head else member(n, d)
    return out


def _base256(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for n, d in files:
        field = bytes([0x80]) + len(d).to_bytes(11, "big")
        out += header(n, size_field=field, gnu=True) + d + pad(len(d))
    return out


ACCEPTED: dict[str, Callable[[list[tuple[str, bytes]]], bytes]] = {
    "plain": lambda f: plain(f) + END,
    "dot-slash": lambda f: directory("./") + directory("./blobs/") + directory("./blobs/sha256/")
    + plain(f, "./") + END,
    "reversed-order": lambda f: plain(list(reversed(f))) + END,
    "index-first": lambda f: plain(sorted(f, key=lambda x: x[0] != "index.json")) + END,
    "double-slash": lambda f: b"".join(member(n.replace("/", "//"), d) for n, d in f) + END,
    "pax-paths": lambda f: _pax_all(f) + END,
    "gnu-long-names": lambda f: _gnu_all(f) + END,
    "ustar-prefix": lambda f: _ustar_prefix(f) + END,
    "base256-sizes": lambda f: _base256(f) + END,
    "global-pax-comment": lambda f: pax({"comment": "built by git archive"}, typeflag=b"g") + plain(f) + END,
    "record-padding": lambda f: plain(f) + END + bytes(10240 - (len(plain(f)) + 1024) % 10240),
    "long-unreferenced-file": lambda f: plain(f) + pax({"path": "docs/" + "n" * 150 + "/README"})
    + member("docs/README", b"hi") + END,
}


@pytest.mark.parametrize("variant", sorted(ACCEPTED))
def test_accepted_variants_read_as_a_layout(variant: str, files: list[tuple[str, bytes]], tmp_path: Path) -> None:
    path = write(tmp_path, ACCEPTED[variant](files))
    layout = ArchiveLayout(path)
    desc = layout.resolve("v1")
    assert layout.fetch(desc).startswith(b"{")
    report = check_layout(layout, layout_type="oci-archive")
    assert report.ok, report.problems
    assert report.blobs == 3
    layout.close()


# --- hostile archives --------------------------------------------------------------------------------
def _sparse_index(tmp_path: Path, files: list[tuple[str, bytes]]) -> Path:
    """index.json declared as 2 GiB (sparse on disk): must be refused by size, never read whole."""
    path = tmp_path / "x.tar"
    body = plain([f for f in files if f[0] != "index.json"])
    size = 2 << 30
    with open(path, "wb") as fh:
        fh.write(body + header("index.json", size=size))
        fh.seek(len(body) + BLOCK + size)
        fh.write(END)
    return path


def _gzip_bomb(tmp_path: Path, files: list[tuple[str, bytes]]) -> Path:
    path = tmp_path / "x.tar"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(comp.compress(plain(files)))
        zeros = bytes(1 << 20)
        for _ in range(64):
            fh.write(comp.compress(zeros))
        fh.write(comp.flush())
    return path


def _docker_save(files: list[tuple[str, bytes]]) -> bytes:
    layer = b"".join(member(n, d) for n, d in [("hello.txt", b"hello\n")]) + END
    return (member("repositories", b'{"hello-world":{"latest":"abc"}}')
            + member("manifest.json", b'[{"Config":"abc.json","RepoTags":["hello-world:latest"],'
                     b'"Layers":["abc/layer.tar"]}]')
            + member("abc.json", b"{}") + directory("abc/") + member("abc/layer.tar", layer) + END)


HOSTILE: dict[str, tuple[Callable[[list[tuple[str, bytes]]], bytes], str]] = {
    # name tricks
    "dotdot": (lambda f: plain(f) + member("../x", b"evil") + END, "'../x'"),
    "dotdot-inside": (lambda f: plain(f) + member("a/../../x", b"evil") + END, "a/../../x"),
    "absolute": (lambda f: plain(f) + member("/etc/x", b"evil") + END, "/etc/x"),
    "backslash-drive": (lambda f: plain(f) + member("C:\\x", b"evil") + END, "backslash"),
    "unc": (lambda f: plain(f) + member("\\\\server\\x", b"evil") + END, "backslash"),
    "drive-letter": (lambda f: plain(f) + member("C:x", b"evil") + END, "drive letter"),
    "pax-nul": (lambda f: plain(f) + pax({"path": b"a\0b"}) + member("ab", b"x") + END, "NUL"),
    "gnu-nul": (lambda f: plain(f) + longname(b"a\0b") + member("ab", b"x", gnu=True) + END, "NUL"),
    "control-char": (lambda f: plain(f) + member("a\nb", b"x") + END, "control characters"),
    "not-utf8": (lambda f: plain(f) + member(b"\xff\xfe", b"x") + END, "UTF-8"),
    "long-component": (lambda f: plain(f) + pax({"path": "a" * 300}) + member("a", b"x") + END, "too long"),
    "dup-dot-slash": (lambda f: plain(f) + member("./index.json", b"{}") + END, "duplicate"),
    "dup-double-slash": (lambda f: plain(f) + member(f[0][0].replace("/", "//"), f[0][1]) + END, "duplicate"),
    "dup-dir": (lambda f: directory("blobs/") + plain(f) + directory("./blobs") + END, "duplicate"),
    "file-trailing-slash": (lambda f: plain(f) + member("extra/", b"") + END, "ends with '/'"),
    "file-under-file": (lambda f: member("blobs", b"x") + plain(f) + END, "parent 'blobs' is a regular file"),
    "root-not-dir": (lambda f: member("./", b"") + plain(f) + END, "ends with '/'"),
    # links and special files
    "symlink-blobs-root": (lambda f: header("blobs", typeflag=b"2", linkname=b"/") + plain(f) + END, "symbolic link"),
    "symlink-index": (lambda f: plain([x for x in f if x[0] != "index.json"])
                      + header("index.json", typeflag=b"2", linkname=b"/etc/passwd") + END, "symbolic link"),
    "symlink-chain": (lambda f: plain(f) + header("a", typeflag=b"2", linkname=b"b")
                      + header("b", typeflag=b"2", linkname=b"../../outside") + member("a", b"evil") + END,
                      "symbolic link"),
    "symlink-root": (lambda f: header("./", typeflag=b"2", linkname=b"/tmp") + plain(f) + END, "symbolic link"),
    "hardlink-cwd": (lambda f: plain(f) + header("x", typeflag=b"1", linkname=b"secret") + END, "hard link"),
    "hardlink-inside": (lambda f: plain(f) + header("copy", typeflag=b"1", linkname=b"index.json") + END,
                        "hard link"),
    "chardev": (lambda f: plain(f) + header("null", typeflag=b"3") + END, "character device"),
    "blockdev": (lambda f: plain(f) + header("sda", typeflag=b"4") + END, "block device"),
    "fifo": (lambda f: plain(f) + header("pipe", typeflag=b"6") + END, "FIFO"),
    "contiguous": (lambda f: plain(f) + member("c", b"x", typeflag=b"7") + END, "contiguous"),
    "volume-label": (lambda f: header("vol", typeflag=b"V") + plain(f) + END, "volume label"),
    "unknown-type": (lambda f: plain(f) + member("z", b"x", typeflag=b"Z") + END, "unsupported type"),
    "gnu-long-link": (lambda f: plain(f) + longname(b"target", b"K") + header("l", typeflag=b"2", gnu=True) + END,
                      "long link"),
    "pax-linkpath-on-file": (lambda f: plain(f) + pax({"linkpath": "/etc/passwd"}) + member("f", b"x") + END,
                             "linkpath"),
    # sparse and sizes
    "gnu-sparse": (lambda f: plain(f) + member("s", b"x" * 512, typeflag=b"S", gnu=True) + END, "sparse"),
    "pax-sparse": (lambda f: plain(f) + pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})
                   + member("s", b"x") + END, "sparse"),
    "pax-size-huge": (lambda f: plain(f) + pax({"size": str(10**15)}) + member("big", b"x") + END, "truncated"),
    "pax-size-garbage": (lambda f: plain(f) + pax({"size": "12abc"}) + member("big", b"x") + END, "PAX size"),
    "negative-base256": (lambda f: plain(f) + header("neg", size_field=b"\xff" * 12, gnu=True) + END, "negative"),
    "octal-garbage": (lambda f: plain(f) + header("bad", size_field=b"12x4\0\0\0\0\0\0\0\0") + END, "octal"),
    "oversized-pax": (lambda f: plain(f) + header("././@PaxHeader", size=2 << 20, typeflag=b"x") + END,
                      "over the"),
    "oversized-longname": (lambda f: plain(f) + header("././@LongLink", size=100_000, typeflag=b"L", gnu=True)
                           + END, "over the"),
    "dir-with-data": (lambda f: plain(f) + header("d/", typeflag=b"5", size=512) + bytes(512) + END,
                      "directory header"),
    # structure
    "truncated-member": (lambda f: plain(f)[:560], "runs past the end of the file"),
    "truncated-padding": (lambda f: plain(f)[: 512 + len(f[0][1]) + 10], "runs past the end of the file"),
    "truncated-header": (lambda f: plain(f) + header("x")[:300], "truncated"),
    "no-end-marker": (lambda f: plain(f), "end-of-archive"),
    "lone-zero-block": (lambda f: plain(f) + bytes(BLOCK), "lone zero block"),
    "bad-checksum": (lambda f: plain(f) + header("x", bad_checksum=True) + END, "checksum"),
    "trailing-garbage": (lambda f: plain(f) + END + b"garbage" + bytes(505), "trailing garbage"),
    "zero-blocks-only": (lambda f: bytes(10240), "no oci-layout member"),
    "v7-header": (lambda f: plain(f) + header("v7", magic=b"\0" * 8) + END, "ustar"),
    "pax-then-end": (lambda f: plain(f) + pax({"path": "x"}) + END, "not followed by a member"),
    "two-pax": (lambda f: plain(f) + pax({"path": "x"}) + pax({"path": "y"}) + member("z", b"") + END,
                "two PAX"),
    "global-pax-path": (lambda f: pax({"path": "evil"}, typeflag=b"g") + plain(f) + END, "global PAX"),
    "docker-save": (_docker_save, "docker save"),
    "gzip": (lambda f: gzip.compress(plain(f) + END), "gzip"),
    "not-a-tar": (lambda f: b"hello, this is not a tar file\n" * 40, "not an OCI layout tar"),
    "short-file": (lambda f: b"tiny", "not an OCI layout tar"),
}


def _hostile_path(case: str, files: list[tuple[str, bytes]], tmp_path: Path) -> tuple[Path, str]:
    build, needle = HOSTILE[case]
    return write(tmp_path, build(files)), needle


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused_with_one_line(case: str, files: list[tuple[str, bytes]], tmp_path: Path) -> None:
    path, needle = _hostile_path(case, files, tmp_path)
    with pytest.raises(LayoutError) as info:
        ArchiveLayout(path).resolve("v1")
    msg = str(info.value)
    assert "\n" not in msg
    assert needle in msg
    assert str(path) in msg


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_cli_exit_1_and_nothing_written(case: str, files: list[tuple[str, bytes]], tmp_path: Path,
                                                    run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    work.mkdir()
    (work / "secret").write_text("cwd secret")
    monkeypatch.chdir(work)
    path, _ = _hostile_path(case, files, tmp_path)
    before = snapshot(tmp_path)
    for args in (["layout", "check", str(path)], ["layout", "extract", str(path), str(tmp_path / "out")],
                 ["layout", "check", "-o", "json", str(path)]):
        res = run_cli(*args)
        assert res.rc == 1, (args, res)
        if "json" not in args:
            assert len(res.err.strip().splitlines()) == 1, res.err
            assert "Traceback" not in res.err
    assert not (tmp_path / "out").exists()
    assert snapshot(tmp_path) == before


def test_hostile_tar_refused_by_list_command(files: list[tuple[str, bytes]], tmp_path: Path,
                                             run_cli) -> None:  # type: ignore[no-untyped-def]
    try:
        import ocisign.cli.commands.list  # noqa: F401
    except ImportError:
        pytest.skip("list command not available")
    path = write(tmp_path, plain(files) + header("blobs2", typeflag=b"2", linkname=b"/") + END)
    res = run_cli("list", "--oci-layout", f"{path}:v1")
    assert res.rc == 1
    assert "symbolic link" in res.err and "blobs2" in res.err


def test_sparse_2gib_index_json_is_bounded(files: list[tuple[str, bytes]], tmp_path: Path) -> None:
    path = _sparse_index(tmp_path, files)
    layout = ArchiveLayout(path)  # indexing reads headers only
    with pytest.raises(LayoutError, match=r"index\.json is larger than"):
        layout.resolve("v1")


def test_gzip_bomb_is_never_decompressed(files: list[tuple[str, bytes]], tmp_path: Path) -> None:
    import resource
    import time

    path = _gzip_bomb(tmp_path, files)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(LayoutError, match="gzip-compressed file: not an OCI layout tar"):
        ArchiveLayout(path)
    assert time.monotonic() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 32 * 1024  # KiB


def test_detection_claims_tars_and_compressed_files_only(files: list[tuple[str, bytes]], tmp_path: Path,
                                                         pm) -> None:  # type: ignore[no-untyped-def]
    handlers = pm.layout_handlers()
    tar = write(tmp_path, plain(files) + END, "layout-without-extension")
    gz = write(tmp_path, gzip.compress(plain(files) + END), "x.tar.gz")
    other = write(tmp_path, b"not a tar\n" * 100, "notes.txt")
    assert handlers["oci-archive"].detect(tar)
    assert not handlers["oci"].detect(tar)
    assert handlers["oci-archive"].detect(gz)
    assert not handlers["oci-archive"].detect(other)
    assert not handlers["oci-archive"].detect(tmp_path)
    fifo = tmp_path / "fifo.tar"
    os.mkfifo(fifo)
    assert not handlers["oci-archive"].detect(fifo)  # and does not block
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        pm.open_layout(other)
    with pytest.raises(LayoutError, match="not a regular file"):
        pm.open_layout(fifo, layout_type="oci-archive")


@pytest.mark.parametrize("case", ["symlink-blobs-root", "hardlink-cwd", "dotdot", "gzip", "truncated-member"])
def test_sign_on_hostile_tar_fails_and_writes_nothing(case: str, files: list[tuple[str, bytes]], tmp_path: Path,
                                                      run_cli) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    if any(importlib.util.find_spec(f"ocisign.cli.commands.{name}") is None for name in ("sign", "cert")):
        pytest.skip("sign/cert commands not available")
    assert run_cli("cert", "generate-test", "--default", "hostile").rc == 0
    path, needle = _hostile_path(case, files, tmp_path)
    before = snapshot(tmp_path)
    res = run_cli("sign", "--oci-layout", f"{path}:v1")
    assert res.rc == 1, res
    assert needle in res.err and len(res.err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
