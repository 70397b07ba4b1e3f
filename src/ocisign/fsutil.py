"""Crash-safe file writing: lock, write temp in the same directory, fsync, rename.

Nothing here is used by read-only commands.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ocisign.errors import OcisignError


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Yield a temp file beside ``path``; on clean exit fsync it and rename it over ``path``.

    ``overwrite=False`` refuses (FileExistsError) when ``path`` exists at commit time, using a
    hard link so two racing writers cannot both win. On error the temp file is removed.
    """
    directory = path.parent
    import tempfile  # not at import: read-only commands never need it

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
        fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class _FsyncWorkers:
    """Daemon threads that fsync file descriptors handed to them (see :func:`fsync_all`)."""

    def __init__(self, workers: int) -> None:
        import queue

        self._tasks: queue.SimpleQueue[tuple[int, Any, list[BaseException]]] = queue.SimpleQueue()
        for _ in range(workers):
            threading.Thread(target=self._work, name="ocisign-fsync", daemon=True).start()

    def _work(self) -> None:
        while True:
            fd, done, errors = self._tasks.get()
            try:
                os.fsync(fd)
            except BaseException as exc:  # handed back to the caller, which waits for every task
                errors.append(exc)
            finally:
                done.release()

    def fsync_all(self, fds: list[int]) -> None:
        """fsync ``fds[0]`` here and the others on the workers; wait for all; raise the first error."""
        errors: list[BaseException] = []
        pending = []
        for fd in fds[1:]:
            done = threading.Lock()
            done.acquire()  # released by the worker when this fd is synced
            self._tasks.put((fd, done, errors))
            pending.append(done)
        try:
            os.fsync(fds[0])
        finally:
            for done in pending:  # never return (and let the caller close an fd) while a sync runs
                done.acquire()
        if errors:
            raise errors[0]


_WORKERS: _FsyncWorkers | None = None
_WORKERS_LOCK = threading.Lock()


def fsync_all(fds: list[int]) -> None:
    """fsync every descriptor of ``fds``, concurrently when there are several; raise the first error.

    The filesystem commits fsyncs that arrive together in one journal transaction, so a writer
    with several new files waits for about one commit instead of one per file. Returns only when
    every descriptor is synced (or has failed).
    """
    global _WORKERS
    if len(fds) <= 1:
        for fd in fds:
            os.fsync(fd)
        return
    with _WORKERS_LOCK:
        if _WORKERS is None:
            _WORKERS = _FsyncWorkers(_FSYNC_WORKERS)
        workers = _WORKERS
    workers.fsync_all(fds)


#: helper threads of :func:`fsync_all` (a signature commits 3 new blobs and index.json at once)
_FSYNC_WORKERS = 3


def _create_temp(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file ``prefix<random>suffix`` in ``directory`` (O_EXCL, no symlink followed, mode 0600),
    like ``tempfile.mkstemp`` without importing :mod:`tempfile` (and :mod:`shutil`) on the sign path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        name = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no unused temporary file name in {directory}")


class StagedFile:
    """``data`` written to a temp file beside ``path``, not yet durable nor visible under ``path``.

    For a writer that publishes several files at one commit point: stage them all, :meth:`sync`
    them all (no file is created between two fsyncs, which on a journaling filesystem makes each
    create wait for the previous commit), then :meth:`publish` each in dependency order and fsync
    each directory once. :meth:`discard` removes the temp file (safe to call after publish).
    """

    def __init__(self, path: Path, data: bytes, *, mode: int = 0o644, prefix: str | None = None,
                 suffix: str = ".tmp") -> None:
        self.path = path
        self._fd: int | None = None
        self._tmp = ""
        fd, self._tmp = _create_temp(path.parent, f".{path.name}." if prefix is None else prefix, suffix)
        self._fd = fd
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            self.discard()
            raise

    def fileno(self) -> int:
        """The open temp file (until :meth:`publish` or :meth:`discard`)."""
        if self._fd is None:
            raise ValueError(f"{self.path}: staged file is closed")
        return self._fd

    def sync(self) -> None:
        """fsync the temp file's content (before :meth:`publish` makes it visible)."""
        os.fsync(self.fileno())

    def publish(self, *, sync_dir: bool = True) -> None:
        """Rename the (synced) temp file over ``path``; then fsync its directory unless the caller does."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.replace(self._tmp, self.path)
        self._tmp = ""
        if sync_dir:
            fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Close and remove the temp file (nothing when it was published)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self._tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = ""


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode, overwrite=overwrite) as fh:
        fh.write(data)


def create_exclusive(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with O_EXCL and ``mode`` (private keys): never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    os.close(fd)


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and each missing parent with mode 0700 (existing directories are left alone)."""
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)


@contextlib.contextmanager
def locked_dir(directory: Path, *, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on an existing directory itself (no lock file is created)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OcisignError(f"{what}: cannot lock {directory}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def locked(lock_path: Path, *, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM) else exc.strerror
        raise OcisignError(f"{what}: cannot lock {lock_path}: {reason}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
