"""The real :class:`pluggy.PluginManager` behind :class:`ocisign.manager.OcisignPluginManager`.

The ocisign manager calls the built-in plugins directly and creates this one only when pluggy is
needed: a plugin that is not built in (entry point, ``-p MODULE``, ``register``), tracing, or a
caller that uses pluggy's API (``pm.hook``, ``list_name_plugin``, ``get_hookcallers``…).
"""

from __future__ import annotations

import pluggy

from ocisign import hookspecs
from ocisign.errors import PluginError

__all__ = ["NO_WRAPPERS", "PluggyManager"]

#: hooks whose implementations may not be wrappers (they could replace other plugins' results)
NO_WRAPPERS = frozenset({"ocisign_evaluate_policy"})


class PluggyManager(pluggy.PluginManager):
    """pluggy's manager for project ``ocisign`` with its hook specifications added."""

    def __init__(self) -> None:
        super().__init__("ocisign")
        self.add_hookspecs(hookspecs)

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        """Only ``ocisign_*`` attributes can be hook implementations."""
        if not name.startswith("ocisign_"):
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts and name in NO_WRAPPERS and (opts.get("wrapper") or opts.get("hookwrapper")):
            raise PluginError(f"{name} can't be a wrapper (in {getattr(plugin, '__name__', plugin)!r}): "
                              "policy plugins can only return their own result (veto or abstain)")
        return opts
