"""Built-in plugins of ocisign, one module per plugin, registered under their short names.

Built-ins are plain modules (not entry points); each can be disabled with ``-p no:NAME`` or
``OCISIGN_DISABLED_PLUGINS=NAME``, except :data:`ocisign.manager.ESSENTIAL_PLUGINS`.
Importing a plugin module must stay cheap: heavy libraries
are imported inside the functions that need them.
"""

from __future__ import annotations

#: short names of the built-in plugin modules, in registration order
BUILTIN_PLUGINS: tuple[str, ...] = (
    "oci_dir",
    "oci_archive",
    "file_key",
    "jws",
    "cose",
    "truststore_files",
    "trust_policy",
    "credentials",
    "registry",
    "notation_plugins",
)
