"""Per-invocation CLI state: the plugin manager (built lazily), the config dir, output helpers,
and opening the artifact a command names (local layout or registry)."""

from __future__ import annotations

import _thread
import sys

from ocisign.config.configdir import ConfigDir
from ocisign.errors import BadReferenceError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any, TypeVar

    from ocisign.manager import OcisignPluginManager
    from ocisign.types import RemoteOptions, Target

    T = TypeVar("T")

#: commands that may refresh the cached entry-point index (they write artifacts anyway; read-only
#: commands such as list, inspect and verify write nothing, not even a cache)
INDEX_WRITERS = frozenset({"sign", "cp"})


class Artifact:
    """A target plus the reference inside it, and how to show it to a person.

    A plain class (every command that opens an artifact makes one; a dataclass would import
    :mod:`dataclasses` and :mod:`inspect`): ``Artifact(target, reference, location, scope, is_layout)``.
    """

    __slots__ = ("is_layout", "location", "reference", "scope", "target")

    target: Target
    #: tag or digest inside the target
    reference: str
    #: ``./hello-world`` or ``localhost:5001/hello-world`` (without tag/digest)
    location: str
    #: policy scope for registry references (``registry/repo``); None for layouts
    scope: str | None
    is_layout: bool

    def __init__(self, target: Target, reference: str, location: str, scope: str | None, is_layout: bool) -> None:
        self.target, self.reference, self.location, self.scope, self.is_layout = (
            target, reference, location, scope, is_layout)

    def __repr__(self) -> str:
        return (f"Artifact(target={self.target!r}, reference={self.reference!r}, location={self.location!r}, "
                f"scope={self.scope!r}, is_layout={self.is_layout!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def display(self, digest: str) -> str:
        """``<location>@<digest>`` as notation prints it."""
        return f"{self.location}@{digest}"


class CliContext:
    """State shared by the command being run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.debug: bool = bool(getattr(args, "debug", False))
        self.verbose: bool = bool(getattr(args, "verbose", False))
        if self.debug or "ocisign.extplugin.runner" in sys.modules:  # notation plugins' stderr under --debug
            from ocisign.extplugin.runner import show_plugin_stderr

            show_plugin_stderr(self.debug)
        from ocisign.config.project import load_project_config

        #: project config ([tool.ocisign] / ocisign.toml): defaults commands may read, see
        #: ProjectConfig.key, .signature_format, .trust_policy, .scope_for(path), .push_target_for(path)
        self.project = load_project_config(getattr(args, "project_config", None))
        self.config_dir = ConfigDir.from_env(getattr(args, "config_dir", None) or self.project.config_dir)
        self._pm: OcisignPluginManager | None = None
        self._closers: list[Any] = []
        self._root_closers = self._closers  # children of fork() get their own list
        #: per-run values shared by every reference of a batch (see :meth:`shared`)
        self._shared: dict[str, Any] = {}
        self._shared_lock = _thread.RLock()  # threading.RLock; a factory may itself use shared()
        #: in a batch: registry targets by repository and transport options, shared by every
        #: reference (one connection pool and one auth token per repository), closed with the run
        self._registry_targets: dict[tuple[Any, ...], Target] | None = None

    def fork(self, args: argparse.Namespace) -> CliContext:
        """A context for one reference of a batch: its own ``args`` and opened targets, the same
        plugin manager, project config, config dir and :meth:`shared` values."""
        with self._shared_lock:
            if self._registry_targets is None:
                self._registry_targets = {}
        import copy

        child = copy.copy(self)
        child.args = args
        child._closers = []
        return child

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """The run's value for ``key``, made by ``factory`` on first use (thread-safe; a factory
        that raises is tried again by the next caller)."""
        with self._shared_lock:
            if key not in self._shared:
                self._shared[key] = factory()
            return self._shared[key]  # type: ignore[no-any-return]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CliContext:
        """Build the context for parsed ``args``."""
        return cls(args)

    @property
    def pm(self) -> OcisignPluginManager:
        """The plugin manager, built on first use (``-p`` modules and ``no:NAME`` blocks applied)."""
        if self._pm is None:
            from ocisign.manager import get_plugin_manager

            specs: list[str] = list(getattr(self.args, "plugin_modules", None) or [])
            specs = [*self.project.plugins, *(f"no:{n}" for n in self.project.disable_plugins), *specs]
            disabled = [s[3:] for s in specs if s.startswith("no:")]
            modules = [s for s in specs if not s.startswith("no:")]
            trace = True if getattr(self.args, "trace_plugins", False) else None
            # only commands that write anyway refresh the cached entry-point index
            store = getattr(self.args, "_command", None) in INDEX_WRITERS
            self._pm = get_plugin_manager(disabled=disabled, modules=modules, trace=trace, store_index=store)
        return self._pm

    def set_pm(self, pm: OcisignPluginManager) -> None:
        """Use an already-built manager (tests, embedding)."""
        self._pm = pm

    # --- output -------------------------------------------------------------------------------
    @staticmethod
    def out(text: str = "") -> None:
        """Print to stdout."""
        print(text)

    @staticmethod
    def warn(text: str) -> None:
        """Print ``Warning: text`` to stderr."""
        print(f"Warning: {text}", file=sys.stderr)

    @staticmethod
    def emit_json(obj: Any) -> None:
        """Print ``obj`` as indented JSON to stdout."""
        import json

        print(json.dumps(obj, indent=2, ensure_ascii=False))

    # --- opening artifacts --------------------------------------------------------------------
    def remote_options(self) -> RemoteOptions:
        """RemoteOptions from common registry flags (see ``cmd_common.add_remote_options``).

        Reads the attributes plain_http, insecure_registry, insecure, ca_file, username,
        password/password_stdin, concurrency, timeout, progress; credentials for hosts without
        ``-u`` come from ``pm.registry_credentials`` (login store, docker config, env vars).
        """
        from ocisign.cli.options import remote_options_from_args

        pm, root = self.pm, self.config_dir.root
        return remote_options_from_args(self.args, credential_lookup=lambda host: pm.registry_credentials(host, root))

    def open_artifact(self, text: str, *, oci_layout: bool, layout_type: str | None = None) -> Artifact:
        """Open the target named by ``text`` (a layout with ``oci_layout``, else a registry)."""
        if oci_layout:
            from ocisign.oci.refs import parse_layout_ref

            lref = parse_layout_ref(text)
            target = self.pm.open_layout(lref.path, layout_type=layout_type)
            self._closers.append(target)
            return Artifact(target, lref.reference, lref.path, None, True)
        from ocisign.oci.refs import looks_like_registry_ref, parse_registry_ref

        if not looks_like_registry_ref(text):
            raise UsageError(
                f"{text!r} is not a registry reference (REGISTRY/REPO:TAG); for a local layout add --oci-layout"
            )
        rref = parse_registry_ref(text)
        if rref.tag is None and rref.digest is None:  # notation never assumes "latest"
            raise BadReferenceError(
                f"{text!r}: invalid reference: no tag or digest. "
                "Expecting <registry>/<repo>:<tag> or <registry>/<repo>@<digest>"
            )
        options = self.remote_options()
        if self._registry_targets is not None:  # a batch: share the repository's target
            target = self._shared_registry(rref.registry, rref.repository, options)
        else:
            target = self.open_registry(rref.registry, rref.repository, options)
            self._closers.append(target)
        return Artifact(target, rref.reference, rref.scope, rref.scope, False)

    def _shared_registry(self, host: str, repository: str, options: RemoteOptions) -> Target:
        assert self._registry_targets is not None
        key = (host, repository, options.plain_http, options.insecure, options.ca_file, options.username,
               options.password, options.timeout, options.concurrency)
        with self._shared_lock:
            target = self._registry_targets.get(key)
            if target is None:
                target = self._registry_targets[key] = self.open_registry(host, repository, options)
            return target

    def open_registry(self, host: str, repository: str, options: RemoteOptions) -> Target:
        """A registry repository through the ``registry`` transport.

        Hosts listed in ``config.json`` ``insecureRegistries`` (notation's setting) use plain HTTP.
        """
        if not options.plain_http:
            from ocisign.config.files import config_insecure_registries

            if host in config_insecure_registries(self.config_dir):
                import dataclasses

                options = dataclasses.replace(options, plain_http=True, insecure=False, ca_file=None)
        return self.pm.transport("registry").open(host, repository, options)

    def close(self) -> None:
        """Close every target opened through this context."""
        while self._closers:
            self._closers.pop().close()
        if self._registry_targets is not None and self._closers is self._root_closers:
            with self._shared_lock:
                targets, self._registry_targets = list(self._registry_targets.values()), None
            for target in targets:
                target.close()
