"""Start-up, help and plugin listing."""

from __future__ import annotations

import subprocess
import sys


def test_version_and_module_entry(run_cli) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("version")
    assert res.rc == 0 and "0.1.0" in res.out
    proc = subprocess.run([sys.executable, "-m", "ocisign", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ocisign 0.1.0"


def test_unknown_command_is_usage_error(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("bogus").rc == 2
