"""A strict, read-only indexer of tar members for OCI layout tars.

:func:`index_tar` walks the headers of an archive once (never its data) and returns where each
member's bytes are, so readers can serve them in place by offset. It accepts POSIX ustar and
GNU headers, PAX ``x`` headers (``path``, ``size``), harmless PAX ``g`` headers, GNU long names
(``L``), ``./`` prefixes, repeated slashes and any member order. Everything else is refused with
a one-line :class:`~ocisign.errors.LayoutError` naming the member: links of both kinds, devices,
FIFOs, sparse files, unknown types, absolute or ``..`` names, backslashes, drive letters, control
characters, duplicate logical names, a file used as a directory, corrupt checksums, oversized
extended headers, members running past the end of the file, a missing end-of-archive marker and
non-zero bytes after it. Nothing is decompressed: :func:`sniff` names compressed files so the
caller can refuse them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping

from ocisign.errors import LayoutError
from ocisign.lazy_dataclass import dataclass
from ocisign.lazy_re import lazy_re
from ocisign.oci.tar_write import BLOCK, ZERO_BLOCK, padded

#: cap on a PAX extended header (``x``/``g``)
MAX_PAX_SIZE = 1 << 20
#: cap on a GNU long name (``L``/``K``)
MAX_LONG_NAME = 64 * 1024
#: cap on the number of members (bounds memory)
MAX_MEMBERS = 1_000_000
#: caps on a member name and on one of its components (Linux PATH_MAX and NAME_MAX)
MAX_NAME = 4096
MAX_COMPONENT = 255
#: cap on bytes scanned after the end-of-archive marker
MAX_TRAILER = 64 * 1024 * 1024

_REGULAR = (b"0", b"\0")
_TYPE_NAMES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"S": "a GNU sparse file",
    b"D": "a GNU dump directory",
    b"M": "a GNU multi-volume continuation",
    b"N": "an old GNU long-name record",
    b"V": "a volume label",
    b"A": "a Solaris ACL record",
    b"E": "a Solaris extended attribute record",
    b"X": "an old POSIX extended header",
}
_DRIVE_RE = lazy_re(r"\A[A-Za-z]:")
_CONTROL_RE = lazy_re(r"[\x00-\x1f\x7f]")
_HIGH_BYTES = bytes(range(0x80, 0x100))
#: headers are read through a window of this size (many small members per read)
_READ_AHEAD = 64 * 1024
_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class TarMember:
    """One regular file or directory in the archive."""

    #: logical name: no ``./`` prefix, no repeated or trailing slashes; ``.`` for the root entry
    name: str
    #: the name as stored (after PAX/GNU overrides), for messages and to mirror its style
    raw_name: str
    is_dir: bool
    #: offset of the first header block of this member (including PAX/GNU prefix headers)
    header_offset: int
    #: offset of the member's data
    data_offset: int
    size: int

    @property
    def end_offset(self) -> int:
        """Offset just past the member's data padding (where the next header starts)."""
        return self.data_offset + padded(self.size)


@dataclass(frozen=True)
class TarIndex:
    """Members of an archive by logical name, in archive order, and where the archive ends."""

    members: Mapping[str, TarMember]
    ordered: tuple[TarMember, ...]
    #: offset of the end-of-archive marker (first of the two zero blocks)
    end_offset: int
    file_size: int

    def get(self, name: str) -> TarMember | None:
        """The member with logical name ``name`` (file or directory), or None."""
        return self.members.get(name)

    def files(self) -> Iterator[TarMember]:
        """Regular-file members in archive order."""
        return (m for m in self.ordered if not m.is_dir)


def sniff(head: bytes) -> str:
    """Classify the first bytes of a file: ``tar``, ``gzip``/``bzip2``/``xz``/``zstd``/``lz4``, or ``other``."""
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            return kind
    if len(head) >= BLOCK:
        block = head[:BLOCK]
        if block == ZERO_BLOCK:
            return "tar" if head[BLOCK : 2 * BLOCK] == ZERO_BLOCK else "other"
        if block[257:263] in (b"ustar\0", b"ustar ") and _checksum_ok(block):
            return "tar"
    return "other"


def _checksum_ok(hdr: bytes) -> bool:
    """The header checksum, computed unsigned (POSIX) or signed (some historic writers)."""
    field = hdr[148:156].split(b"\0", 1)[0].strip(b" ")
    if not field or field.translate(None, b"01234567"):
        return False
    stored = int(field, 8)
    rest = hdr[:148] + hdr[156:]
    unsigned = sum(rest) + 8 * 0x20
    if stored == unsigned:
        return True
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))
    return stored == unsigned - 256 * high


class _Walker:
    def __init__(self, fd: int, file_size: int, location: str) -> None:
        self.fd = fd
        self.file_size = file_size
        self.location = location
        self._buf = b""
        self._buf_offset = 0

    def fail(self, message: str, *, member: str | None = None, offset: int | None = None) -> LayoutError:
        where = self.location
        if member is not None:
            where += f": member {member!r}"
        if offset is not None:
            where += f" (offset {offset})"
        return LayoutError(f"{where}: {message}")

    def read(self, size: int, offset: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at EOF), through a small read-ahead window."""
        start = offset - self._buf_offset
        if start >= 0 and start + size <= len(self._buf):
            return self._buf[start : start + size]
        if size <= BLOCK:
            self._buf = self._pread(_READ_AHEAD, offset)
            self._buf_offset = offset
            return self._buf[:size]
        return self._pread(size, offset)

    def _pread(self, size: int, offset: int) -> bytes:
        out = b""
        while len(out) < size:
            chunk = os.pread(self.fd, size - len(out), offset + len(out))
            if not chunk:
                break
            out += chunk
        return out

    def number(self, field: bytes, what: str, member: str, offset: int) -> int:
        if field[:1] and field[0] & 0x80:
            if field[0] == 0xFF:
                raise self.fail(f"corrupt header: negative {what}", member=member, offset=offset)
            return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        text = field.split(b"\0", 1)[0].strip(b" ")
        if not text:
            return 0
        if text.translate(None, b"01234567"):
            raise self.fail(f"corrupt header: {what} field is not an octal number", member=member, offset=offset)
        return int(text, 8)

    def decode(self, raw: bytes, what: str, offset: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} {raw!r} is not valid UTF-8", offset=offset) from None

    def parse_pax(self, data: bytes, offset: int, member: str) -> dict[str, bytes]:
        records: dict[str, bytes] = {}
        pos = 0
        while pos < len(data):
            sp = data.find(b" ", pos, pos + 21)
            digits = data[pos:sp] if sp > pos else b""
            if not digits or not digits.isdigit():
                raise self.fail("corrupt PAX extended header (bad record length)", member=member, offset=offset)
            length = int(digits)
            end = pos + length
            if length <= len(digits) + 2 or end > len(data) or data[end - 1 : end] != b"\n":
                raise self.fail("corrupt PAX extended header (bad record)", member=member, offset=offset)
            key_raw, eq, value = data[sp + 1 : end - 1].partition(b"=")
            if not eq or not key_raw:
                raise self.fail("corrupt PAX extended header (record without key=value)", member=member,
                                offset=offset)
            key = self.decode(key_raw, "PAX key", offset)
            if key in records:
                raise self.fail(f"PAX extended header repeats key {key!r}", member=member, offset=offset)
            records[key] = value
            pos = end
        return records

    def normalise(self, raw: str, *, is_dir: bool, offset: int) -> str:
        if not raw:
            raise self.fail("member with an empty name", offset=offset)
        if _CONTROL_RE.search(raw):
            raise self.fail("name contains control characters", member=raw, offset=offset)
        if "\\" in raw:
            raise self.fail("name contains a backslash", member=raw, offset=offset)
        if raw.startswith("/"):
            raise self.fail("absolute name", member=raw, offset=offset)
        if _DRIVE_RE.match(raw):
            raise self.fail("name starts with a drive letter", member=raw, offset=offset)
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.fail("name escapes the layout ('..' component)", member=raw, offset=offset)
        size = len(raw.encode())
        if size > MAX_NAME or (size > MAX_COMPONENT and any(len(p.encode()) > MAX_COMPONENT for p in parts)):
            raise self.fail("name is too long", member=raw[:200], offset=offset)
        if raw.endswith("/") and not is_dir:
            raise self.fail("regular file whose name ends with '/'", member=raw, offset=offset)
        return "/".join(parts) or "."


def index_tar(fd: int, *, location: str, file_size: int | None = None) -> TarIndex:
    """Walk the headers of the tar open on ``fd`` and index its regular files and directories.

    Raises LayoutError (one line, naming the member and offset) for anything not accepted; see
    the module docstring. Reads only headers, extended headers and the bytes after the end marker.
    Longer than most functions on purpose: the header walk is one state machine (PAX/GNU extended
    headers apply to the next member), kept in one place so that every refusal is visible in order.
    """
    size = os.fstat(fd).st_size if file_size is None else file_size
    w = _Walker(fd, size, location)
    members: dict[str, TarMember] = {}
    ordered: list[TarMember] = []
    offset = 0
    pax: dict[str, bytes] | None = None
    long_name: str | None = None
    prefix_start: int | None = None
    while True:
        hdr = w.read(BLOCK, offset)
        if len(hdr) < BLOCK:
            if offset == 0:
                raise w.fail("not a tar archive (shorter than one 512-byte block)")
            if offset >= size and prefix_start is None:
                raise w.fail("truncated tar: no end-of-archive marker", offset=offset)
            raise w.fail("truncated tar: incomplete header block", offset=offset)
        if hdr == ZERO_BLOCK:
            if prefix_start is not None:
                raise w.fail("truncated tar: extended header not followed by a member", offset=prefix_start)
            second = w.read(BLOCK, offset + BLOCK)
            if second != ZERO_BLOCK:
                raise w.fail("lone zero block: truncated or corrupt tar", offset=offset)
            _check_trailer(w, offset + 2 * BLOCK)
            break
        if hdr[257:263] == b"ustar\0" and hdr[263:265] == b"00":
            gnu = False
        elif hdr[257:265] == b"ustar  \0":
            gnu = True
        else:
            kind = sniff(hdr)
            what = f"{kind}-compressed data" if kind not in ("tar", "other") else "not a ustar/PAX/GNU tar header"
            raise w.fail(f"{what}: not an OCI layout tar", offset=offset)
        stored_name = hdr[0:100].split(b"\0", 1)[0]
        label = stored_name.decode("utf-8", "replace")
        if not _checksum_ok(hdr):
            raise w.fail("corrupt header checksum", member=label, offset=offset)
        typeflag = hdr[156:157]
        data_offset = offset + BLOCK
        hsize = w.number(hdr[124:136], "size", label, offset)
        member_start = offset if prefix_start is None else prefix_start
        if typeflag in (b"x", b"g", b"L", b"K"):
            cap = MAX_PAX_SIZE if typeflag in (b"x", b"g") else MAX_LONG_NAME
            if hsize > cap:
                raise w.fail(f"extended header of {hsize} bytes is over the {cap}-byte limit", member=label,
                             offset=offset)
            data = w.read(hsize, data_offset)
            if len(data) < hsize:
                raise w.fail("truncated tar: extended header runs past the end of the file", member=label,
                             offset=offset)
            if typeflag == b"g":
                if prefix_start is not None:
                    raise w.fail("global PAX header between an extended header and its member", offset=offset)
                records = w.parse_pax(data, offset, label)
                bad = sorted(k for k in records if k in ("path", "linkpath", "size") or k.startswith("GNU.sparse"))
                if bad:
                    raise w.fail(f"global PAX header sets {', '.join(bad)} for every member", offset=offset)
            elif typeflag == b"x":
                if pax is not None:
                    raise w.fail("two PAX extended headers for one member", offset=offset)
                pax = w.parse_pax(data, offset, label)
                sparse = [k for k in pax if k.startswith("GNU.sparse")]
                if sparse:
                    raise w.fail(f"sparse file ({sparse[0]}) is not supported", offset=offset)
                prefix_start = member_start
            elif typeflag == b"L":
                if long_name is not None:
                    raise w.fail("two GNU long names for one member", offset=offset)
                raw = data.rstrip(b"\0")
                if b"\0" in raw:
                    raise w.fail("GNU long name contains a NUL byte", offset=offset)
                long_name = w.decode(raw, "GNU long name", offset)
                prefix_start = member_start
            else:
                raise w.fail("GNU long link name: links are not allowed in an OCI layout tar", offset=offset)
            offset = data_offset + padded(hsize)
            continue
        # --- a real member ------------------------------------------------------------------------
        if stored_name and not gnu and hdr[345:500].split(b"\0", 1)[0]:
            stored_name = hdr[345:500].split(b"\0", 1)[0] + b"/" + stored_name
        name = w.decode(stored_name, "member name", offset)
        if long_name is not None:
            name = long_name
        if pax is not None:
            if pax.get("path"):
                if b"\0" in pax["path"]:
                    raise w.fail("PAX path contains a NUL byte", member=name, offset=offset)
                name = w.decode(pax["path"], "PAX path", offset)
            if "linkpath" in pax and pax["linkpath"] and typeflag not in (b"1", b"2"):
                raise w.fail("PAX linkpath on a member that is not a link", member=name, offset=offset)
            if pax.get("hdrcharset", b"") not in (b"", b"ISO-IR 10646 2000 UTF-8"):
                raise w.fail("PAX hdrcharset other than UTF-8 is not supported", member=name, offset=offset)
            if pax.get("size"):
                if not pax["size"].isdigit() or len(pax["size"]) > 19:
                    raise w.fail(f"corrupt PAX size {pax['size']!r}", member=name, offset=offset)
                hsize = int(pax["size"])
        if typeflag not in _REGULAR and typeflag != b"5":
            what = _TYPE_NAMES.get(typeflag, f"of unsupported type {typeflag!r}")
            raise w.fail(f"member is {what}: only regular files and directories are allowed", member=name,
                         offset=offset)
        is_dir = typeflag == b"5"
        if is_dir and hsize != 0:
            raise w.fail(f"directory header declares {hsize} bytes of data", member=name, offset=offset)
        if data_offset + padded(hsize) > size:
            raise w.fail(f"truncated tar: member data ({hsize} bytes) runs past the end of the file",
                         member=name, offset=offset)
        logical = w.normalise(name, is_dir=is_dir, offset=offset)
        if logical == "." and not is_dir:
            raise w.fail("the root entry is not a directory", member=name, offset=offset)
        if logical in members:
            raise w.fail(f"duplicate member (also at offset {members[logical].header_offset})", member=name,
                         offset=offset)
        if len(ordered) >= MAX_MEMBERS:
            raise w.fail(f"more than {MAX_MEMBERS} members", offset=offset)
        m = TarMember(name=logical, raw_name=name, is_dir=is_dir, header_offset=member_start,
                      data_offset=data_offset, size=hsize)
        members[logical] = m
        ordered.append(m)
        pax, long_name, prefix_start = None, None, None
        offset = data_offset + padded(hsize)
    _check_parents(w, members)
    return TarIndex(members=members, ordered=tuple(ordered), end_offset=offset, file_size=size)


def _check_trailer(w: _Walker, start: int) -> None:
    """Bytes after the end-of-archive marker must be zero padding."""
    if w.file_size - start > MAX_TRAILER:
        raise w.fail(f"{w.file_size - start} bytes of trailing data after the end-of-archive marker",
                     offset=start)
    pos = start
    while pos < w.file_size:
        chunk = os.pread(w.fd, min(1 << 20, w.file_size - pos), pos)
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            raise w.fail("trailing garbage after the end-of-archive marker", offset=pos)
        pos += len(chunk)


def _check_parents(w: _Walker, members: Mapping[str, TarMember]) -> None:
    """No member may live under a name that another member uses as a regular file."""
    for name, m in members.items():
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = members.get("/".join(parts[:i]))
            if parent is not None and not parent.is_dir:
                raise w.fail(f"its parent {parent.raw_name!r} is a regular file", member=m.raw_name,
                             offset=m.header_offset)
