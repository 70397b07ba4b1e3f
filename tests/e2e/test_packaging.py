"""Packaging traps: src/ocisign + hooks/ + plugins/ map to one ``ocisign`` package, every room is listed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _listed_packages() -> set[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(data["tool"]["setuptools"]["packages"])


def test_every_room_is_a_listed_package() -> None:
    found = {"ocisign", "ocisign.hooks", "ocisign.plugins"}
    for init in (REPO / "src" / "ocisign").rglob("__init__.py"):
        rel = init.parent.relative_to(REPO / "src")
        found.add(".".join(rel.parts))
    assert _listed_packages() == found


def test_hooks_and_plugins_stay_flat() -> None:
    for folder in ("hooks", "plugins"):
        subdirs = [p for p in (REPO / folder).iterdir() if p.is_dir() and p.name != "__pycache__"]
        assert subdirs == [], f"{folder}/ must stay flat (one module per hook or plugin): {subdirs}"
        assert (REPO / folder / "__init__.py").is_file()
    assert not (REPO / "src" / "ocisign" / "hooks").exists(), "src/ocisign/hooks would shadow hooks/"
    assert not (REPO / "src" / "ocisign" / "plugins").exists(), "src/ocisign/plugins would shadow plugins/"


def test_no_top_level_ocisign_dir() -> None:
    assert not (REPO / "ocisign").exists()


@pytest.mark.slow
def test_wheel_contents(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr[-300:]}")
    wheel = next(tmp_path.glob("ocisign-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"ocisign"}
    assert "ocisign/py.typed" in names
    assert "ocisign/plugins/oci_dir.py" in names
    assert "ocisign/cli/app.py" in names
    assert "ocisign/hooks/__init__.py" in names
    assert "ocisign/oci/model.py" in names
