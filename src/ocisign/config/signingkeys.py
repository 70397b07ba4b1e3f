"""``signingkeys.json``: the list of signing keys, in notation's on-disk format.

::

    {
        "default": "mykey",
        "keys": [
            {"name": "mykey", "keyPath": "/abs/mykey.key", "certPath": "/abs/mykey.crt"},
            {"name": "kms", "id": "arn:…", "pluginName": "vault", "pluginConfig": {"k": "v"}}
        ]
    }

Names are unique and ``default`` (omitted when unset) must name a key. The file is written
with 4-space indentation and a trailing newline (Go's ``json.Encoder``), mode 0600 in a 0700
directory, atomically and under an exclusive lock on the config directory, so concurrent
``key``/``cert generate-test`` commands never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ocisign.config.configdir import ConfigDir
from ocisign.errors import ConfigError, ContentError, UsageError
from ocisign.fsutil import locked_dir, make_private_dirs, write_atomic
from ocisign.goformat import go_json
from ocisign.lazy_dataclass import dataclass, field
from ocisign.oci.model import parse_json_object

#: ``signingkeys.json`` larger than this is refused
MAX_SIGNING_KEYS_SIZE = 4 * 1024 * 1024
FILE_SCHEME = "file"


@dataclass(frozen=True, kw_only=True)
class KeyRecord:
    """One entry of ``keys``: a file key (keyPath/certPath) or a plugin key (id/pluginName)."""

    name: str
    key_path: str | None = None
    cert_path: str | None = None
    id: str | None = None
    plugin_name: str | None = None
    plugin_config: Mapping[str, str] | None = None

    @property
    def is_file_key(self) -> bool:
        """True for a local key/certificate pair."""
        return self.key_path is not None

    @property
    def scheme(self) -> str:
        """Signer factory name: ``file`` for local keys, else the plugin name."""
        return FILE_SCHEME if self.is_file_key else str(self.plugin_name)

    def to_json(self) -> dict[str, Any]:
        """JSON object in notation's field order (empty fields omitted)."""
        out: dict[str, Any] = {"name": self.name}
        if self.key_path:
            out["keyPath"] = self.key_path
        if self.cert_path:
            out["certPath"] = self.cert_path
        if self.id:
            out["id"] = self.id
        if self.plugin_name:
            out["pluginName"] = self.plugin_name
        if self.plugin_config:
            out["pluginConfig"] = dict(self.plugin_config)
        return out


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def record_from_json(obj: object, *, where: str) -> KeyRecord:
    """Validate one ``keys[]`` entry."""
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: a key entry must be a JSON object")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: key name cannot be empty")
    where = f"{where} ({name!r})"
    key_path = _opt_str(obj, "keyPath", where)
    cert_path = _opt_str(obj, "certPath", where)
    key_id = _opt_str(obj, "id", where)
    plugin = _opt_str(obj, "pluginName", where)
    config = obj.get("pluginConfig")
    if config is not None and (
        not isinstance(config, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in config.items())
    ):
        raise ConfigError(f"{where}: pluginConfig must map strings to strings")
    is_file = key_path is not None or cert_path is not None
    is_plugin = key_id is not None or plugin is not None
    if is_file and is_plugin:
        raise ConfigError(f"{where}: a key has either keyPath/certPath or id/pluginName, not both")
    if is_file and (key_path is None or cert_path is None):
        raise ConfigError(f"{where}: a local key needs both keyPath and certPath")
    if is_plugin and (key_id is None or plugin is None):
        raise ConfigError(f"{where}: a plugin key needs both id and pluginName")
    if not is_file and not is_plugin:
        raise ConfigError(f"{where}: neither keyPath/certPath nor id/pluginName is set")
    return KeyRecord(
        name=name, key_path=key_path, cert_path=cert_path, id=key_id, plugin_name=plugin,
        plugin_config=dict(config) if config else None,
    )


@dataclass
class SigningKeys:
    """The parsed ``signingkeys.json`` (mutable inside :func:`edit_signing_keys`)."""

    keys: list[KeyRecord] = field(default_factory=list)
    default: str | None = None

    def names(self) -> list[str]:
        """Key names in file order."""
        return [k.name for k in self.keys]

    def get(self, name: str) -> KeyRecord:
        """The key called ``name``; a UsageError (exit 2, like a missing default key) if there is none."""
        for key in self.keys:
            if key.name == name:
                return key
        known = ", ".join(self.names()[:10]) + (", …" if len(self.keys) > 10 else "")
        hint = f"; known keys: {known}" if known else "; no keys yet: add one with 'ocisign key add'"
        raise UsageError(f"signing key {name!r} not found in signingkeys.json{hint}")

    def resolve(self, name: str | None) -> KeyRecord:
        """The key to sign with: ``name``, else the default key."""
        if name:
            return self.get(name)
        if not self.default:
            raise UsageError(
                "no signing key given and no default key set: use --key NAME, or mark one with "
                "'ocisign key update --default NAME' (or 'cert generate-test --default')"
            )
        return self.get(self.default)

    def add(self, record: KeyRecord, *, make_default: bool = False) -> None:
        """Append ``record``; its name must be new."""
        if record.name in self.names():
            raise UsageError(f"{record.name}: already exists")
        self.keys.append(record)
        if make_default:
            self.default = record.name

    def remove(self, names: Iterable[str]) -> list[str]:
        """Remove keys by name (all must exist); clears ``default`` if it is removed."""
        names = list(names)
        for name in names:
            self.get(name)
        self.keys = [k for k in self.keys if k.name not in names]
        if self.default in names:
            self.default = None
        return names

    def set_default(self, name: str) -> None:
        """Mark an existing key as the default."""
        self.get(name)
        self.default = name

    def validate(self, *, where: str = "signingkeys.json") -> None:
        """Names unique and non-empty; default names an existing key."""
        seen: set[str] = set()
        for key in self.keys:
            if not key.name:
                raise ConfigError(f"malformed {where}: key name cannot be empty")
            if key.name in seen:
                raise ConfigError(f"malformed {where}: multiple keys with name {key.name!r} found")
            seen.add(key.name)
        if self.default is not None and self.default not in seen:
            raise ConfigError(f"malformed {where}: default key {self.default!r} not found")

    def to_json_bytes(self) -> bytes:
        """File content: Go ``json.Encoder`` with 4-space indent and a trailing newline."""
        doc: dict[str, Any] = {}
        if self.default:
            doc["default"] = self.default
        doc["keys"] = [k.to_json() for k in self.keys]
        return (go_json(doc, indent=4) + "\n").encode("utf-8")


def parse_signing_keys(data: bytes, *, where: str) -> SigningKeys:
    """Parse and validate the bytes of a ``signingkeys.json``."""
    try:
        obj = parse_json_object(data, where=where)
    except ContentError as exc:
        raise ConfigError(f"malformed {exc}") from None
    keys_raw = obj.get("keys")
    if keys_raw is None:
        keys_raw = []
    if not isinstance(keys_raw, list):
        raise ConfigError(f"malformed {where}: keys must be a list")
    default = obj.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"malformed {where}: default must be a string")
    if default == "":
        raise ConfigError(f"malformed {where}: default key name cannot be empty")
    sk = SigningKeys(
        keys=[record_from_json(k, where=f"{where}: keys[{i}]") for i, k in enumerate(keys_raw)],
        default=default,
    )
    sk.validate(where=where)
    return sk


def load_signing_keys(config: ConfigDir) -> SigningKeys:
    """Read ``signingkeys.json`` (an absent file is an empty key list). Never writes."""
    from ocisign.config.files import read_regular_file

    path = config.signing_keys
    data = read_regular_file(path, max_size=MAX_SIGNING_KEYS_SIZE, follow=False, missing_ok=True)
    if data is None:
        return SigningKeys()
    return parse_signing_keys(data, where=str(path))


def ensure_config_root(config: ConfigDir) -> Path:
    """Create the config directory (0700) if it is missing; return it."""
    root = config.root
    try:
        make_private_dirs(root)
    except OSError as exc:
        raise ConfigError(f"cannot create config directory {root}: {exc.strerror}") from None
    return root


@contextlib.contextmanager
def edit_signing_keys(config: ConfigDir) -> Iterator[SigningKeys]:
    """Load, let the caller modify, validate and save ``signingkeys.json`` under the config-dir lock.

    Nothing is written when the block raises or leaves the keys unchanged.
    """
    root = ensure_config_root(config)
    with locked_dir(root, what="signingkeys.json"):
        keys = load_signing_keys(config)
        before = keys.to_json_bytes()
        yield keys
        keys.validate()
        after = keys.to_json_bytes()
        if after != before:
            write_atomic(config.signing_keys, after, mode=0o600)


def absolute(path: str | os.PathLike[str]) -> str:
    """Absolute form of ``path`` without resolving symlinks (what notation stores)."""
    return os.path.abspath(os.fspath(path))
