"""Stand-ins for the built-in plugins: registered in place of the modules, they import
``ocisign.plugins.<name>`` on the first call of one of its hooks.

A command pays only for the built-ins it calls: ``list`` on a layout imports the two layout
handlers, not the envelope formats, signers, trust stores or the registry transport.

Each stand-in has the module's hook implementations with the same names, argument names and
``tryfirst``/``trylast`` options, and it is registered under the same name in the same order,
so pluggy calls the hooks in the same order as with the modules themselves
(``tests/unit/test_lazy_plugins.py`` compares every stand-in with its module). Its
``__name__`` is the module's name, so ``plugin list``, the built-in checks of the manager and
the verifier's "is the Notary plugin registered" check see the same plugin.

The stand-ins are marked with :func:`hookimpl`, which sets the same ``ocisign_impl`` options
dict as ``pluggy.HookimplMarker("ocisign")`` (so pluggy registers them as it always did) without
importing pluggy: with only the built-ins registered, :class:`ocisign.manager.OcisignPluginManager`
calls them directly (:func:`hook_impls` lists them) and never needs pluggy.
"""

from __future__ import annotations

import importlib
import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["BuiltinStandIn", "HookImplInfo", "hook_impls", "hookimpl", "hookimpl_with", "stand_in"]

_PREFIX = "ocisign.plugins."
#: the attribute pluggy's ``HookimplMarker("ocisign")`` sets on a hook implementation
IMPL_ATTR = "ocisign_impl"


def hookimpl(function: F) -> F:
    """``@ocisign.hookimpl`` without pluggy: sets the same ``ocisign_impl`` options on ``function``."""
    return hookimpl_with()(function)


def hookimpl_with(*, tryfirst: bool = False, trylast: bool = False) -> Callable[[F], F]:
    """``@ocisign.hookimpl(tryfirst=…, trylast=…)`` without pluggy."""

    def mark(func: F) -> F:
        setattr(func, IMPL_ATTR, {"wrapper": False, "hookwrapper": False, "optionalhook": False,
                                  "tryfirst": tryfirst, "trylast": trylast, "specname": None})
        return func

    return mark


class HookImplInfo:
    """One hook implementation of a stand-in, as the manager calls it (what pluggy's HookImpl holds)."""

    __slots__ = ("argnames", "function", "hook_name", "plugin", "plugin_name", "tryfirst", "trylast")

    def __init__(self, plugin_name: str, plugin: object, hook_name: str, function: Callable[..., Any],
                 argnames: tuple[str, ...], tryfirst: bool, trylast: bool) -> None:
        self.plugin_name, self.plugin, self.hook_name, self.function = plugin_name, plugin, hook_name, function
        self.argnames, self.tryfirst, self.trylast = argnames, tryfirst, trylast

    def __repr__(self) -> str:
        return f"<HookImplInfo {self.plugin_name}.{self.hook_name}>"


def hook_impls(plugin: BuiltinStandIn, plugin_name: str) -> list[HookImplInfo]:
    """The hook implementations of stand-in ``plugin`` in name order (as pluggy finds them)."""
    out = []
    for name in sorted(vars(type(plugin))):
        func = vars(type(plugin))[name]
        opts = getattr(func, IMPL_ATTR, None)
        if not name.startswith("ocisign_") or not isinstance(opts, dict):
            continue
        code = func.__code__
        argnames = code.co_varnames[1:code.co_argcount]  # without self; stand-ins have no defaults
        out.append(HookImplInfo(plugin_name, plugin, name, getattr(plugin, name), argnames,
                                bool(opts["tryfirst"]), bool(opts["trylast"])))
    return out


class BuiltinStandIn:
    """Base of the stand-ins: the module is imported on first use (:attr:`module`)."""

    #: short name of the plugin (``ocisign.plugins.<short>``)
    short = ""

    def __init__(self) -> None:
        self.__name__ = _PREFIX + self.short
        self._module: ModuleType | None = None

    @property
    def module(self) -> ModuleType:
        """The plugin module, imported on first use."""
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return self._module

    def __repr__(self) -> str:
        return f"<built-in plugin {self.__name__} ({'loaded' if self._module else 'not loaded yet'})>"


class _OciDir(BuiltinStandIn):
    short = "oci_dir"

    @hookimpl
    def ocisign_layout_handlers(self) -> Iterable[Any]:
        return self.module.ocisign_layout_handlers()  # type: ignore[no-any-return]


class _OciArchive(BuiltinStandIn):
    """The one stand-in that answers its hook itself: ``list``/``verify`` of a layout *directory*
    ask every handler whether it claims the path, and the tar handler's answer for anything but
    a regular file is no; so its handler is made here, and ``ocisign.plugins.oci_archive`` is
    imported only to look inside a file, or to open or create a tar
    (``tests/unit/test_lazy_plugins.py`` checks it against the module's own handler)."""

    short = "oci_archive"
    description = "OCI image layout in a tar file (read in place, rewritten atomically)"
    #: what :meth:`open` makes (``OcisignPluginManager.layout_type_of`` matches targets by it)
    opens = "ocisign.plugins.oci_archive.ArchiveLayout"

    @hookimpl
    def ocisign_layout_handlers(self) -> Iterable[Any]:
        from ocisign.types import LayoutHandler

        return [LayoutHandler(name="oci-archive", detect=self.detect, open=self.open, create=self.create,
                              description=self.description)]

    def detect(self, path: str | os.PathLike[str]) -> bool:
        """``oci_archive.detect``: False for what is not a regular file, without importing the module."""
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return False
        except OSError:
            return False
        return bool(self.module.detect(path))

    def open(self, path: str | os.PathLike[str]) -> Any:
        """``oci_archive.ArchiveLayout(path)``."""
        return self.module.ArchiveLayout(path)

    def create(self, path: str | os.PathLike[str]) -> Any:
        """``oci_archive.create_archive(path)``."""
        return self.module.create_archive(path)


class _FileKey(BuiltinStandIn):
    short = "file_key"

    @hookimpl
    def ocisign_signers(self) -> Iterable[Any]:
        return self.module.ocisign_signers()  # type: ignore[no-any-return]


class _Jws(BuiltinStandIn):
    short = "jws"

    @hookimpl
    def ocisign_envelope_formats(self) -> Iterable[Any]:
        return self.module.ocisign_envelope_formats()  # type: ignore[no-any-return]


class _Cose(BuiltinStandIn):
    short = "cose"

    @hookimpl
    def ocisign_envelope_formats(self) -> Iterable[Any]:
        return self.module.ocisign_envelope_formats()  # type: ignore[no-any-return]


class _TruststoreFiles(BuiltinStandIn):
    short = "truststore_files"

    @hookimpl_with(trylast=True)
    def ocisign_trust_store(self, store_type: str, name: str, config_dir: str | None) -> Any:
        return self.module.ocisign_trust_store(store_type, name, config_dir)


class _TrustPolicy(BuiltinStandIn):
    short = "trust_policy"

    @hookimpl
    def ocisign_evaluate_policy(self, context: Any) -> Any:
        return self.module.ocisign_evaluate_policy(context)


class _Credentials(BuiltinStandIn):
    short = "credentials"

    @hookimpl_with(trylast=True)
    def ocisign_registry_credentials(self, host: str, config_dir: str | None) -> Any:
        return self.module.ocisign_registry_credentials(host, config_dir)


class _Registry(BuiltinStandIn):
    short = "registry"

    @hookimpl
    def ocisign_transports(self) -> Iterable[Any]:
        return self.module.ocisign_transports()  # type: ignore[no-any-return]


class _NotationPlugins(BuiltinStandIn):
    short = "notation_plugins"

    @hookimpl
    def ocisign_signers(self, config_dir: str | None) -> Iterable[Any]:
        return self.module.ocisign_signers(config_dir)  # type: ignore[no-any-return]

    @hookimpl
    def ocisign_verification_plugin(self, name: str, config_dir: str | None) -> Any:
        return self.module.ocisign_verification_plugin(name, config_dir)


_STAND_INS: dict[str, type[BuiltinStandIn]] = {
    cls.short: cls
    for cls in (_OciDir, _OciArchive, _FileKey, _Jws, _Cose, _TruststoreFiles, _TrustPolicy, _Credentials,
                _Registry, _NotationPlugins)
}


def stand_in(short: str) -> object:
    """The plugin object to register for built-in ``short``: its stand-in, or the module itself
    when it has none (a built-in added without a stand-in still works, imported eagerly)."""
    cls = _STAND_INS.get(short)
    if cls is None:
        return importlib.import_module(_PREFIX + short)
    return cls()
