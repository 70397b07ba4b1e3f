"""The configuration directory, in notation's on-disk format.

``$OCISIGN_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/ocisign``, else ``~/.config/ocisign``; with no home
directory at all (``HOME`` unset and no passwd entry) ``./.ocisign`` in the working directory, as
notation-go falls back to ``.notation`` (notation-go #449).
Inside, the files notation uses, so a notation config directory works when pointed at::

    config.json  signingkeys.json  localkeys/NAME.key  localkeys/NAME.crt
    trustpolicy.json  trustpolicy.oci.json  truststore/x509/{ca,signingAuthority,tsa}/NAME/
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

TRUST_STORE_TYPES = ("ca", "signingAuthority", "tsa")


def home_dir() -> Path | None:
    """The user's home directory, or None when there is none (``HOME`` unset, no passwd entry)."""
    try:
        return Path.home()
    except (RuntimeError, KeyError, OSError):
        return None


def default_config_dir() -> Path:
    """The config dir chosen by the environment."""
    env = os.environ.get("OCISIGN_CONFIG_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "ocisign"
    home = home_dir()
    if home is None:
        return Path.cwd() / ".ocisign"
    return home / ".config" / "ocisign"


@dataclasses.dataclass(frozen=True)
class ConfigDir:
    """Paths inside a configuration directory (nothing is created by this class)."""

    root: Path

    @classmethod
    def from_env(cls, override: str | os.PathLike[str] | None = None) -> ConfigDir:
        """``override`` (``--config-dir``) or :func:`default_config_dir`."""
        return cls(Path(override) if override else default_config_dir())

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
