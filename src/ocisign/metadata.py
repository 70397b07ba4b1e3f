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
  removed or renamed in it, so unchanged stamps plus unchanged dist-info and ``entry_points.txt``
  mtimes mean an unchanged fingerprint (:func:`cached_entry_points` without a key checks just
  that, with a few ``stat`` calls); when they differ, the full fingerprint decides.
"""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any

    from ocisign.version import own_version as own_version

__all__ = ["EntryPointRecord", "cached_entry_points", "fingerprint", "own_version", "path_stamps",
           "store_entry_points"]

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


def fingerprint() -> list[Any]:
    """What the installed distributions look like now (see the module docstring).

    Entries are absolute, and directories holding no distribution are left out, so the working
    directory (``sys.path[0]`` under ``python -m``) does not change the key unless it holds one.
    """
    out: list[Any] = []
    for entry in map(os.path.abspath, _path_entries()):
        try:
            scan = os.scandir(entry)
        except NotADirectoryError:
            out.append([entry, _mtime(entry)])  # a zip on sys.path
            continue
        except OSError:
            continue
        dists: list[Any] = []
        with scan:
            for item in scan:
                if item.name.endswith(_DIST_SUFFIXES):
                    full = os.path.join(entry, item.name)
                    dists.append([item.name, _mtime(full), _mtime(os.path.join(full, "entry_points.txt"))])
        if dists:
            dists.sort()
            out.append([entry, dists])
    return out


def path_stamps() -> list[Any]:
    """``[entry, mtime_ns]`` of each ``sys.path`` entry (absolute; -1 when it does not exist)."""
    return [[entry, _mtime(entry)] for entry in map(os.path.abspath, _path_entries())]


def _unchanged(doc: dict[str, Any]) -> bool:
    """True when the index's stamps and its key's dist-info mtimes are still those on disk."""
    if doc.get("stamps") != path_stamps() or not isinstance(doc.get("key"), list):
        return False
    for item in doc["key"]:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            return False
        entry, dists = item
        if not isinstance(dists, list):
            continue  # a zip on sys.path: its stamp is its mtime
        for dist in dists:
            if not (isinstance(dist, list) and len(dist) == 3 and isinstance(dist[0], str)):
                return False
            full = os.path.join(entry, dist[0])
            if _mtime(full) != dist[1] or _mtime(os.path.join(full, "entry_points.txt")) != dist[2]:
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

    Without ``key``: when nothing changed since it was stored (see :func:`path_stamps`), which
    costs a few ``stat`` calls instead of the fingerprint's directory listings.
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
    if not (_unchanged(doc) if key is None else doc.get("key") == key):
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


def scan_entry_points(group: str) -> list[EntryPointRecord]:
    """Every entry point of ``group`` in :func:`importlib.metadata.distributions` order."""
    from importlib.metadata import distributions

    out: list[EntryPointRecord] = []
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                out.append((ep.name, ep.value, str(dist.metadata["Name"]), str(dist.version)))
    return out


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
