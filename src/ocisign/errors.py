"""Errors ocisign shows to people, and the exit codes they map to.

Every error a user can cause derives from :class:`OcisignError`. The CLI prints
``Error: <message>`` (:func:`error_line`, notation's format, next to ``Warning: <message>``) on one
line on stderr and exits with ``exit_code``; anything else is a bug and exits with
:data:`ExitCode.INTERNAL`.
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthError",
    "BadReferenceError",
    "ConfigError",
    "ContentError",
    "ExitCode",
    "LayoutError",
    "NotFoundError",
    "OcisignError",
    "PluginError",
    "RegistryError",
    "SigningError",
    "UsageError",
    "VerificationError",
    "error_line",
]


def error_line(message: str) -> str:
    """The one error format of every command: ``Error: <message>`` (as notation prints errors)."""
    return f"Error: {message}"


class ExitCode(enum.IntEnum):
    """Documented process exit codes."""

    OK = 0
    #: a check failed: verification, integrity, a registry or layout operation
    FAILED = 1
    #: bad usage or bad input: arguments, config files, references, policy documents
    USAGE = 2
    #: a plugin could not be loaded or misbehaved
    PLUGIN = 3
    #: an unexpected internal error (a bug: please report it)
    INTERNAL = 4
    #: interrupted by the user (SIGINT)
    INTERRUPTED = 130


class OcisignError(Exception):
    """Base of every error meant for a person; ``str(err)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.FAILED

    def diagnostics(self) -> str:
        """The message printed by the CLI (single line)."""
        return " ".join(str(self).split("\n"))


class UsageError(OcisignError):
    """Bad arguments or a malformed input file the user controls."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration file (signingkeys.json, trustpolicy.json, ocisign.toml, …) is invalid."""


class BadReferenceError(UsageError):
    """A reference (``DIR:TAG``, ``DIR@DIGEST``, ``registry/repo:tag``) could not be parsed."""


class PluginError(OcisignError):
    """A plugin failed to load, conflicts with another one, or is missing."""

    exit_code = ExitCode.PLUGIN


class LayoutError(OcisignError):
    """An OCI image layout (directory or tar) is invalid, incomplete or cannot be written."""


class NotFoundError(OcisignError):
    """A tag, digest, blob or key does not exist."""


class ContentError(OcisignError):
    """Content does not match its descriptor (digest, size, media type) or is malformed."""


class SigningError(OcisignError):
    """Signing failed (unsupported key, certificate rules, envelope generation)."""


class VerificationError(OcisignError):
    """A signature, or the whole verification, failed."""


class RegistryError(OcisignError):
    """A registry request failed."""


class AuthError(RegistryError):
    """Authentication against a registry failed."""
