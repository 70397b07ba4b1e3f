"""notation 1.3's CRL file cache, opt-in for ocisign (:mod:`ocisign.verify.revocation`).

Layout and format are notation's: ``{root}/crl/<sha256 hex of the CRL URL>`` holding the JSON
``{"baseCRL": "<base64 DER>"}``. The cache is used only when ``OCISIGN_CRL_CACHE`` is ``1``
(``true``/``yes``/``on``); its root is ``$OCISIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocisign``,
else ``~/.cache/ocisign``. It is opt-in because ``ocisign verify`` is otherwise a command that
writes nothing anywhere; with it enabled, the cache directory is the only place verification
writes to. Writes are atomic (temp file next to the target, fsync, rename: a temp directory on
another mount cannot break them, CVE-2024-51491); files are 0600 in 0700 directories. Entries
are untrusted input: the checker re-validates every cached CRL (issuer, signature, nextUpdate)
before using it, and cache problems are only warnings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from ocisign.errors import OcisignError

CACHE_ENV = "OCISIGN_CRL_CACHE"
CACHE_DIR_ENV = "OCISIGN_CACHE_DIR"
#: cached entries larger than this are refused (base64 of the largest CRL accepted, plus JSON)
MAX_ENTRY_SIZE = 48 * 1024 * 1024


class CRLCacheError(OcisignError):
    """The CRL cache could not be read or written (reported as a warning)."""


class CRLFileCache:
    """notation 1.3's CRL file cache: ``{root}/crl/<sha256 hex of the URL>`` holding
    ``{"baseCRL": "<base64 DER>"}``. Entries are untrusted input: they are re-validated on use."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.directory = self.root / "crl"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CRLFileCache | None:
        """The cache when ``OCISIGN_CRL_CACHE`` is on (1/true/yes/on), else None."""
        env = os.environ if environ is None else environ
        if env.get(CACHE_ENV, "").strip().lower() not in ("1", "true", "yes", "on"):
            return None
        explicit = env.get(CACHE_DIR_ENV)
        if explicit:
            return cls(Path(explicit))
        from ocisign.config.configdir import home_dir

        xdg = env.get("XDG_CACHE_HOME")
        return cls((Path(xdg) if xdg else (home_dir() or Path.cwd()) / ".cache") / "ocisign")

    def path_for(self, url: str) -> Path:
        """Where the CRL of ``url`` is cached."""
        return self.directory / hashlib.sha256(url.encode("utf-8")).hexdigest()

    def get(self, url: str) -> bytes | None:
        """The cached base CRL (DER) of ``url``; None on a miss. CRLCacheError when unreadable."""
        path = self.path_for(url)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CRLCacheError(f"CRL cache {path}: cannot read: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise CRLCacheError(f"CRL cache {path}: not a regular file")
            if info.st_size > MAX_ENTRY_SIZE:
                raise CRLCacheError(f"CRL cache {path}: larger than the CRL size limit")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                raw = fh.read(MAX_ENTRY_SIZE + 1)
        finally:
            os.close(fd)
        try:
            content = json.loads(raw)
            if not isinstance(content, dict) or not isinstance(content.get("baseCRL"), str):
                raise ValueError("no baseCRL")
            if content.get("deltaCRL"):
                return None  # delta CRLs are not supported: treat as a miss
            return base64.b64decode(content["baseCRL"], validate=True)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CRLCacheError(f"CRL cache {path}: malformed entry ({exc})") from None

    def set(self, url: str, der: bytes) -> None:
        """Store the base CRL of ``url`` (atomic; CRLCacheError on failure)."""
        from ocisign.fsutil import make_private_dirs, write_atomic

        path = self.path_for(url)
        data = json.dumps({"baseCRL": base64.b64encode(der).decode("ascii")}).encode("ascii")
        try:
            make_private_dirs(self.directory)
            write_atomic(path, data, mode=0o600)
        except OSError as exc:
            raise CRLCacheError(f"CRL cache {path}: cannot write: {exc.strerror or exc}") from None
