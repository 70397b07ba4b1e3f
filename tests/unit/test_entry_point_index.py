"""The cached entry-point index (issue 12 start-up, issue 9 item 5): no per-run scan when nothing
changed, and a plugin installed, removed or broken since the last run is seen on the next run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _dist(site: Path, name: str, module_source: str) -> Path:
    dist = site / f"ocisign_{name}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ocisign-{name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[ocisign]\n{name} = ocisign_{name}_mod\n")
    (site / f"ocisign_{name}_mod.py").write_text(module_source)
    return dist


GOOD = "import ocisign\n\n@ocisign.hookimpl\ndef ocisign_registry_credentials(host, config_dir):\n    return None\n"


PROBE = """
import sys
from ocisign.cli.app import main
rc = main(sys.argv[1:])
print("SCANNED" if "importlib.metadata" in sys.modules else "NO SCAN")
raise SystemExit(rc)
"""


def _env(tmp_path: Path, cache: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "OCISIGN_CONFIG_DIR": str(tmp_path / "cfg"),
            "OCISIGN_CACHE_DIR": str(cache), "OCISIGN_PROJECT_CONFIG": "none"}


def _plugin_list(tmp_path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """``ocisign plugin list`` (read-only: never writes the index); its last line says whether the
    distributions were scanned or the index was used."""
    return subprocess.run([sys.executable, "-c", PROBE, "plugin", "list"], capture_output=True, text=True,
                          env=_env(tmp_path, cache), timeout=60)


def _refresh(tmp_path: Path, cache: Path) -> None:
    """What a writing command (sign, cp) does on a scan: rebuild the index."""
    code = "from ocisign.manager import get_plugin_manager; get_plugin_manager(store_index=True)"
    subprocess.run([sys.executable, "-c", code], env=_env(tmp_path, cache), check=True, timeout=60)


def test_index_is_written_by_writers_reused_and_follows_installs_and_removals(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    index = cache / "entry-points-v1.json"
    first = _plugin_list(tmp_path, cache)
    assert first.returncode == 0 and "ocisign-good" not in first.stdout
    # no distribution declares the group: the quick look answers (no scan); read-only: no index written
    assert first.stdout.endswith("NO SCAN\n") and not cache.exists()
    _refresh(tmp_path, cache)
    assert index.is_file()
    assert _plugin_list(tmp_path, cache).stdout.endswith("NO SCAN\n")

    good = _dist(site, "good", GOOD)  # installed since the index was written
    second = _plugin_list(tmp_path, cache)
    assert second.returncode == 0, second.stderr
    assert "good" in second.stdout and "ocisign-good" in second.stdout and second.stdout.endswith("SCANNED\n")
    _refresh(tmp_path, cache)
    third = _plugin_list(tmp_path, cache)  # nothing changed since: served from the index
    assert third.stdout.endswith("NO SCAN\n")
    assert third.stdout.replace("NO SCAN", "SCANNED") == second.stdout

    shutil.rmtree(good)  # uninstalled
    fourth = _plugin_list(tmp_path, cache)
    assert fourth.returncode == 0 and "ocisign-good" not in fourth.stdout
    assert fourth.stdout.endswith("NO SCAN\n")  # the index is stale, and no distribution declares the group


def test_the_quick_look_scans_only_when_a_distribution_may_declare_the_group(tmp_path: Path) -> None:
    """Without an index, importlib.metadata is imported only when an entry_points.txt has the
    ``[ocisign]`` section; other groups, other lines and a missing file are not enough."""
    site, cache = tmp_path / "site", tmp_path / "cache"
    other = site / "other-1.0.dist-info"
    other.mkdir(parents=True)
    (other / "entry_points.txt").write_text("[console_scripts]\nocisign-like = other:main  # [ocisign]\n")
    (site / "bare-1.0.dist-info").mkdir()  # no entry_points.txt at all
    proc = _plugin_list(tmp_path, cache)
    assert proc.returncode == 0 and proc.stdout.endswith("NO SCAN\n")
    _dist(site, "good", GOOD)
    proc = _plugin_list(tmp_path, cache)
    assert proc.returncode == 0 and "ocisign-good" in proc.stdout and proc.stdout.endswith("SCANNED\n")


def test_a_broken_plugin_installed_after_the_index_was_written_fails_loudly(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    _refresh(tmp_path, cache)
    _dist(site, "broken", "raise ImportError('missing dependency xyz')\n")
    proc = _plugin_list(tmp_path, cache)
    assert proc.returncode == 3, proc.stderr
    assert "'broken'" in proc.stderr and "xyz" in proc.stderr and "Traceback" not in proc.stderr


def test_a_stale_index_naming_a_module_that_no_longer_imports_fails_loudly(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    _dist(site, "good", GOOD)
    _refresh(tmp_path, cache)
    (site / "ocisign_good_mod.py").write_text("raise ImportError('now broken')\n")  # same dist-info, broken code
    proc = _plugin_list(tmp_path, cache)
    assert proc.returncode == 3 and "'good'" in proc.stderr and "now broken" in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_cache_dir_only_costs_a_scan(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    cache.mkdir()
    cache.chmod(0o500)
    try:
        _dist(site, "good", GOOD)
        _refresh(tmp_path, cache)
        proc = _plugin_list(tmp_path, cache)
        assert proc.returncode == 0 and "ocisign-good" in proc.stdout
        assert list(cache.iterdir()) == []
    finally:
        cache.chmod(0o700)


def test_a_cache_path_that_is_a_file_or_garbage_is_ignored(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "good", GOOD)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    _refresh(tmp_path, blocker)
    proc = _plugin_list(tmp_path, blocker)
    assert proc.returncode == 0 and "ocisign-good" in proc.stdout
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "entry-points-v1.json").write_text("{not json")
    proc = _plugin_list(tmp_path, cache)
    assert proc.returncode == 0 and "ocisign-good" in proc.stdout and proc.stdout.endswith("SCANNED\n")
    _refresh(tmp_path, cache)
    assert (cache / "entry-points-v1.json").read_text().startswith("{")  # rewritten


def test_the_version_is_written_once_in_pyproject_and_read_from_the_metadata() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    import ocisign
    from ocisign.metadata import own_version

    repo = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    assert ocisign.__version__ == own_version() == declared
    assert "__version__ =" not in (repo / "src" / "ocisign" / "__init__.py").read_text()
    proc = subprocess.run([sys.executable, "-m", "ocisign", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == f"ocisign {declared}\n"
    import pluggy

    assert isinstance(ocisign.hookimpl, pluggy.HookimplMarker) and ocisign.hookimpl.project_name == "ocisign"
    with pytest.raises(AttributeError):
        ocisign.no_such_name  # noqa: B018


def test_the_index_key_does_not_depend_on_the_working_directory(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sys as _sys

    from ocisign.metadata import fingerprint

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(_sys, "path", [str(tmp_path / "a"), *_sys.path[1:]])
    key_a = fingerprint()
    monkeypatch.setattr(_sys, "path", [str(tmp_path / "b"), *_sys.path[1:]])
    assert fingerprint() == key_a
    _dist(tmp_path / "b", "here", GOOD)  # a distribution in the working directory does count
    assert fingerprint() != key_a


def test_an_unchanged_index_is_checked_without_listing_any_directory(tmp_path: Path) -> None:
    """An unchanged index is checked without listing a directory (sys.path stamps, dist-info mtimes);
    an in-place edit of an entry_points.txt is still seen, and a file created beside the
    distributions only costs a listing of that directory."""
    site, cache = tmp_path / "site", tmp_path / "cache"
    good = _dist(site, "good", GOOD)
    _refresh(tmp_path, cache)  # scans; importing the plugin writes site/__pycache__ after the stamps were taken
    _refresh(tmp_path, cache)  # valid by the full key: stored again with today's stamps
    probe = ("import os, sys\n"
             "def no_listing(*a, **k):\n    raise AssertionError('listed a directory')\n"
             "os.scandir = os.listdir = no_listing\n"
             "from ocisign.metadata import cached_entry_points\n"
             "print(cached_entry_points('ocisign'))\n")
    env = _env(tmp_path, cache)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "'good', 'ocisign_good_mod', 'ocisign-good', '1.0'" in out.stdout
    ep = good / "entry_points.txt"
    stat = ep.stat()
    os.utime(ep, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # edited in place
    listing_allowed = probe.replace("os.scandir = os.listdir = no_listing\n", "")
    out = subprocess.run([sys.executable, "-c", listing_allowed], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "None"  # the key changed: a scan is due
    _refresh(tmp_path, cache)
    _refresh(tmp_path, cache)
    (site / "unrelated.txt").write_text("x")  # the directory changed, its distributions did not
    assert _plugin_list(tmp_path, cache).stdout.endswith("NO SCAN\n")  # the full fingerprint still matches


def test_a_fingerprint_reusing_the_index_equals_the_full_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys as _sys

    from ocisign import metadata

    work, site = tmp_path / "cwd", tmp_path / "site"
    work.mkdir()
    _dist(site, "good", GOOD)
    monkeypatch.setattr(_sys, "path", [str(work), str(site), str(tmp_path / "missing"), *_sys.path[1:]])
    doc = {"key": metadata.fingerprint(), "stamps": metadata.path_stamps()}
    assert metadata.fingerprint(reuse=doc) == doc["key"]

    def touched(directory: Path) -> None:  # a later change (mtimes can be coarser than a test is fast)
        st = directory.stat()
        os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    (work / "notes.txt").write_text("x")
    touched(work)
    assert metadata.fingerprint(reuse=doc) == doc["key"]  # listed again: still no distribution there
    _dist(work, "here", GOOD)
    touched(work)
    assert metadata.fingerprint(reuse=doc) == metadata.fingerprint() != doc["key"]
    shutil.rmtree(site / "ocisign_good-1.0.dist-info")
    touched(site)
    assert metadata.fingerprint(reuse=doc) == metadata.fingerprint()
    assert metadata.fingerprint(reuse={"key": "garbage", "stamps": [1]}) == metadata.fingerprint()
