"""Writing tar archives the way every reader accepts them, and copying byte ranges in the kernel.

:func:`member_header` builds a POSIX ustar header (with a PAX ``x`` header in front when the
name or size does not fit ustar) with :meth:`tarfile.TarInfo.tobuf`, :func:`end_of_archive`
the two zero blocks padded to a 10 KiB record, and :func:`copy_range` moves bytes between
files with ``copy_file_range``/``sendfile`` so large blobs never pass through Python buffers.
"""

from __future__ import annotations

import errno
import os

BLOCK = 512
#: GNU tar and Python's tarfile pad archives to 20-block records
RECORD = 20 * BLOCK
ZERO_BLOCK = bytes(BLOCK)
_COPY_CHUNK = 1 << 30
_FALLBACK_ERRNOS = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF})


def padded(size: int) -> int:
    """``size`` rounded up to a whole number of 512-byte blocks."""
    return (size + BLOCK - 1) // BLOCK * BLOCK


def padding(size: int) -> bytes:
    """The zero bytes that follow ``size`` bytes of member data."""
    return bytes(padded(size) - size)


def member_header(name: str, size: int, *, is_dir: bool = False, mtime: int = 0) -> bytes:
    """Header block(s) for a regular file or directory member: owner 0:0, no user/group names.

    Files get mode 0644, directories 0755 (and a trailing ``/``). Built by the standard
    library's :meth:`tarfile.TarInfo.tobuf` in PAX format: a plain ustar header when everything
    fits, with a PAX ``x`` header carrying ``path``/``size`` in front when the name is not
    ASCII, is longer than the 100-byte name field, or the size needs more than 11 octal digits.
    No hand-written header path is left: tobuf produces every header these archives use, and
    :mod:`ocisign.oci.tar_index` reads them strictly. (``USTAR_FORMAT`` is not used: its
    prefix/name split can leave a directory's name field empty, which strict readers refuse.)
    """
    import tarfile

    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = size
    info.mode = 0o755 if is_dir else 0o644
    info.mtime = mtime
    return info.tobuf(tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


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
