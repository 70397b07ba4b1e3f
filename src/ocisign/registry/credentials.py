"""Where registry credentials live: docker-format ``config.json`` files, credential helpers, env vars.

Lookup order for a registry host (first hit wins):

1. ``$OCISIGN_USERNAME`` / ``$OCISIGN_PASSWORD`` (both set);
2. ocisign's ``<config dir>/config.json`` (notation's format): the credential helper it names
   (``credHelpers[host]``, else ``credsStore``), then its inline ``auths``, as notation reads
   its own ``config.json``;
3. the old login store ``<config dir>/credentials.json`` (written by ``ocisign login`` before it
   stored where other tools look; still read, no longer written);
4. docker's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``): ``credHelpers[host]``,
   ``credsStore``, then inline ``auths`` (``auth`` = base64 ``user:password``,
   ``username``/``password``, ``identitytoken``).

Where ``ocisign login`` stores (:func:`login_config_path`, :func:`store_credentials`): the
file is ocisign's ``config.json`` when it already configures credentials (``credsStore``,
``credHelpers`` or ``auths``; notation's rule), or when the run uses a dedicated config dir
(``--config-dir``, the project's ``config-dir`` or ``$OCISIGN_CONFIG_DIR``) and
``$DOCKER_CONFIG`` is not set, so an isolated setup stays isolated; otherwise docker's
``config.json``, which docker, oras, skopeo and notation read. In that file the credential
helper for the host wins; without one the entry goes into ``auths`` in plain text (base64, a
warning says so, as docker and oras do), mode 0600, replaced atomically under a lock with every
other entry and unknown key kept. ``logout`` erases from the same place (and the old store).

Helpers are the ``docker-credential-<name>`` executables on ``$PATH`` (``get``/``store``/
``erase`` with JSON on stdin/stdout); a helper name must be a plain word, output is bounded,
and a helper that fails (other than "not found") is an error, never silently anonymous.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
from pathlib import Path

from ocisign.errors import AuthError, ConfigError
from ocisign.lazy_dataclass import dataclass
from ocisign.types import Credentials

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:  # shutil and subprocess: imported only when a credential helper is configured
    from typing import Any

MAX_CONFIG_SIZE = 1 << 20
MAX_HELPER_OUTPUT = 64 * 1024
HELPER_TIMEOUT = 30.0
_HELPER_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_TOKEN_USER = "<token>"


def normalize_server(server: str) -> str:
    """``https://Host:5000/v2/`` → ``host:5000`` (scheme and path dropped, host lower-cased)."""
    s = server.strip()
    if "://" in s:
        s = s.split("://", 1)[1]
    s = s.split("/", 1)[0]
    return s.lower()


def _read_json(path: Path, *, what: str) -> dict[str, Any] | None:
    from ocisign.config.files import read_regular_file

    data = read_regular_file(path, max_size=MAX_CONFIG_SIZE, missing_ok=True)
    if data is None:
        return None
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: invalid {what} ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: {what} must be a JSON object")
    return obj


def _entry_credentials(entry: object, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    token = entry.get("identitytoken")
    auth = entry.get("auth")
    username = entry.get("username")
    password = entry.get("password")
    if isinstance(auth, str) and auth:
        try:
            raw = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{where}: 'auth' is not base64 of user:password") from None
        user, sep, pw = raw.partition(":")
        if not sep:
            raise ConfigError(f"{where}: 'auth' is not base64 of user:password")
        username, password = user, pw
    if isinstance(token, str) and token:
        return Credentials(username=username if isinstance(username, str) else "", identity_token=token)
    if isinstance(username, str) and username and isinstance(password, str):
        return Credentials(username=username, password=password)
    return None


def _find_entry(auths: object, host: str) -> tuple[str, object] | None:
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if isinstance(key, str) and normalize_server(key) == host:
            return key, entry
    return None


# --- credential helpers ----------------------------------------------------------------------
def _helper_path(name: str) -> str:
    if not _HELPER_NAME.match(name):
        raise ConfigError(f"invalid credential helper name {name!r}")
    import shutil

    exe = shutil.which(f"docker-credential-{name}")
    if exe is None:
        raise AuthError(f"credential helper docker-credential-{name} not found on PATH")
    return exe


def _run_helper(name: str, action: str, data: str) -> tuple[int, str]:
    import subprocess

    exe = _helper_path(name)
    try:
        proc = subprocess.run(
            [exe, action], input=data.encode("utf-8"), capture_output=True, timeout=HELPER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper docker-credential-{name} {action}: timed out") from None
    except OSError as exc:
        raise AuthError(f"credential helper docker-credential-{name} {action}: {exc.strerror}") from None
    out = proc.stdout[:MAX_HELPER_OUTPUT].decode("utf-8", "replace")
    if proc.returncode != 0:
        err = (out.strip() or proc.stderr[:512].decode("utf-8", "replace").strip()).splitlines()
        return proc.returncode, err[0] if err else f"exit status {proc.returncode}"
    return 0, out


def helper_get(name: str, host: str) -> Credentials | None:
    """Credentials for ``host`` from ``docker-credential-<name> get`` (None when it has none)."""
    for server in (host, f"https://{host}"):
        rc, out = _run_helper(name, "get", server)
        if rc != 0:
            if "not found" in out.lower():
                continue
            raise AuthError(f"credential helper docker-credential-{name} get {host}: {out}")
        try:
            obj = json.loads(out)
        except ValueError:
            raise AuthError(f"credential helper docker-credential-{name}: invalid JSON output") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("Secret"), str):
            raise AuthError(f"credential helper docker-credential-{name}: output has no Secret")
        user = obj.get("Username") if isinstance(obj.get("Username"), str) else ""
        if user == _TOKEN_USER:
            return Credentials(identity_token=obj["Secret"])
        return Credentials(username=str(user), password=obj["Secret"])
    return None


def helper_store(name: str, host: str, creds: Credentials) -> None:
    """``docker-credential-<name> store``."""
    user = _TOKEN_USER if creds.identity_token else creds.username
    secret = creds.identity_token or creds.password
    rc, out = _run_helper(name, "store", json.dumps({"ServerURL": host, "Username": user, "Secret": secret}))
    if rc != 0:
        raise AuthError(f"credential helper docker-credential-{name} store {host}: {out}")


def helper_erase(name: str, host: str) -> bool:
    """``docker-credential-<name> erase``; False when it had nothing for ``host``."""
    rc, out = _run_helper(name, "erase", host)
    if rc != 0:
        if "not found" in out.lower():
            return False
        raise AuthError(f"credential helper docker-credential-{name} erase {host}: {out}")
    return True


def _helper_for(config: dict[str, Any] | None, host: str) -> str | None:
    if not config:
        return None
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if isinstance(key, str) and normalize_server(key) == host and isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


# --- ocisign's own store --------------------------------------------------------------------
class LoginStore:
    """``<config dir>/credentials.json``: ``{"auths": {"host": {"auth": base64(user:pw)}}}``, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, host: str) -> Credentials | None:
        """Stored credentials for ``host``."""
        obj = _read_json(self.path, what="credential store")
        if obj is None:
            return None
        found = _find_entry(obj.get("auths"), host)
        if found is None:
            return None
        mode = self.path.stat().st_mode
        if mode & 0o077:
            print(f"Warning: {self.path} is readable by other users (mode {mode & 0o777:o}); "
                  "run chmod 600", file=sys.stderr)
        return _entry_credentials(found[1], f"{self.path}: auths[{found[0]!r}]")

    def _update(self, host: str, entry: dict[str, str] | None) -> bool:
        from ocisign.fsutil import atomic_writer, locked

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with locked(self.path.with_name(self.path.name + ".lock"), what="credential store"):
            obj = _read_json(self.path, what="credential store") or {}
            auths = obj.get("auths")
            if not isinstance(auths, dict):
                auths = {}
            found = _find_entry(auths, host)
            if found is not None:
                del auths[found[0]]
            if entry is not None:
                auths[host] = entry
            elif found is None:
                return False
            obj["auths"] = auths
            with atomic_writer(self.path, mode=0o600) as fh:
                fh.write(self._dump(obj))
        return True

    def _dump(self, obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    def put(self, host: str, creds: Credentials) -> None:
        """Store credentials for ``host`` (replacing any)."""
        if creds.identity_token:
            entry = {"identitytoken": creds.identity_token}
            if creds.username:
                entry["username"] = creds.username
        else:
            raw = f"{creds.username}:{creds.password}".encode()
            entry = {"auth": base64.b64encode(raw).decode("ascii")}
        self._update(host, entry)

    def remove(self, host: str) -> bool:
        """Forget ``host``; False when nothing was stored."""
        if not self.path.exists():
            return False
        return self._update(host, None)


class DockerConfigFile(LoginStore):
    """A docker-format ``config.json`` that ``login`` writes ``auths`` entries into.

    Everything else in the file (other hosts, ``credsStore``, ``insecureRegistries``, unknown
    keys, key order) is kept; docker's tab indentation is used. A symlinked file is written
    through to its target, as docker does.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(Path(os.path.realpath(path)) if os.path.islink(path) else path)

    def _dump(self, obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, indent="\t").encode("utf-8") + b"\n"


@dataclass(frozen=True)
class StoredAt:
    """Where :func:`store_credentials` put them: a helper (``helper``) or the file in plain text."""

    path: Path
    helper: str | None = None

    def describe(self) -> str:
        """For ``login``'s message."""
        if self.helper:
            return f"the credential helper docker-credential-{self.helper} (named in {self.path})"
        return str(self.path)


def _auth_configured(config: dict[str, Any] | None) -> bool:
    """True when a config names a credential store, helpers or has ``auths`` (oras-go's IsAuthConfigured)."""
    if not config:
        return False
    return any(isinstance(config.get(k), t) and bool(config.get(k))
               for k, t in (("credsStore", str), ("credHelpers", dict), ("auths", dict)))


def login_config_path(config_dir: Path, *, dedicated: bool) -> Path:
    """The ``config.json`` that ``login``/``logout`` use (see the module docstring).

    ``dedicated``: the run's config dir was chosen explicitly (``--config-dir``, project
    ``config-dir``, ``$OCISIGN_CONFIG_DIR``).
    """
    own = config_dir / "config.json"
    if _auth_configured(_read_json(own, what="config")):
        return own
    if dedicated and not os.environ.get("DOCKER_CONFIG"):
        return own
    return docker_config_path()


def store_credentials(path: Path, host: str, creds: Credentials) -> StoredAt:
    """Store ``creds`` for ``host`` in the helper ``path`` names for it, else in its ``auths``."""
    helper = _helper_for(_read_json(path, what="config"), host)
    if helper:
        helper_store(helper, host, creds)
        return StoredAt(path, helper)
    DockerConfigFile(path).put(host, creds)
    return StoredAt(path)


def erase_credentials(path: Path, host: str) -> bool:
    """Erase ``host`` from where :func:`store_credentials` would store it; False when nothing was there."""
    helper = _helper_for(_read_json(path, what="config"), host)
    if helper:
        return helper_erase(helper, host)
    return DockerConfigFile(path).remove(host)


# --- docker's config ---------------------------------------------------------------------------
def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    from ocisign.config.configdir import home_dir

    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else (home_dir() or Path.cwd()) / ".docker") / "config.json"


def docker_credentials(host: str, path: Path | None = None) -> Credentials | None:
    """Credentials for ``host`` from docker's config (helpers first, then inline auths)."""
    p = path or docker_config_path()
    config = _read_json(p, what="docker config" if path is None else "config")
    if config is None:
        return None
    helper = _helper_for(config, host)
    if helper:
        creds = helper_get(helper, host)
        if creds is not None:
            return creds
    found = _find_entry(config.get("auths"), host)
    if found is None:
        return None
    return _entry_credentials(found[1], f"{p}: auths[{found[0]!r}]")


def env_credentials() -> Credentials | None:
    """``OCISIGN_USERNAME``/``OCISIGN_PASSWORD`` when both are set."""
    user = os.environ.get("OCISIGN_USERNAME")
    password = os.environ.get("OCISIGN_PASSWORD")
    if user and password is not None:
        return Credentials(username=user, password=password)
    return None


def ocisign_helper(config_json: Path, host: str) -> str | None:
    """The credential helper ocisign's (notation-format) ``config.json`` names for ``host``."""
    return _helper_for(_read_json(config_json, what="config"), host)


def lookup(host: str, *, config_dir: Path) -> Credentials | None:
    """Credentials for ``host`` in the order described in the module docstring."""
    host = normalize_server(host)
    creds = env_credentials()
    if creds is not None:
        return creds
    creds = docker_credentials(host, config_dir / "config.json")  # ocisign's (notation's) config.json
    if creds is not None:
        return creds
    creds = LoginStore(config_dir / "credentials.json").get(host)
    if creds is not None:
        return creds
    return docker_credentials(host)
