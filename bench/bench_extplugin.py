"""Per-signature cost of signing through an external notation plugin vs a file key.

A notation plugin is a separate executable: every signature costs process start-ups and JSON
round trips (``get-plugin-metadata`` + ``describe-key`` + ``generate-signature`` for RAW,
``get-plugin-metadata`` + ``generate-envelope`` for ENVELOPE), as with notation. The plugin is
the suite's test plugin (``ocisign.testing.notation_plugin``, a Python script: its own start-up
and imports are part of the cost, a Go KMS plugin would start faster but wait on its KMS).
Each signature is made the way ``ocisign sign`` makes it: a fresh signer from the key record,
then :func:`ocisign.sign.signing.sign_artifact` into an OCI layout (RSA-2048, JWS).

    python bench/bench_extplugin.py [--signatures 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Seconds per call of ``fn``, ``n`` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signatures", type=int, default=10)
    args = parser.parse_args()

    from ocisign.config.configdir import ConfigDir
    from ocisign.config.testkeys import generate_test
    from ocisign.extplugin.discovery import find_plugin
    from ocisign.manager import get_plugin_manager
    from ocisign.sign.signing import sign_artifact
    from ocisign.testing.notation_plugin import write_test_plugin
    from ocisign.testing.sample_image import write_image_layout

    n = args.signatures
    with tempfile.TemporaryDirectory() as tmp:
        config = ConfigDir(Path(tmp) / "config")
        record = generate_test(config, "bench", out=lambda _s: None)
        assert record.key_path and record.cert_path
        keys = {"key-1": (Path(record.key_path), Path(record.cert_path))}
        write_test_plugin(config.root, "kmsraw", keys=keys, capabilities=("SIGNATURE_GENERATOR.RAW",))
        write_test_plugin(config.root, "kmsenv", keys=keys, capabilities=("SIGNATURE_GENERATOR.ENVELOPE",))
        layout = Path(tmp) / "layout"
        write_image_layout(layout)
        pm = get_plugin_manager(load_entrypoints=False)
        target = pm.open_layout(layout)
        fmt = pm.envelope_format("jws")
        subject = target.resolve("v1").digest

        def signer_of(scheme: str, rec: dict[str, Any]) -> Callable[[], object]:
            factory = pm.signer_factory(scheme, config.root)
            return lambda: sign_artifact(pm, target, subject, signer=factory.create(rec), envelope_format=fmt)

        plugin_key = {"name": "k", "id": "key-1"}
        cases: list[tuple[str, str, Callable[[], object]]] = [
            ("file key (in process)", "0", signer_of("file", record.to_json())),
            ("plugin SIGNATURE_GENERATOR.RAW", "3", signer_of("kmsraw", {**plugin_key, "pluginName": "kmsraw"})),
            ("plugin SIGNATURE_GENERATOR.ENVELOPE", "2", signer_of("kmsenv", {**plugin_key, "pluginName": "kmsenv"})),
        ]
        raw = find_plugin(config.root, "kmsraw")
        floor = timed(lambda: raw.call("get-plugin-metadata", {}), n)
        rows = []
        base = None
        for label, procs, fn in cases:
            median = statistics.median(timed(fn, n)) * 1000
            base = base or median
            rows.append((label, procs, median, median / base))
        target.close()

    print(f"signing one artifact {n} times per case (RSA-2048, JWS, OCI layout; python "
          f"{sys.version.split()[0]})")
    print(f"{'case':38} {'plugin runs':>11} {'ms/signature':>13} {'x file key':>11}")
    for label, procs, median, ratio in rows:
        print(f"{label:38} {procs:>11} {median:13.1f} {ratio:11.1f}")
    print(f"{'one plugin run (get-plugin-metadata)':38} {'1':>11} {statistics.median(floor) * 1000:13.1f}"
          f" {statistics.median(floor) * 1000 / (base or 1):11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
