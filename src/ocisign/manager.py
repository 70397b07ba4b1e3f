"""The typed plugin manager: the only code in ocisign that calls hooks.

Load order: hookspecs, built-ins (``ocisign.plugins.*``), entry points of group ``ocisign``,
then modules named with ``-p MODULE`` / project config. Switches:

* ``-p no:NAME`` or ``OCISIGN_DISABLED_PLUGINS=a,b`` blocks plugins by name, except the
  :data:`ESSENTIAL_PLUGINS` (blocking one is a usage error, as pytest refuses ``-p no:`` for its
  essential plugins), and ``ocisign_evaluate_policy`` cannot be wrapped (a wrapper could rewrite
  the Notary verdict);
* ``OCISIGN_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points;
* ``OCISIGN_TRACE_PLUGINS=1`` (or ``--trace-plugins``) traces every hook call to stderr.
"""

from __future__ import annotations

import _thread
import os
import sys

from ocisign.errors import LayoutError, OcisignError, PluginError, UsageError
from ocisign.lazy_dataclass import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, TypeVar

    import pluggy
    from cryptography import x509

    from ocisign.extplugin.discovery import ExternalPlugin
    from ocisign.lazy_plugins import HookImplInfo
    from ocisign.oci.model import Descriptor
    from ocisign.pluggy_manager import PluggyManager
    from ocisign.types import (
        Credentials,
        EnvelopeFormat,
        LayoutHandler,
        PolicyResult,
        SignerFactory,
        Target,
        Transport,
        VerificationContext,
    )

    R = TypeVar("R")

__all__ = [
    "BUILTIN_PREFIX",
    "ENTRY_POINT_GROUP",
    "ESSENTIAL_PLUGINS",
    "FIRSTRESULT_HOOKS",
    "OcisignPluginManager",
    "PluginInfo",
    "get_plugin_manager",
]

ENTRY_POINT_GROUP = "ocisign"
BUILTIN_PREFIX = "ocisign.plugins."

#: built-ins that can't be blocked, because a verdict without them (or with a replacement that
#: takes their place) is weaker: ``trust_policy`` is the Notary verification; ``jws`` and ``cose``
#: open and integrity-check the envelopes (blocked, another plugin could register their media type)
ESSENTIAL_PLUGINS: Mapping[str, str] = {
    "trust_policy": "the Notary Project signature verification",
    "jws": "the JWS envelope format (opens and integrity-checks application/jose+json signatures)",
    "cose": "the COSE envelope format (opens and integrity-checks application/cose signatures)",
}
#: the ``firstresult`` hooks of :mod:`ocisign.hookspecs` (the direct dispatch stops at the first
#: non-None result of these; ``tests/unit/test_manager_dispatch.py`` checks it against the specs)
FIRSTRESULT_HOOKS = frozenset({"ocisign_registry_credentials", "ocisign_trust_store", "ocisign_verification_plugin"})


@dataclass(frozen=True)
class PluginInfo:
    """What ``ocisign plugin list`` shows for one registered plugin."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


def _env_list(name: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, "").split(",") if x.strip()]


class OcisignPluginManager:
    """The plugin manager, with typed accessors for every ocisign hook.

    It offers pluggy's ``PluginManager`` API (``hook``, ``register``, ``unregister``,
    ``list_name_plugin``, ``get_hookcallers``, ``add_hookcall_monitoring``…) and is built on
    one; but as long as only the built-in plugins are registered (their stand-ins, see
    :mod:`ocisign.lazy_plugins`) it calls their hooks itself, in exactly pluggy's order and with
    pluggy's results, and pluggy is not even imported. The :class:`pluggy.PluginManager`
    (:class:`ocisign.pluggy_manager.PluggyManager`) is created, with the same plugins registered
    and blocked in the same order, the first time something needs it: a plugin that is not a
    built-in stand-in (entry point, ``-p MODULE``, :meth:`register`), :meth:`enable_trace`, or
    any other attribute of pluggy's API (delegated to it). ``get_plugin``, ``has_plugin``,
    ``get_name``, ``is_registered``, ``is_blocked`` and ``set_blocked`` work in both modes.
    """

    if TYPE_CHECKING:  # pluggy's API, delegated (see __getattr__)
        hook: pluggy.HookRelay
        project_name: str

        def list_name_plugin(self) -> list[tuple[str, Any]]: ...

        def get_hookcallers(self, plugin: object) -> list[pluggy.HookCaller] | None: ...

        def add_hookspecs(self, module_or_class: object) -> None: ...

        def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]: ...

    def __init__(self) -> None:
        self.project_name = "ocisign"
        self._pluggy: PluggyManager | None = None
        self._pluggy_lock = _thread.allocate_lock()
        #: direct mode: name -> plugin (None: blocked), in registration order (pluggy's _name2plugin)
        self._plugins: dict[str, object | None] = {}
        #: direct mode: hook name -> implementations in pluggy's list order (called in reverse)
        self._impls: dict[str, list[HookImplInfo]] = {}
        self._cache: dict[str, Any] = {}
        self._trace_write: Callable[[str], object] | None = None
        #: entry-point plugin name -> (distribution name, version)
        self._ep_dists: dict[str, tuple[str, str]] = {}

    # --- the pluggy manager, when needed --------------------------------------------------
    @property
    def uses_pluggy(self) -> bool:
        """True once the pluggy manager exists (False: only built-ins, called directly)."""
        return self._pluggy is not None

    def pluggy_manager(self) -> PluggyManager:
        """The :class:`pluggy.PluginManager`, created (with this manager's plugins) on first use."""
        with self._pluggy_lock:  # a batch's threads share the manager: one pluggy manager
            if self._pluggy is None:
                from ocisign.pluggy_manager import PluggyManager

                pm = PluggyManager()
                for name, plugin in self._plugins.items():
                    if plugin is None:
                        pm.set_blocked(name)
                    else:
                        pm.register(plugin, name=name)
                self._cache.clear()
                self._pluggy = pm  # from now on the direct tables are not read (nor cleared, for readers)
            return self._pluggy

    def __getattr__(self, name: str) -> Any:
        """The rest of pluggy's PluginManager API (creates the pluggy manager)."""
        if name.startswith("__") or name in ("_pluggy", "_pluggy_lock", "_plugins", "_impls", "_cache"):
            raise AttributeError(name)
        return getattr(self.pluggy_manager(), name)

    # --- registry of plugins (both modes) ---------------------------------------------------
    def get_plugin(self, name: str) -> Any | None:
        """The plugin registered under ``name``, if any."""
        if self._pluggy is not None:
            return self._pluggy.get_plugin(name)
        return self._plugins.get(name)

    def has_plugin(self, name: str) -> bool:
        """Whether a plugin is registered under ``name``."""
        return self.get_plugin(name) is not None

    def get_name(self, plugin: object) -> str | None:
        """The name ``plugin`` is registered under, or None."""
        if self._pluggy is not None:
            return self._pluggy.get_name(plugin)
        return next((n for n, p in self._plugins.items() if p == plugin), None)

    def is_registered(self, plugin: object) -> bool:
        """Whether ``plugin`` is registered."""
        return self.get_name(plugin) is not None

    def is_blocked(self, name: str) -> bool:
        """Whether plugin name ``name`` is blocked."""
        if self._pluggy is not None:
            return self._pluggy.is_blocked(name)
        return name in self._plugins and self._plugins[name] is None

    def set_blocked(self, name: str) -> None:
        """Block plugin ``name``; a UsageError for an essential built-in (see :data:`ESSENTIAL_PLUGINS`)."""
        if name in ESSENTIAL_PLUGINS:
            raise UsageError(
                f"plugin {name!r} can't be disabled (-p no:{name}, OCISIGN_DISABLED_PLUGINS, disable-plugins): "
                f"it is {ESSENTIAL_PLUGINS[name]}, and verification must not run without it"
            )
        self._cache.clear()
        if self._pluggy is not None:
            self._pluggy.set_blocked(name)
            return
        self._plugins.pop(name, None)  # as pluggy: unregister, then block (the name moves to the end)
        for impls in self._impls.values():
            impls[:] = [i for i in impls if i.plugin_name != name]
        self._plugins[name] = None

    def _add_direct(self, plugin: object, name: str) -> None:
        """Register a built-in stand-in without pluggy: its hooks sorted in as pluggy sorts them."""
        from ocisign.lazy_plugins import BuiltinStandIn, hook_impls

        assert isinstance(plugin, BuiltinStandIn)
        if name in self._plugins:
            if self._plugins[name] is None:
                return  # blocked: pluggy registers nothing
            raise PluginError(f"cannot register plugin {name!r}: Plugin name already registered: {name}")
        self._cache.clear()
        self._plugins[name] = plugin
        for impl in hook_impls(plugin, name):
            methods = self._impls.setdefault(impl.hook_name, [])
            if impl.trylast:  # pluggy's HookCaller._add_hookimpl (no wrappers among the stand-ins)
                methods.insert(0, impl)
            elif impl.tryfirst:
                methods.append(impl)
            else:
                i = len(methods) - 1
                while i >= 0 and methods[i].tryfirst:
                    i -= 1
                methods.insert(i + 1, impl)

    # --- loading ----------------------------------------------------------------------------
    def load_builtins(self) -> None:
        """Register every built-in plugin not blocked, in :data:`~ocisign.plugins.BUILTIN_PLUGINS` order.

        Each is registered as its stand-in (:mod:`ocisign.lazy_plugins`), which imports the module
        on the first call of one of its hooks: a command imports only the built-ins it uses.
        """
        from ocisign.lazy_plugins import BuiltinStandIn, stand_in
        from ocisign.plugins import BUILTIN_PLUGINS

        for short in BUILTIN_PLUGINS:
            if self.is_blocked(short):
                continue
            plugin = stand_in(short)
            if self._pluggy is None and isinstance(plugin, BuiltinStandIn):
                self._add_direct(plugin, short)
            else:
                self.register(plugin, name=short)

    def load_entrypoints(self, *, store_index: bool = False) -> None:
        """Register plugins from the ``ocisign`` entry-point group; import failures are fatal (exit 3).

        When the installed distributions are unchanged since the index was written, the plugins
        come from the cached entry-point index (:mod:`ocisign.metadata`) without scanning every
        installed distribution; otherwise :mod:`importlib.metadata` scans them, and with
        ``store_index`` (commands that write anyway: never ``list``/``verify``, which write
        nothing) the index is rebuilt. No entry point: pluggy is not needed.
        """
        from ocisign import metadata

        records = metadata.cached_entry_points(ENTRY_POINT_GROUP)  # lists only directories that changed
        key: list[Any] | None = None
        if records is None:
            stamps = metadata.path_stamps()  # before the key: a change in between shows next time
            key = metadata.fingerprint()
            records = metadata.scan_entry_points(ENTRY_POINT_GROUP)
        for name, value, dist_name, dist_version in records:
            if self.get_plugin(name) or self.is_blocked(name):
                continue
            plugin = _load_entry_point(name, value, dist_name)
            self.register(plugin, name=name)
            self._ep_dists[name] = (dist_name, dist_version)
        if store_index:
            if key is not None:
                metadata.store_entry_points(ENTRY_POINT_GROUP, key, records, stamps)
            else:
                metadata.refresh_stamps(ENTRY_POINT_GROUP)  # valid, but stamps older than a change elsewhere

    def load_module(self, spec: str) -> None:
        """Register a plugin module by import name (``-p MODULE``)."""
        if self.get_plugin(spec) or self.is_blocked(spec):
            return
        if "/" in spec or "\\" in spec or spec.endswith(".py"):
            stem = os.path.splitext(os.path.basename(spec.rstrip("/")))[0]  # pathlib's stem
            raise UsageError(
                f"-p takes a module name, not a path: {spec!r}; put the file's directory on PYTHONPATH "
                f"(or install it) and use '-p {stem}'"
            )
        import importlib

        try:
            module = importlib.import_module(spec)
        except Exception as exc:
            raise PluginError(f"plugin module {spec!r} failed to import: {exc}") from exc
        self.register(module, name=spec)

    def enable_trace(self, write: Callable[[str], object] | None = None) -> None:
        """Trace hook calls (arguments and results) to ``write`` (stderr by default)."""
        out = write or (lambda s: sys.stderr.write(s))

        def before(name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
            out(f"ocisign trace: {name}({', '.join(kwargs)}) -> {[i.plugin_name for i in impls]}\n")

        def after(
            outcome: pluggy.Result[Any], name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
        ) -> None:
            exc = outcome.exception
            out(f"ocisign trace: {name} {'raised ' + repr(exc) if exc else 'returned'}\n")

        self.pluggy_manager().add_hookcall_monitoring(before, after)
        self._trace_write = out

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` (with pluggy) and drop cached registration results."""
        import pluggy

        pm = self.pluggy_manager()
        self._cache.clear()
        try:
            return pm.register(plugin, name)
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name or plugin!r} is invalid: {exc}") from exc

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        """Unregister and drop cached registration results."""
        pm = self.pluggy_manager()
        self._cache.clear()
        return pm.unregister(plugin, name)

    def check_pending(self) -> None:
        """pluggy's ``check_pending`` (nothing to check while only the built-ins are registered)."""
        if self._pluggy is None:
            return
        import pluggy

        try:
            self._pluggy.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc

    def _hookimpls(self, hook_name: str) -> list[Any]:
        """The implementations of ``hook_name`` in pluggy's list order (registration order)."""
        if self._pluggy is None:
            return list(self._impls.get(hook_name, ()))
        caller: pluggy.HookCaller = getattr(self._pluggy.hook, hook_name)
        return caller.get_hookimpls()

    # --- registration hooks -----------------------------------------------------------------
    def _registrations(self, hook_name: str, kind: str, key: Callable[[Any], str],
                       **kwargs: Any) -> dict[str, Any]:
        cache_key = f"{hook_name}{sorted(kwargs.items())}" if kwargs else hook_name
        if cache_key in self._cache:
            return self._cache[cache_key]  # type: ignore[no-any-return]
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        trace = self._trace_write
        for impl in self._hookimpls(hook_name):  # registration order
            try:
                args = {k: v for k, v in kwargs.items() if k in impl.argnames}
                records = list(impl.function(**args) or ())
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}") from exc
            if trace:
                trace(f"ocisign trace: {hook_name} from {impl.plugin_name}: {[key(r) for r in records]}\n")
            for rec in records:
                k = key(rec)
                if k in merged:
                    raise PluginError(
                        f"{kind} {k!r} registered twice: by plugins {owner[k]}, {impl.plugin_name}"
                    )
                merged[k] = rec
                owner[k] = impl.plugin_name
        self._cache[cache_key] = merged
        return merged

    def layout_handlers(self) -> dict[str, LayoutHandler]:
        """All layout handlers by name."""
        return self._registrations("ocisign_layout_handlers", "layout type", lambda r: r.name)

    def open_layout(self, path: str | os.PathLike[str], *, layout_type: str | None = None,
                    create: bool = False) -> Target:
        """Open a local layout, choosing the handler by ``layout_type`` or detection.

        With ``create``, a missing path (or empty directory) becomes a new layout: of
        ``layout_type``, else ``oci-archive`` for a ``.tar`` name, else ``oci``. Handlers get the
        path as a :class:`pathlib.Path` (the :class:`~ocisign.types.LayoutHandler` contract); the
        built-in ones, which take ``str | os.PathLike``, get it as the same text, a ``str``
        (so ``list`` never imports pathlib).
        """
        from ocisign.oci.layout_reader import path_str

        handlers = self.layout_handlers()
        p = path_str(path)
        if layout_type and layout_type not in handlers:
            raise UsageError(f"unknown layout type {layout_type!r}; choose one of: {', '.join(sorted(handlers))}")
        if create and (not os.path.exists(p) or (os.path.isdir(p) and not os.listdir(p))):
            tar = os.path.splitext(os.path.basename(p))[1] == ".tar" and not os.path.isdir(p)
            name = layout_type or ("oci-archive" if tar else "oci")
            handler = handlers.get(name)
            if handler is None or handler.create is None:
                raise UsageError(f"layout type {name!r} cannot create new layouts")
            return handler.create(_handler_path(handler.create, p))
        if layout_type:
            handler = handlers[layout_type]
            return handler.open(_handler_path(handler.open, p))
        if not os.path.exists(p):
            raise LayoutError(f"{path}: no such OCI layout (directory or tar)")
        matches = [h for h in handlers.values() if h.detect(_handler_path(h.detect, p))]
        if not matches:
            known = ", ".join(sorted(handlers))
            raise LayoutError(f"{path}: not an OCI image layout (no handler among {known} claims it)")
        if len(matches) > 1:
            names = ", ".join(h.name for h in matches)
            raise LayoutError(f"{path}: ambiguous layout type ({names}); choose one with --layout-type")
        return matches[0].open(_handler_path(matches[0].open, p))

    def layout_type_of(self, target: object) -> str | None:
        """The name of the layout handler whose ``open`` makes targets like ``target`` (None: none)."""
        cls = type(target)
        for name, handler in self.layout_handlers().items():
            opener = handler.open
            owner = getattr(opener, "__self__", None)  # a stand-in's method (see lazy_plugins)
            if opener is cls or getattr(owner, "opens", None) == f"{cls.__module__}.{cls.__qualname__}":
                return name
        return None

    def signer_factories(self, config_dir: str | os.PathLike[str] | None = None) -> dict[str, SignerFactory]:
        """All signer factories by scheme name (``config_dir``: where notation plugins are installed)."""
        return self._registrations("ocisign_signers", "signer", lambda r: r.name,
                                   config_dir=str(config_dir) if config_dir else None)

    def signer_factory(self, name: str, config_dir: str | os.PathLike[str] | None = None) -> SignerFactory:
        """The signer factory for ``name`` or a PluginError listing the choices."""
        factories = self.signer_factories(config_dir)
        if name not in factories:
            raise PluginError(f"no signer plugin {name!r}; choose one of: {', '.join(sorted(factories))}")
        return factories[name]

    def envelope_formats(self) -> dict[str, EnvelopeFormat]:
        """All envelope formats by media type."""
        return self._registrations("ocisign_envelope_formats", "envelope media type", lambda r: r.media_type)

    def envelope_format(self, name_or_media_type: str) -> EnvelopeFormat:
        """Look an envelope format up by short name (``jws``) or media type."""
        formats = self.envelope_formats()
        if name_or_media_type in formats:
            return formats[name_or_media_type]
        for fmt in formats.values():
            if fmt.name == name_or_media_type:
                return fmt
        names = ", ".join(sorted(f.name for f in formats.values()))
        raise UsageError(f"unsupported signature format {name_or_media_type!r}; choose one of: {names}")

    def transports(self) -> dict[str, Transport]:
        """All transports by name."""
        return self._registrations("ocisign_transports", "transport", lambda r: r.name)

    def transport(self, name: str = "registry") -> Transport:
        """The transport called ``name``."""
        transports = self.transports()
        if name not in transports:
            raise PluginError(f"no transport plugin {name!r}; available: {', '.join(sorted(transports)) or 'none'}")
        return transports[name]

    # --- lookup and decision hooks ----------------------------------------------------------
    def registry_credentials(self, host: str, config_dir: str | os.PathLike[str] | None = None) -> Credentials | None:
        """First plugin that knows credentials for ``host`` (``config_dir``: this run's config dir)."""
        return self._call(  # type: ignore[no-any-return]
            "ocisign_registry_credentials", host=host, config_dir=str(config_dir) if config_dir else None
        )

    def trust_store(
        self, store_type: str, name: str, config_dir: str | os.PathLike[str] | None = None
    ) -> Sequence[x509.Certificate] | None:
        """Certificates of trust store ``store_type:name``; None when no plugin knows it."""
        return self._call(  # type: ignore[no-any-return]
            "ocisign_trust_store", store_type=store_type, name=name,
            config_dir=str(config_dir) if config_dir else None,
        )

    def verification_plugin(self, name: str, config_dir: str | os.PathLike[str] | None = None) -> ExternalPlugin:
        """The installed notation verification plugin ``name``; PluginError when there is none."""
        found = self._call("ocisign_verification_plugin", name=name,
                           config_dir=str(config_dir) if config_dir else None)
        if found is None:
            raise PluginError(f"plugin {name!r} is not installed")
        return found  # type: ignore[no-any-return]

    def evaluate_policy(self, context: VerificationContext) -> list[PolicyResult]:
        """Every plugin's decision (None results dropped), in call order."""
        return list(self._call("ocisign_evaluate_policy", context=context))

    def signature_created(self, target: Target, subject: Descriptor, signature: Descriptor) -> None:
        """Notify plugins that a signature was stored (a plugin failure says it was stored)."""
        self._call("ocisign_signature_created", target=target, subject=subject, signature=signature,
                   done=f"the signature {signature.digest} of {subject.digest} was stored in {target.location}")

    def push_finished(self, source: str, destination: str, pushed: Sequence[Descriptor]) -> None:
        """Notify plugins that a copy finished (a plugin failure says the copy was made)."""
        self._call("ocisign_push_finished", source=source, destination=destination, pushed=pushed,
                   done=f"the copy of {source} to {destination} was made")

    def _call(self, hook_name: str, *, done: str | None = None, **kwargs: Any) -> Any:
        """Call a hook; an exception that is not an :class:`OcisignError` from a plugin that is not
        built in becomes a :class:`PluginError` naming the plugin and the hook (and ``done``: what
        had already happened), so a broken plugin exits 3 instead of looking like an ocisign bug."""
        if self._pluggy is None:
            return self._call_direct(hook_name, kwargs)  # built-ins only: their errors are ours
        import pluggy

        caller: pluggy.HookCaller = getattr(self._pluggy.hook, hook_name)
        try:
            return caller(**kwargs)
        except pluggy.PluginValidationError as exc:  # pragma: no cover - raised at register()
            raise PluginError(str(exc)) from exc
        except OcisignError:
            raise
        except Exception as exc:
            culprit = _raising_plugin(caller, exc)
            if culprit is None or _is_builtin(culprit.plugin):
                raise  # ocisign's own code: an internal error
            already = f"; {done}" if done else ""
            raise PluginError(
                f"plugin {culprit.plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}{already}"
            ) from exc

    def _call_direct(self, hook_name: str, kwargs: Mapping[str, Any]) -> Any:
        """pluggy's ``_multicall`` for the built-in stand-ins: last registered (and ``tryfirst``)
        first, None results dropped, ``firstresult`` hooks stop at the first non-None result."""
        firstresult = hook_name in FIRSTRESULT_HOOKS
        results: list[Any] = []
        for impl in reversed(self._impls.get(hook_name, ())):
            res = impl.function(*[kwargs[name] for name in impl.argnames])
            if res is not None:
                results.append(res)
                if firstresult:
                    break
        if firstresult:
            return results[0] if results else None
        return results

    # --- introspection ----------------------------------------------------------------------
    def plugin_info(self) -> list[PluginInfo]:
        """Name, distribution, version and implemented hooks of each registered plugin."""
        import ocisign

        own_version = ocisign.__version__
        out: list[PluginInfo] = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda x: x[0]):
            if plugin is None:
                continue
            module = getattr(plugin, "__name__", type(plugin).__module__)
            hooks = tuple(sorted(h.name for h in self.get_hookcallers(plugin) or ()))
            dist = self._ep_dists.get(name)
            builtin = module.startswith(BUILTIN_PREFIX)
            out.append(
                PluginInfo(
                    name=name,
                    module=module,
                    distribution=dist[0] if dist else ("ocisign" if builtin else "-"),
                    version=dist[1] if dist else (own_version if builtin else "-"),
                    hooks=hooks,
                    builtin=builtin,
                )
            )
        return out


def _handler_path(function: Callable[..., Any], path: str) -> Any:
    """``path`` for a layout handler's ``detect``/``open``/``create``: a ``str`` for the built-in
    handlers (they take ``str | os.PathLike``), else the :class:`pathlib.Path` of the contract."""
    if str(getattr(function, "__module__", "")).startswith((BUILTIN_PREFIX, "ocisign.lazy_plugins")):
        return path
    from pathlib import Path

    return Path(path)


def _is_builtin(plugin: object) -> bool:
    return str(getattr(plugin, "__name__", type(plugin).__module__)).startswith(BUILTIN_PREFIX)


def _raising_plugin(caller: pluggy.HookCaller, exc: BaseException) -> pluggy.HookImpl | None:
    """The hook implementation whose code raised ``exc`` (the outermost one on its traceback)."""
    by_code = {getattr(impl.function, "__code__", None): impl for impl in caller.get_hookimpls()}
    tb = exc.__traceback__
    while tb is not None:
        impl = by_code.get(tb.tb_frame.f_code)
        if impl is not None:
            return impl
        tb = tb.tb_next
    return None


def _load_entry_point(name: str, value: str, dist_name: str) -> object:
    """Import ``module:attr`` of entry point ``name``; PluginError naming it when that fails."""
    import importlib

    module_name, _, attrs = value.split("[", 1)[0].partition(":")  # extras ``[x]`` are not ours to check
    try:
        obj: object = importlib.import_module(module_name.strip())
        for attr in attrs.strip().split(".") if attrs.strip() else ():
            obj = getattr(obj, attr)
    except Exception as exc:
        raise PluginError(f"plugin {name!r} ({value}) from {dist_name} failed to load: {exc}") from exc
    return obj


def get_plugin_manager(
    *,
    load_entrypoints: bool | None = None,
    disabled: Iterable[str] = (),
    modules: Iterable[str] = (),
    trace: bool | None = None,
    store_index: bool = False,
) -> OcisignPluginManager:
    """Build a manager: specs, built-ins, entry points, extra modules, then ``check_pending``.

    ``load_entrypoints`` defaults to not ``OCISIGN_DISABLE_PLUGIN_AUTOLOAD``; ``disabled`` adds to
    ``OCISIGN_DISABLED_PLUGINS``; ``trace`` defaults to ``OCISIGN_TRACE_PLUGINS``; ``store_index``
    lets a scan of the entry points refresh the cached index (see :meth:`~OcisignPluginManager.load_entrypoints`).
    """
    pm = OcisignPluginManager()
    if trace is None:
        trace = os.environ.get("OCISIGN_TRACE_PLUGINS", "") not in ("", "0")
    if trace:
        pm.enable_trace()
    for name in [*_env_list("OCISIGN_DISABLED_PLUGINS"), *disabled]:
        pm.set_blocked(name)
    pm.load_builtins()
    if load_entrypoints is None:
        load_entrypoints = os.environ.get("OCISIGN_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    if load_entrypoints:
        pm.load_entrypoints(store_index=store_index)
    for spec in modules:
        pm.load_module(spec)
    pm.check_pending()
    return pm
