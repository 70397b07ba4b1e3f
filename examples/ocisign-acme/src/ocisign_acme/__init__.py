"""ocisign-acme: Acme's release rules as an ocisign plugin (see :mod:`ocisign_acme.plugin`)."""

from __future__ import annotations

__version__ = "0.1.0"
