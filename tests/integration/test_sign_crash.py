"""Crash and concurrency guarantees of signing into a layout, with real processes.

* SIGKILL at every file-replacing step (and at random moments) leaves a valid layout whose
  ``index.json`` is the old one or the old one plus one complete signature; re-running works.
* N signers started together all end up in ``index.json`` (the layout lock serialises them).
* A reader running while signers write always sees a complete, readable layout.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from ocisign.plugins.oci_dir import DirLayout

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys
from ocisign.oci.model import sha256_digest
from ocisign.oci.signatures import find_signatures

pytestmark = pytest.mark.slow

#: runs the CLI after arranging SIGKILL around the N-th call of os.<func> ("before" or "after" it)
KILLER = textwrap.dedent("""
    import os, signal, sys, threading
    n, when, func = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    real = getattr(os, func)
    calls = [0]
    lock = threading.Lock()
    def patched(*args, **kwargs):
        with lock:  # calls may come from several threads at once (files are fsynced together)
            calls[0] += 1
            mine = calls[0]
        if mine == n and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if mine == n and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(os, func, patched)
    from ocisign.cli.app import main
    sys.exit(main(sys.argv[4:]))
""")

#: waits for a start file, then runs the CLI (so that N processes start signing together)
BARRIER = textwrap.dedent("""
    import os, sys, time
    go = sys.argv[1]
    while not os.path.exists(go):
        time.sleep(0.002)
    from ocisign.cli.app import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.fixture
def signing_env(config_dir: Path, make_keypair) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A default EC key (fast to sign with) and the environment for child processes."""
    kp = make_keypair("ec256")
    with edit_signing_keys(ConfigDir(config_dir)) as keys:
        keys.add(KeyRecord(name="k", key_path=str(kp.key_path), cert_path=str(kp.cert_path)), make_default=True)
    env = os.environ.copy()
    env["OCISIGN_PROJECT_CONFIG"] = "none"
    return env


def sign_args(root: Path, fmt: str = "jws") -> list[str]:
    return ["sign", "--oci-layout", f"{root}:v1", "--signature-format", fmt]


def assert_layout_sound(root: Path, old_entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """index.json is complete and equals the old one, or the old one plus one signature; all readable."""
    raw = (root / "index.json").read_bytes()
    index = json.loads(raw)  # never truncated or interleaved
    now = index["manifests"]
    assert now[: len(old_entries)] == old_entries
    assert len(now) - len(old_entries) in (0, 1)
    assert stat.S_IMODE((root / "index.json").stat().st_mode) == 0o644
    layout = DirLayout(root)
    subject = layout.resolve("v1").plain()
    sigs = find_signatures(layout, subject)
    assert [d.digest for d in sigs] == [e["digest"] for e in now[1:]]
    for manifest in sigs.manifests.values():  # every listed signature is complete
        layer = manifest.layers[0]
        layout.fetch(layer, max_size=32 * 1024 * 1024)
        assert manifest.config is not None and layout.fetch(manifest.config) == b"{}"
    for p in (root / "blobs" / "sha256").iterdir():  # a blob under its digest name is always complete
        if not p.name.startswith("."):
            assert sha256_digest(p.read_bytes()) == f"sha256:{p.name}", p
    return now  # type: ignore[no-any-return]


def run_cli_process(args: list[str], env: dict[str, str], *, code: str | None = None,
                    pre: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code, *(pre or []), *args] if code else [sys.executable, "-m", "ocisign", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("func", ["replace", "fsync"])
def test_kill_at_every_write_step(make_layout, signing_env: dict[str, str], func: str) -> None:
    root = make_layout()
    entries = json.loads((root / "index.json").read_bytes())["manifests"]
    killed_at = 0
    completed = False
    for n in range(1, 40):
        for when in ("before", "after"):
            proc = run_cli_process(sign_args(root, ("jws", "cose")[n % 2]), signing_env, code=KILLER,
                                   pre=[str(n), when, func])
            if proc.returncode == 0:  # n is past the last call: the run completed
                completed = True
                break
            assert proc.returncode == -signal.SIGKILL, proc.stderr
            killed_at += 1
            entries = assert_layout_sound(root, entries)
        if completed:
            break
    assert completed
    assert killed_at >= 6, killed_at  # envelope, config, manifest and index.json steps were all hit
    entries = assert_layout_sound(root, entries)
    done = run_cli_process(sign_args(root), signing_env)  # signing again still works
    assert done.returncode == 0, done.stderr
    assert len(assert_layout_sound(root, entries)) == len(entries) + 1


def test_kill_at_random_moments(make_layout, signing_env: dict[str, str]) -> None:
    root = make_layout()
    entries = json.loads((root / "index.json").read_bytes())["manifests"]
    t0 = time.monotonic()
    assert run_cli_process(sign_args(root), signing_env).returncode == 0
    duration = time.monotonic() - t0
    entries = assert_layout_sound(root, entries)
    rng = random.Random(1234)
    completed = killed = 0
    for i in range(30):
        proc = subprocess.Popen([sys.executable, "-m", "ocisign", *sign_args(root, ("jws", "cose")[i % 2])],
                                env=signing_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 1.1) * duration)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert rc in (0, -signal.SIGKILL), err
        completed += rc == 0
        killed += rc != 0
        entries = assert_layout_sound(root, entries)
    assert killed > 0
    final = run_cli_process(sign_args(root), signing_env)
    assert final.returncode == 0, final.stderr
    assert_layout_sound(root, entries)


def test_parallel_signers_all_land(make_layout, signing_env: dict[str, str], tmp_path: Path) -> None:
    root = make_layout()
    before = json.loads((root / "index.json").read_bytes())["manifests"]
    go = tmp_path / "go"
    n = 8
    procs = [subprocess.Popen([sys.executable, "-c", BARRIER, str(go), *sign_args(root, ("jws", "cose")[i % 2])],
                              env=signing_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    time.sleep(1.0)  # let every process import and wait at the barrier
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in outs]
    after = json.loads((root / "index.json").read_bytes())["manifests"]
    assert after[:1] == before and len(after) == 1 + n
    assert len({e["digest"] for e in after}) == 1 + n
    layout = DirLayout(root)
    assert len(find_signatures(layout, layout.resolve("v1").plain())) == n


def test_readers_see_a_complete_layout_while_signers_write(make_layout, signing_env: dict[str, str]) -> None:
    root = make_layout()
    signers = [subprocess.Popen([sys.executable, "-m", "ocisign", *sign_args(root)], env=signing_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(4)]
    reads = 0
    seen_counts: set[int] = set()
    while any(p.poll() is None for p in signers) or reads < 5:
        layout = DirLayout(root)
        subject = layout.resolve("v1").plain()
        sigs = find_signatures(layout, subject)
        for manifest in sigs.manifests.values():
            layout.fetch(manifest.layers[0], max_size=32 * 1024 * 1024)
        seen_counts.add(len(sigs))
        reads += 1
    for p in signers:
        assert p.wait(timeout=60) == 0
        assert p.stderr is not None
        p.stderr.close()
    assert max(seen_counts) <= 4 and reads >= 5
    layout = DirLayout(root)
    assert len(find_signatures(layout, layout.resolve("v1").plain())) == 4


def test_index_json_mode_is_kept(make_layout, signing_env: dict[str, str]) -> None:
    root = make_layout()
    (root / "index.json").chmod(0o640)
    assert run_cli_process(sign_args(root), signing_env).returncode == 0
    assert stat.S_IMODE((root / "index.json").stat().st_mode) == 0o640


#: a signature's fsyncs: envelope, config and manifest files, the blobs directory once, the
#: index.json temp file, the layout directory
SIGN_FSYNCS = 6


@pytest.mark.parametrize("step", range(1, SIGN_FSYNCS + 1))
def test_disk_full_at_each_step_is_a_clean_failure(run_cli, make_layout, signing_env: dict[str, str],  # type: ignore[no-untyped-def]
                                                   monkeypatch, step: int) -> None:
    """ENOSPC from the n-th fsync: exit 1 with one error line, layout sound, no temp files left."""
    import errno

    root = make_layout()
    entries = json.loads((root / "index.json").read_bytes())["manifests"]
    real_fsync = os.fsync
    calls = [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] == step:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    res = run_cli("sign", "--oci-layout", f"{root}:v1")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert res.rc == 1, res.err
    assert res.err.splitlines()[-1].endswith("cannot write the layout: No space left on device")
    assert_layout_sound(root, entries)
    assert [p for p in root.rglob("*") if p.name.startswith(".")] == []
    assert run_cli("sign", "--oci-layout", f"{root}:v1").rc == 0
