"""Notation plugins against a real registry: sign through a RAW and an ENVELOPE plugin into a
repository, then list, inspect and verify there (the ENVELOPE signature needs the plugin's
``verify-signature``); a failing plugin pushes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.testing.notation_plugin import write_test_plugin

pytestmark = pytest.mark.registry


def test_plugin_signatures_in_a_registry(run_cli: Callable[..., Any], make_layout: Callable[..., Path],
                                         make_keypair: Callable[..., Any], config_dir: Path, tmp_path: Path,
                                         registry_plain: Any, repo_name: str) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair("ec384", chain_len=3)
    keys = {"key-1": (kp.key_path, kp.cert_path)}
    write_test_plugin(config_dir, "kmsraw", keys=keys, capabilities=("SIGNATURE_GENERATOR.RAW",))
    write_test_plugin(config_dir, "kmsenv", keys=keys, capabilities=(
        "SIGNATURE_GENERATOR.ENVELOPE", "SIGNATURE_VERIFIER.TRUSTED_IDENTITY", "SIGNATURE_VERIFIER.REVOCATION_CHECK"))
    root = tmp_path / "root.pem"
    root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
    assert run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root)).rc == 0
    ref = f"{registry_plain.host}/{repo_name}"
    (config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "p", "registryScopes": [ref], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}))
    layout = make_layout()
    assert run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{ref}:v1").rc == 0

    res = run_cli("sign", f"{ref}:v1", "--plugin", "kmsenv", "--id", "key-1", "--plugin-config", "mode=otherartifact")
    assert res.rc == 3 and "signs another artifact" in res.err
    assert "has no associated signature" in run_cli("list", f"{ref}:v1").out

    res = run_cli("sign", f"{ref}:v1", "--plugin", "kmsenv", "--id", "key-1")
    assert res.rc == 0, res.err
    assert run_cli("verify", f"{ref}:v1").rc == 0
    res = run_cli("verify", f"{ref}:v1", "-o", "json", "--plugin-config", "revocation=fail")
    out = json.loads(res.out)
    assert res.rc == 1 and out["failedCheck"] == "revocation", out
    assert "key was revoked in the KMS" in out["signatures"][0]["reason"]

    assert run_cli("key", "add", "raw", "--plugin", "kmsraw", "--id", "key-1", "--default").rc == 0
    res = run_cli("sign", f"{ref}:v1", "--signature-format", "cose")
    assert res.rc == 0, res.err
    res = run_cli("inspect", f"{ref}:v1", "-o", "json")
    assert res.rc == 0, res.err
    sigs = json.loads(res.out)["Signatures"]
    assert sorted(s["mediaType"] for s in sigs) == ["application/cose", "application/jose+json"]
    by_type = {s["mediaType"]: s for s in sigs}
    assert by_type["application/cose"]["signatureAlgorithm"] == "ECDSA-SHA-384"
    assert by_type["application/jose+json"]["signedAttributes"]["io.cncf.notary.verificationPlugin"] == "kmsenv"
    # the RAW signature needs no verification plugin: it verifies where the ENVELOPE one is refused
    res = run_cli("verify", f"{ref}:v1", "-o", "json", "--plugin-config", "revocation=fail")
    out = json.loads(res.out)
    assert res.rc == 0 and out["verified"], out
    assert {s["result"] for s in out["signatures"]} == ({"pass"} if len(out["signatures"]) == 1 else {"pass", "fail"})
    # without the verification plugin the ENVELOPE signature fails closed; the RAW one still verifies
    (config_dir / "plugins" / "kmsenv").rename(tmp_path / "gone")
    res = run_cli("verify", f"{ref}:v1", "-o", "json")
    out = json.loads(res.out)
    assert res.rc == 0 and out["verified"], out
    failed = [s for s in out["signatures"] if s["result"] == "fail"]
    assert all(s["failedCheck"] == "verificationPlugin" for s in failed)
