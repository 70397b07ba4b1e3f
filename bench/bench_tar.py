"""Benchmark: sign and verify a 1 GiB OCI layout tar in place, next to the alternatives.

Rows (median of ``--runs``, wall time, plus peak RSS of the measured process):

* ``cp``: copying the tar file once (GNU cp) — the floor for "rewrite the archive";
* ``sha256``: hashing the tar once with hashlib — the floor for anything that reads it all;
* ``ocisign sign``: sign in the tar (new archive beside it, kernel copy, rename);
* ``ocisign verify`` / ``ocisign list``: read in place, no extraction;
* ``ocisign layout check``: re-hash every blob (the whole GiB);
* ``notation route``: ``tar -xf`` into a directory, ``ocisign sign`` the directory, ``tar -cf`` back.

Usage: ``python bench/bench_tar.py [--size-mib 1024] [--runs 3] [--dir DIR]``. Needs the sign,
verify, cert and policy commands; everything runs in a private temp dir that is removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def run(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``cmd``; (wall seconds, peak RSS in KiB of that process tree's largest child)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return elapsed, int(usage.ru_maxrss)


def measure(runs: int, prepare: Callable[[], None], body: Callable[[], tuple[float, int]]) -> tuple[float, float, int]:
    """(min, median) time and max RSS over ``runs`` (``prepare`` is untimed)."""
    times, rss = [], 0
    for _ in range(runs):
        prepare()
        t, r = body()
        times.append(t)
        rss = max(rss, r)
    return min(times), statistics.median(times), rss


def main(argv: Sequence[str] | None = None) -> int:
    """Build the layout tar, run every row, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="total layer bytes in MiB (default 1024)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args(argv)

    from ocisign.oci.layout_tools import pack_layout
    from ocisign.testing.sample_image import write_image_layout

    scratch = Path(tempfile.mkdtemp(prefix="bench-tar-", dir=args.dir))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the scratch dir is removed
    try:
        env = dict(os.environ, OCISIGN_CONFIG_DIR=str(scratch / "config"), OCISIGN_DISABLE_PLUGIN_AUTOLOAD="1")
        ocisign = [sys.executable, "-m", "ocisign"]
        half = args.size_mib * (1 << 20) // 2
        src = scratch / "layout"
        print(f"building a {args.size_mib} MiB layout in {scratch} …", file=sys.stderr)
        write_image_layout(src, layer_sizes=(half, args.size_mib * (1 << 20) - half))
        master = scratch / "master.tar"
        pack_layout(src, master)
        shutil.rmtree(src)
        run([*ocisign, "cert", "generate-test", "--default", "bench"], env)
        policy = scratch / "policy.json"
        policy.write_text(json.dumps({"version": "1.0", "trustPolicies": [{
            "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:bench"], "trustedIdentities": ["*"]}]}))
        run([*ocisign, "policy", "import", "--force", str(policy)], env)

        work = scratch / "work.tar"
        size = master.stat().st_size
        rows: list[tuple[str, float, float, int | None]] = []

        def fresh() -> None:
            with open(master, "rb") as s, open(work, "wb") as d:
                shutil.copyfileobj(s, d, 1 << 24)

        def nothing() -> None:
            pass

        copy_target = scratch / "copy.tar"
        rows.append(("cp (copy the tar once)", *measure(args.runs, lambda: copy_target.unlink(missing_ok=True),
                                                            lambda: run(["cp", str(master), str(copy_target)], env))))

        def durable_copy() -> tuple[float, int]:
            t1, r1 = run(["cp", str(master), str(copy_target)], env)
            t2, _ = run(["sync", str(copy_target)], env)
            return t1 + t2, r1

        rows.append(("cp + sync (durable copy)", *measure(args.runs, lambda: copy_target.unlink(missing_ok=True),
                                                          durable_copy)))
        copy_target.unlink(missing_ok=True)

        def hash_once() -> tuple[float, int]:
            t0 = time.perf_counter()
            h = hashlib.sha256()
            with open(master, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            return time.perf_counter() - t0, 0

        tmin, tmed, _ = measure(args.runs, nothing, hash_once)
        rows.append(("sha256 of the tar (hashlib)", tmin, tmed, None))
        rows.append(("ocisign sign (in the tar)", *measure(
            args.runs, fresh, lambda: run([*ocisign, "sign", "--oci-layout", f"{work}:v1"], env))))
        from ocisign.plugins.oci_archive import ArchiveLayout

        ref = f"{work}@{ArchiveLayout(work).resolve('v1').digest}"
        rows.append(("ocisign verify (in place)", *measure(
            args.runs, nothing, lambda: run([*ocisign, "verify", "--oci-layout", ref, "--scope", "local/bench"], env))))
        rows.append(("ocisign list (in place)", *measure(
            args.runs, nothing, lambda: run([*ocisign, "list", "--oci-layout", ref], env))))
        rows.append(("ocisign layout check (re-hash all)", *measure(
            args.runs, nothing, lambda: run([*ocisign, "layout", "check", str(work)], env))))

        extracted = scratch / "extracted"
        repacked = scratch / "repacked.tar"

        def clean_route() -> None:
            fresh()
            shutil.rmtree(extracted, ignore_errors=True)
            repacked.unlink(missing_ok=True)

        def notation_route() -> tuple[float, int]:
            extracted.mkdir()
            t1, _ = run(["tar", "-xf", str(work), "-C", str(extracted)], env)
            t2, r2 = run([*ocisign, "sign", "--oci-layout", f"{extracted}:v1"], env)
            t3, _ = run(["tar", "-cf", str(repacked), "-C", str(extracted), "."], env)
            return t1 + t2 + t3, r2

        rows.append(("notation route: tar -x, sign dir, tar -c", *measure(args.runs, clean_route, notation_route)))
        shutil.rmtree(extracted, ignore_errors=True)

        base = rows[1][2]
        print(f"\nlayout tar: {size / (1 << 20):.0f} MiB, {args.runs} runs, {os.cpu_count()} CPUs\n")
        print(f"{'operation':<44} {'min s':>7} {'median s':>9} {'x cp+sync':>10} {'MiB/s':>7} {'peak RSS MiB':>13}")
        for name, tmin, tmed, rss in rows:
            rss_s = f"{rss / 1024:.0f}" if rss else "-"
            print(f"{name:<44} {tmin:7.3f} {tmed:9.3f} {tmed / base:10.2f} {size / (1 << 20) / tmed:7.0f} {rss_s:>13}")
        print(f"\n(bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
