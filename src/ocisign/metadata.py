"""Installed-distribution metadata read without :mod:`importlib.metadata`'s full scan.

Two start-up paths need package metadata and must stay cheap:

* :func:`own_version` — ocisign's version for ``--version`` and the signing agent, read from the
  installed ``ocisign-*.dist-info/METADATA`` (the version is written once, in ``pyproject.toml``);
  ``importlib.metadata`` is the fallback.
* :func:`cached_entry_points` / :func:`store_entry_points` — the entry-point index of group
  ``ocisign``, cached in the user cache dir and keyed by a fingerprint of the installed
  distributions (each ``sys.path`` entry, the name and mtime of every ``*.dist-info`` /
  ``*.egg-info`` in it and of its ``entry_points.txt``). Installing, removing or reinstalling a
  distribution renames or recreates its dist-info, so the fingerprint changes and the next run
  scans again; so does a changed ``sys.path`` (``PYTHONPATH``). An absent, unreadable or
  read-only cache dir only means a scan on every run, never an error. The cache file lives in
  ``$OCISIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocisign``, else ``~/.cache/ocisign``; with none of
  them (no home directory) nothing is cached. ``OCISIGN_NO_ENTRY_POINT_CACHE=1`` turns it off.

  Computing the fingerprint lists every ``sys.path`` directory (the standard library's alone
  takes a third of a millisecond), so the index also keeps :func:`path_stamps`, the mtime of each
  ``sys.path`` entry when it was written: a directory's mtime changes whenever an entry is added,
  removed or renamed in it, so a directory whose mtime is its stamp holds the same distributions,
  and only their dist-info and ``entry_points.txt`` mtimes are checked again; only the
  directories that changed (typically the working directory) are listed.
"""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any

    from ocisign.version import own_version as own_version

__all__ = ["EntryPointRecord", "cached_entry_points", "fingerprint", "group_may_exist", "own_version", "path_stamps",
           "refresh_stamps", "store_entry_points"]

#: (entry-point name, value ``module:attr``, distribution name, distribution version)
EntryPointRecord = tuple[str, str, str, str]

_INDEX_NAME = "entry-points-v1.json"
_DIST_SUFFIXES = (".dist-info", ".egg-info")


def _path_entries() -> list[str]:
    return [p or "." for p in sys.path]


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _entry_part(entry: str) -> list[Any] | None:
    """The fingerprint of one (absolute) ``sys.path`` entry; None when it holds no distribution."""
    try:
        scan = os.scandir(entry)
    except NotADirectoryError:
        return [entry, _mtime(entry)]  # a zip on sys.path
    except OSError:
        return None
    dists: list[Any] = []
    with scan:
        for item in scan:
            if item.name.endswith(_DIST_SUFFIXES):
                full = os.path.join(entry, item.name)
                dists.append([item.name, _mtime(full), _mtime(os.path.join(full, "entry_points.txt"))])
    if not dists:
        return None
    dists.sort()
    return [entry, dists]


def fingerprint(reuse: dict[str, Any] | None = None) -> list[Any]:
    """What the installed distributions look like now (see the module docstring).

    Entries are absolute, and directories holding no distribution are left out, so the working
    directory (``sys.path[0]`` under ``python -m``) does not change the key unless it holds one.
    ``reuse`` is a stored index: an entry whose mtime is still its stamp has the same names in
    it, so its part of the stored key is taken (once its dist-infos' mtimes are checked) instead
    of listing the directory again.
    """
    stamps, parts = _reusable(reuse)
    out: list[Any] = []
    for entry in map(os.path.abspath, _path_entries()):
        part: Any = _entry_part
        if entry in stamps and stamps[entry] == _mtime(entry):  # -1 both times: it does not exist
            part = parts.get(entry)  # None: it held no distribution and nothing was added since
            if part is not None and isinstance(part[1], list) and not _dists_unchanged(entry, part[1]):
                part = _entry_part
        if part is _entry_part:
            part = _entry_part(entry)
        if part is not None:
            out.append(part)
    return out


def path_stamps() -> list[Any]:
    """``[entry, mtime_ns]`` of each ``sys.path`` entry (absolute; -1 when it does not exist)."""
    return [[entry, _mtime(entry)] for entry in map(os.path.abspath, _path_entries())]


def _reusable(doc: dict[str, Any] | None) -> tuple[dict[str, int], dict[str, list[Any]]]:
    """(stamp by entry, key part by entry) of a stored index; empty when it has none or is malformed."""
    if not isinstance(doc, dict):
        return {}, {}
    stamps, key = doc.get("stamps"), doc.get("key")
    if not isinstance(stamps, list) or not isinstance(key, list):
        return {}, {}
    try:
        by_entry = {str(e): int(m) for e, m in stamps}
        parts = {str(item[0]): item for item in key}
    except (TypeError, ValueError, IndexError):
        return {}, {}
    for part in parts.values():
        if not (isinstance(part, list) and len(part) == 2):
            return {}, {}
        if isinstance(part[1], list) and not all(
            isinstance(d, list) and len(d) == 3 and isinstance(d[0], str) for d in part[1]
        ):
            return {}, {}
    return by_entry, parts


def _dists_unchanged(entry: str, dists: list[Any]) -> bool:
    """True when each ``[name, mtime, entry_points.txt mtime]`` in ``entry`` is still so on disk."""
    for name, dist_mtime, ep_mtime in dists:
        full = os.path.join(entry, name)
        if _mtime(full) != dist_mtime or _mtime(os.path.join(full, "entry_points.txt")) != ep_mtime:
            return False
    return True


def cache_dir() -> str | None:
    """The ocisign user cache directory, or None when there is none."""
    explicit = os.environ.get("OCISIGN_CACHE_DIR")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return os.path.join(xdg, "ocisign")
    home = os.environ.get("HOME")
    return os.path.join(home, ".cache", "ocisign") if home else None


def _enabled() -> bool:
    return os.environ.get("OCISIGN_NO_ENTRY_POINT_CACHE", "") in ("", "0")


def cached_entry_points(group: str, key: list[Any] | None = None) -> list[EntryPointRecord] | None:
    """The cached index of ``group`` when it was stored for ``key``; None on a miss.

    Without ``key``: the fingerprint is computed reusing the index (see :func:`fingerprint`):
    when nothing changed, a few ``stat`` calls instead of listing every ``sys.path`` directory.
    """
    directory = cache_dir()
    if directory is None or not _enabled():
        return None
    import json

    try:
        with open(os.path.join(directory, _INDEX_NAME), encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), dict):
        return None
    if doc.get("key") != (fingerprint(reuse=doc) if key is None else key):
        return None
    records = doc["groups"].get(group)
    if not isinstance(records, list):
        return None
    out: list[EntryPointRecord] = []
    for rec in records:
        if not (isinstance(rec, list) and len(rec) == 4 and all(isinstance(x, str) for x in rec)):
            return None
        out.append((rec[0], rec[1], rec[2], rec[3]))
    return out


def group_may_exist(group: str) -> bool:
    """False only when no installed distribution can declare entry-point group ``group``.

    A cheap look before :func:`scan_entry_points` imports :mod:`importlib.metadata` (~20 ms with
    its email and zipfile imports): every ``*.dist-info``/``*.egg-info`` directory in a
    ``sys.path`` directory has its ``entry_points.txt`` read, and the group is absent when none
    has the section line ``[group]`` (what :mod:`importlib.metadata` reads as the group). Anything
    this cannot see — a file (zip) on ``sys.path``, an unreadable file, a finder other than the
    standard path finder that can find distributions — answers True, so the full scan decides.
    """
    import importlib.machinery

    if any(hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder
           for finder in sys.meta_path):
        return True
    header = f"[{group}]"
    for entry in _path_entries():
        try:
            names = os.listdir(entry)
        except NotADirectoryError:
            return True
        except OSError:
            continue
        for name in names:
            if not name.endswith(_DIST_SUFFIXES):
                continue
            try:
                with open(os.path.join(entry, name, "entry_points.txt"), encoding="utf-8") as fh:
                    if any(line.strip() == header for line in fh):
                        return True
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                return True
    return False


def scan_entry_points(group: str) -> list[EntryPointRecord]:
    """Every entry point of ``group`` in :func:`importlib.metadata.distributions` order."""
    if not group_may_exist(group):
        return []
    from importlib.metadata import distributions

    out: list[EntryPointRecord] = []
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                out.append((ep.name, ep.value, str(dist.metadata["Name"]), str(dist.version)))
    return out


def refresh_stamps(group: str) -> None:
    """Store the index again with today's :func:`path_stamps` when they changed but the
    fingerprint did not (a file created in the working directory, a ``__pycache__`` written
    beside the distributions…), so the next runs need no listing; for commands that write anyway."""
    directory = cache_dir()
    if directory is None or not _enabled():
        return
    import json

    try:
        with open(os.path.join(directory, _INDEX_NAME), encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return
    stamps = path_stamps()
    if not isinstance(doc, dict) or doc.get("stamps") == stamps or not isinstance(doc.get("groups"), dict):
        return
    key = fingerprint(reuse=doc)
    records = cached_entry_points(group, key)  # the stored records, when the key still matches
    if records is not None:
        store_entry_points(group, key, records, stamps)


def store_entry_points(group: str, key: list[Any], records: list[EntryPointRecord],
                       stamps: list[Any] | None = None) -> None:
    """Cache ``records`` for ``key`` (and ``stamps``: :func:`path_stamps` taken *before* ``key`` was
    computed, so a change in between is seen); any failure (read-only or absent dir) is ignored."""
    directory = cache_dir()
    if directory is None or not _enabled():
        return
    import json

    path = os.path.join(directory, _INDEX_NAME)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"key": key, "stamps": stamps, "groups": {group: [list(r) for r in records]}}, fh)
        os.replace(tmp, path)  # readers see the old index or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def __getattr__(name: str) -> Any:
    """``own_version`` of :mod:`ocisign.version` (re-exported, imported on first use)."""
    if name == "own_version":
        from ocisign.version import own_version

        return own_version
    raise AttributeError(f"module 'ocisign.metadata' has no attribute {name!r}")
