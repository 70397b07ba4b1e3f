"""Errors ocisign shows to people, and the exit codes they map to.

Every error a user can cause derives from :class:`OcisignError`. The CLI prints
``Error: <message>`` (:func:`error_line`, notation's format, next to ``Warning: <message>``) on one
line on stderr and exits with ``exit_code``; anything else is a bug and exits with
:data:`ExitCode.INTERNAL`.

:class:`ExitCode` is a namespace of plain ``int`` constants, not an :class:`enum.IntEnum`: every
command imports this module, and ``enum`` alone costs ``--version`` a sixth of its start-up.
The names and values are those of the former enum (``ExitCode.USAGE == 2``); ``ExitCode.name_of(2)``
gives the name (``"USAGE"``) where ``ExitCode(2).name`` used to.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Final

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


class ExitCode:
    """Documented process exit codes (plain ``int`` class attributes)."""

    OK: Final = 0
    #: a check failed: verification, integrity, a registry or layout operation
    FAILED: Final = 1
    #: bad usage or bad input: arguments, config files, references, policy documents
    USAGE: Final = 2
    #: a plugin could not be loaded or misbehaved
    PLUGIN: Final = 3
    #: an unexpected internal error (a bug: please report it)
    INTERNAL: Final = 4
    #: interrupted by the user (SIGINT)
    INTERRUPTED: Final = 130

    @classmethod
    def name_of(cls, code: int) -> str:
        """The name of exit code ``code`` (``"USAGE"`` for 2); ValueError for an undocumented one."""
        for name, value in vars(cls).items():
            if name.isupper() and value == code:
                return name
        raise ValueError(f"{code!r} is not a documented ocisign exit code")


class OcisignError(Exception):
    """Base of every error meant for a person; ``str(err)`` is the one-line message."""

    exit_code: int = ExitCode.FAILED

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
