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

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from ocisign import hookspecs
from ocisign.errors import LayoutError, OcisignError, PluginError, UsageError
from ocisign.lazy_dataclass import dataclass

__all__ = [
    "BUILTIN_PREFIX",
    "ENTRY_POINT_GROUP",
    "ESSENTIAL_PLUGINS",
    "OcisignPluginManager",
    "PluginInfo",
    "R",
    "get_plugin_manager",
]

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.extplugin.discovery import ExternalPlugin
    from ocisign.oci.model import Descriptor
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

ENTRY_POINT_GROUP = "ocisign"
BUILTIN_PREFIX = "ocisign.plugins."

R = TypeVar("R")

#: built-ins that can't be blocked, because a verdict without them (or with a replacement that
#: takes their place) is weaker: ``trust_policy`` is the Notary verification; ``jws`` and ``cose``
#: open and integrity-check the envelopes (blocked, another plugin could register their media type)
ESSENTIAL_PLUGINS: Mapping[str, str] = {
    "trust_policy": "the Notary Project signature verification",
    "jws": "the JWS envelope format (opens and integrity-checks application/jose+json signatures)",
    "cose": "the COSE envelope format (opens and integrity-checks application/cose signatures)",
}
#: hooks whose implementations may not be wrappers (they could replace other plugins' results)
_NO_WRAPPERS = frozenset({"ocisign_evaluate_policy"})


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


class OcisignPluginManager(pluggy.PluginManager):
    """pluggy.PluginManager with typed accessors for every ocisign hook."""

    def __init__(self) -> None:
        super().__init__("ocisign")
        self.add_hookspecs(hookspecs)
        self._cache: dict[str, Any] = {}
        self._trace_write: Callable[[str], object] | None = None
        #: entry-point plugin name -> (distribution name, version)
        self._ep_dists: dict[str, tuple[str, str]] = {}

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        """Only ``ocisign_*`` attributes can be hook implementations."""
        if not name.startswith("ocisign_"):
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts and name in _NO_WRAPPERS and (opts.get("wrapper") or opts.get("hookwrapper")):
            raise PluginError(f"{name} can't be a wrapper (in {getattr(plugin, '__name__', plugin)!r}): "
                              "policy plugins can only return their own result (veto or abstain)")
        return opts

    def set_blocked(self, name: str) -> None:
        """Block plugin ``name``; a UsageError for an essential built-in (see :data:`ESSENTIAL_PLUGINS`)."""
        if name in ESSENTIAL_PLUGINS:
            raise UsageError(
                f"plugin {name!r} can't be disabled (-p no:{name}, OCISIGN_DISABLED_PLUGINS, disable-plugins): "
                f"it is {ESSENTIAL_PLUGINS[name]}, and verification must not run without it"
            )
        super().set_blocked(name)

    # --- loading ----------------------------------------------------------------------------
    def load_builtins(self) -> None:
        """Register every built-in plugin not blocked, in :data:`~ocisign.plugins.BUILTIN_PLUGINS` order.

        Each is registered as its stand-in (:mod:`ocisign.lazy_plugins`), which imports the module
        on the first call of one of its hooks: a command imports only the built-ins it uses.
        """
        from ocisign.lazy_plugins import stand_in
        from ocisign.plugins import BUILTIN_PLUGINS

        for short in BUILTIN_PLUGINS:
            if self.is_blocked(short):
                continue
            self.register(stand_in(short), name=short)

    def load_entrypoints(self, *, store_index: bool = False) -> None:
        """Register plugins from the ``ocisign`` entry-point group; import failures are fatal (exit 3).

        When the installed distributions are unchanged since the index was written, the plugins
        come from the cached entry-point index (:mod:`ocisign.metadata`) without scanning every
        installed distribution; otherwise pluggy's ``load_setuptools_entrypoints`` loads them, and
        with ``store_index`` (commands that write anyway: never ``list``/``verify``, which write
        nothing) the index is rebuilt.
        """
        from ocisign import metadata

        key = metadata.fingerprint()
        records = metadata.cached_entry_points(ENTRY_POINT_GROUP, key)
        if records is not None:
            for name, value, dist_name, dist_version in records:
                if self.get_plugin(name) or self.is_blocked(name):
                    continue
                plugin = _load_entry_point(name, value, dist_name)
                self.register(plugin, name=name)
                self._ep_dists[name] = (dist_name, dist_version)
            return
        try:
            self.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except PluginError:
            raise
        except Exception as exc:
            self._raise_entry_point_failure(exc)
        for plugin, dist in self.list_plugin_distributions():
            plugin_name = self.get_name(plugin)
            if plugin_name is not None:
                self._ep_dists[plugin_name] = (str(dist.metadata["Name"]), str(dist.version))
        if store_index:
            metadata.store_entry_points(ENTRY_POINT_GROUP, key, metadata.scan_entry_points(ENTRY_POINT_GROUP))

    def _raise_entry_point_failure(self, exc: Exception) -> None:
        """Name the entry point that made ``load_setuptools_entrypoints`` fail (it does not say)."""
        from ocisign.metadata import scan_entry_points

        for name, value, dist_name, _ in scan_entry_points(ENTRY_POINT_GROUP):
            if self.get_plugin(name) or self.is_blocked(name):
                continue
            _load_entry_point(name, value, dist_name)  # raises PluginError for the failing one
        raise PluginError(f"loading the {ENTRY_POINT_GROUP!r} entry-point plugins failed: {exc}") from exc

    def load_module(self, spec: str) -> None:
        """Register a plugin module by import name (``-p MODULE``)."""
        if self.get_plugin(spec) or self.is_blocked(spec):
            return
        if "/" in spec or "\\" in spec or spec.endswith(".py"):
            stem = Path(spec).stem
            raise UsageError(
                f"-p takes a module name, not a path: {spec!r}; put the file's directory on PYTHONPATH "
                f"(or install it) and use '-p {stem}'"
            )
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

        self.add_hookcall_monitoring(before, after)
        self._trace_write = out

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register and drop cached registration results."""
        self._cache.clear()
        try:
            return super().register(plugin, name)
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name or plugin!r} is invalid: {exc}") from exc

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        """Unregister and drop cached registration results."""
        self._cache.clear()
        return super().unregister(plugin, name)

    # --- registration hooks -----------------------------------------------------------------
    def _registrations(self, hook_name: str, kind: str, key: Callable[[Any], str],
                       **kwargs: Any) -> dict[str, Any]:
        cache_key = f"{hook_name}{sorted(kwargs.items())}" if kwargs else hook_name
        if cache_key in self._cache:
            return self._cache[cache_key]  # type: ignore[no-any-return]
        caller: pluggy.HookCaller = getattr(self.hook, hook_name)
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        trace = self._trace_write
        for impl in caller.get_hookimpls():  # registration order
            try:
                args = {k: v for k, v in kwargs.items() if k in impl.argnames}
                records = list(impl.function(**args) or ())  # type: ignore[call-overload]
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

    def open_layout(self, path: str | Path, *, layout_type: str | None = None, create: bool = False) -> Target:
        """Open a local layout, choosing the handler by ``layout_type`` or detection.

        With ``create``, a missing path (or empty directory) becomes a new layout: of
        ``layout_type``, else ``oci-archive`` for a ``.tar`` name, else ``oci``.
        """
        handlers = self.layout_handlers()
        p = Path(path)
        if layout_type and layout_type not in handlers:
            raise UsageError(f"unknown layout type {layout_type!r}; choose one of: {', '.join(sorted(handlers))}")
        if create and (not p.exists() or (p.is_dir() and not any(p.iterdir()))):
            name = layout_type or ("oci-archive" if p.suffix == ".tar" and not p.is_dir() else "oci")
            handler = handlers.get(name)
            if handler is None or handler.create is None:
                raise UsageError(f"layout type {name!r} cannot create new layouts")
            return handler.create(p)
        if layout_type:
            return handlers[layout_type].open(p)
        if not p.exists():
            raise LayoutError(f"{path}: no such OCI layout (directory or tar)")
        matches = [h for h in handlers.values() if h.detect(p)]
        if not matches:
            known = ", ".join(sorted(handlers))
            raise LayoutError(f"{path}: not an OCI image layout (no handler among {known} claims it)")
        if len(matches) > 1:
            names = ", ".join(h.name for h in matches)
            raise LayoutError(f"{path}: ambiguous layout type ({names}); choose one with --layout-type")
        return matches[0].open(p)

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
        caller: pluggy.HookCaller = getattr(self.hook, hook_name)
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
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm
