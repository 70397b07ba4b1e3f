"""ocisign: sign, list, inspect, verify and copy OCI image layouts with Notary Project signatures.

Plugin authors import :data:`hookimpl` from here and records from :mod:`ocisign.types`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: decorator for hook implementations: ``@ocisign.hookimpl``
hookimpl = pluggy.HookimplMarker("ocisign")

__all__ = ["__version__", "hookimpl"]
