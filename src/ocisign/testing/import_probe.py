"""Which modules a CLI run imports: ``ocisign ARGV`` in a fresh interpreter, recorded.

The probe records every module that is new after start-up *and* every absolute ``import``
statement the run executes (also of modules an editable install's finder or the interpreter
loaded before, which a ``sys.modules`` difference alone would hide). The start-up tests pin
what each command may import with it (``tests/unit/test_lazy_imports.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence

__all__ = ["PROBE", "imported_modules"]

PROBE = """
import builtins, sys
before = set(sys.modules)  # the interpreter's (and an editable install's finder's) own
asked = set()  # every absolute import statement run, also of modules loaded before (pathlib, re...)
real_import = builtins.__import__
def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        asked.add(name)
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = recording_import
from ocisign.cli.app import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
builtins.__import__ = real_import
mods = sorted((set(sys.modules) - before) | asked)  # before json (it imports re, hence enum) reports them
import json
print(json.dumps([rc, mods]))
"""


def imported_modules(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None = None,
                     timeout: float = 60) -> tuple[int, set[str], str]:
    """Run ``ocisign ARGV`` under :data:`PROBE`; (its exit code, the modules it imported, its stderr).

    AssertionError when the probe itself fails (the command's own failures are its exit code).
    """
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=timeout,
                          env=dict(env), cwd=cwd, check=False)
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    rc, mods = json.loads(proc.stdout.splitlines()[-1])
    return int(rc), set(mods), proc.stderr
