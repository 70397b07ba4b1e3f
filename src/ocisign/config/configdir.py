"""The configuration directory, in notation's on-disk format.

``$OCISIGN_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/ocisign``, else ``~/.config/ocisign``; with no home
directory at all (``HOME`` unset and no passwd entry) ``./.ocisign`` in the working directory, as
notation-go falls back to ``.notation`` (notation-go #449).
Inside, the files notation uses, so a notation config directory works when pointed at::

    config.json  signingkeys.json  localkeys/NAME.key  localkeys/NAME.crt
    trustpolicy.json  trustpolicy.oci.json  truststore/x509/{ca,signingAuthority,tsa}/NAME/
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from pathlib import Path

TRUST_STORE_TYPES = ("ca", "signingAuthority", "tsa")


def _home_text() -> str | None:
    """``str(Path.home())`` without pathlib; None when there is no home directory."""
    home = os.path.expanduser("~")
    return None if home.startswith("~") else home


def home_dir() -> Path | None:
    """The user's home directory, or None when there is none (``HOME`` unset, no passwd entry)."""
    from pathlib import Path

    home = _home_text()
    return None if home is None else Path(home)


def _default_config_dir_text() -> str:
    env = os.environ.get("OCISIGN_CONFIG_DIR")
    if env:
        return env
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "ocisign")
    home = _home_text()
    if home is None:
        return os.path.join(os.getcwd(), ".ocisign")
    return os.path.join(home, ".config", "ocisign")


def default_config_dir() -> Path:
    """The config dir chosen by the environment."""
    from pathlib import Path

    return Path(_default_config_dir_text())


class ConfigDir:
    """Paths inside a configuration directory (nothing is created by this class).

    Immutable, compared and hashed by ``root``. Not a dataclass and ``root`` is made on first
    use: every command builds one, and ``list`` on a layout never looks inside (no pathlib).
    """

    __slots__ = ("_path", "_text")
    _path: Path | None
    _text: str

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "_text", os.fspath(root))
        object.__setattr__(self, "_path", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of frozen ConfigDir")

    @property
    def root(self) -> Path:
        """The directory."""
        path: Path | None = self._path
        if path is None:
            from pathlib import Path

            path = Path(self._text)
            object.__setattr__(self, "_path", path)
        return path

    def __eq__(self, other: object) -> bool:
        return other.root == self.root if isinstance(other, ConfigDir) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"ConfigDir(root={self.root!r})"

    @classmethod
    def from_env(cls, override: str | os.PathLike[str] | None = None) -> ConfigDir:
        """``override`` (``--config-dir``) or :func:`default_config_dir`."""
        return cls(override if override else _default_config_dir_text())

    @property
    def config_json(self) -> Path:
        """``config.json``: insecureRegistries, credsStore, credHelpers, signatureFormat."""
        return self.root / "config.json"

    @property
    def signing_keys(self) -> Path:
        """``signingkeys.json``."""
        return self.root / "signingkeys.json"

    @property
    def localkeys(self) -> Path:
        """``localkeys/`` with NAME.key (0600) and NAME.crt."""
        return self.root / "localkeys"

    @property
    def trust_policy(self) -> Path:
        """``trustpolicy.json`` (notation 1.x)."""
        return self.root / "trustpolicy.json"

    @property
    def trust_policy_oci(self) -> Path:
        """``trustpolicy.oci.json`` (notation 2.x; wins when present)."""
        return self.root / "trustpolicy.oci.json"

    @property
    def credentials(self) -> Path:
        """``credentials.json``: registry logins stored by ``ocisign login`` (0600)."""
        return self.root / "credentials.json"

    def trust_store_dir(self, store_type: str, name: str) -> Path:
        """``truststore/x509/<type>/<name>``."""
        return self.root / "truststore" / "x509" / store_type / name
