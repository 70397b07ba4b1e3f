"""Built-in plugin ``oci``: OCI image layouts stored as directories.

Reads never follow symlinks inside the layout, never block on FIFOs and never write.
Writes hold an exclusive ``flock`` on the layout directory for the whole session, write each
blob to a temp file beside its final name (hashing as it writes), fsync and rename it, and
rewrite ``index.json`` the same way last, after the blobs' directory is fsynced — so a kill at
any point leaves a valid layout and concurrent signers all end up in ``index.json``. Small
blobs are staged and made durable together at commit (:class:`DirWriter`).
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock; importing threading costs list start-up
import contextlib
import errno
import json
import os
import stat

from ocisign.errors import ContentError, LayoutError, NotFoundError
from ocisign.lazy_plugins import hookimpl
from ocisign.oci.layout_reader import LAYOUT_VERSION, LayoutReader, blob_relpath, merge_index
from ocisign.oci.model import MT_INDEX, Descriptor, canonical_json, hasher_for, parse_json_object, validate_digest
from ocisign.types import LayoutHandler

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import IO

    from ocisign.fsutil import StagedFile

_CHUNK = 1 << 20
#: blobs given as bytes up to this size are staged and made durable together at commit
_STAGE_MAX = 4 << 20
#: at most this many staged blobs (open temp files) per session; more are published early
_STAGE_LIMIT = 64


def _layout_error(location: str, relpath: str, exc: OSError) -> LayoutError:
    if exc.errno == errno.ELOOP:
        return LayoutError(f"{location}: {relpath} is a symbolic link; refusing to follow it")
    if exc.errno == errno.ENOTDIR:
        return LayoutError(f"{location}: {relpath}: a path component is not a directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return LayoutError(f"{location}: {relpath}: permission denied")
    return LayoutError(f"{location}: {relpath}: {exc.strerror}")


def _read_fd(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes from ``fd`` (fewer at end of file)."""
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, min(limit - got, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class DirLayout(LayoutReader):
    """An OCI image layout directory (read side plus :meth:`writer`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.fspath(root)  # a str: list never imports pathlib
        super().__init__(self._root)
        #: directories of the layout opened once per session (``""`` is the root, then ``blobs``,
        #: ``blobs/sha256``), each opened without following symbolic links; closed by :meth:`close`
        self._dir_fds: dict[str, int] = {}
        self._dir_lock = _thread.allocate_lock()

    # --- primitives -----------------------------------------------------------------------------
    def _dir_fd(self, parts: list[str]) -> int:
        """The open directory ``parts`` of the layout (cached; components never symbolic links)."""
        rel = "/".join(parts)
        fd = self._dir_fds.get(rel)
        if fd is not None:
            return fd
        if not parts:
            try:
                fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                raise LayoutError(f"{self.location}: no such directory") from None
            except OSError as exc:
                raise _layout_error(self.location, ".", exc) from None
        else:
            parent = self._dir_fd(parts[:-1])
            try:
                fd = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP) and stat.S_ISLNK(
                    os.lstat(parts[-1], dir_fd=parent).st_mode
                ):
                    raise _layout_error(self.location, rel, OSError(errno.ELOOP, "symbolic link")) from None
                raise
        with self._dir_lock:
            known = self._dir_fds.setdefault(rel, fd)
        if known != fd:
            os.close(fd)
        return known

    def _open_fd(self, relpath: str) -> int:
        return self._open_fd_size(relpath)[0]

    def _open_fd_size(self, relpath: str) -> tuple[int, int]:
        """An open descriptor of the regular file ``relpath`` and its size."""
        parts = relpath.split("/")
        try:
            dfd = self._dir_fd(parts[:-1])
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        except FileNotFoundError:
            raise NotFoundError(f"{self.location}: {relpath} not found") from None
        except OSError as exc:
            raise _layout_error(self.location, relpath, exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise LayoutError(f"{self.location}: {relpath} is not a regular file")
        return fd, st.st_size

    def _close_dirs(self) -> None:
        with self._dir_lock:
            fds, self._dir_fds = list(self._dir_fds.values()), {}
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Drop caches and close the layout's directories."""
        super().close()
        self._close_dirs()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close_dirs()

    def _read_small(self, relpath: str, max_size: int) -> bytes:
        fd, size = self._open_fd_size(relpath)
        try:
            if size > max_size:
                raise LayoutError(f"{self.location}: {relpath} is larger than {max_size} bytes")
            # a buffer of the size fstat gave (plus one byte to see growth), not of max_size: os.read
            # allocates what it is asked for (16 MiB for index.json's limit: ~25 us a read)
            data = _read_fd(fd, size + 1)
            if len(data) > size:  # grew since fstat: read on, up to the limit
                data += _read_fd(fd, max_size + 1 - len(data))
        finally:
            os.close(fd)
        if len(data) > max_size:
            raise LayoutError(f"{self.location}: {relpath} is larger than {max_size} bytes")
        return data

    def _read_upto(self, relpath: str, limit: int) -> bytes:
        fd, _size = self._open_fd_size(relpath)
        try:
            return _read_fd(fd, limit)
        finally:
            os.close(fd)

    def _open_file(self, relpath: str) -> IO[bytes]:
        return os.fdopen(self._open_fd(relpath), "rb")

    def _file_size(self, relpath: str) -> int | None:
        try:
            fd = self._open_fd(relpath)
        except NotFoundError:
            return None
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    @property
    def root(self) -> Path:
        """The layout directory."""
        from pathlib import Path

        return Path(self._root)

    def blob_path(self, desc: Descriptor) -> Path:
        """Filesystem path of a blob (for zero-copy consumers such as the registry uploader)."""
        return self.root / blob_relpath(desc.digest)

    # --- writing --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[DirWriter]:
        """Exclusive write session; ``index.json`` is rewritten atomically on clean exit."""
        self.index_entries()  # the layout must be valid before anything is written (re-read under the lock)
        root = os.fspath(self.root)
        for rel in ("blobs", "blobs/sha256"):  # never write through a symlink out of the layout
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(os.lstat(os.path.join(root, rel)).st_mode):
                    raise LayoutError(f"{self.location}: {rel} is not a directory (symbolic links are refused)")
        for rel in ("index.json", "blobs", f"blobs/{'sha256'}", "."):
            p = os.path.join(root, rel)
            if os.path.exists(p) and not os.access(p, os.W_OK):
                raise LayoutError(f"{self.location}: {rel} is not writable (permission denied or read-only)")
        dfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            import fcntl  # writers only: reading needs no lock

            fcntl.flock(dfd, fcntl.LOCK_EX)
            self._index = None  # re-read under the lock: another writer may have committed
            self.index_entries()
            w = DirWriter(self)
            try:
                yield w
                w.commit()
            except OSError as exc:  # disk full, permissions, I/O errors: a clear error, not a traceback
                raise LayoutError(f"{self.location}: cannot write the layout: {exc.strerror or exc}") from None
            finally:
                w.discard()  # staged blobs of a failed session (none after a commit)
        finally:
            self._index = None
            os.close(dfd)  # releases the flock


class DirWriter:
    """Write session on a :class:`DirLayout` (see :class:`ocisign.types.TargetWriter`).

    Small blobs given as bytes (signature envelopes, manifests, configs) are staged: written to a
    temp file at once, fsynced and renamed into place at :meth:`commit`, together with the new
    ``index.json``: every file is created first, then every file is fsynced, then the blobs are
    renamed, their directory fsynced once, and ``index.json`` is renamed last (the commit point)
    and its directory fsynced. Streamed blobs (``cp``) are fsynced and renamed as they finish.
    """

    def __init__(self, layout: DirLayout) -> None:
        self._layout = layout
        self._added: list[tuple[Descriptor, str | None]] = []
        #: directories blobs were renamed into; fsynced once at commit, before index.json names them
        self._renamed_in: set[Path] = set()
        #: staged small blobs by digest (written, verified, not yet durable nor visible)
        self._staged: dict[str, StagedFile] = {}
        self._staged_lock = _thread.allocate_lock()
        #: blob directories this session made sure exist
        self._dirs_made: set[Path] = set()

    def push_blob(self, desc: Descriptor, source: bytes | IO[bytes]) -> None:
        """Store a blob (skipped when an identical one is present), verifying digest and size."""
        validate_digest(desc.digest, where=f"{self._layout.location}: blob")
        path = self._layout.blob_path(desc)
        if desc.digest in self._staged or self._present(desc, path):
            return
        if path.parent not in self._dirs_made:  # once per directory and session
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs_made.add(path.parent)
        if isinstance(source, bytes | bytearray | memoryview) and len(source) <= _STAGE_MAX:
            self._stage(desc, path, bytes(source))
            return
        h = hasher_for(desc.digest)
        written = 0
        import tempfile  # only writers need it

        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes | bytearray | memoryview):
                    out.write(source)
                    h.update(source)
                    written = len(source)
                else:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        written += len(chunk)
                        if written > desc.size:
                            break
                out.flush()
                os.fsync(out.fileno())
            actual = f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}"
            if written != desc.size or actual != desc.digest:
                raise ContentError(
                    f"{self._layout.location}: content for {desc.digest} does not match its descriptor "
                    f"(got {written} bytes, {actual})"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            self._renamed_in.add(path.parent)  # its directory is fsynced once, before index.json
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _stage(self, desc: Descriptor, path: Path, data: bytes) -> None:
        from ocisign.fsutil import StagedFile

        h = hasher_for(desc.digest)
        h.update(data)
        actual = f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}"
        if len(data) != desc.size or actual != desc.digest:
            raise ContentError(
                f"{self._layout.location}: content for {desc.digest} does not match its descriptor "
                f"(got {len(data)} bytes, {actual})"
            )
        staged = StagedFile(path, data, mode=0o644, prefix=".tmp-", suffix="")
        with self._staged_lock:
            if desc.digest in self._staged:  # another thread staged the same content
                staged.discard()
                return
            self._staged[desc.digest] = staged
            full = len(self._staged) >= _STAGE_LIMIT
        if full:
            self._publish_staged()

    def _publish_staged(self) -> None:
        """fsync and rename the staged blobs now (their directory is fsynced at commit)."""
        from ocisign.fsutil import fsync_all

        with self._staged_lock:
            staged = list(self._staged.values())
            fsync_all([f.fileno() for f in staged])
            for f in staged:
                f.publish(sync_dir=False)
                self._renamed_in.add(f.path.parent)
            self._staged.clear()

    def discard(self) -> None:
        """Remove the temp files of staged blobs not committed (a failed session)."""
        with self._staged_lock:
            staged, self._staged = list(self._staged.values()), {}
        for f in staged:
            f.discard()

    def _present(self, desc: Descriptor, path: Path) -> bool:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != desc.size:
            return False
        h = hasher_for(desc.digest)
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        return f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}" == desc.digest

    def push_manifest(self, desc: Descriptor, data: bytes, *, tag: str | None = None, listed: bool = True) -> None:
        """Store a manifest blob; list it in index.json (tagged or not) at commit."""
        self.push_blob(desc, data)
        if tag or listed:
            self._added.append((desc, tag))

    def commit(self) -> None:
        """Make the new blobs durable and visible (one fsync per directory), then rewrite index.json
        atomically with the entries added in this session (see the class docstring for the order)."""
        from ocisign.fsutil import StagedFile, fsync_all, fsync_dir

        with self._staged_lock:
            staged = list(self._staged.values())
        index: StagedFile | None = None
        try:
            if self._added:
                layout = self._layout
                raw = parse_json_object(layout._read_small("index.json", 64 * 1024 * 1024), where="index.json")
                merged = merge_index(layout.index_entries(), self._added)
                raw.setdefault("schemaVersion", 2)
                raw.setdefault("mediaType", MT_INDEX)
                raw["manifests"] = [d.to_json() for d in merged]
                path = layout.root / "index.json"
                index = StagedFile(path, canonical_json(raw), mode=stat.S_IMODE(os.stat(path).st_mode))  # keep its mode
            fsync_all([f.fileno() for f in (*staged, *([index] if index is not None else []))])
            for f in staged:
                f.publish(sync_dir=False)
                self._renamed_in.add(f.path.parent)
            with self._staged_lock:
                self._staged.clear()
            for directory in sorted(self._renamed_in):
                fsync_dir(directory)
            self._renamed_in.clear()
            if index is not None:
                index.publish()  # the commit point: every blob it names is durable
                self._added.clear()
        finally:
            if index is not None:
                index.discard()


def create_layout(root: str | os.PathLike[str]) -> DirLayout:
    """Open ``root`` as a layout, initialising it when it is missing or an empty directory."""
    from pathlib import Path

    from ocisign.fsutil import write_atomic

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise LayoutError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        layout = DirLayout(root)
        layout.index_entries()
        return layout
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    write_atomic(root / "oci-layout", json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
    write_atomic(root / "index.json", canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}))
    return DirLayout(root)


def _detect(path: str | os.PathLike[str]) -> bool:
    return os.path.isdir(path)


@hookimpl
def ocisign_layout_handlers() -> Iterator[LayoutHandler]:
    """Register the ``oci`` directory layout."""
    yield LayoutHandler(
        name="oci",
        detect=_detect,
        open=DirLayout,
        create=create_layout,
        description="OCI image layout directory",
    )
