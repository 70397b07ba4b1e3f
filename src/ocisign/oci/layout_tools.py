"""Core of ``ocisign layout check|extract|pack``.

* :func:`check_layout` re-verifies a layout (directory or tar): the ``oci-layout`` version,
  ``index.json``, and every blob reachable from it — present, of the declared size, hashing to
  its digest (streamed), manifests and indexes parsing as the media type their descriptor says.
  It collects every problem instead of stopping at the first. It never writes.
* :func:`extract_archive` unpacks a layout tar into a new or empty directory: regular files and
  directories only (the strict indexer refuses everything else before anything is written),
  blobs hashed while copied, everything written into a private temp directory beside the
  destination and renamed into place only when complete.
* :func:`pack_layout` writes a reproducible tar of a layout directory: sorted names, mtime 0,
  owner 0:0 with empty user/group names, modes 0644/0755, ustar headers (PAX only when needed);
  written to a temp file beside the destination and renamed over it only when complete.

The three share the blob/graph checks and the temp-then-rename discipline, which is why they
stay in one module of a little over 500 lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ocisign.errors import ContentError, LayoutError, NotFoundError, OcisignError, UsageError
from ocisign.oci.layout_reader import MAX_INDEX_JSON_SIZE, LayoutReader, blob_relpath
from ocisign.oci.model import (
    ALL_MANIFEST_TYPES,
    MAX_INDEX_DEPTH,
    MAX_MANIFEST_SIZE,
    MT_ARTIFACT_MANIFEST,
    MT_INDEX,
    Descriptor,
    hasher_for,
    parse_json_object,
    parse_manifest,
    validate_digest,
)

_CHUNK = 1 << 20
#: ``layout check`` stops recording problems after this many (and says how many more there were)
MAX_PROBLEMS = 1000


# --- check --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a layout."""

    where: str
    message: str


@dataclasses.dataclass
class CheckReport:
    """Result of :func:`check_layout`."""

    location: str
    layout_type: str
    problems: list[Problem] = dataclasses.field(default_factory=list)
    more_problems: int = 0
    layout_version: str | None = None
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    missing_external: int = 0
    bytes_verified: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def add(self, where: str, message: str) -> None:
        """Record a problem (bounded)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, message))
        else:
            self.more_problems += 1

    def to_json(self) -> dict[str, Any]:
        """JSON form for ``-o json``."""
        return {
            "path": self.location,
            "layoutType": self.layout_type,
            "ok": self.ok,
            "layoutVersion": self.layout_version,
            "tags": self.tags,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "missingExternalBlobs": self.missing_external,
            "bytesVerified": self.bytes_verified,
            "problems": [dataclasses.asdict(p) for p in self.problems],
            "moreProblems": self.more_problems,
        }


def _read_index(layout: LayoutReader, report: CheckReport) -> list[Descriptor] | None:
    """index.json entries, parsed like LayoutReader.index_entries but independent of oci-layout."""
    where = f"{layout.location}: index.json"
    try:
        data = layout._read_small("index.json", MAX_INDEX_JSON_SIZE)
    except NotFoundError:
        report.add("index.json", "index.json is missing")
        return None
    except OcisignError as exc:
        report.add("index.json", str(exc))
        return None
    try:
        obj = parse_json_object(data, where=where)
        if obj.get("mediaType", MT_INDEX) != MT_INDEX:
            raise ContentError(f"{where}: mediaType must be {MT_INDEX}")
        if len(data) <= MAX_MANIFEST_SIZE:
            index = parse_manifest(data, media_type=MT_INDEX, where=where)
        else:
            index = LayoutReader._parse_big_index(obj, where)
    except ContentError as exc:
        report.add("index.json", str(exc))
        return None
    entries = list(index.manifests)
    layout._index = entries  # later reads (manifest cache, referrers) reuse the parsed index
    return entries


def _blob_present_size(layout: LayoutReader, desc: Descriptor) -> int | None:
    return layout._file_size(blob_relpath(desc.digest))


def _blobs_dir_exists(layout: LayoutReader) -> bool:
    root = getattr(layout, "root", None)
    if isinstance(root, Path):
        return (root / "blobs").is_dir() and not (root / "blobs").is_symlink()
    tar = getattr(layout, "tar_index", None)
    if tar is not None:
        return any(m.name == "blobs" or m.name.startswith("blobs/") for m in tar.ordered)
    return True


def check_layout(layout: LayoutReader, *, layout_type: str) -> CheckReport:
    """Verify everything reachable from ``index.json``; see the module docstring. Never writes."""
    report = CheckReport(location=layout.location, layout_type=layout_type)
    try:
        data = layout._read_small("oci-layout", 4096)
        obj = parse_json_object(data, where="oci-layout")
        version = obj.get("imageLayoutVersion")
        report.layout_version = version if isinstance(version, str) else None
        if version != "1.0.0":
            report.add("oci-layout", f"unsupported imageLayoutVersion {version!r} (want '1.0.0')")
    except NotFoundError:
        report.add("oci-layout", "oci-layout file is missing")
    except OcisignError as exc:
        report.add("oci-layout", str(exc))
    if not _blobs_dir_exists(layout):
        report.add("blobs", "blobs directory is missing")
    entries = _read_index(layout, report)
    if entries is None:
        return report
    by_tag: dict[str, set[str]] = {}
    for d in entries:
        if d.ref_name is not None:
            by_tag.setdefault(d.ref_name, set()).add(d.digest)
    report.tags = len(by_tag)
    for tag, digests in sorted(by_tag.items()):
        if len(digests) > 1:
            report.add(f"index.json tag {tag!r}", "tag is ambiguous: it names " + ", ".join(sorted(digests)))
    _check_graph(layout, entries, report)
    return report


def _check_graph(layout: LayoutReader, entries: list[Descriptor], report: CheckReport) -> None:
    hashed: dict[str, bool] = {}  # digest -> content OK
    parsed: set[tuple[str, str]] = set()
    stack: list[tuple[Descriptor, str, int]] = [
        (d, f"index.json manifests[{i}]", 0) for i, d in reversed(list(enumerate(entries)))
    ]
    while stack:
        desc, where, depth = stack.pop()
        is_manifest = desc.media_type in ALL_MANIFEST_TYPES
        if desc.digest not in hashed:
            hashed[desc.digest] = _check_blob(layout, desc, where, report)
            if hashed[desc.digest]:
                report.blobs += 1
        if not hashed[desc.digest] or not is_manifest or (desc.digest, desc.media_type) in parsed:
            continue
        parsed.add((desc.digest, desc.media_type))
        if desc.size > MAX_MANIFEST_SIZE:
            report.add(where, f"{desc.digest}: manifest of {desc.size} bytes is over the {MAX_MANIFEST_SIZE} limit")
            continue
        try:
            m = layout.manifest(desc)
        except OcisignError as exc:
            report.add(where, f"{desc.digest}: {exc}")
            continue
        report.manifests += 1
        children: list[tuple[Descriptor, str, int]] = []
        if m.config is not None:
            children.append((m.config, f"{desc.digest} config", depth))
        layer_key = "blobs" if desc.media_type == MT_ARTIFACT_MANIFEST else "layers"
        children += [(d, f"{desc.digest} {layer_key}[{i}]", depth) for i, d in enumerate(m.layers)]
        if m.manifests:
            if depth + 1 > MAX_INDEX_DEPTH:
                report.add(where, f"{desc.digest}: indexes nested deeper than {MAX_INDEX_DEPTH} levels")
            else:
                children += [(d, f"{desc.digest} manifests[{i}]", depth + 1) for i, d in enumerate(m.manifests)]
        stack.extend(reversed(children))


def _check_blob(layout: LayoutReader, desc: Descriptor, where: str, report: CheckReport) -> bool:
    """Presence, size and digest of one blob (streamed); records problems, returns True when OK."""
    try:
        size = _blob_present_size(layout, desc)
    except OcisignError as exc:
        report.add(where, f"{desc.digest}: {exc}")
        return False
    if size is None:
        if desc.urls:
            report.missing_external += 1  # foreign layer, fetched from its urls by runtimes
            return False
        report.add(where, f"blob {desc.digest} ({desc.media_type}) is missing")
        return False
    if size != desc.size:
        report.add(where, f"blob {desc.digest} is {size} bytes but its descriptor says {desc.size}")
        return False
    buf = memoryview(bytearray(_CHUNK))
    try:
        with layout.open_blob(desc) as fh:
            readinto = getattr(fh, "readinto", None)
            if readinto is not None:
                while readinto(buf):
                    pass
            else:
                while fh.read(_CHUNK):
                    pass
    except OcisignError as exc:
        report.add(where, str(exc))
        return False
    except OSError as exc:
        report.add(where, f"blob {desc.digest}: {exc.strerror or exc}")
        return False
    report.bytes_verified += desc.size
    return True


# --- extract ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ExtractResult:
    """What :func:`extract_archive` wrote."""

    directory: str
    files: int
    directories: int
    bytes: int


def _check_new_dir(dest: Path) -> Path:
    """``dest`` must be absent or an empty real directory; returns its (existing) parent."""
    if os.path.islink(dest):
        raise UsageError(f"{dest}: is a symbolic link; refusing to extract through it")
    if os.path.lexists(dest):
        if not dest.is_dir():
            raise UsageError(f"{dest}: exists and is not a directory")
        if any(os.scandir(dest)):
            raise UsageError(f"{dest}: directory is not empty")
    parent = Path(os.path.abspath(dest)).parent
    if not parent.is_dir():
        raise UsageError(f"{dest}: parent directory {parent} does not exist")
    return parent


def _blob_digest_for(name: str) -> str | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return validate_digest(f"{parts[1]}:{parts[2]}")
        except ContentError:
            return None
    return None


def _open_dir_chain(root_fd: int, parts: list[str], created: set[str]) -> int:
    """Open (creating as needed) the directory ``parts`` under ``root_fd`` without following links."""
    fd = os.dup(root_fd)
    path = ""
    try:
        for part in parts:
            path = f"{path}/{part}" if path else part
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
                created.add(path)
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def extract_archive(tar_path: Path, dest: Path) -> ExtractResult:
    """Extract the layout tar ``tar_path`` into ``dest`` (new or empty), crash-safely; see module docs."""
    from ocisign.oci.tar_write import copy_range
    from ocisign.plugins.oci_archive import ArchiveLayout

    shown = dest
    dest = Path(os.path.abspath(dest))
    parent = _check_new_dir(dest)
    layout = ArchiveLayout(tar_path)  # strict index: hostile members are refused here, before any write
    try:
        layout.index_entries()
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.ocisign-", suffix=".extract", dir=parent))
        files = dirs = total = 0
        created: set[str] = set()
        try:
            root_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                src = layout._source.acquire()
                try:
                    for m in layout.tar_index.ordered:
                        if m.name == ".":
                            continue
                        parts = m.name.split("/")
                        if m.is_dir:
                            os.close(_open_dir_chain(root_fd, parts, created))
                            continue
                        dfd = _open_dir_chain(root_fd, parts[:-1], created)
                        try:
                            _extract_file(src, dfd, parts[-1], m.data_offset, m.size, _blob_digest_for(m.name),
                                          where=f"{tar_path}: member {m.raw_name!r}", copy=copy_range)
                        finally:
                            os.close(dfd)
                        files += 1
                        total += m.size
                finally:
                    layout._source.release()
                for rel in sorted(created, key=lambda p: -p.count("/")):
                    dfd = os.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
                    os.fsync(dfd)
                    os.close(dfd)
                dirs = len(created)
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(root_fd, 0o755 & ~umask)
                os.fsync(root_fd)
            finally:
                os.close(root_fd)
            try:
                os.rename(tmp, dest)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise UsageError(f"{dest}: appeared or changed while extracting; nothing was written") from None
                raise
            from ocisign.fsutil import fsync_dir

            fsync_dir(parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as exc:
        raise LayoutError(f"{dest}: extracting {tar_path}: {exc.strerror or exc}") from None
    finally:
        layout.close()
    return ExtractResult(directory=str(shown), files=files, directories=dirs, bytes=total)


def _extract_file(src: int, dfd: int, name: str, offset: int, size: int, digest: str | None, *,
                  where: str, copy: Any) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
    try:
        if digest is None:
            copy(src, fd, offset, size, 0)
        else:
            h = hasher_for(digest)
            buf = memoryview(bytearray(_CHUNK))
            done = 0
            while done < size:
                n = os.preadv(src, [buf[: min(_CHUNK, size - done)]], offset + done)
                if not n:
                    raise LayoutError(f"{where}: archive ended early")
                h.update(buf[:n])
                view = buf[:n]
                while view:
                    view = view[os.write(fd, view):]
                done += n
            actual = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
            if actual != digest:
                raise ContentError(f"{where}: blob content does not match its name (got {actual})")
        os.fsync(fd)
    finally:
        os.close(fd)


# --- pack ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PackResult:
    """What :func:`pack_layout` wrote."""

    archive: str
    files: int
    directories: int
    bytes: int


def _check_pack_name(root: Path, name: str) -> None:
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise LayoutError(f"{root}: {name!r}: file name is not valid UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) or "\\" in name:
        raise LayoutError(f"{root}: {name!r}: file name has control characters or backslashes")
    if len(raw) > 4096:
        raise LayoutError(f"{root}: {name[:100]!r}...: path is too long for a layout tar")


def _walk_sorted(root: Path) -> Iterator[tuple[str, os.DirEntry[str], bool]]:
    """(relative name, entry, is_dir) depth-first, names sorted bytewise at each level.

    Refuses symlinks, devices, FIFOs and sockets (a layout tar holds only files and directories).
    """

    def listing(rel: str, path: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        return iter([(rel, e) for e in entries])

    stack = [listing("", str(root))]
    while stack:
        try:
            rel, e = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        name = f"{rel}/{e.name}" if rel else e.name
        _check_pack_name(root, name)
        if e.is_dir(follow_symlinks=False):
            yield name, e, True
            stack.append(listing(name, e.path))
        elif e.is_file(follow_symlinks=False):
            yield name, e, False
        else:
            kind = "a symbolic link" if e.is_symlink() else "not a regular file or directory"
            raise LayoutError(f"{root}: {name} is {kind}; a layout tar holds only files and directories")


def _check_archive_dest(src: Path, tar_path: Path, *, force: bool) -> Path:
    if os.path.islink(tar_path):
        raise UsageError(f"{tar_path}: is a symbolic link; refusing to write through it")
    if os.path.lexists(tar_path):
        if tar_path.is_dir():
            raise UsageError(f"{tar_path}: is a directory")
        if not force:
            raise UsageError(f"{tar_path}: already exists (use --force to replace it)")
    parent = Path(os.path.abspath(tar_path)).parent
    if not parent.is_dir():
        raise UsageError(f"{tar_path}: parent directory {parent} does not exist")
    real_src = os.path.realpath(src)
    real_parent = os.path.realpath(parent)
    if real_parent == real_src or real_parent.startswith(real_src + os.sep):
        raise UsageError(f"{tar_path}: must not be inside the layout directory {src}")
    return parent


def pack_layout(src: Path, tar_path: Path, *, force: bool = False) -> PackResult:
    """Write a reproducible tar of the layout directory ``src`` to ``tar_path``; see module docs."""
    from ocisign.oci.tar_write import copy_range, end_of_archive, member_header, padding
    from ocisign.plugins.oci_dir import DirLayout

    if os.path.islink(src) or not src.is_dir():
        raise UsageError(f"{src}: not a layout directory")
    parent = _check_archive_dest(src, tar_path, force=force)
    DirLayout(src).index_entries()  # refuse to pack something that is not a valid layout
    files = dirs = total = 0
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{tar_path.name}.ocisign-", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise LayoutError(f"{tar_path}: cannot create a temp file in {parent}: {exc.strerror or exc}") from None
    try:
        pos = 0

        def put(data: bytes) -> None:
            nonlocal pos
            view = memoryview(data)
            while view:
                n = os.pwrite(fd, view, pos)
                view = view[n:]
                pos += n

        for name, entry, is_dir in _walk_sorted(src):
            if is_dir:
                put(member_header(name, 0, is_dir=True))
                dirs += 1
                continue
            sfd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                st = os.fstat(sfd)
                if not stat.S_ISREG(st.st_mode):
                    raise LayoutError(f"{src}: {name} is not a regular file")
                put(member_header(name, st.st_size))
                try:
                    copy_range(sfd, fd, 0, st.st_size, pos)
                except EOFError:
                    raise LayoutError(f"{src}: {name} shrank while it was being packed") from None
                pos += st.st_size
                put(padding(st.st_size))
            finally:
                os.close(sfd)
            files += 1
            total += st.st_size
        put(end_of_archive(pos))
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o644 & ~umask)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        if force:
            os.replace(tmp, tar_path)
        else:
            try:
                os.link(tmp, tar_path)
            except FileExistsError:
                raise UsageError(f"{tar_path}: already exists (use --force to replace it)") from None
            os.unlink(tmp)
        from ocisign.fsutil import fsync_dir

        fsync_dir(parent)
    except OSError as exc:
        raise LayoutError(f"{tar_path}: writing the archive: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return PackResult(archive=str(tar_path), files=files, directories=dirs, bytes=total)
