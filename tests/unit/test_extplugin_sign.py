"""Signing through external notation plugins (SIGNATURE_GENERATOR.RAW and .ENVELOPE), end to end.

The test plugin (``ocisign.testing.notation_plugin``) is a Python script installed into the
test's config dir; its keys are generated here. Every signature made through it must verify
with ocisign; every failure switch must end in one line, exit code 3 and nothing written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ocisign.testing.notation_plugin import ALL_CAPABILITIES, write_test_plugin

SCOPE = "local/hello"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def kms(config_dir: Path, make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
        run_cli: Callable[..., Any], tmp_path: Path) -> SimpleNamespace:
    """The test plugin ``kms`` with key ``key-1`` (RSA-2048, chain of 2) trusted in ``ca:acme``."""
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair("rsa2048", chain_len=2)
    exe = write_test_plugin(config_dir, "kms", keys={"key-1": (kp.key_path, kp.cert_path)})
    root = tmp_path / "root.pem"
    root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
    assert run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root)).rc == 0
    (config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "test", "registryScopes": [SCOPE], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}))
    layout = make_layout()
    return SimpleNamespace(kp=kp, exe=exe, dir=exe.parent, layout=layout, ref=f"{layout}:v1", config=config_dir)


def caps(kms: SimpleNamespace, *capabilities: str) -> None:
    meta = json.loads((kms.dir / "plugin.json").read_text())
    meta["capabilities"] = list(capabilities)
    (kms.dir / "plugin.json").write_text(json.dumps(meta))


def requests(kms: SimpleNamespace) -> list[dict[str, Any]]:
    path = kms.dir / "requests.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def signature_manifests(layout: Path) -> list[dict[str, Any]]:
    index = json.loads((layout / "index.json").read_text())
    out = []
    for m in index["manifests"]:
        data = json.loads((layout / "blobs" / "sha256" / m["digest"].split(":")[1]).read_bytes())
        if data.get("config", {}).get("mediaType") == "application/vnd.cncf.notary.signature":
            out.append(data)
    return out


def envelope_of(layout: Path, manifest: dict[str, Any]) -> bytes:
    return (layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]).read_bytes()


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_raw_plugin_key_signs_and_verifies(kms: SimpleNamespace, run_cli: Callable[..., Any], fmt: str) -> None:
    caps(kms, "SIGNATURE_GENERATOR.RAW")
    res = run_cli("key", "add", "kmskey", "--plugin", "kms", "--id", "key-1", "--plugin-config", "region=eu",
                  "--default")
    assert res.rc == 0, res.err
    keys = json.loads((kms.config / "signingkeys.json").read_text())
    assert keys["keys"] == [{"name": "kmskey", "id": "key-1", "pluginName": "kms", "pluginConfig": {"region": "eu"}}]
    res = run_cli("sign", "--oci-layout", kms.ref, "--signature-format", fmt)
    assert res.rc == 0, res.err
    cmds = [r["command"] for r in requests(kms)]
    assert cmds == ["get-plugin-metadata", "describe-key", "generate-signature"]
    gen = requests(kms)[-1]["request"]
    assert gen["keyId"] == "key-1" and gen["keySpec"] == "RSA-2048" and gen["hashAlgorithm"] == "SHA-256"
    assert gen["pluginConfig"] == {"region": "eu"} and gen["contractVersion"] == "1.0"
    [manifest] = signature_manifests(kms.layout)
    assert manifest["layers"][0]["mediaType"] == ("application/jose+json" if fmt == "jws" else "application/cose")
    envelope = envelope_of(kms.layout, manifest)
    from ocisign.manager import get_plugin_manager

    content = get_plugin_manager(load_entrypoints=False).envelope_format(fmt).open(envelope)
    assert content.signing_agent is not None and content.signing_agent.endswith(" kms/1.2.3")
    assert len(content.certificate_chain) == 2
    res = run_cli("verify", "--oci-layout", kms.ref, "--scope", SCOPE)
    assert res.rc == 0, res.err
    assert "Successfully verified" in res.out


def test_raw_signing_input_is_what_the_plugin_signed(kms: SimpleNamespace, run_cli: Callable[..., Any]) -> None:
    import base64

    caps(kms, "SIGNATURE_GENERATOR.RAW")
    assert run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1").rc == 0
    signed = base64.b64decode(requests(kms)[-1]["request"]["payload"])
    [manifest] = signature_manifests(kms.layout)
    jws = json.loads(envelope_of(kms.layout, manifest))
    assert signed == f"{jws['protected']}.{jws['payload']}".encode()


def test_command_line_plugin_config_overrides_stored(kms: SimpleNamespace, run_cli: Callable[..., Any]) -> None:
    caps(kms, "SIGNATURE_GENERATOR.RAW")
    assert run_cli("key", "add", "k", "--plugin", "kms", "--id", "key-1", "--plugin-config", "a=1",
                   "--plugin-config", "b=2").rc == 0
    assert run_cli("sign", "--oci-layout", kms.ref, "--key", "k", "--plugin-config", "b=3").rc == 0
    assert requests(kms)[-1]["request"]["pluginConfig"] == {"a": "1", "b": "3"}


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_envelope_plugin_signs_with_annotations(kms: SimpleNamespace, run_cli: Callable[..., Any], fmt: str) -> None:
    caps(kms, "SIGNATURE_GENERATOR.ENVELOPE", "SIGNATURE_VERIFIER.TRUSTED_IDENTITY",
         "SIGNATURE_VERIFIER.REVOCATION_CHECK")
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1", "--signature-format", fmt,
                  "-e", "1h", "-m", "team=blue")
    assert res.rc == 0, res.err
    gen = requests(kms)[-1]
    assert gen["command"] == "generate-envelope"
    assert gen["request"]["expiryDurationInSeconds"] == 3600
    assert gen["request"]["payloadType"] == "application/vnd.cncf.notary.payload.v1+json"
    [manifest] = signature_manifests(kms.layout)
    assert manifest["annotations"]["com.example.kms.keyArn"].endswith("key/key-1")
    assert "io.cncf.notary.x509chain.thumbprint#S256" in manifest["annotations"]
    res = run_cli("verify", "--oci-layout", kms.ref, "--scope", SCOPE, "-m", "team=blue")
    assert res.rc == 0, res.err + res.out
    verify_req = requests(kms)[-1]
    assert verify_req["command"] == "verify-signature"


def test_raw_takes_precedence_over_envelope(kms: SimpleNamespace, run_cli: Callable[..., Any]) -> None:
    caps(kms, *ALL_CAPABILITIES)
    assert run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1").rc == 0
    assert "generate-signature" in [r["command"] for r in requests(kms)]
    assert "generate-envelope" not in [r["command"] for r in requests(kms)]


FAILURES = [
    # (capability, plugin config, expected text in the one-line error)
    ("SIGNATURE_GENERATOR.RAW", "mode=error,errorCode=ACCESS_DENIED", "ACCESS_DENIED: failure switch on describe-key"),
    ("SIGNATURE_GENERATOR.RAW", "mode=error,errorCode=VALIDATION_ERROR,on=generate-signature",
     "'kms' generate-signature failed: VALIDATION_ERROR"),
    ("SIGNATURE_GENERATOR.RAW", "mode=error,errorCode=THROTTLED", "THROTTLED"),
    ("SIGNATURE_GENERATOR.RAW", "mode=error,errorCode=TIMEOUT", "TIMEOUT"),
    ("SIGNATURE_GENERATOR.RAW", "mode=error,errorCode=UNSUPPORTED_CONTRACT_VERSION",
     "UNSUPPORTED_CONTRACT_VERSION"),
    ("SIGNATURE_GENERATOR.RAW", "mode=error,errorCode=ERROR", "describe-key failed: ERROR"),
    ("SIGNATURE_GENERATOR.RAW", "mode=crash", "exited with code 3: panic: something broke"),
    ("SIGNATURE_GENERATOR.RAW", "mode=badjson", "not valid JSON"),
    ("SIGNATURE_GENERATOR.RAW", "mode=notobject", "not a JSON object"),
    ("SIGNATURE_GENERATOR.RAW", "mode=contract,on=get-plugin-metadata", "contract version '1.0' is not in the list"),
    ("SIGNATURE_GENERATOR.RAW", "mode=wrongname,on=get-plugin-metadata", "executable name must be"),
    ("SIGNATURE_GENERATOR.RAW", "mode=keyspec", "describe-key said EC-384"),
    ("SIGNATURE_GENERATOR.RAW", "mode=badalg", "signingAlgorithm 'RSASSA-PSS-SHA-512' does not match"),
    ("SIGNATURE_GENERATOR.RAW", "mode=otherbytes", "does not verify with the leaf certificate's key"),
    ("SIGNATURE_GENERATOR.RAW", "mode=otherkey", "does not verify with the leaf certificate's key"),
    ("SIGNATURE_GENERATOR.ENVELOPE", "mode=otherartifact", "the envelope signs another artifact"),
    ("SIGNATURE_GENERATOR.ENVELOPE", "mode=wrongtype", "signatureEnvelopeType"),
    ("SIGNATURE_GENERATOR.ENVELOPE", "mode=badenvelope", "envelope is invalid"),
    ("SIGNATURE_GENERATOR.ENVELOPE", "mode=reserved", "may not set the manifest annotation"),
    ("SIGNATURE_GENERATOR.ENVELOPE", "mode=error,errorCode=ACCESS_DENIED", "generate-envelope failed: ACCESS_DENIED"),
    ("SIGNATURE_VERIFIER.TRUSTED_IDENTITY", "", "cannot sign"),
]


@pytest.mark.parametrize(("cap", "config", "message"), FAILURES)
def test_misbehaving_plugin_fails_closed(kms: SimpleNamespace, run_cli: Callable[..., Any], cap: str, config: str,
                                          message: str) -> None:
    caps(kms, cap)
    before = snapshot(kms.layout)
    extra = [x for kv in config.split(",") if kv for x in ("--plugin-config", kv)]
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1", *extra)
    assert res.rc == 3, (res.out, res.err)
    assert message in res.err, res.err
    lines = [line for line in res.err.splitlines() if not line.startswith("Warning: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
    assert snapshot(kms.layout) == before


def test_slow_plugin_times_out(kms: SimpleNamespace, run_cli: Callable[..., Any],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    caps(kms, "SIGNATURE_GENERATOR.RAW")
    monkeypatch.setenv("OCISIGN_PLUGIN_TIMEOUT", "1.5")
    before = snapshot(kms.layout)
    start = time.monotonic()
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1",
                  "--plugin-config", "mode=slow", "--plugin-config", "sleep=60")
    assert time.monotonic() - start < 20
    assert res.rc == 3 and "describe-key: timed out after 1.5s" in res.err, res.err
    assert snapshot(kms.layout) == before


def test_huge_output_is_capped(kms: SimpleNamespace, run_cli: Callable[..., Any]) -> None:
    caps(kms, "SIGNATURE_GENERATOR.RAW")
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1", "--plugin-config", "mode=huge")
    assert res.rc == 3 and "wrote more than 64 MiB to stdout" in res.err, res.err


def test_plugin_stderr_only_under_debug(kms: SimpleNamespace, run_cli: Callable[..., Any]) -> None:
    from ocisign.extplugin.runner import show_plugin_stderr

    caps(kms, "SIGNATURE_GENERATOR.RAW")
    args = ("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1", "--plugin-config", "stderr=hello-dbg")
    res = run_cli(*args)
    assert res.rc == 0 and "hello-dbg" not in res.err
    try:
        res = run_cli("--debug", *args)
        assert res.rc == 0 and "[plugin kms describe-key] hello-dbg" in res.err, res.err
        res = run_cli(*args)  # the next run in this process is quiet again
        assert res.rc == 0 and "hello-dbg" not in res.err
    finally:
        show_plugin_stderr(False)


def test_plugin_gets_no_registry_credentials(kms: SimpleNamespace, run_cli: Callable[..., Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    caps(kms, "SIGNATURE_GENERATOR.RAW")
    monkeypatch.setenv("OCISIGN_PASSWORD", "s3cret")
    monkeypatch.setenv("NOTATION_PASSWORD", "s3cret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1").rc == 0
    env = requests(kms)[-1]["env"]
    assert "AWS_REGION" in env
    assert "OCISIGN_PASSWORD" not in env and "NOTATION_PASSWORD" not in env


def test_missing_or_unfit_plugin(kms: SimpleNamespace, run_cli: Callable[..., Any], tmp_path: Path) -> None:
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "nope", "--id", "key-1")
    assert res.rc == 3 and "no signer plugin 'nope'" in res.err
    os.chmod(kms.exe, 0o644)
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1")
    assert res.rc == 3 and "is not executable" in res.err, res.err
    os.chmod(kms.exe, 0o755)
    real = tmp_path / "real-exe"
    kms.exe.rename(real)
    kms.exe.symlink_to(real)
    res = run_cli("sign", "--oci-layout", kms.ref, "--plugin", "kms", "--id", "key-1")
    assert res.rc == 3 and "symbolic link" in res.err, res.err
    assert signature_manifests(kms.layout) == []


def test_key_add_plugin_must_be_installed(run_cli: Callable[..., Any], config_dir: Path) -> None:
    res = run_cli("key", "add", "k", "--plugin", "absent", "--id", "x")
    assert res.rc == 3 and "no signer plugin 'absent' is installed" in res.err
    assert not (config_dir / "signingkeys.json").exists()
