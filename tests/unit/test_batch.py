"""Batches (issue 12): several references per run of sign, verify, list and inspect."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

POLICY = {"version": "1.0", "trustPolicies": [{
    "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:batch"], "trustedIdentities": ["*"]}]}


@pytest.fixture
def batch_env(run_cli: Callable[..., Any], make_layout: Callable[..., Path], config_dir: Path) -> list[Path]:
    """Three hello-world layouts, a default test key ``batch`` trusted by the policy."""
    r = run_cli("cert", "generate-test", "--default", "batch")
    assert r.rc == 0, r.err
    (config_dir / "trustpolicy.json").write_text(json.dumps(POLICY))
    return [make_layout(f"img{i}") for i in range(3)]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_sign_and_verify_a_batch_in_input_order_with_a_summary(run_cli: Callable[..., Any],
                                                                batch_env: list[Path]) -> None:
    refs = [f"{p}:v1" for p in batch_env]
    r = run_cli("sign", "--oci-layout", "--jobs", "3", *refs)
    assert r.rc == 0, r.err
    out = _lines(r.out)
    assert [line.split("@")[0] for line in out[:-1]] == [f"Successfully signed {p}" for p in batch_env]
    assert out[-1] == "3 of 3 references signed, 0 failed"
    # every warning names its reference
    assert all(line.startswith(tuple(refs)) for line in _lines(r.err))

    missing = str(batch_env[0].parent / "nope") + ":v1"
    r = run_cli("verify", "--oci-layout", "--scope", "local/x", "--jobs", "2", refs[2], missing, refs[0])
    assert r.rc == 1
    out = _lines(r.out)
    assert out[0].startswith(f"Successfully verified signature for {batch_env[2]}@sha256:")
    assert out[1].startswith(f"Failed: {missing}: ") and "no such OCI layout" in out[1]
    assert out[2].startswith(f"Successfully verified signature for {batch_env[0]}@sha256:")
    assert out[3] == "2 of 3 references verified, 1 failed"
    assert any(line.startswith(f"{missing}: Error: ") for line in r.err.splitlines())


def test_a_single_reference_prints_exactly_what_it_always_did(run_cli: Callable[..., Any],
                                                              batch_env: list[Path]) -> None:
    ref = f"{batch_env[0]}:v1"
    assert run_cli("sign", "--oci-layout", ref).rc == 0
    r = run_cli("verify", "--oci-layout", "--scope", "local/x", ref)
    assert r.rc == 0
    assert _lines(r.out) == [line for line in _lines(r.out) if line.startswith("Successfully verified signature")]
    assert len(_lines(r.out)) == 1 and "references" not in r.out
    assert not r.err.startswith(ref)  # no batch prefix
    r = run_cli("verify", "--oci-layout", "--scope", "local/x", str(batch_env[1]) + ":v1")
    assert r.rc == 1 and r.out == "" and "Error: signature verification failed" in r.err


def test_refs_from_a_file_and_stdin(run_cli: Callable[..., Any], batch_env: list[Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    listing = tmp_path / "refs.txt"
    listing.write_text(f"# images\n{batch_env[0]}:v1\n\n  {batch_env[1]}:v1  \n")
    r = run_cli("sign", "--oci-layout", "--refs-from", str(listing), f"{batch_env[2]}:v1")
    assert r.rc == 0, r.err
    signed = [line.split("@")[0].removeprefix("Successfully signed ") for line in _lines(r.out)[:-1]]
    assert signed == [str(batch_env[2]), str(batch_env[0]), str(batch_env[1])]  # command line first
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{batch_env[1]}:v1\n"))
    r = run_cli("list", "--oci-layout", "--refs-from", "-")
    assert r.rc == 0 and "application/vnd.cncf.notary.signature" in r.out
    assert _lines(r.out)[-1] == "1 of 1 references listed, 0 failed"


def test_json_reports_one_document(run_cli: Callable[..., Any], batch_env: list[Path]) -> None:
    refs = [f"{p}:v1" for p in batch_env[:2]]
    r = run_cli("sign", "--oci-layout", "-o", "json", *refs)
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["command"] == "sign" and doc["summary"] == {"total": 2, "succeeded": 2, "failed": 0}
    first = doc["results"][0]
    assert first["reference"] == refs[0] and first["ok"] and first["exitCode"] == 0 and first["error"] is None
    assert first["result"]["signatureManifest"].startswith("sha256:")
    assert first["result"]["envelopeType"] == "application/jose+json"
    assert first["result"]["key"] == "batch" and first["result"]["timestamp"] is None
    r = run_cli("verify", "--oci-layout", "--scope", "local/x", "-o", "json", *refs, f"{batch_env[2]}:v1")
    assert r.rc == 1
    doc = json.loads(r.out)
    assert [x["ok"] for x in doc["results"]] == [True, True, False]
    assert doc["results"][0]["result"]["verified"] is True
    assert doc["results"][2]["result"]["failedCheck"] == "no-signature"
    assert doc["summary"] == {"total": 3, "succeeded": 2, "failed": 1}


def test_single_sign_json(run_cli: Callable[..., Any], batch_env: list[Path]) -> None:
    r = run_cli("sign", "--oci-layout", "-o", "json", f"{batch_env[0]}:v1")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert set(doc) == {"reference", "signatureManifest", "envelopeType", "key", "timestamp"}
    assert doc["reference"].startswith(f"{batch_env[0]}@sha256:")


def test_no_reference_and_conflicting_stdin_are_usage_errors(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    r = run_cli("verify", "--oci-layout", "--scope", "local/x")
    assert r.rc == 2 and "REFERENCE" in r.err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    r = run_cli("list", "--oci-layout", "--refs-from", str(empty))
    assert r.rc == 2 and "no references" in r.err
    r = run_cli("list", "--oci-layout", "--refs-from", str(tmp_path / "missing.txt"))
    assert r.rc == 2 and "missing.txt" in r.err and "Traceback" not in r.err
    r = run_cli("list", "--refs-from", "-", "--password-stdin", "-u", "me")
    assert r.rc == 2 and "standard input" in r.err
    r = run_cli("list", "--oci-layout", "--jobs", "0", "x:v1")
    assert r.rc == 2


def test_a_batch_reads_each_trust_store_and_checks_each_chain_once(
    run_cli: Callable[..., Any], batch_env: list[Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    refs = [f"{p}:v1" for p in batch_env]
    assert run_cli("sign", "--oci-layout", *refs).rc == 0
    import ocisign.envelope.chain as chain
    from ocisign.manager import OcisignPluginManager

    store_calls: list[tuple[str, str]] = []
    real_store = OcisignPluginManager.trust_store

    def counting_store(self: OcisignPluginManager, store_type: str, name: str, config_dir: Any = None) -> Any:
        store_calls.append((store_type, name))
        return real_store(self, store_type, name, config_dir)

    chain_calls: list[int] = []
    real_validate = chain.validate_signing_chain

    def counting_validate(*args: Any, **kwargs: Any) -> None:
        chain_calls.append(1)
        real_validate(*args, **kwargs)

    monkeypatch.setattr(OcisignPluginManager, "trust_store", counting_store)
    monkeypatch.setattr(chain, "validate_signing_chain", counting_validate)
    r = run_cli("verify", "--oci-layout", "--scope", "local/x", "--jobs", "1", *refs)
    assert r.rc == 0, r.err
    assert store_calls == [("ca", "batch")]
    assert len(chain_calls) <= 1  # once per distinct chain per process (maybe already checked earlier)


def test_inspect_batch_keeps_going_after_a_failure(run_cli: Callable[..., Any], batch_env: list[Path]) -> None:
    assert run_cli("sign", "--oci-layout", f"{batch_env[0]}:v1").rc == 0
    r = run_cli("inspect", "--oci-layout", "/nonexistent/x:v1", f"{batch_env[0]}:v1")
    assert r.rc != 0
    out = _lines(r.out)
    assert out[0].startswith("Failed: /nonexistent/x:v1: ")
    assert "Inspecting all signatures for signed artifact" in r.out
    assert out[-1] == "1 of 2 references inspected, 1 failed"


def test_references_may_sit_between_options(run_cli: Callable[..., Any], batch_env: list[Path]) -> None:
    a, b = (f"{p}:v1" for p in batch_env[:2])
    r = run_cli("sign", "--oci-layout", a, "--signature-format", "cose", b)
    assert r.rc == 0, r.err
    assert _lines(r.out)[-1] == "2 of 2 references signed, 0 failed"
    r = run_cli("verify", a, "--oci-layout", "--scope", "local/x", b, "--bogus")
    assert r.rc == 2 and f"unrecognized arguments: {b} --bogus" in r.err  # an unknown flag: as argparse says
    r = run_cli("key", "ls", "extra")
    assert r.rc == 2 and "unrecognized arguments: extra" in r.err


def test_one_layout_signed_by_several_threads_keeps_every_signature(run_cli: Callable[..., Any],
                                                                    batch_env: list[Path]) -> None:
    """Threads of a batch writing the same layout serialise on its lock: each staged signature is
    committed into index.json, no temp file is left, and the layout checks clean."""
    layout = batch_env[0]
    r = run_cli("sign", "--oci-layout", "--jobs", "4", *[f"{layout}:v1"] * 4,
                "--signature-format", "jws")
    assert r.rc == 0, r.err
    index = json.loads((layout / "index.json").read_text())
    signatures = [m for m in index["manifests"] if "org.opencontainers.image.ref.name" not in m.get("annotations", {})]
    assert len(signatures) == 4
    for m in signatures:
        assert (layout / "blobs" / "sha256" / m["digest"].split(":")[1]).is_file()
    assert not [p for p in layout.rglob(".*") if p.is_file()]
    assert run_cli("layout", "check", str(layout)).rc == 0
    r = run_cli("list", "--oci-layout", f"{layout}:v1")
    assert r.rc == 0
    assert all(m["digest"] in r.out for m in signatures)
