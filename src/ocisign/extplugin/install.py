"""``plugin install`` and ``plugin uninstall``: notation-compatible plugin management.

A source is a single executable named ``notation-<name>``, or a ``.zip``/``.tar.gz`` (detected by
content) holding exactly one ``notation-*`` executable regular file, which alone is installed.
Archives are read member by member, never extracted wholesale: links, devices, absolute names
and ``..`` components refuse the archive, and so does content of 256 MiB or more (source or
unpacked). The executable is staged beside the plugin directory, asked ``get-plugin-metadata``
(its name must be ``<name>``), compared with an installed version (same or lower version needs
``--force``), then moved into ``<config>/plugins/<name>/`` with one rename under a lock. Nothing
is left behind on failure. ``--url`` downloads over HTTPS only, into the same staging area, and the
SHA-256 must match before anything is looked at.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ocisign.errors import OcisignError, PluginError, UsageError
from ocisign.extplugin import protocol as p
from ocisign.extplugin.discovery import ExternalPlugin, executable_name, plugin_dir, plugins_root, validate_plugin_name

if TYPE_CHECKING:
    from ocisign.net import Response

__all__ = ["MAX_PLUGIN_SIZE", "InstallResult", "install_from_file", "install_from_url", "uninstall"]

#: sources and unpacked content must stay below this
MAX_PLUGIN_SIZE = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
DOWNLOAD_TIMEOUT = 600.0
PREFIX = "notation-"
#: signer names of built-ins that an installed plugin may not shadow
RESERVED_NAMES = frozenset({"file"})


@dataclasses.dataclass(frozen=True)
class InstallResult:
    """What was installed (``previous_version``: the version replaced, if any)."""

    name: str
    version: str
    previous_version: str | None = None

    def message(self) -> str:
        """notation's success line."""
        if self.previous_version is not None:
            return f"Successfully updated plugin {self.name} from version {self.previous_version} to {self.version}"
        return f"Successfully installed plugin {self.name}, version {self.version}"


def _name_of(filename: str, *, where: str) -> str:
    base = os.path.basename(filename)
    if not base.startswith(PREFIX) or len(base) == len(PREFIX):
        raise PluginError(f"{where}: plugin executable file name must be in format notation-<plugin name>, "
                          f"got {base!r}")
    name = base[len(PREFIX):]
    try:
        return validate_plugin_name(name)
    except PluginError as exc:
        raise PluginError(f"{where}: {exc}") from None


def _member_path(name: str, *, where: str) -> str:
    """A safe relative member name, or PluginError for traversal."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise PluginError(f"{where}: member {name!r} has an absolute path")
    parts = [x for x in norm.split("/") if x not in ("", ".")]
    if any(x == ".." for x in parts):
        raise PluginError(f"{where}: member {name!r} escapes the archive ('..')")
    return "/".join(parts)


def _copy_capped(src: IO[bytes], dst: IO[bytes], budget: list[int], *, where: str) -> None:
    while True:
        chunk = src.read(1 << 20)
        if not chunk:
            return
        budget[0] -= len(chunk)
        if budget[0] <= 0:
            raise PluginError(f"{where}: the unpacked content reaches {MAX_PLUGIN_SIZE // (1024 * 1024)} MiB")
        dst.write(chunk)


def _stage_executable(src: IO[bytes], staging: Path, name: str, budget: list[int], *, where: str) -> Path:
    target = staging / executable_name(name)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
    with os.fdopen(fd, "wb") as out:
        _copy_capped(src, out, budget, where=where)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(target, 0o755)
    return target


def _from_tar_gz(source: Path, staging: Path, *, where: str) -> tuple[str, Path]:
    import tarfile

    budget = [MAX_PLUGIN_SIZE]
    found: list[tuple[str, Path]] = []
    try:
        with tarfile.open(source, mode="r|gz") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise PluginError(f"{where}: more than {MAX_MEMBERS} members")
                rel = _member_path(member.name, where=where)
                if member.issym() or member.islnk():
                    raise PluginError(f"{where}: member {member.name!r} is a link; links are refused")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise PluginError(f"{where}: member {member.name!r} is not a regular file")
                if member.size >= MAX_PLUGIN_SIZE:
                    raise PluginError(f"{where}: member {member.name!r} reaches the 256 MiB limit")
                base = os.path.basename(rel)
                if base.startswith(PREFIX) and member.mode & 0o100:
                    name = _name_of(base, where=where)
                    if found:
                        raise PluginError(f"{where}: found more than one plugin executable file "
                                          f"({found[0][0]!r}, {base!r})")
                    data = tar.extractfile(member)
                    assert data is not None
                    found.append((base, _stage_executable(data, staging, name, budget, where=where)))
                else:
                    budget[0] -= member.size
                    if budget[0] <= 0:
                        raise PluginError(f"{where}: the unpacked content reaches 256 MiB")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise PluginError(f"{where}: not a valid .tar.gz archive: {exc}") from None
    if not found:
        raise PluginError(f"{where}: no plugin executable file (notation-<name>, executable) was found in the archive")
    return _name_of(found[0][0], where=where), found[0][1]


def _from_zip(source: Path, staging: Path, *, where: str) -> tuple[str, Path]:
    import zipfile

    budget = [MAX_PLUGIN_SIZE]
    found: list[tuple[str, Path]] = []
    try:
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise PluginError(f"{where}: more than {MAX_MEMBERS} members")
            for info in infos:
                rel = _member_path(info.filename, where=where)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise PluginError(f"{where}: member {info.filename!r} is a link; links are refused")
                if info.is_dir():
                    continue
                if mode and not stat.S_ISREG(mode):
                    raise PluginError(f"{where}: member {info.filename!r} is not a regular file")
                base = os.path.basename(rel)
                if base.startswith(PREFIX) and mode & 0o100:
                    name = _name_of(base, where=where)
                    if found:
                        raise PluginError(f"{where}: found more than one plugin executable file "
                                          f"({found[0][0]!r}, {base!r})")
                    with zf.open(info) as data:
                        found.append((base, _stage_executable(data, staging, name, budget, where=where)))
                else:
                    budget[0] -= info.file_size
                    if budget[0] <= 0:
                        raise PluginError(f"{where}: the unpacked content reaches 256 MiB")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise PluginError(f"{where}: not a valid .zip archive: {exc}") from None
    if not found:
        raise PluginError(f"{where}: no plugin executable file (notation-<name>, executable) was found in the archive")
    return _name_of(found[0][0], where=where), found[0][1]


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    from ocisign.fsutil import make_private_dirs

    base = plugins_root(root)
    try:
        make_private_dirs(base)
    except OSError as exc:
        raise PluginError(f"cannot create the plugin directory {base}: {exc.strerror}") from None
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=base))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _installed_version(root: Path, name: str) -> str | None:
    from ocisign.extplugin.discovery import find_plugin

    if not plugin_dir(root, name).exists():
        return None
    try:
        return find_plugin(root, name).metadata().version
    except OcisignError:
        return ""  # installed but broken: replaced without --force


def _stage_source(source: Path, staging: Path, *, display_name: str | None = None) -> tuple[str, Path]:
    where = str(source)
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{where}: not a regular file")
    if st.st_size >= MAX_PLUGIN_SIZE:
        raise PluginError(f"{where}: the plugin source reaches the 256 MiB limit")
    with open(source, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return _from_zip(source, staging, where=where)
    if head.startswith(b"\x1f\x8b"):
        return _from_tar_gz(source, staging, where=where)
    name = _name_of(display_name or source.name, where=where)
    with open(source, "rb") as fh:
        return name, _stage_executable(fh, staging, name, [MAX_PLUGIN_SIZE], where=where)


def _install_staged(root: Path, staging: Path, name: str, exe: Path, *, force: bool) -> InstallResult:
    from ocisign.fsutil import fsync_dir, locked_dir

    if name in RESERVED_NAMES:
        raise PluginError(f"plugin name {name!r} is reserved for ocisign's built-in signer")
    metadata = ExternalPlugin(name=name, path=exe).metadata()
    previous = _installed_version(root, name)
    if previous and not force:
        if not p.is_semver(previous) or not p.is_semver(metadata.version):
            order = 0 if previous == metadata.version else 1
        else:
            order = p.compare_semver(metadata.version, previous)
        if order == 0:
            raise PluginError(f"plugin {name} with version {previous} already exists (use --force to reinstall)")
        if order < 0:
            raise PluginError(f"failed to install plugin {name}: the installing plugin version {metadata.version} "
                              f"is lower than the existing plugin version {previous} (use --force to downgrade)")
    base = plugins_root(root)
    new_dir = staging / "dir"
    new_dir.mkdir(mode=0o755)
    os.rename(exe, new_dir / executable_name(name))
    final = plugin_dir(root, name)
    with locked_dir(base, what="plugin install"):
        old: Path | None = None
        if final.exists() or final.is_symlink():
            old = staging / "old"
            os.rename(final, old)
        os.rename(new_dir, final)
        fsync_dir(base)
    return InstallResult(name=name, version=metadata.version, previous_version=previous or None)


def install_from_file(root: Path, source: Path, *, force: bool = False,
                      display_name: str | None = None) -> InstallResult:
    """Install from an executable, .zip or .tar.gz (``display_name``: file name for a download)."""
    with _staging(root) as staging:
        name, exe = _stage_source(Path(source), staging, display_name=display_name)
        return _install_staged(root, staging, name, exe, force=force)


def install_from_url(root: Path, url: str, sha256: str, *, force: bool = False,
                     timeout: float = DOWNLOAD_TIMEOUT) -> InstallResult:
    """Download ``url`` (HTTPS only, < 256 MiB), check its SHA-256, install it."""
    import urllib.parse

    want = sha256.strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise UsageError(f"--sha256sum: {sha256!r} is not a SHA-256 hex digest (64 hex digits)")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise UsageError(f"--url: {url!r} must be an https:// URL")
    with _staging(root) as staging:
        download = staging / "download"
        got = _download(url, download, timeout=timeout)
        if got != want:
            raise PluginError(f"plugin checksum does not match: {url} has SHA-256 {got}, expected {want}")
        name, exe = _stage_source(download, staging, display_name=os.path.basename(parsed.path) or "plugin")
        return _install_staged(root, staging, name, exe, force=force)


def _download(url: str, dest: Path, *, timeout: float) -> str:
    import time

    from ocisign.net import HTTPClient, describe_network_error, network_errors

    digest = hashlib.sha256()
    size = 0
    deadline = time.monotonic() + timeout
    http = HTTPClient(connect_timeout=30.0, read_timeout=60.0)  # TLS verified with the system CAs
    try:
        resp = http.request("GET", url)
    except network_errors() as exc:
        http.close()
        raise PluginError(f"failed to download {url}: {describe_network_error(exc, peer=url)}") from None
    try:
        if resp.status != 200:
            raise PluginError(f"failed to download {url}: HTTP {resp.status}")
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) >= MAX_PLUGIN_SIZE:
            raise PluginError(f"failed to download {url}: {length} bytes reaches the 256 MiB limit")
        with open(dest, "wb") as out:
            while chunk := _read_piece(resp, url):
                size += len(chunk)
                if size >= MAX_PLUGIN_SIZE:
                    raise PluginError(f"failed to download {url}: the download reaches the 256 MiB limit")
                if time.monotonic() > deadline:
                    raise PluginError(f"failed to download {url}: timed out after {timeout:g}s")
                digest.update(chunk)
                out.write(chunk)
    finally:
        resp.close()
        http.close()
    return digest.hexdigest()


def _read_piece(resp: Response, url: str) -> bytes:
    """Up to 1 MiB of a download; network failures are one-line PluginErrors."""
    from ocisign.net import describe_network_error, network_errors

    try:
        return resp.read(1 << 20)
    except network_errors() as exc:
        raise PluginError(f"failed to download {url}: {describe_network_error(exc, peer=url)}") from None


def uninstall(root: Path, name: str) -> None:
    """Remove ``<config>/plugins/<name>`` (renamed aside first, so a failure leaves it whole)."""
    from ocisign.fsutil import locked_dir

    directory = plugin_dir(root, name)
    if not directory.is_dir() or directory.is_symlink():
        raise PluginError(f"unable to find plugin {name}. To view a list of installed plugins, use "
                          "'ocisign plugin list'")
    base = plugins_root(root)
    with locked_dir(base, what="plugin uninstall"):
        trash = Path(tempfile.mkdtemp(prefix=".uninstall-", dir=base))
        os.rename(directory, trash / name)
    shutil.rmtree(trash, ignore_errors=True)
