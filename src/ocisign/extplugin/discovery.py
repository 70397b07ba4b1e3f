"""Installed plugins: ``<config>/plugins/<name>/notation-<name>``, as notation lays them out.

``$NOTATION_LIBEXEC`` is not consulted: ocisign keeps plugins in its config directory (which may
be notation's, pointed at with ``--config-dir``/``$OCISIGN_CONFIG_DIR``). The executable must be
a regular file (never a symlink) with an execute bit, and ``get-plugin-metadata`` must name it.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocisign.errors import OcisignError, PluginError
from ocisign.extplugin import protocol as p
from ocisign.extplugin.runner import run_command
from ocisign.lazy_dataclass import dataclass

__all__ = [
    "ExternalPlugin",
    "PluginListing",
    "executable_name",
    "find_plugin",
    "list_plugins",
    "plugin_dir",
    "plugins_root",
    "validate_plugin_name",
]


def plugins_root(config_root: Path) -> Path:
    """``<config>/plugins``."""
    return Path(config_root) / "plugins"


def executable_name(name: str) -> str:
    """``notation-<name>``."""
    return f"notation-{name}"


def validate_plugin_name(name: str) -> str:
    """``name`` if it is a valid plugin name (letters, digits, ``_ . -``; not ``.``/``..``)."""
    if not p.PLUGIN_NAME_RE.match(name) or name in (".", ".."):
        raise PluginError(f"invalid plugin name {name!r}: use letters, digits, '_', '.' and '-'")
    return name


def plugin_dir(config_root: Path, name: str) -> Path:
    """``<config>/plugins/<name>``."""
    return plugins_root(config_root) / validate_plugin_name(name)


def check_executable(path: Path, *, what: str) -> None:
    """``path`` must be a regular file (not a symlink) with an execute bit; PluginError otherwise."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise PluginError(f"{what}: {path} does not exist") from None
    except OSError as exc:
        raise PluginError(f"{what}: cannot stat {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise PluginError(f"{what}: {path} is a symbolic link; a plugin executable must be a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise PluginError(f"{what}: {path} is not a regular file")
    if not st.st_mode & 0o111 or not os.access(path, os.X_OK):
        raise PluginError(f"{what}: {path} is not executable")


@dataclass
class ExternalPlugin:
    """One installed plugin; every command goes through :func:`ocisign.extplugin.runner.run_command`."""

    name: str
    path: Path
    timeout: float | None = None
    _metadata: dict[str, p.PluginMetadata] = dataclasses.field(default_factory=dict, repr=False)

    def call(self, command: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``command`` with ``request``; the response object."""
        return run_command(self.path, self.name, command, request, timeout=self.timeout)

    def metadata(self, plugin_config: Mapping[str, str] | None = None) -> p.PluginMetadata:
        """``get-plugin-metadata`` (validated; cached per configuration)."""
        key = repr(sorted((plugin_config or {}).items()))
        if key not in self._metadata:
            obj = self.call(p.CMD_METADATA, p.plugin_config_json(plugin_config))
            self._metadata[key] = p.parse_metadata(obj, plugin=self.name)
        return self._metadata[key]

    def describe_key(self, key_id: str, plugin_config: Mapping[str, str] | None) -> p.DescribeKeyResponse:
        """``describe-key`` for ``key_id``."""
        req = {"contractVersion": p.CONTRACT_VERSION, "keyId": key_id, **p.plugin_config_json(plugin_config)}
        return p.parse_describe_key(self.call(p.CMD_DESCRIBE_KEY, req), plugin=self.name, key_id=key_id)

    def generate_signature(self, key_id: str, key_spec: str, payload: bytes,
                           plugin_config: Mapping[str, str] | None) -> p.GenerateSignatureResponse:
        """``generate-signature`` over ``payload`` (the envelope's signing input)."""
        from ocisign.envelope.algorithms import algorithm_for

        alg = algorithm_for(key_spec)
        req = {"contractVersion": p.CONTRACT_VERSION, "keyId": key_id, "keySpec": key_spec,
               "hashAlgorithm": alg.hash_name, "payload": p.b64(payload), **p.plugin_config_json(plugin_config)}
        return p.parse_generate_signature(self.call(p.CMD_GENERATE_SIGNATURE, req), plugin=self.name,
                                          key_id=key_id, signing_algorithm=alg.signature_algorithm)

    def generate_envelope(self, key_id: str, payload: bytes, envelope_type: str, expiry_seconds: int | None,
                          plugin_config: Mapping[str, str] | None) -> p.GenerateEnvelopeResponse:
        """``generate-envelope`` for the payload JSON ``payload``."""
        from ocisign.envelope.headers import PAYLOAD_CONTENT_TYPE

        req: dict[str, Any] = {"contractVersion": p.CONTRACT_VERSION, "keyId": key_id,
                               "payloadType": PAYLOAD_CONTENT_TYPE, "signatureEnvelopeType": envelope_type,
                               "payload": p.b64(payload)}
        if expiry_seconds:
            req["expiryDurationInSeconds"] = expiry_seconds
        req.update(p.plugin_config_json(plugin_config))
        return p.parse_generate_envelope(self.call(p.CMD_GENERATE_ENVELOPE, req), plugin=self.name,
                                         envelope_type=envelope_type)

    def verify_signature(self, request: Mapping[str, Any]) -> p.VerifySignatureResponse:
        """``verify-signature`` with a request built by :mod:`ocisign.extplugin.verification`."""
        return p.parse_verify_signature(self.call(p.CMD_VERIFY_SIGNATURE, request), plugin=self.name)


def find_plugin(config_root: Path, name: str, *, timeout: float | None = None) -> ExternalPlugin:
    """The installed plugin ``name``; PluginError when it is missing or its executable is unfit."""
    directory = plugin_dir(config_root, name)
    if not directory.is_dir() or directory.is_symlink():
        raise PluginError(f"plugin {name!r} is not installed (no directory {directory}); "
                          "install it with 'ocisign plugin install'")
    exe = directory / executable_name(name)
    check_executable(exe, what=f"plugin {name!r}")
    return ExternalPlugin(name=name, path=exe, timeout=timeout)


@dataclass(frozen=True)
class PluginListing:
    """One row of ``plugin list``: metadata, or the one-line error of a broken plugin."""

    name: str
    path: Path
    metadata: p.PluginMetadata | None = None
    error: str | None = None


def list_plugins(config_root: Path) -> list[PluginListing]:
    """Every directory under ``<config>/plugins`` (symlinked directories and dot-names ignored), sorted.

    Each plugin is asked for its metadata; a failure is kept as its one-line ``error``.
    """
    root = plugins_root(config_root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PluginError(f"cannot read the plugin directory {root}: {exc.strerror}") from None
    out: list[PluginListing] = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        exe = Path(entry.path) / executable_name(entry.name)
        try:
            validate_plugin_name(entry.name)
            plugin = find_plugin(config_root, entry.name)
            out.append(PluginListing(entry.name, exe, metadata=plugin.metadata()))
        except OcisignError as exc:
            out.append(PluginListing(entry.name, exe, error=exc.diagnostics()))
    return out
