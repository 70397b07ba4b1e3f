"""Crash-safe writing helpers: :class:`ocisign.fsutil.StagedFile`."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from ocisign.fsutil import StagedFile, fsync_all


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_staged_file_is_invisible_until_published(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    target.write_bytes(b"old")
    staged = StagedFile(target, b"new content", mode=0o640)
    assert target.read_bytes() == b"old"
    [tmp] = _hidden(tmp_path)
    assert tmp.startswith(".index.json.") and tmp.endswith(".tmp")
    assert (tmp_path / tmp).read_bytes() == b"new content"
    staged.sync()
    staged.publish()
    assert target.read_bytes() == b"new content"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert _hidden(tmp_path) == []
    staged.discard()  # after publish: nothing to remove, the published file stays
    assert target.read_bytes() == b"new content"
    with pytest.raises(ValueError, match="closed"):
        staged.sync()


def test_discarded_staged_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "blob"
    staged = StagedFile(target, b"x" * 10, prefix=".tmp-", suffix="")
    assert [n for n in _hidden(tmp_path) if n.startswith(".tmp-")]
    staged.discard()
    staged.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_removes_the_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        StagedFile(tmp_path / "index.json", b"data")
    assert list(tmp_path.iterdir()) == []


def test_temp_names_never_clobber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing file with the drawn name is skipped (O_EXCL), never overwritten."""
    draws = iter([b"\x00" * 6, b"\x01" * 6, b"\x00" * 6, b"\x02" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    taken = tmp_path / f".tmp-{'00' * 6}"
    taken.write_bytes(b"someone else's")
    first = StagedFile(tmp_path / "a", b"A", prefix=".tmp-", suffix="")
    second = StagedFile(tmp_path / "b", b"B", prefix=".tmp-", suffix="")
    assert taken.read_bytes() == b"someone else's"
    first.publish(sync_dir=False)
    second.publish()
    assert (tmp_path / "a").read_bytes() == b"A" and (tmp_path / "b").read_bytes() == b"B"


def test_fsync_all_syncs_every_descriptor_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several descriptors are synced at the same time (one journal commit), all before it returns."""
    real = os.fsync
    running: list[int] = []
    peak = [0]
    synced: list[int] = []
    lock = threading.Lock()

    def slow_fsync(fd: int) -> None:
        with lock:
            running.append(fd)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.05)
        real(fd)
        with lock:
            running.remove(fd)
            synced.append(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    files = [StagedFile(tmp_path / f"f{i}", b"x") for i in range(4)]
    fds = [f.fileno() for f in files]
    fsync_all(fds)
    assert sorted(synced) == sorted(fds) and not running
    assert peak[0] > 1
    for f in files:
        f.discard()


def test_fsync_all_raises_the_error_only_after_every_sync_ended(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing fsync fails the call (fail closed), and no other sync is still running on return
    (the caller closes the descriptors next)."""
    real = os.fsync
    files = [StagedFile(tmp_path / f"f{i}", b"x") for i in range(3)]
    bad = files[1].fileno()
    finished: list[int] = []

    def fsync(fd: int) -> None:
        if fd == bad:
            raise OSError(errno.EIO, "Input/output error")
        time.sleep(0.05)
        real(fd)
        finished.append(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        fsync_all([f.fileno() for f in files])
    assert sorted(finished) == sorted(f.fileno() for f in files if f.fileno() != bad)
    for f in files:
        f.discard()
    assert list(tmp_path.iterdir()) == []
