"""Batches: ``sign`` and ``verify`` of N layouts in one ``ocisign`` process, against one process each.

Run: ``python bench/bench_batch.py [--layouts 100] [--rounds 3] [--jobs 1] [--single 10]``. Each row is
the median wall time of ``rounds`` fresh ``ocisign`` processes (bytecode already compiled, as after
``pip install``); ``sign`` rounds start from unsigned copies of the layouts, copied and flushed
to disk (``sync``) just before, so that the copy's writeback is not timed as signing. The "one
process per layout" rows run ``--single`` layouts one process each and scale the time to N (it is
linear), so the table shows what a batch saves. ``sign`` is also timed with the CLI's default
``--jobs`` (signing waits on fsyncs, which other references' work overlaps). Goals (issue 12):
verify of 100 layouts ≤ 0.3 s, sign ≤ 0.6 s. It asserts nothing: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of ``cmd``; exits when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])}… failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="ocisign --jobs (default 1)")
    parser.add_argument("--single", type=int, default=10, help="layouts timed one process each (default 10)")
    args = parser.parse_args()
    from ocisign.cli.batch import DEFAULT_JOBS
    from ocisign.testing.sample_image import write_image_layout

    with tempfile.TemporaryDirectory(prefix="ocisign-bench-batch-") as tmp:
        work = Path(tmp)
        env = os.environ.copy()
        env.update(OCISIGN_CONFIG_DIR=str(work / "config"), OCISIGN_PROJECT_CONFIG="none",
                   OCISIGN_CACHE_DIR=str(work / "cache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        ocisign = [sys.executable, "-m", "ocisign"]
        subprocess.run([*ocisign, "cert", "generate-test", "--default", "bench"], env=env, check=True,
                       capture_output=True)
        (work / "policy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
            "name": "bench", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:bench"], "trustedIdentities": ["*"]}]}))
        subprocess.run([*ocisign, "policy", "import", str(work / "policy.json")], env=env, check=True,
                       capture_output=True)
        pristine = work / "pristine"
        for i in range(args.layouts):
            write_image_layout(pristine / f"l{i:03d}", tag="v1")

        def fresh(name: str) -> list[str]:
            dest = work / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(pristine, dest)
            # the copy's own writeback is set-up, not signing: without this, sign's file creations and
            # fsyncs queue behind the flush of the 100 layouts just copied (see README, Benchmarks)
            os.sync()
            return [f"{dest / d}:v1" for d in sorted(os.listdir(dest))]

        jobs = ["--jobs", str(args.jobs)]
        sign_jobs = [args.jobs] if args.jobs == DEFAULT_JOBS else [args.jobs, DEFAULT_JOBS]
        sign_times: dict[int, list[float]] = {j: [] for j in sign_jobs}
        for r in range(args.rounds):
            for j in sign_jobs:  # interleaved, so that both see the same machine load
                refs = fresh(f"sign{r}-{j}")
                (work / "refs.txt").write_text("\n".join(refs) + "\n")
                sign_times[j].append(run([*ocisign, "sign", "--oci-layout", "--jobs", str(j), "--refs-from",
                                          str(work / "refs.txt")], env))
        verify_cmd = [*ocisign, "verify", "--oci-layout", "--scope", "local/bench", *jobs,
                      "--refs-from", str(work / "refs.txt")]
        run(verify_cmd, env)  # warm-up
        verify_times = [run(verify_cmd, env) for _ in range(args.rounds)]
        peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the batches so far

        single = fresh("single")[: args.single]
        one_sign = sum(run([*ocisign, "sign", "--oci-layout", ref], env) for ref in single) / len(single)
        one_verify = sum(run([*ocisign, "verify", "--oci-layout", "--scope", "local/bench", ref], env)
                         for ref in single) / len(single)
        floor = statistics.median(run([sys.executable, "-c", "pass"], env) for _ in range(10))

    n = args.layouts
    # (name, seconds, goal, the per-process time it is compared with)
    rows: list[tuple[str, float, float | None, float]] = [
        (f"verify {n} layouts, one process", statistics.median(verify_times), 0.3 * n / 100, one_verify * n),
        (f"verify {n} layouts, one process per layout", one_verify * n, None, one_verify * n),
    ]
    rows += [(f"sign {n} layouts, one process, --jobs {j}", statistics.median(sign_times[j]), 0.6 * n / 100,
              one_sign * n) for j in sign_jobs]
    rows.append((f"sign {n} layouts, one process per layout", one_sign * n, None, one_sign * n))
    print(f"Batches (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, --jobs {args.jobs} unless said, "
          f"median of {args.rounds}; python -c pass = {floor * 1000:.1f} ms)")
    print(f"{'operation':<44} {'seconds':>8} {'ms/layout':>10} {'goal s':>7} {'vs per-process':>15}")
    for name, secs, goal, base in rows:
        goal_s = f"{goal:7.2f}" if goal else f"{'-':>7}"
        print(f"{name:<44} {secs:8.3f} {secs * 1000 / n:10.2f} {goal_s} {secs / base:14.2f}x")
    print(f"peak RSS of a batch process: {peak_rss:.1f} MiB (goal <= 80 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
