"""CLI start-up time: ``--version``, ``list``, ``inspect``, ``verify`` and ``sign`` against ``python -c pass``.

Run: ``python bench/bench_startup.py [runs]`` (default 20 runs per row). Each row starts a fresh
interpreter ``runs`` times and reports the median and minimum wall time, the ratio of the
median to the bare-interpreter floor's median (``x python``) and of the minimum to its minimum
(``x min``: steadier on a shared machine). The ``list`` rows use a small layout (hello-world image,
unsigned and with two signatures) built in a temporary directory with a throw-away key. It
asserts nothing: it is a measurement. The last column shows whether cryptography/cbor2/urllib3
were imported (they must not be for ``--version``; ``list`` needs none of them either).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY_PROBE = (
    "import sys, runpy; sys.argv = ['ocisign', *sys.argv[1:]];"
    "import atexit, json;"
    "atexit.register(lambda: sys.stderr.write('HEAVY=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules"
    " if m.split('.')[0] in ('cryptography', 'cbor2', 'urllib3')})) + '\\n'));"
    "runpy.run_module('ocisign', run_name='__main__')"
)


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


def heavy_imports(args: list[str], env: dict[str, str]) -> str:
    """Heavy top-level modules imported by ``ocisign ARGS``."""
    proc = subprocess.run([sys.executable, "-c", HEAVY_PROBE, *args], env=env, capture_output=True, text=True,
                          check=False)
    for line in proc.stderr.splitlines():
        if line.startswith("HEAVY="):
            return ", ".join(json.loads(line[6:])) or "none"
    return "?"


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
        results = [(name, *timed(cmd, env, runs), heavy_imports(args, env) if args else "-")
                   for name, cmd, args in rows]
    floor, floor_min = results[0][1], results[0][2]
    print(f"CLI start-up, {runs} runs each (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    goals = {"ocisign --version": 1.5, "ocisign list (no signatures)": 3.0, "ocisign list (2 signatures)": 3.0,
             "ocisign verify (2 signatures)": 4.5, "ocisign sign": 5.0}
    print(f"{'command':<32} {'median ms':>10} {'min ms':>8} {'x python':>9} {'x min':>6} {'goal':>5}  heavy imports")
    for name, median, best, heavy in results:
        goal = f"{goals[name]:.1f}" if name in goals else "-"
        print(f"{name:<32} {median * 1000:>10.1f} {best * 1000:>8.1f} {median / floor:>9.2f} {best / floor_min:>6.2f} "
              f"{goal:>5}  {heavy}")


if __name__ == "__main__":
    main()
