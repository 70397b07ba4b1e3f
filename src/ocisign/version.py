"""ocisign's own version, read from its installed ``*.dist-info/METADATA`` (written once, in
``pyproject.toml``); :mod:`importlib.metadata` is the fallback.

The whole of ``python -m ocisign --version``: this module, like :mod:`ocisign` and
:mod:`ocisign.__main__`, has no ``from __future__ import annotations`` (that statement imports the
``__future__`` module) and imports only :mod:`os` and :mod:`sys`. Re-exported by
:mod:`ocisign.metadata`.
"""

import os
import sys

__all__ = ["own_version"]


def _path_entries() -> list[str]:
    return [p or "." for p in sys.path]


def own_version(name: str = "ocisign") -> str:
    """The version of distribution ``name``: its first ``*.dist-info/METADATA`` on ``sys.path``.

    For ocisign itself the directory this package was imported from is looked at first (where an
    installed ocisign's dist-info is): ``--version`` then lists no other ``sys.path`` directory.
    """
    prefix = name.replace("-", "_").lower() + "-"
    entries = _path_entries()
    if name == "ocisign":
        entries.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for entry in entries:
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for n in names:
            if n.endswith(".dist-info") and n.lower().startswith(prefix):
                found = _metadata_version(os.path.join(entry, n, "METADATA"))
                if found:
                    return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _metadata_version(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip() or None
                if not line.strip():  # end of the headers
                    break
    except OSError:
        return None
    return None


