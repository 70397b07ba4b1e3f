"""Built-in plugin ``oci-archive``: OCI image layouts stored as tar files.

Opening a tar indexes its members once with the strict walker in :mod:`ocisign.oci.tar_index`
(regular files and directories only) and serves every read in place by offset; nothing is
extracted. A write session holds an exclusive ``flock`` on the tar for its whole length, spools
new blobs (already in tar form) to a temp file beside the archive, and at commit writes a NEW
archive beside the original: the old members except ``index.json`` copied with the kernel's copy
primitives, then the spooled blobs, the merged ``index.json`` and the end-of-archive blocks; it
is fsynced and renamed over the original only when complete. A failed or interrupted session
leaves the original byte for byte untouched.

One module (about 600 lines) because a plugin is one module: the reader, the write session and
the hook implementation share the archive's lock and offsets.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock; threading is imported by writers only
import contextlib
import errno
import io
import os
import stat
import time

from ocisign.errors import ContentError, LayoutError, NotFoundError
from ocisign.lazy_plugins import hookimpl
from ocisign.oci.layout_reader import (
    LAYOUT_VERSION,
    MAX_INDEX_JSON_SIZE,
    LayoutReader,
    blob_relpath,
    merge_index,
)
from ocisign.oci.model import MT_INDEX, Descriptor, canonical_json, hasher_for, parse_json_object, validate_digest
from ocisign.oci.tar_write import BLOCK, end_of_archive, member_header, padding
from ocisign.types import LayoutHandler

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    # imported when a tar is read: detecting a directory layout needs none of it
    import threading
    from collections.abc import Iterator
    from pathlib import Path
    from typing import IO, Any

    from ocisign.oci.tar_index import TarIndex, TarMember

_CHUNK = 1 << 20
#: temp files written beside the archive start with ``.<name>.ocisign-``
_TMP_TAG = "ocisign-"


def _os_error(location: str, what: str, exc: OSError) -> LayoutError:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied" if exc.errno != errno.EROFS else "read-only file system"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "no space left on device"
    else:
        reason = exc.strerror or str(exc)
    return LayoutError(f"{location}: {what}: {reason}")


class _Source:
    """The archive's file descriptor, shared by slice streams; closed when retired and unused."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.retired = False
        self._lock = _thread.allocate_lock()

    def acquire(self) -> int:
        with self._lock:
            if self.retired:
                raise LayoutError("layout tar is closed")
            self.users += 1
            return self.fd

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            self._maybe_close()

    def retire(self) -> None:
        with self._lock:
            self.retired = True
            self._maybe_close()

    def _maybe_close(self) -> None:
        if self.retired and self.users <= 0 and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class SliceReader(io.RawIOBase):
    """A seekable read-only stream over ``size`` bytes at ``offset`` of the archive (no copies)."""

    def __init__(self, source: _Source, offset: int, size: int) -> None:
        super().__init__()
        self._source = source
        self._fd = source.acquire()
        self._start = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Seekable within the slice."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` with ``preadv``; 0 at the end of the slice."""
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(self._fd, [view[:want]], self._start + self._pos)
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move within the slice."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """Position within the slice."""
        return self._pos

    def close(self) -> None:
        """Release the shared archive descriptor."""
        if not self.closed:
            self._source.release()
        super().close()


def _open_archive(path: str, location: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LayoutError(f"{location}: no such file") from None
    except OSError as exc:
        raise _os_error(location, "cannot open", exc) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise LayoutError(f"{location}: not a regular file, so not an OCI layout tar")
    return fd, st


def _index(fd: int, st: os.stat_result, location: str) -> TarIndex:
    from ocisign.oci.tar_index import index_tar, sniff

    head = os.pread(fd, 2 * BLOCK, 0)
    kind = sniff(head)
    if kind not in ("tar", "other"):
        raise LayoutError(
            f"{location}: {kind}-compressed file: not an OCI layout tar (decompress it first; "
            "ocisign never decompresses archives)"
        )
    if kind == "other":
        raise LayoutError(f"{location}: not an OCI layout tar (no valid tar header at the start)")
    index = index_tar(fd, location=location, file_size=st.st_size)
    layout_member = index.get("oci-layout")
    if layout_member is None or layout_member.is_dir:
        if index.get("manifest.json") is not None:
            raise LayoutError(
                f"{location}: not an OCI layout tar: it looks like a 'docker save' archive "
                "(manifest.json without oci-layout)"
            )
        raise LayoutError(f"{location}: not an OCI layout tar: it has no oci-layout member")
    return index


class ArchiveLayout(LayoutReader):
    """An OCI image layout held in a tar file: read in place, written by whole-archive replacement."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)  # a str: list never imports pathlib
        super().__init__(self._path)
        fd, st = _open_archive(self._path, self.location)
        try:
            self._tar = _index(fd, st, self.location)
        except BaseException:
            os.close(fd)
            raise
        self._source = _Source(fd)
        self._stat = st

    @property
    def path(self) -> Path:
        """The tar file."""
        from pathlib import Path

        return Path(self._path)

    # --- primitives -----------------------------------------------------------------------------
    @property
    def tar_index(self) -> TarIndex:
        """The member index of the archive as opened (or as last committed)."""
        return self._tar

    def _member(self, relpath: str) -> TarMember:
        m = self._tar.get(relpath)
        if m is None:
            raise NotFoundError(f"{self.location}: {relpath} not found in the archive")
        if m.is_dir:
            raise LayoutError(f"{self.location}: {relpath} is a directory in the archive, not a regular file")
        return m

    def _read_small(self, relpath: str, max_size: int) -> bytes:
        m = self._member(relpath)
        if m.size > max_size:
            raise LayoutError(f"{self.location}: {relpath} is larger than {max_size} bytes")
        fd = self._source.acquire()
        try:
            data = os.pread(fd, m.size, m.data_offset)
        finally:
            self._source.release()
        if len(data) != m.size:
            raise LayoutError(f"{self.location}: {relpath}: archive changed while reading (short read)")
        return data

    def _open_file(self, relpath: str) -> IO[bytes]:
        m = self._member(relpath)
        return SliceReader(self._source, m.data_offset, m.size)  # type: ignore[return-value]

    def _file_size(self, relpath: str) -> int | None:
        m = self._tar.get(relpath)
        if m is None or m.is_dir:
            return None
        return m.size

    def blob_extent(self, desc: Descriptor) -> tuple[int, int] | None:
        """(offset, size) of a blob's bytes inside the archive, or None when absent."""
        m = self._tar.get(blob_relpath(desc.digest))
        if m is None or m.is_dir:
            return None
        return m.data_offset, m.size

    def _reload(self, fd: int, st: os.stat_result) -> None:
        """Switch to another open descriptor of the archive (after another writer's commit)."""
        try:
            tar = _index(fd, st, self.location)
        except BaseException:
            os.close(fd)
            raise
        self._switch(fd, st, tar)

    def _switch(self, fd: int, st: os.stat_result, tar: TarIndex) -> None:
        """Read from ``fd`` (already indexed as ``tar``) from now on; drop caches."""
        self._source.retire()
        self._source = _Source(fd)
        self._tar = tar
        self._stat = st
        self._index = None
        self._manifests.clear()
        self._verified.clear()

    def close(self) -> None:
        """Close the archive (open slice streams keep it open until they are closed)."""
        super().close()
        self._source.retire()

    # --- writing --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[ArchiveWriter]:
        """Exclusive write session; the archive is replaced atomically on clean exit."""
        self.index_entries()  # the layout must be valid before anything is written
        from pathlib import Path

        real = Path(os.path.realpath(self._path))
        directory = real.parent
        if not os.access(directory, os.W_OK | os.X_OK):
            raise LayoutError(f"{self.location}: cannot write beside it in {directory}: permission denied")
        if not os.access(real, os.W_OK):
            raise LayoutError(f"{self.location}: not writable (permission denied)")
        lock_fd = self._lock(real)
        w: ArchiveWriter | None = None
        try:
            st = os.fstat(lock_fd)
            if (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns) != (
                self._stat.st_ino, self._stat.st_dev, self._stat.st_size, self._stat.st_mtime_ns
            ):
                # another writer replaced or changed the archive since we indexed it
                self._reload(os.dup(lock_fd), st)
            self._index = None
            self.index_entries()
            _remove_stale_temps(real)
            w = ArchiveWriter(self, real)
            yield w
            w.commit()
        finally:
            if w is not None:
                w.discard()
            os.close(lock_fd)  # releases the flock

    def _lock(self, real: Path) -> int:
        """Open ``real`` and flock it; retry when it was replaced while we waited."""
        for _ in range(100):
            try:
                fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError as exc:
                raise _os_error(self.location, "cannot open for locking", exc) from None
            try:
                import fcntl  # writers only: reading needs no lock

                fcntl.flock(fd, fcntl.LOCK_EX)
                held = os.fstat(fd)
                now = os.stat(real, follow_symlinks=False)
            except OSError as exc:
                os.close(fd)
                if exc.errno == errno.ENOENT:
                    continue
                raise _os_error(self.location, "cannot lock", exc) from None
            if (held.st_ino, held.st_dev) == (now.st_ino, now.st_dev) and stat.S_ISREG(held.st_mode):
                return fd
            os.close(fd)
        raise LayoutError(f"{self.location}: keeps being replaced by other writers; giving up")


def _remove_stale_temps(real: Path) -> None:
    """Temp files of killed sessions on this archive (we hold its lock, so no one is writing them)."""
    prefix = f".{real.name}.{_TMP_TAG}"
    with contextlib.suppress(OSError):
        for entry in os.scandir(real.parent):
            if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


class ArchiveWriter:
    """Write session on an :class:`ArchiveLayout` (see :class:`ocisign.types.TargetWriter`).

    Thread-safe: each pushed blob reserves its own region of the spool file (its size is known
    from the descriptor), so concurrent pushes stream in parallel without overlapping; only
    regions whose content verified are copied into the new archive.
    """

    def __init__(self, layout: ArchiveLayout, real: Path) -> None:
        self._layout = layout
        self._real = real
        self._lock = _thread.allocate_lock()
        self._added: list[tuple[Descriptor, str | None]] = []
        self._pushed: set[str] = set()
        self._inflight: dict[str, threading.Event] = {}
        self._exclude: set[str] = set()
        self._spool_fd = -1
        self._spool_path: str | None = None
        self._spool_end = 0
        self._segments: list[tuple[int, int]] = []
        self._tmp_path: str | None = None
        idx = layout.tar_index.get("index.json")
        self._name_prefix = "./" if idx is not None and idx.raw_name.startswith("./") else ""
        self._mtime = int(time.time())

    # --- TargetWriter ---------------------------------------------------------------------------
    def push_blob(self, desc: Descriptor, source: bytes | IO[bytes]) -> None:
        """Spool a blob as a tar member unless an identical one is present; verifies digest and size."""
        validate_digest(desc.digest, where=f"{self._layout.location}: blob")
        while True:
            with self._lock:
                if desc.digest in self._pushed:
                    return
                busy = self._inflight.get(desc.digest)
                if busy is None:
                    import threading

                    done = self._inflight[desc.digest] = threading.Event()
                    break
            busy.wait()  # another thread is pushing the same blob: wait for its outcome
        try:
            relpath = blob_relpath(desc.digest)
            existing = self._layout.tar_index.get(relpath)
            replace = False
            if existing is not None:
                if not existing.is_dir and existing.size == desc.size and self._member_matches(existing, desc):
                    with self._lock:
                        self._pushed.add(desc.digest)
                    return
                replace = True  # a corrupt or odd member: replace it
            self._spool_member(relpath, desc, source)
            with self._lock:
                if replace:
                    self._exclude.add(relpath)
                self._pushed.add(desc.digest)
        finally:
            with self._lock:
                del self._inflight[desc.digest]
            done.set()

    def push_manifest(self, desc: Descriptor, data: bytes, *, tag: str | None = None, listed: bool = True) -> None:
        """Store a manifest blob; list it in index.json (tagged or not) at commit."""
        self.push_blob(desc, data)
        if tag or listed:
            with self._lock:
                self._added.append((desc, tag))

    # --- internals ------------------------------------------------------------------------------
    def _member_matches(self, m: TarMember, desc: Descriptor) -> bool:
        h = hasher_for(desc.digest)
        with self._layout._open_file(m.name) as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        return f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}" == desc.digest

    def _temp(self, suffix: str) -> tuple[int, str]:
        try:
            import tempfile  # only writers need it

            return tempfile.mkstemp(prefix=f".{self._real.name}.{_TMP_TAG}", suffix=suffix, dir=self._real.parent)
        except OSError as exc:
            raise _os_error(self._layout.location, f"cannot create a temp file in {self._real.parent}", exc) from None

    def _write(self, fd: int, data: bytes | memoryview, offset: int) -> int:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + done)
        except OSError as exc:
            raise _os_error(self._layout.location, "writing the new archive", exc) from None
        return done

    def _spool_member(self, relpath: str, desc: Descriptor, source: bytes | IO[bytes]) -> None:
        header = member_header(self._name_prefix + relpath, desc.size, mtime=self._mtime)
        length = len(header) + desc.size + len(padding(desc.size))
        with self._lock:
            if self._spool_fd < 0:
                self._spool_fd, self._spool_path = self._temp(".spool")
            start = self._spool_end
            self._spool_end += length  # this region is ours alone
        fd = self._spool_fd
        pos = start + self._write(fd, header, start)
        h = hasher_for(desc.digest)
        written = 0
        if isinstance(source, bytes | bytearray | memoryview):
            h.update(source)
            written = len(source)
            if written == desc.size:
                pos += self._write(fd, source, pos)
        else:
            while written <= desc.size and (chunk := source.read(min(_CHUNK, desc.size + 1 - written))):
                h.update(chunk)
                written += len(chunk)
                if written <= desc.size:
                    pos += self._write(fd, chunk, pos)
        actual = f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}"
        if written != desc.size or actual != desc.digest:
            raise ContentError(
                f"{self._layout.location}: content for {desc.digest} does not match its descriptor "
                f"(got {'more than ' if written > desc.size else ''}{written} bytes, {actual})"
            )
        self._write(fd, padding(desc.size), pos)
        with self._lock:
            self._segments.append((start, start + length))

    def _keep_ranges(self) -> list[tuple[int, int]]:
        """Byte ranges of the old archive to copy: everything before the end marker except
        index.json and replaced members (their prefix headers included)."""
        tar = self._layout.tar_index
        drop = sorted(
            (m.header_offset, m.end_offset) for m in tar.ordered if m.name == "index.json" or m.name in self._exclude
        )
        ranges: list[tuple[int, int]] = []
        pos = 0
        for start, end in drop:
            if start > pos:
                ranges.append((pos, start))
            pos = max(pos, end)
        if tar.end_offset > pos:
            ranges.append((pos, tar.end_offset))
        return ranges

    def _new_index(self) -> bytes:
        layout = self._layout
        raw = parse_json_object(layout._read_small("index.json", MAX_INDEX_JSON_SIZE), where="index.json")
        merged = merge_index(layout.index_entries(), self._added)
        raw.setdefault("schemaVersion", 2)
        raw.setdefault("mediaType", MT_INDEX)
        raw["manifests"] = [d.to_json() for d in merged]
        return canonical_json(raw)

    def commit(self) -> None:
        """Write the new archive beside the old one and rename it over it (nothing to do if unchanged)."""
        if not self._added and not self._segments and not self._exclude:
            return
        from ocisign.oci.tar_write import copy_range

        layout = self._layout
        index_json = self._new_index()
        fd, self._tmp_path = self._temp(".tmp")
        try:
            src = layout._source.acquire()
            try:
                pos = 0
                for start, end in self._keep_ranges():
                    copy_range(src, fd, start, end - start, pos)
                    pos += end - start
            finally:
                layout._source.release()
            for start, end in _merge(sorted(self._segments)):
                copy_range(self._spool_fd, fd, start, end - start, pos)
                pos += end - start
            tail = member_header(self._name_prefix + "index.json", len(index_json), mtime=self._mtime)
            tail += index_json + padding(len(index_json))
            tail += end_of_archive(pos + len(tail))
            pos += self._write(fd, tail, pos)
            # re-index what we wrote before it replaces anything: never install a malformed archive
            new_st = os.fstat(fd)
            new_tar = _index(fd, new_st, layout.location)
            old = layout._stat
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
            if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):
                    os.fchown(fd, old.st_uid, old.st_gid)
            os.fsync(fd)
            os.replace(self._tmp_path, self._real)
            self._tmp_path = None
            from ocisign.fsutil import fsync_dir

            fsync_dir(self._real.parent)
        except EOFError:
            raise LayoutError(f"{layout.location}: the archive changed while it was being rewritten") from None
        except OSError as exc:
            raise _os_error(layout.location, "writing the new archive", exc) from None
        except BaseException:
            os.close(fd)
            raise
        # the new archive is in place: read from it (through the descriptor we wrote) from now on
        layout._switch(fd, os.fstat(fd), new_tar)
        self._added.clear()

    def discard(self) -> None:
        """Remove the spool and any unfinished new archive (the original is never touched)."""
        if self._spool_fd >= 0:
            os.close(self._spool_fd)
            self._spool_fd = -1
        for p in (self._spool_path, self._tmp_path):
            if p:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
        self._spool_path = self._tmp_path = None


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, adjacent byte ranges joined (fewer copy calls)."""
    out: list[tuple[int, int]] = []
    for start, end in ranges:
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


# --- creating and detecting -------------------------------------------------------------------------
def empty_archive() -> bytes:
    """A complete, empty OCI layout tar: blobs/, blobs/sha256/, oci-layout and an empty index.json."""
    layout_json = canonical_json({"imageLayoutVersion": LAYOUT_VERSION})
    index_json = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []})
    out = member_header("blobs/", 0, is_dir=True) + member_header("blobs/sha256/", 0, is_dir=True)
    for name, data in (("oci-layout", layout_json), ("index.json", index_json)):
        out += member_header(name, len(data)) + data + padding(len(data))
    return out + end_of_archive(len(out))


def create_archive(path: str | os.PathLike[str]) -> ArchiveLayout:
    """Create a new, empty OCI layout tar at ``path`` (never overwriting anything) and open it."""
    from pathlib import Path

    path = Path(path)
    if os.path.lexists(path):
        if path.is_dir():
            raise LayoutError(f"{path}: is a directory; use --layout-type oci for a layout directory")
        raise LayoutError(f"{path}: already exists")
    from ocisign.fsutil import atomic_writer

    parent = path.parent
    if not parent.is_dir():
        raise LayoutError(f"{path}: parent directory {parent} does not exist")
    try:
        with atomic_writer(path, overwrite=False) as fh:
            fh.write(empty_archive())
    except FileExistsError:
        raise LayoutError(f"{path}: already exists") from None
    except OSError as exc:
        raise _os_error(str(path), "cannot create", exc) from None
    return ArchiveLayout(path)


def detect(path: str | os.PathLike[str]) -> bool:
    """True for a regular file (symlinks followed) that starts like a tar or a compressed file.

    Compressed files are claimed only so that opening them gives a clear "not an OCI layout
    tar" error instead of "no handler"; they are never decompressed.
    """
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.pread(fd, 2 * BLOCK, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    from ocisign.oci.tar_index import sniff

    return sniff(head) != "other"


@hookimpl
def ocisign_layout_handlers() -> Iterator[LayoutHandler]:
    """Register the ``oci-archive`` (tar) layout."""
    yield LayoutHandler(
        name="oci-archive",
        detect=detect,
        open=ArchiveLayout,
        create=create_archive,
        description="OCI image layout in a tar file (read in place, rewritten atomically)",
    )
