"""Writing tar archives the way every reader accepts them, and copying byte ranges in the kernel.

:func:`member_header` builds a POSIX ustar header (with a PAX ``x`` header in front when the
name or size does not fit ustar), :func:`end_of_archive` the two zero blocks padded to a 10 KiB
record, and :func:`copy_range` moves bytes between files with ``copy_file_range``/``sendfile``
so large blobs never pass through Python buffers.
"""

from __future__ import annotations

import errno
import os

BLOCK = 512
#: GNU tar and Python's tarfile pad archives to 20-block records
RECORD = 20 * BLOCK
ZERO_BLOCK = bytes(BLOCK)
#: largest size an 11-digit octal ustar field holds
_MAX_OCTAL_SIZE = 8**11 - 1
_PAX_HEADER_NAME = "././@PaxHeader"
_COPY_CHUNK = 1 << 30
_FALLBACK_ERRNOS = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF})


def padded(size: int) -> int:
    """``size`` rounded up to a whole number of 512-byte blocks."""
    return (size + BLOCK - 1) // BLOCK * BLOCK


def padding(size: int) -> bytes:
    """The zero bytes that follow ``size`` bytes of member data."""
    return bytes(padded(size) - size)


def _octal(value: int, width: int) -> bytes:
    """``width``-byte NUL-terminated octal field."""
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) when ``name`` fits the ustar name/prefix fields, else None."""
    if len(name) <= 100:
        return b"", name
    for i in range(len(name) - 1, 0, -1):
        if name[i : i + 1] == b"/" and i <= 155 and len(name) - i - 1 <= 100 and len(name) - i - 1 > 0:
            return name[:i], name[i + 1 :]
    return None


def _ustar_block(name: bytes, prefix: bytes, *, size: int, typeflag: bytes, mode: int, mtime: int) -> bytes:
    hdr = bytearray(BLOCK)
    hdr[0 : len(name)] = name
    hdr[100:108] = _octal(mode, 8)
    hdr[108:116] = _octal(0, 8)
    hdr[116:124] = _octal(0, 8)
    hdr[124:136] = _octal(size, 12)
    hdr[136:148] = _octal(mtime, 12)
    hdr[148:156] = b" " * 8
    hdr[156:157] = typeflag
    hdr[257:263] = b"ustar\0"
    hdr[263:265] = b"00"
    hdr[329:337] = _octal(0, 8)
    hdr[337:345] = _octal(0, 8)
    hdr[345 : 345 + len(prefix)] = prefix
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return bytes(hdr)


def member_header(name: str, size: int, *, is_dir: bool = False, mtime: int = 0) -> bytes:
    """Header block(s) for a regular file or directory member: owner 0:0, no user/group names.

    Files get mode 0644, directories 0755 (and a trailing ``/``). A PAX ``x`` header carrying
    ``path``/``size`` is prepended when the name is not ASCII, does not fit the ustar fields,
    or the size needs more than 11 octal digits.
    """
    if is_dir and not name.endswith("/"):
        name += "/"
    raw = name.encode("utf-8")
    split = _split_ustar(raw) if raw.isascii() else None
    records = b""
    if split is None:
        records += _pax_record("path", name)
        short = raw[:100].decode("ascii", "replace").encode("ascii", "replace") if raw.isascii() else b"pax-name"
        split = (b"", short)
    field_size = size
    if size > _MAX_OCTAL_SIZE:
        records += _pax_record("size", str(size))
        field_size = 0
    out = b""
    if records:
        out += _ustar_block(_PAX_HEADER_NAME.encode(), b"", size=len(records), typeflag=b"x", mode=0o644, mtime=mtime)
        out += records + padding(len(records))
    typeflag = b"5" if is_dir else b"0"
    out += _ustar_block(split[1], split[0], size=field_size, typeflag=typeflag,
                        mode=0o755 if is_dir else 0o644, mtime=mtime)
    return out


def end_of_archive(offset: int) -> bytes:
    """Two zero blocks, then zeros up to the next 10 KiB record boundary, for an archive at ``offset``."""
    end = offset + 2 * BLOCK
    return bytes(2 * BLOCK + (-end) % RECORD)


def _copy_userspace(src: int, dst: int, offset: int, count: int, dst_offset: int) -> int:
    done = 0
    while done < count:
        chunk = os.pread(src, min(1 << 20, count - done), offset + done)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            n = os.pwrite(dst, view, dst_offset + done)
            view = view[n:]
            done += n
    return done


def copy_range(src: int, dst: int, offset: int, count: int, dst_offset: int) -> None:
    """Copy ``count`` bytes from ``src`` at ``offset`` to ``dst`` at ``dst_offset`` in the kernel.

    Uses ``copy_file_range`` (reflinks on btrfs/xfs), then ``sendfile``, then a userspace loop
    only when neither is supported for these files. Raises EOFError when ``src`` is shorter.
    """
    done = 0
    use_cfr = hasattr(os, "copy_file_range")
    while done < count:
        want = min(_COPY_CHUNK, count - done)
        n = -1
        if use_cfr:
            try:
                n = os.copy_file_range(src, dst, want, offset + done, dst_offset + done)
            except OSError as exc:
                if exc.errno not in _FALLBACK_ERRNOS:
                    raise
                use_cfr = False
        if n < 0:
            try:
                os.lseek(dst, dst_offset + done, os.SEEK_SET)
                n = os.sendfile(dst, src, offset + done, want)
            except OSError as exc:
                if exc.errno not in _FALLBACK_ERRNOS:
                    raise
                n = _copy_userspace(src, dst, offset + done, want, dst_offset + done)
        if n == 0:
            raise EOFError(f"source ended after {done} of {count} bytes")
        done += n
