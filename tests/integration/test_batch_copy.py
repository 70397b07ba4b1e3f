"""``cp`` batches and re-push (issue 12): several SRC DST pairs per run, and a second push of the
same content writes nothing (existence checks only, the tag compared by digest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.manager import OcisignPluginManager
from ocisign.testing.registry import add_signature_like

pytestmark = pytest.mark.registry


def _signed(pm: OcisignPluginManager, layout: Path) -> str:
    target = pm.open_layout(layout)
    try:
        subject = target.resolve("v1")
        add_signature_like(target, subject)
    finally:
        target.close()
    return subject.digest


def test_cp_batch_copies_every_pair_and_a_repush_writes_nothing(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    proxy: Any, repo_name: str, tmp_path: Path,
) -> None:
    layouts = [make_layout(f"img{i}") for i in range(3)]
    digests = [_signed(pm, lay) for lay in layouts]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"{lay}:v1 {proxy.host}/{repo_name}/img{i}:v1\n" for i, lay in enumerate(layouts)))

    r = run_cli("cp", "-r", "--from-oci-layout", "--jobs", "2", "--refs-from", str(pairs))
    assert r.rc == 0, r.err
    copied = [line for line in r.out.splitlines() if line.startswith("Copied ")]
    assert copied == [f"Copied [oci-layout] {lay}:v1 => [registry] {proxy.host}/{repo_name}/img{i}:v1"
                      for i, lay in enumerate(layouts)]
    assert [line for line in r.out.splitlines() if line.startswith("Digest: ")] == [f"Digest: {d}" for d in digests]
    assert r.out.splitlines()[-1] == "3 of 3 references copied, 0 failed"

    proxy.clear()
    r = run_cli("cp", "-r", "--from-oci-layout", "--refs-from", str(pairs), "-o", "json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["summary"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert all(x["result"]["pushed"] == [] for x in doc["results"])
    writes = [x for x in proxy.requests if x.method in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == []  # existence checks only: blobs, manifests and the tag compared by digest


def test_cp_pairs_are_checked(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    bad = tmp_path / "pairs.txt"
    bad.write_text("only-one-field\n")
    r = run_cli("cp", "--refs-from", str(bad))
    assert r.rc == 2 and "expected 'SRC DST'" in r.err
    r = run_cli("cp", "onlysrc")
    assert r.rc == 2 and "the following arguments are required: DST" in r.err
    r = run_cli("cp", "-r", "--from-oci-layout", "--refs-from", str(bad))  # SRC DST optional with --refs-from
    assert r.rc == 2 and "expected 'SRC DST'" in r.err and "arguments are required" not in r.err


def test_a_registry_batch_shares_one_target_per_repository(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    token_registry: Any, repo_name: str, registry_user: tuple[str, str],
) -> None:
    """Three references in one repository: one auth token for the whole batch, results in order."""
    reg, tokens = token_registry
    user, password = registry_user
    layout = make_layout()
    _signed(pm, layout)
    for tag in ("a", "b", "c"):
        r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{reg.host}/{repo_name}:{tag}",
                    "-u", user, "-P", password)
        assert r.rc == 0, r.err
    before = len(tokens.requests)
    refs = [f"{reg.host}/{repo_name}:{tag}" for tag in ("a", "b", "c")]
    r = run_cli("list", "--jobs", "3", "-u", user, "-P", password, *refs)
    assert r.rc == 0, r.err
    heads = [line for line in r.out.splitlines() if line.startswith(f"{reg.host}/{repo_name}@")]
    assert len(heads) == 3
    assert r.out.splitlines()[-1] == "3 of 3 references listed, 0 failed"
    assert len(tokens.requests) - before == 1
