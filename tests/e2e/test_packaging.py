"""Packaging traps: flat hooks/ and plugins/, no shadowing, the wheel holds exactly the two packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_hooks_and_plugins_stay_flat() -> None:
    for folder in ("hooks", "plugins"):
        subdirs = [p for p in (REPO / folder).iterdir() if p.is_dir() and p.name != "__pycache__"]
        assert subdirs == [], f"{folder}/ must stay flat (setuptools packages list): {subdirs}"
    assert not (REPO / "hooks" / "plugins").exists(), "hooks/plugins would shadow ocisign.plugins"


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
    assert "ocisign/cli.py" in names
