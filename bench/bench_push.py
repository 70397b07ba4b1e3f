"""Push a 512 MiB three-layer OCI layout to a real docker-registry with ocisign and with skopeo.

    python bench/bench_push.py [--repeat 3] [--mib 512] [--again 5]      (--runs is the same as --repeat)

For each run: a fresh registry (fresh storage, new port, so skopeo's blob-info cache cannot
mount from an earlier repository), a fresh push, then a re-push with every blob present.
Layers are stored-gzip (see :func:`write_gzip_layout`) so skopeo does not recompress them.
ocisign runs as a subprocess (``python -m ocisign cp``) and its peak RSS is read from
``os.wait4``; a second ocisign push of a 32 MiB layout shows whether RSS depends on size.
Re-pushes are timed ``--again`` times per run (default ``AGAIN``) (the fastest of all of them is printed too: on a
busy machine the minimum is the least disturbed sample). The in-process re-push is timed twice: the first
call in this process (it imports ocisign's registry modules; ``http.client`` is already loaded
here by the registry helper) and, warm, the work alone (graph, one GET of the tag, digest
comparison). Prints a table of median times, MB/s (10^6 bytes/s),
the ocisign/skopeo time ratio and RSS.
Goals (issue 12): fresh push <= 0.55x skopeo, re-push <= 2x skopeo, peak RSS <= 80 MiB for any size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ocisign.testing.registry import RegistryProcess

MIB = 1 << 20
#: re-pushes timed per run and tool
AGAIN = 5


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one child process; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    if proc.stderr:
        proc.stderr.close()
    return elapsed, int(usage.ru_maxrss)


def write_gzip_layout(root: Path, sizes: tuple[int, ...]) -> None:
    """Like ``write_image_layout``, but each layer is incompressible data in *stored* gzip
    (level 0) with media type ``tar+gzip``: skopeo then copies layers as they are instead of
    compressing them (it compresses uncompressed layers for docker:// destinations), so both
    tools move the same bytes."""
    import gzip
    import hashlib
    import json

    from ocisign.oci.model import MT_IMAGE_CONFIG, MT_INDEX, MT_MANIFEST, canonical_json, sha256_digest

    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = sha256_digest(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    layers, diff_ids = [], []
    for i, size in enumerate(sizes):
        tmp = blobs / f".tmp{i}"
        raw_hash = hashlib.sha256()
        with open(tmp, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=0, mtime=0) as gz:
            left = size
            while left:
                piece = os.urandom(min(MIB, left))
                raw_hash.update(piece)
                gz.write(piece)
                left -= len(piece)
        h = hashlib.sha256()
        with open(tmp, "rb") as src:
            while chunk := src.read(MIB):
                h.update(chunk)
        tmp.rename(blobs / h.hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": "sha256:" + h.hexdigest(), "size": (blobs / h.hexdigest()).stat().st_size})
        diff_ids.append("sha256:" + raw_hash.hexdigest())
    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    manifest = canonical_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": {
        "mediaType": MT_IMAGE_CONFIG, "digest": put(config), "size": len(config)}, "layers": layers})
    entry = {"mediaType": MT_MANIFEST, "digest": put(manifest), "size": len(manifest),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [entry]}))


def in_process_repush(layout: Path, host: str) -> float:
    """Seconds of a re-push done inside this process. The first call in a process also imports
    the registry transport (built-in plugins load on first use); later calls are the copy work
    alone."""
    from ocisign.manager import get_plugin_manager
    from ocisign.registry.copy import copy
    from ocisign.types import RemoteOptions

    pm = get_plugin_manager(load_entrypoints=False)
    src = pm.open_layout(layout)
    start = time.perf_counter()
    dst = pm.transport("registry").open(host, "bench/ocisign", RemoteOptions())
    copy(src, "v1", dst, tag="v1")
    elapsed = time.perf_counter() - start
    dst.close()
    src.close()
    return elapsed


def layout_bytes(root: Path) -> int:
    """Bytes of all blobs in a layout."""
    return sum(p.stat().st_size for p in (root / "blobs" / "sha256").iterdir())


def main() -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", "--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=512, help="total layer size (split 1/2, 3/8, 1/8)")
    ap.add_argument("--again", type=int, default=AGAIN, help=f"re-pushes timed per run and tool (default {AGAIN})")
    args = ap.parse_args()
    again = max(1, args.again)
    skopeo = shutil.which("skopeo")
    work = Path(tempfile.mkdtemp(prefix="ocisign-bench-"))
    env = {**os.environ, "OCISIGN_CONFIG_DIR": str(work / "cfg"), "DOCKER_CONFIG": str(work / "docker"),
           "OCISIGN_CACHE_DIR": str(work / "cache")}  # the entry-point index, as after the first run
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-code cached after the first run
    try:
        total = args.mib * MIB
        big = work / "big"
        write_gzip_layout(big, (total // 2, total * 3 // 8, total - total // 2 - total * 3 // 8))
        small = work / "small"
        write_gzip_layout(small, (16 * MIB, 12 * MIB, 4 * MIB))
        size = layout_bytes(big)
        ocisign = [sys.executable, "-m", "ocisign", "cp", "--from-oci-layout", f"{big}:v1"]
        results: dict[str, list[float]] = {
            k: [] for k in ("o_fresh", "o_again", "s_fresh", "s_again", "o_cold", "o_inproc", "py", "py_http")
        }
        subprocess.run([sys.executable, "-m", "ocisign", "version"], env=env, check=True, stdout=subprocess.DEVNULL)
        rss: list[int] = []
        rss_small: list[int] = []
        for i in range(args.repeat):
            with RegistryProcess(work / f"reg-o{i}") as reg:
                t, m = timed([*ocisign, f"{reg.host}/bench/ocisign:v1"], env)
                results["o_fresh"].append(t)
                rss.append(m)
                for _ in range(again):  # a re-push is short: several per run, so one hiccup does not decide
                    results["o_again"].append(timed([*ocisign, f"{reg.host}/bench/ocisign:v1"], env)[0])
                cold = in_process_repush(big, reg.host)
                if i == 0:  # only the first call in this process imports the registry stack
                    results["o_cold"].append(cold)
                results["o_inproc"].append(min(in_process_repush(big, reg.host) for _ in range(again)))
                _, m = timed([sys.executable, "-m", "ocisign", "cp", "--from-oci-layout", f"{small}:v1",
                              f"{reg.host}/bench/small:v1"], env)
                rss_small.append(m)
            for _ in range(again):  # the start-up floor of a re-push: Python itself, and its HTTP client on top
                results["py"].append(timed([sys.executable, "-c", "pass"], env)[0])
                results["py_http"].append(timed([sys.executable, "-c", "import http.client"], env)[0])
            if skopeo:
                with RegistryProcess(work / f"reg-s{i}") as reg:
                    cmd = [skopeo, "copy", "-q", "--dest-tls-verify=false", f"oci:{big}:v1",
                           f"docker://{reg.host}/bench/skopeo:v1"]
                    results["s_fresh"].append(timed(cmd)[0])
                    for _ in range(again):
                        results["s_again"].append(timed(cmd)[0])
        med = {k: statistics.median(v) if v else float("nan") for k, v in results.items()}
        print(f"push of {size / MIB:.0f} MiB ({size} bytes, 3 layers), median of {args.repeat}, loopback, "
              f"docker-registry 2.8.2, {os.cpu_count()} CPUs")
        print(f"{'run':<30}{'ocisign s':>10}{'skopeo s':>10}{'ocisign MB/s':>14}{'skopeo MB/s':>13}{'ratio':>8}")
        print(f"{'fresh repository':<30}{med['o_fresh']:>10.3f}{med['s_fresh']:>10.3f}"
              f"{size / med['o_fresh'] / 1e6:>14.0f}{size / med['s_fresh'] / 1e6:>13.0f}"
              f"{med['o_fresh'] / med['s_fresh']:>8.2f}")
        print(f"{'again, blobs present':<30}{med['o_again']:>10.3f}{med['s_again']:>10.3f}{'-':>14}{'-':>13}"
              f"{med['o_again'] / med['s_again']:>8.2f}")
        low = {k: min(results[k], default=float("nan")) for k in ("o_again", "s_again")}
        print(f"{'again, fastest of all runs':<30}{low['o_again']:>10.3f}{low['s_again']:>10.3f}{'-':>14}{'-':>13}"
              f"{low['o_again'] / low['s_again']:>8.2f}")
        print(f"{'again, in-process, first call':<30}{med['o_cold']:>10.3f}{'':>10}{'-':>14}{'':>13}"
              f"{med['o_cold'] / med['s_again']:>8.2f}")
        print(f"{'again, in-process, warm':<30}{med['o_inproc']:>10.3f}{'':>10}{'-':>14}{'':>13}"
              f"{med['o_inproc'] / med['s_again']:>8.2f}")
        print("  (in-process: without Python start-up; the first call imports ocisign's registry modules,")
        print("   warm is ocisign's graph and network work alone)")
        print(f"start-up floor: python -c pass {med['py'] * 1000:.0f} ms, python -c 'import http.client' "
              f"{med['py_http'] * 1000:.0f} ms")
        low_http = min(results["py_http"], default=float("nan"))
        print(f"  (fastest: pass {min(results['py'], default=float('nan')) * 1000:.0f} ms, import http.client "
              f"{low_http * 1000:.0f} ms = {low_http / low['s_again']:.2f}x skopeo's fastest re-push: the part of "
              "the 2x goal Python and its HTTP client take)")
        print(f"ocisign peak RSS: {max(rss) / 1024:.1f} MiB for {size / MIB:.0f} MiB, "
              f"{max(rss_small) / 1024:.1f} MiB for {layout_bytes(small) / MIB:.0f} MiB")
        if not skopeo:
            print("(skopeo not installed: no comparison)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
