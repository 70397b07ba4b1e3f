"""Start-up stays light: the CLI and command parsers must not import cryptography, cbor2 or urllib3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ocisign.cli.app import COMMANDS

HEAVY = ("cryptography", "cbor2", "urllib3")

PROBE = textwrap.dedent("""
    import json, sys
    import ocisign.cli.app
    from ocisign.cli.app import build_parser
    argv = sys.argv[1:]
    if argv:
        build_parser(argv[0]).parse_args(argv)
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "cbor2", "urllib3"})))
""")


def heavy_modules(argv: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "argv",
    [[], ["list", "--oci-layout", "x:v1"], ["inspect", "-o", "json", "x.io/r:v1"], ["sign", "--oci-layout", "x:v1"],
     ["cert", "ls"], ["key", "ls"]],
)
def test_importing_the_cli_and_building_parsers_stays_light(argv: list[str]) -> None:
    assert heavy_modules(argv) == []


def test_every_command_parser_stays_light() -> None:
    code = textwrap.dedent("""
        import json, sys
        from ocisign.cli.app import COMMANDS, build_parser
        for command in COMMANDS:
            try:
                build_parser(command)
            except ModuleNotFoundError:
                pass  # a command module another engineer has not written yet
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "cbor2", "urllib3"})))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert {"list", "inspect", "sign", "cert", "key"} <= set(COMMANDS)


def test_version_does_not_import_heavy_modules() -> None:
    code = textwrap.dedent("""
        import json, sys
        from ocisign.cli.app import main
        try:
            main(["--version"])
        except SystemExit:
            pass
        rc = main(["version"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "cbor2", "urllib3"})
        print(json.dumps([rc, heavy]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    rc, heavy = json.loads(proc.stdout.splitlines()[-1])
    assert rc == 0 and heavy == []
    assert all(m not in heavy for m in HEAVY)
