"""The manager calls the built-in stand-ins without pluggy: same order, same results as pluggy.

:class:`ocisign.manager.OcisignPluginManager` dispatches hooks itself while only built-in
stand-ins are registered, and creates the pluggy manager when something needs it. These tests run
every hook both ways, with the real built-ins and with many stand-ins of mixed
``tryfirst``/``trylast`` options registered in random orders, and compare the call order and
the results with pluggy's.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

import pluggy
import pytest
from ocisign.plugins import BUILTIN_PLUGINS

from ocisign import hookspecs
from ocisign.errors import PluginError
from ocisign.lazy_plugins import BuiltinStandIn, hookimpl_with
from ocisign.manager import FIRSTRESULT_HOOKS, OcisignPluginManager, get_plugin_manager

#: every hook with the keyword arguments the manager passes
CALLS: dict[str, dict[str, Any]] = {
    "ocisign_layout_handlers": {},
    "ocisign_signers": {"config_dir": "/cfg"},
    "ocisign_envelope_formats": {},
    "ocisign_transports": {},
    "ocisign_registry_credentials": {"host": "r.example", "config_dir": "/cfg"},
    "ocisign_trust_store": {"store_type": "ca", "name": "n", "config_dir": "/cfg"},
    "ocisign_verification_plugin": {"name": "p", "config_dir": "/cfg"},
    "ocisign_evaluate_policy": {"context": "ctx"},
    "ocisign_signature_created": {"target": "t", "subject": "s", "signature": "g"},
    "ocisign_push_finished": {"source": "a", "destination": "b", "pushed": ()},
}


def spec_opts() -> dict[str, dict[str, Any]]:
    pm = pluggy.PluginManager("ocisign")
    pm.add_hookspecs(hookspecs)
    return {name: dict(getattr(pm.hook, name).spec.opts) for name in vars(pm.hook) if name.startswith("ocisign_")}


def test_calls_cover_every_hook_and_the_firstresult_table_matches_the_specs() -> None:
    opts = spec_opts()
    assert set(CALLS) == set(opts)
    assert {name for name, o in opts.items() if o.get("firstresult")} == FIRSTRESULT_HOOKS


def _fake_module(short: str, calls: list[str], answer: Callable[[str, str], Any]) -> types.SimpleNamespace:
    """A module for stand-in ``short``: each hook records its call and answers ``answer(short, hook)``."""
    def make(hook: str) -> Callable[..., Any]:
        def impl(*args: Any) -> Any:
            calls.append(f"{short}.{hook}")
            return answer(short, hook)
        return impl

    return types.SimpleNamespace(**{hook: make(hook) for hook in CALLS})


def _both(plugins: list[tuple[str, BuiltinStandIn]]) -> tuple[OcisignPluginManager, OcisignPluginManager]:
    """A manager with ``plugins`` called directly, and one with the same plugins in pluggy."""
    direct, real = OcisignPluginManager(), OcisignPluginManager()
    real.pluggy_manager()
    for name, plugin in plugins:
        direct._add_direct(plugin, name)
        real.register(plugin, name=name)
    assert not direct.uses_pluggy and real.uses_pluggy
    return direct, real


def _answers(seed: int) -> Callable[[str, str], Any]:
    rng = random.Random(seed)
    table: dict[tuple[str, str], Any] = {}

    def answer(short: str, hook: str) -> Any:
        if (short, hook) not in table:
            table[short, hook] = rng.choice([None, None, f"{short}:{hook}"])
        return table[short, hook]

    return answer


def _run_both(plugins: list[tuple[str, BuiltinStandIn]], answer: Callable[[str, str], Any]) -> None:
    direct, real = _both(plugins)
    for hook, kwargs in CALLS.items():
        got: dict[str, tuple[Any, list[str]]] = {}
        for label, pm in (("direct", direct), ("pluggy", real)):
            calls: list[str] = []
            for name, plugin in plugins:
                plugin._module = _fake_module(name, calls, answer)  # type: ignore[assignment]
            got[label] = (pm._call(hook, **kwargs), calls)
        assert got["direct"] == got["pluggy"], hook
        order = [i.plugin_name for i in direct._hookimpls(hook)]
        assert order == [i.plugin_name for i in real._hookimpls(hook)], hook
    assert not direct.uses_pluggy  # nothing above needed pluggy


@pytest.mark.parametrize("seed", range(3))
def test_the_built_ins_are_called_in_pluggys_order_with_pluggys_results(seed: int) -> None:
    from ocisign.lazy_plugins import stand_in

    plugins = [(short, stand_in(short)) for short in BUILTIN_PLUGINS]
    assert all(isinstance(p, BuiltinStandIn) for _, p in plugins)
    _run_both(plugins, _answers(seed))  # type: ignore[arg-type]


def _stand_in_class(index: int, hooks: dict[str, str]) -> type[BuiltinStandIn]:
    """A stand-in implementing ``hooks`` (hook -> "", "tryfirst" or "trylast")."""
    namespace: dict[str, Any] = {"short": f"fake{index}"}
    for hook, option in hooks.items():
        argnames = list(CALLS[hook])

        def forward(self: BuiltinStandIn, *args: Any, _hook: str = hook) -> Any:
            return getattr(self.module, _hook)(*args)

        # the stand-ins' shape: self, then the hook's arguments, no defaults
        src = f"def {hook}(self, {', '.join(argnames)}):\n    return _fwd(self, {', '.join(argnames)})\n"
        scope: dict[str, Any] = {"_fwd": forward}
        exec(src, scope)  # a method with the hook's exact argument names
        mark = hookimpl_with(tryfirst=option == "tryfirst", trylast=option == "trylast")
        namespace[hook] = mark(scope[hook])
    return type(f"Fake{index}", (BuiltinStandIn,), namespace)


@pytest.mark.parametrize("seed", range(8))
def test_mixed_tryfirst_trylast_stand_ins_are_called_in_pluggys_order(seed: int) -> None:
    rng = random.Random(seed)
    plugins = []
    for i in range(rng.randint(3, 9)):
        hooks = {hook: rng.choice(["", "", "tryfirst", "trylast"]) for hook in CALLS if rng.random() < 0.7}
        plugins.append((f"fake{i}", _stand_in_class(i, hooks)()))
    _run_both(plugins, _answers(seed))


def test_blocking_registrations_and_exceptions_match_pluggy() -> None:
    from ocisign.lazy_plugins import stand_in

    direct, real = _both([(short, stand_in(short)) for short in BUILTIN_PLUGINS])  # type: ignore[misc]
    for pm in (direct, real):
        pm.set_blocked("oci_archive")
        assert pm.is_blocked("oci_archive") and pm.get_plugin("oci_archive") is None
        assert pm.get_plugin("oci_dir") is not None and pm.has_plugin("oci_dir")
        assert pm.get_name(pm.get_plugin("oci_dir")) == "oci_dir"
    assert [i.plugin_name for i in direct._hookimpls("ocisign_layout_handlers")] == ["oci_dir"]
    assert direct._hookimpls("ocisign_layout_handlers")[0].plugin_name == \
        real._hookimpls("ocisign_layout_handlers")[0].plugin_name
    assert sorted(direct.layout_handlers()) == sorted(real.layout_handlers()) == ["oci"]
    assert not direct.uses_pluggy
    # an error of a built-in is not wrapped (it is ocisign's own: an internal error), in both modes
    for pm in (direct, real):
        boom = pm.get_plugin("trust_policy")
        assert boom is not None
        boom._module = types.SimpleNamespace(ocisign_evaluate_policy=lambda context: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            pm.evaluate_policy(context=None)  # type: ignore[arg-type]
        failing = pm.get_plugin("oci_dir")
        assert failing is not None
        failing._module = types.SimpleNamespace(ocisign_layout_handlers=lambda: 1 / 0)
        pm._cache.clear()
        with pytest.raises(PluginError, match="plugin 'oci_dir' failed in ocisign_layout_handlers"):
            pm.layout_handlers()


def _uses_pluggy(pm: OcisignPluginManager) -> bool:
    """``pm.uses_pluggy`` read again (mypy keeps an attribute narrowed across the calls that change it)."""
    return pm.uses_pluggy


def test_the_pluggy_manager_is_made_on_demand_with_the_same_plugins() -> None:
    pm = get_plugin_manager(load_entrypoints=False, disabled=["oci_archive"])
    assert not pm.uses_pluggy
    before = pm.get_plugin("oci_dir")
    assert pm.hook.ocisign_layout_handlers.get_hookimpls()  # pluggy's API: the pluggy manager now
    assert _uses_pluggy(pm) and pm.get_plugin("oci_dir") is before and pm.is_blocked("oci_archive")
    assert [n for n, p in pm.list_name_plugin() if p is not None] == [s for s in BUILTIN_PLUGINS if s != "oci_archive"]
    assert sorted(pm.layout_handlers()) == ["oci"]


def test_trace_plugin_modules_and_entry_points_use_pluggy_and_a_plain_run_does_not(tmp_path: Any) -> None:
    assert get_plugin_manager(load_entrypoints=False, trace=True).uses_pluggy
    assert get_plugin_manager(load_entrypoints=False, modules=["ocisign.plugins.oci_dir"]).uses_pluggy
    code = textwrap.dedent("""
        import sys
        from ocisign.manager import get_plugin_manager
        pm = get_plugin_manager(load_entrypoints=False)
        pm.layout_handlers()  # the layout built-ins mark their hooks with ocisign.lazy_plugins.hookimpl
        print(pm.uses_pluggy, "pluggy" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.split() == ["False", "False"]
