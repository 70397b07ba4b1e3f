"""CLI start-up time: ``--version``, ``list``, ``inspect``, ``verify`` and ``sign`` against ``python -c pass``.

Run: ``python bench/bench_startup.py [runs]`` (default 20 runs per row). Each row starts a fresh
interpreter ``runs`` times and reports the median and minimum wall time, the ratio of the
median to the bare-interpreter floor's median (``x python``) and of the minimum to its minimum
(``x min``: steadier on a shared machine). The ``list`` rows use a small layout (hello-world image,
unsigned and with two signatures) built in a temporary directory with a throw-away key. It
asserts nothing: it is a measurement. The last column shows whether cryptography/cbor2/urllib3
(or pluggy) were imported (they must not be for ``--version``; ``list`` needs none of them either;
pluggy only for a plugin that is not built in).

Each command that imports cryptography is followed by its *crypto floor*: a bare interpreter
importing exactly the cryptography/cbor2 modules the command imported (what it cannot avoid
without parsing certificates itself), and the summary gives each command's time over that floor.
The ``import cryptography.x509`` and primitives rows show where that floor comes from.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAVY_PROBE = (
    "import sys, runpy; sys.argv = ['ocisign', *sys.argv[1:]];"
    "import atexit, json;"
    "atexit.register(lambda: sys.stderr.write('HEAVY=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules"
    " if m.split('.')[0] in ('cryptography', 'cbor2', 'urllib3')})) + '\\n'"
    " + 'CRYPTO=' + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'cbor2')"
    " and not m.startswith('cryptography.hazmat.bindings._rust.'))) + '\\n'"
    " + 'PLUGGY=' + json.dumps('pluggy' in sys.modules) + '\\n'));"
    "runpy.run_module('ocisign', run_name='__main__')"
)


#: RSA/EC keys, padding and hashes without cryptography.x509 (for comparison with the X.509 floor)
PRIMITIVES = ("from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa;"
              " from cryptography.hazmat.primitives import hashes")


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median, min) wall seconds of ``runs`` runs of ``cmd`` (one warm-up run first)."""
    subprocess.run(cmd, env=env, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, check=False)
        samples.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')}")
    return statistics.median(samples), min(samples)


def probe(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """What ``ocisign ARGS`` imported: ``HEAVY`` (top-level heavy packages), ``CRYPTO`` (every
    cryptography/cbor2 module) and ``PLUGGY`` (whether pluggy was imported)."""
    proc = subprocess.run([sys.executable, "-c", HEAVY_PROBE, *args], env=env, capture_output=True, text=True,
                          check=False)
    found: dict[str, Any] = {}
    for line in proc.stderr.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("HEAVY", "CRYPTO", "PLUGGY"):
            found[key] = json.loads(value)
    return found


def heavy_imports(found: dict[str, Any]) -> str:
    """The heavy top-level modules a run imported (and pluggy, which only a non-built-in plugin needs)."""
    if "HEAVY" not in found:
        return "?"
    names = list(found["HEAVY"]) + (["pluggy"] if found.get("PLUGGY") else [])
    return ", ".join(names) or "none"


def crypto_floor(found: dict[str, Any]) -> list[str] | None:
    """``python -c 'import <the cryptography and cbor2 modules the run imported>'``: what the command
    cannot avoid importing from the crypto libraries (None when it imports none of them)."""
    modules = found.get("CRYPTO") or []
    if not modules:
        return None
    return [sys.executable, "-c", "import " + ", ".join(modules)]


def make_layouts(work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """An unsigned and a twice-signed hello-world layout."""
    from ocisign.testing.sample_image import write_image_layout

    plain, signed = work / "plain", work / "signed"
    write_image_layout(plain)
    write_image_layout(signed)
    subprocess.run([sys.executable, "-m", "ocisign", "cert", "generate-test", "--default", "bench"], env=env,
                   capture_output=True, check=True)
    for fmt in ("jws", "cose"):
        subprocess.run([sys.executable, "-m", "ocisign", "sign", "--oci-layout", f"{signed}:v1",
                        "--signature-format", fmt], env=env, capture_output=True, check=True)
    policy = work / "policy.json"
    policy.write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "bench", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:bench"], "trustedIdentities": ["*"]}]}))
    subprocess.run([sys.executable, "-m", "ocisign", "policy", "import", str(policy)], env=env,
                   capture_output=True, check=True)
    return plain, signed


def main() -> None:
    """Print the table."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="ocisign-bench-") as tmp:
        work = Path(tmp)
        env = os.environ.copy()
        env["OCISIGN_CONFIG_DIR"] = str(work / "config")
        env["OCISIGN_PROJECT_CONFIG"] = "none"
        env["OCISIGN_CACHE_DIR"] = str(work / "cache")
        # measured as installed: pip writes the bytecode at install time, so the warm-up run may too
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        plain, signed = make_layouts(work, env)
        digest = json.loads((plain / "index.json").read_bytes())["manifests"][0]["digest"]
        ocisign = [sys.executable, "-m", "ocisign"]
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            # what verify cannot avoid: cryptography's X.509 module (its name module compiles regexes at import)
            ("python: import cryptography.x509", [sys.executable, "-c", "import cryptography.x509"], None),
            # the primitives without the X.509 layer: what a verify that parsed certificates itself would need
            ("python: import crypto primitives", [sys.executable, "-c", PRIMITIVES], None),
            ("ocisign --version", [*ocisign, "--version"], ["--version"]),
            ("ocisign list (no signatures)", [*ocisign, "list", "--oci-layout", f"{plain}@{digest}"],
             ["list", "--oci-layout", f"{plain}@{digest}"]),
            ("ocisign list (2 signatures)", [*ocisign, "list", "--oci-layout", f"{signed}@{digest}"],
             ["list", "--oci-layout", f"{signed}@{digest}"]),
            ("ocisign inspect (2 signatures)", [*ocisign, "inspect", "--oci-layout", f"{signed}@{digest}"],
             ["inspect", "--oci-layout", f"{signed}@{digest}"]),
            ("ocisign verify (2 signatures)",
             [*ocisign, "verify", "--oci-layout", "--scope", "local/bench", f"{signed}@{digest}"],
             ["verify", "--oci-layout", "--scope", "local/bench", f"{signed}@{digest}"]),
            # each run adds a signature to the unsigned layout (signing is not idempotent)
            ("ocisign sign", [*ocisign, "sign", "--oci-layout", f"{plain}@{digest}"],
             ["sign", "--oci-layout", f"{plain}@{digest}"]),
        ]
        probed = {name: probe(args, env) for name, _, args in rows if args}
        # each ocisign row that imports crypto is followed by its crypto floor: the same
        # cryptography/cbor2 modules imported by a bare interpreter
        plan: list[tuple[str, list[str], str]] = []
        for name, cmd, args in rows:
            plan.append((name, cmd, heavy_imports(probed[name]) if args else "-"))
            floor_cmd = crypto_floor(probed[name]) if args else None
            if floor_cmd is not None:
                count = len(probed[name]["CRYPTO"])
                plan.append((f"  crypto floor ({count} modules)", floor_cmd, "-"))
        results = [(name, *timed(cmd, env, runs), heavy) for name, cmd, heavy in plan]
    floor, floor_min = results[0][1], results[0][2]
    print(f"CLI start-up, {runs} runs each (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    goals = {"ocisign --version": 1.5, "ocisign list (no signatures)": 3.0, "ocisign list (2 signatures)": 3.0,
             "ocisign verify (2 signatures)": 4.5, "ocisign sign": 5.0}
    print(f"{'command':<32} {'median ms':>10} {'min ms':>8} {'x python':>9} {'x min':>6} {'goal':>5}  heavy imports")
    for name, median, best, heavy in results:
        goal = f"{goals[name]:.1f}" if name in goals else "-"
        print(f"{name:<32} {median * 1000:>10.1f} {best * 1000:>8.1f} {median / floor:>9.2f} {best / floor_min:>6.2f} "
              f"{goal:>5}  {heavy}")
    print("over the crypto floor:")
    for (name, median, best, _), (floor_name, f_median, f_best, _) in itertools.pairwise(results):
        if floor_name.startswith("  crypto floor"):
            print(f"  {name:<30} {1000 * (best - f_best):+6.1f} ms min {1000 * (median - f_median):+6.1f} ms median"
                  f"  ({best / f_best:.2f}x its floor by min)")

if __name__ == "__main__":
    main()
