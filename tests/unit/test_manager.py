"""The plugin host: hookspecs, typed manager, loading switches and conflict detection."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from ocisign.plugins import BUILTIN_PLUGINS
from ocisign.plugins.oci_dir import DirLayout

import ocisign
from ocisign import hookspecs
from ocisign.errors import LayoutError, PluginError, UsageError
from ocisign.manager import ESSENTIAL_PLUGINS, OcisignPluginManager, get_plugin_manager
from ocisign.types import LayoutHandler, PolicyResult


def spec_names() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("ocisign_")]


def test_every_hookspec_is_prefixed_and_documented_with_an_example() -> None:
    names = spec_names()
    assert len(names) >= 9
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "**Example**" in doc and "@ocisign.hookimpl" in doc, name


def test_builtins_registered_under_short_names(pm: OcisignPluginManager) -> None:
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(BUILTIN_PLUGINS) <= names
    info = {i.name: i for i in pm.plugin_info()}
    assert info["oci_dir"].distribution == "ocisign"
    assert "ocisign_layout_handlers" in info["oci_dir"].hooks


def test_duplicate_registration_names_both_plugins(pm: OcisignPluginManager) -> None:
    class Shadow:
        @ocisign.hookimpl
        def ocisign_layout_handlers(self) -> Iterator[LayoutHandler]:
            yield LayoutHandler(name="oci", detect=lambda p: False, open=DirLayout)

    pm.register(Shadow(), name="shadow")
    with pytest.raises(PluginError, match="registered twice: by plugins oci_dir, shadow"):
        pm.layout_handlers()


def test_ambiguous_detection_is_an_error(pm: OcisignPluginManager, make_layout) -> None:  # type: ignore[no-untyped-def]
    class Greedy:
        @ocisign.hookimpl
        def ocisign_layout_handlers(self) -> Iterator[LayoutHandler]:
            yield LayoutHandler(name="greedy", detect=lambda p: True, open=DirLayout)

    pm.register(Greedy(), name="greedy")
    with pytest.raises(LayoutError, match="ambiguous layout type"):
        pm.open_layout(make_layout())
    assert isinstance(pm.open_layout(make_layout(), layout_type="oci"), DirLayout)
    with pytest.raises(UsageError, match="choose one of"):
        pm.open_layout(make_layout(), layout_type="nope")


def test_blocked_builtin_is_not_loaded() -> None:
    pm = get_plugin_manager(load_entrypoints=False, disabled=["oci_dir"])
    assert "oci" not in pm.layout_handlers()


def test_unknown_hook_in_plugin_module_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "badplugin.py").write_text(textwrap.dedent("""
        import ocisign
        @ocisign.hookimpl
        def ocisign_no_such_hook():
            return None
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="ocisign_no_such_hook"):
        get_plugin_manager(load_entrypoints=False, modules=["badplugin"])


def test_plugin_module_that_fails_to_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "brokenplugin.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"brokenplugin.*boom"):
        get_plugin_manager(load_entrypoints=False, modules=["brokenplugin"])


def test_policy_results_from_every_plugin(pm: OcisignPluginManager) -> None:
    class Veto:
        @ocisign.hookimpl
        def ocisign_evaluate_policy(self, context: object) -> PolicyResult:
            return PolicyResult(source="veto", outcome="fail", reason="no")

    pm.register(Veto(), name="veto")
    pm.unregister(name="trust_policy")  # the built-in needs a full context; this test is about combining
    results = pm.evaluate_policy(context=None)  # type: ignore[arg-type]
    assert any(r.source == "veto" and r.outcome == "fail" for r in results)


def test_trace_switch_writes_hook_calls(make_layout) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    pm = get_plugin_manager(load_entrypoints=False, trace=False)
    pm.enable_trace(lines.append)
    pm.registry_credentials("example.com")
    pm.layout_handlers()
    assert any("ocisign_registry_credentials" in line for line in lines)
    assert any("ocisign_layout_handlers from oci_dir" in line for line in lines)


def test_cli_plugin_list_and_disable(run_cli) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("plugin", "list")
    assert res.rc == 0 and "oci_dir" in res.out and "layout_handlers" in res.out
    res = run_cli("-p", "no:oci_dir", "plugin", "list", "-o", "json")
    assert res.rc == 0 and '"oci_dir"' not in res.out


def test_entry_point_plugin_failure_names_it(tmp_path: Path) -> None:
    """A distribution whose ocisign entry point fails to import stops the CLI with exit 3."""
    dist = tmp_path / "site" / "ocisign_broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ocisign-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ocisign]\nbroken = ocisign_broken_mod\n")
    (tmp_path / "site" / "ocisign_broken_mod.py").write_text("raise ImportError('missing dependency xyz')\n")
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "OCISIGN_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "ocisign", "plugin", "list"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 3, proc.stderr
    assert "broken" in proc.stderr and "xyz" in proc.stderr
    assert "Traceback" not in proc.stderr
    env["OCISIGN_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    proc = subprocess.run([sys.executable, "-m", "ocisign", "plugin", "list"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0 and "broken" not in proc.stdout


@pytest.mark.parametrize("name", sorted(ESSENTIAL_PLUGINS))
def test_essential_builtins_cannot_be_blocked(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 item 5: as pytest's essential plugins, a usage error names the plugin and why."""
    assert set(ESSENTIAL_PLUGINS) == {"trust_policy", "jws", "cose"}
    with pytest.raises(UsageError, match=f"'{name}' can't be disabled"):
        get_plugin_manager(load_entrypoints=False, disabled=[name])
    monkeypatch.setenv("OCISIGN_DISABLED_PLUGINS", f"oci_archive,{name}")
    with pytest.raises(UsageError, match=f"'{name}' can't be disabled"):
        get_plugin_manager(load_entrypoints=False)
    monkeypatch.setenv("OCISIGN_DISABLED_PLUGINS", "truststore_files")  # not essential: absence fails closed
    assert get_plugin_manager(load_entrypoints=False).get_plugin("truststore_files") is None


def test_evaluate_policy_cannot_be_wrapped(pm: OcisignPluginManager) -> None:
    """A wrapper could rewrite the built-in's result; policy plugins only return their own."""
    class Rewriter:
        @ocisign.hookimpl(wrapper=True)
        def ocisign_evaluate_policy(self, context: object) -> Generator[None, object, list[PolicyResult]]:
            yield
            return [PolicyResult(source="trust_policy", outcome="pass", reason="rewritten")]

    with pytest.raises(PluginError, match="can't be a wrapper"):
        pm.register(Rewriter(), name="rewriter")
