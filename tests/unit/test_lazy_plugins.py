"""The built-in plugins are registered as stand-ins (:mod:`ocisign.lazy_plugins`) that import their
module on first use: each stand-in must offer the same hooks, argument names and options, in the
same order, as its module, and a command must import only the built-ins it calls."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pluggy
import pytest
from ocisign.plugins import BUILTIN_PLUGINS

from ocisign import hookspecs
from ocisign.lazy_plugins import BuiltinStandIn, stand_in
from ocisign.manager import BUILTIN_PREFIX, get_plugin_manager


def _impls(plugin: object) -> dict[str, tuple[tuple[str, ...], bool, bool, bool, bool]]:
    pm = pluggy.PluginManager("ocisign")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="p")
    return {caller.name: (impl.argnames, impl.tryfirst, impl.trylast, impl.wrapper, impl.hookwrapper)
            for caller in pm.get_hookcallers(plugin) or () for impl in caller.get_hookimpls()}


@pytest.mark.parametrize("short", BUILTIN_PLUGINS)
def test_each_stand_in_has_its_modules_hooks_argnames_and_options(short: str) -> None:
    proxy = stand_in(short)
    assert isinstance(proxy, BuiltinStandIn), f"built-in {short!r} has no stand-in in ocisign.lazy_plugins"
    module = importlib.import_module(BUILTIN_PREFIX + short)
    assert _impls(proxy) == _impls(module)
    assert proxy.__name__ == module.__name__
    assert proxy.module is module


def test_hook_order_is_the_same_as_with_the_modules() -> None:
    lazy = get_plugin_manager(load_entrypoints=False)
    eager = pluggy.PluginManager("ocisign")
    eager.add_hookspecs(hookspecs)
    for short in BUILTIN_PLUGINS:
        eager.register(importlib.import_module(BUILTIN_PREFIX + short), name=short)
    for name in ("ocisign_layout_handlers", "ocisign_signers", "ocisign_envelope_formats", "ocisign_trust_store",
                 "ocisign_registry_credentials", "ocisign_evaluate_policy", "ocisign_transports"):
        order = [i.plugin_name for i in getattr(lazy.hook, name).get_hookimpls()]
        assert order == [i.plugin_name for i in getattr(eager.hook, name).get_hookimpls()], name
        assert order  # every one of these hooks has a built-in implementation


def test_stand_ins_return_what_the_modules_return() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    assert sorted(pm.layout_handlers()) == ["oci", "oci-archive"]
    assert sorted(f.name for f in pm.envelope_formats().values()) == ["cose", "jws"]
    assert "registry" in pm.transports()
    assert pm.trust_store("ca", "no-such-store", "/nonexistent") is None


def test_a_command_imports_only_the_built_ins_it_calls() -> None:
    code = textwrap.dedent("""
        import json, sys
        from ocisign.manager import get_plugin_manager
        pm = get_plugin_manager(load_entrypoints=False)
        before = sorted(m for m in sys.modules if m.startswith("ocisign.plugins."))
        pm.layout_handlers()
        after = sorted(m for m in sys.modules if m.startswith("ocisign.plugins."))
        print(json.dumps([before, after]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    import json

    before, after = json.loads(proc.stdout)
    assert before == []
    assert after == ["ocisign.plugins.oci_dir"]  # the tar handler is the stand-in's until a file is looked into


def test_the_tar_stand_ins_handler_is_the_modules(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The oci_archive stand-in makes its handler without importing the module (see lazy_plugins)."""
    from ocisign.plugins import oci_archive

    from ocisign.testing.sample_image import write_image_layout

    (proxy_handler,) = stand_in("oci_archive").ocisign_layout_handlers()  # type: ignore[attr-defined]
    (handler,) = oci_archive.ocisign_layout_handlers()
    assert (proxy_handler.name, proxy_handler.description) == (handler.name, handler.description)
    write_image_layout(tmp_path / "dir")
    import tarfile

    with tarfile.open(tmp_path / "img.tar", "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(tmp_path / "dir" / name, arcname=name)
    (tmp_path / "text").write_text("not a tar")
    (tmp_path / "fifo.tar").symlink_to(tmp_path / "dir")
    for path in ("dir", "img.tar", "text", "missing", "fifo.tar"):
        # the built-in handlers take str as well as the contract's Path
        assert proxy_handler.detect(str(tmp_path / path)) == handler.detect(tmp_path / path), path
    assert type(proxy_handler.open(str(tmp_path / "img.tar"))) is oci_archive.ArchiveLayout
    from ocisign.manager import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    assert pm.layout_type_of(proxy_handler.open(str(tmp_path / "img.tar"))) == "oci-archive"
    assert pm.layout_type_of(pm.open_layout(tmp_path / "dir")) == "oci" and pm.layout_type_of(object()) is None
    created = proxy_handler.create(str(tmp_path / "new.tar"))
    assert type(created) is oci_archive.ArchiveLayout and (tmp_path / "new.tar").is_file()
