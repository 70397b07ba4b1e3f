"""A RAW notation plugin signature with an RFC 3161 timestamp (ocisign adds it, as notation does),
against a real loopback TSA; and a failing TSA leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.testing.notation_plugin import write_test_plugin
from ocisign.testing.tsa import TestTSA

SCOPE = "local/test"


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_raw_plugin_signature_is_timestamped(run_cli: Callable[..., Any], make_keypair: Callable[..., Any],
                                             make_layout: Callable[..., Path], config_dir: Path, tmp_path: Path,
                                             fmt: str) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair("ec256", chain_len=2)
    write_test_plugin(config_dir, "kms", keys={"key-1": (kp.key_path, kp.cert_path)},
                      capabilities=("SIGNATURE_GENERATOR.RAW",))
    root = tmp_path / "root.pem"
    root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
    assert run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root)).rc == 0
    layout = make_layout()
    with TestTSA() as tsa:
        tsa_root = tsa.pki.write_root(tmp_path / "tsa-root.pem")
        assert run_cli("cert", "add", "-t", "tsa", "-s", "acme-tsa", str(tsa_root)).rc == 0
        (config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
            "name": "t", "registryScopes": [SCOPE], "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme", "tsa:acme-tsa"], "trustedIdentities": ["*"]}]}))
        before = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
        tsa.mode = "wrong-imprint"
        res = run_cli("sign", "--oci-layout", f"{layout}:v1", "--plugin", "kms", "--id", "key-1",
                      "--signature-format", fmt, "--timestamp-url", tsa.url, "--timestamp-root-cert", str(tsa_root))
        assert res.rc != 0
        assert sorted(p.name for p in (layout / "blobs" / "sha256").iterdir()) == before
        tsa.mode = "ok"
        res = run_cli("sign", "--oci-layout", f"{layout}:v1", "--plugin", "kms", "--id", "key-1",
                      "--signature-format", fmt, "--timestamp-url", tsa.url, "--timestamp-root-cert", str(tsa_root))
        assert res.rc == 0, res.err
        res = run_cli("verify", "--oci-layout", f"{layout}:v1", "--scope", SCOPE, "-o", "json")
        out = json.loads(res.out)
        assert res.rc == 0 and out["signatures"][0]["timestamped"] is True, out
