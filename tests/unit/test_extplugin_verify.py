"""Verifying signatures that name a notation verification plugin (``io.cncf.notary.verificationPlugin``).

The test plugin signs with SIGNATURE_GENERATOR.ENVELOPE and names itself as verification plugin
(minimum version 1.0.0) with a critical attribute ``com.example.kms.region`` that only its
``verify-signature`` can judge. Its verification results are switched with ``--plugin-config``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ocisign.testing.notation_plugin import write_test_plugin

SCOPE = "local/hello"
TI = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY"
REV = "SIGNATURE_VERIFIER.REVOCATION_CHECK"


def set_meta(kms: SimpleNamespace, **changes: Any) -> None:
    meta = json.loads((kms.dir / "plugin.json").read_text())
    meta.update(changes)
    (kms.dir / "plugin.json").write_text(json.dumps(meta))


def requests(kms: SimpleNamespace, command: str) -> list[dict[str, Any]]:
    path = kms.dir / "requests.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["request"] for r in rows if r["command"] == command]


def policy(config: Path, level: str = "strict", identities: tuple[str, ...] = ("*",),
           override: dict[str, str] | None = None) -> None:
    sv: dict[str, Any] = {"level": level, **({"override": override} if override else {})}
    (config / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "test", "registryScopes": [SCOPE], "signatureVerification": sv,
        "trustStores": ["ca:acme"], "trustedIdentities": list(identities)}]}))


@pytest.fixture(params=["jws", "cose"])
def signed(request: pytest.FixtureRequest, config_dir: Path, make_keypair: Callable[..., Any],
           make_layout: Callable[..., Path], run_cli: Callable[..., Any], tmp_path: Path) -> SimpleNamespace:
    """A layout signed through the ENVELOPE plugin ``kms`` (all four capabilities)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair("ec256", chain_len=2)
    exe = write_test_plugin(config_dir, "kms", keys={"key-1": (kp.key_path, kp.cert_path)},
                            capabilities=("SIGNATURE_GENERATOR.ENVELOPE", TI, REV))
    root = tmp_path / "root.pem"
    root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
    assert run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root)).rc == 0
    policy(config_dir)
    layout = make_layout()
    ref = f"{layout}:v1"
    res = run_cli("sign", "--oci-layout", ref, "--plugin", "kms", "--id", "key-1",
                  "--signature-format", request.param)
    assert res.rc == 0, res.err
    return SimpleNamespace(kp=kp, exe=exe, dir=exe.parent, layout=layout, ref=ref, config=config_dir,
                           run=run_cli)


def verify(s: SimpleNamespace, *args: str) -> tuple[int, dict[str, Any], str]:
    res = s.run("verify", "--oci-layout", s.ref, "--scope", SCOPE, "-o", "json", *args)
    return res.rc, json.loads(res.out), res.err


def checks(out: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["check"], c["result"]) for c in out["signatures"][0]["checks"]]


def test_plugin_verifies_and_gets_what_the_spec_lists(signed: SimpleNamespace) -> None:
    rc, out, err = verify(signed, "--plugin-config", "tenant=a")
    assert rc == 0 and out["verified"], (out, err)
    [req] = requests(signed, "verify-signature")
    assert req["contractVersion"] == "1.0" and req["pluginConfig"] == {"tenant": "a"}
    crit = req["signature"]["criticalAttributes"]
    assert crit["contentType"] == "application/vnd.cncf.notary.payload.v1+json"
    assert crit["signingScheme"] == "notary.x509"
    assert crit["expiry"] == "0001-01-01T00:00:00Z"
    assert crit["extendedAttributes"] == {"com.example.kms.region": "eu-west-1"}
    assert req["signature"]["unprocessedAttributes"] == ["com.example.kms.region"]
    assert len(req["signature"]["certificateChain"]) == 2
    assert req["trustPolicy"] == {"trustedIdentities": ["*"], "signatureVerification": [TI, REV]}
    got = dict(checks(out))
    assert got["verificationPlugin"] == "pass" and got["revocation"] == "pass"


def test_identity_is_delegated_to_the_plugin(signed: SimpleNamespace) -> None:
    policy(signed.config, identities=("x509.subject: C=US, ST=WA, O=Somebody Else",))
    rc, out, err = verify(signed)
    assert rc == 0, (out, err)
    [req] = requests(signed, "verify-signature")
    assert req["trustPolicy"]["trustedIdentities"] == ["x509.subject: C=US, ST=WA, O=Somebody Else"]
    rc, out, _ = verify(signed, "--plugin-config", "identity=fail")
    assert rc == 1 and out["failedCheck"] == "trustedIdentity", out
    assert "trusted identify verification by plugin \"kms\" failed" in out["signatures"][0]["reason"]


def test_results_follow_the_verification_level(signed: SimpleNamespace) -> None:
    rc, out, _ = verify(signed, "--plugin-config", "revocation=fail")
    assert rc == 1 and out["failedCheck"] == "revocation"
    assert "revocation check by verification plugin \"kms\" failed" in out["signatures"][0]["reason"]
    policy(signed.config, level="permissive")  # revocation is logged
    rc, out, err = verify(signed, "--plugin-config", "revocation=fail")
    assert rc == 0, out
    assert any("revocation" in w for w in out.get("warnings", [])) or "revocation" in err
    rc, out, _ = verify(signed, "--plugin-config", "identity=fail")  # authenticity stays enforced
    assert rc == 1 and out["failedCheck"] == "trustedIdentity"
    policy(signed.config, level="audit")  # authenticity is logged too
    rc, out, _ = verify(signed, "--plugin-config", "identity=fail")
    assert rc == 0, out


def test_skipped_revocation_is_not_asked(signed: SimpleNamespace) -> None:
    policy(signed.config, override={"revocation": "skip"})
    rc, out, _ = verify(signed, "--plugin-config", "revocation=fail")
    assert rc == 0, out
    [req] = requests(signed, "verify-signature")
    assert req["trustPolicy"]["signatureVerification"] == [TI]


@pytest.mark.parametrize(("config", "message"), [
    ("processed=none", "extended critical attribute \"com.example.kms.region\" was not processed"),
    (f"noresult={REV}", f"failed to verify \"{REV}\""),
    ("mode=crash", "exited with code 3"),
    ("mode=badjson", "not valid JSON"),
    ("mode=error,errorCode=ACCESS_DENIED", "verify-signature failed: ACCESS_DENIED"),
])
def test_plugin_failures_fail_closed(signed: SimpleNamespace, config: str, message: str) -> None:
    extra = [x for kv in config.split(",") for x in ("--plugin-config", kv)]
    rc, out, _ = verify(signed, *extra)
    assert rc == 1 and not out["verified"] and out["failedCheck"] == "verificationPlugin", out
    assert message.replace('"', "") in out["signatures"][0]["reason"].replace('"', "").replace("'", ""), out


def test_plugin_missing_old_or_without_verifier_capability(signed: SimpleNamespace) -> None:
    set_meta(signed, version="0.9.0")
    rc, out, _ = verify(signed)
    assert rc == 1 and out["failedCheck"] == "verificationPlugin"
    assert "needs plugin version greater than or equal to 1.0.0" in out["signatures"][0]["reason"]
    set_meta(signed, version="latest")
    rc, out, _ = verify(signed)
    assert rc == 1 and "not in valid semver format" in out["signatures"][0]["reason"]
    set_meta(signed, version="1.2.3", capabilities=["SIGNATURE_GENERATOR.ENVELOPE"])
    rc, out, _ = verify(signed)
    assert rc == 1 and "signature verification capabilities" in out["signatures"][0]["reason"]
    shutil.rmtree(signed.dir)
    rc, out, _ = verify(signed)
    assert rc == 1 and out["failedCheck"] == "verificationPlugin"
    assert "error while locating the verification plugin" in out["signatures"][0]["reason"]


def test_text_output_on_failure_is_one_error_line(signed: SimpleNamespace) -> None:
    res = signed.run("verify", "--oci-layout", signed.ref, "--scope", SCOPE, "--plugin-config", "processed=none")
    assert res.rc == 1
    errors = [line for line in res.err.splitlines() if line.startswith(("Error", "ocisign"))]
    assert len(errors) >= 1 and "signature verification failed" in res.err, res.err


def test_signing_authority_envelope_plugin(config_dir: Path, make_keypair: Callable[..., Any],
                                           make_layout: Callable[..., Path], run_cli: Callable[..., Any],
                                           tmp_path: Path) -> None:
    """An ENVELOPE plugin signing with notary.x509.signingAuthority (as AWS Signer does)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair("rsa3072", chain_len=2)
    exe = write_test_plugin(config_dir, "kms", keys={"key-1": (kp.key_path, kp.cert_path)},
                            capabilities=("SIGNATURE_GENERATOR.ENVELOPE", REV))
    root = tmp_path / "root.pem"
    root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
    assert run_cli("cert", "add", "-t", "signingAuthority", "-s", "acme", str(root)).rc == 0
    (config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "test", "registryScopes": [SCOPE], "signatureVerification": {"level": "strict"},
        "trustStores": ["signingAuthority:acme"], "trustedIdentities": ["*"]}]}))
    layout = make_layout()
    res = run_cli("sign", "--oci-layout", f"{layout}:v1", "--plugin", "kms", "--id", "key-1",
                  "--plugin-config", "scheme=signingAuthority")
    assert res.rc == 0, res.err
    res = run_cli("verify", "--oci-layout", f"{layout}:v1", "--scope", SCOPE, "-o", "json")
    out = json.loads(res.out)
    assert res.rc == 0 and out["signatures"][0]["signingScheme"] == "notary.x509.signingAuthority", out
    rows = [json.loads(line) for line in (exe.parent / "requests.jsonl").read_text().splitlines()]
    [req] = [r["request"] for r in rows if r["command"] == "verify-signature"]
    crit = req["signature"]["criticalAttributes"]
    assert crit["signingScheme"] == "notary.x509.signingAuthority" and "authenticSigningTime" in crit
    # the identity is not the plugin's to judge here: ocisign checks it itself
    assert req["trustPolicy"]["signatureVerification"] == [REV]


@pytest.mark.parametrize(("name", "min_version", "message"), [
    ("../../bin", None, "invalid plugin name"),
    ("absent", None, "'absent' is not installed"),
    ("kms", "1.0", "is not a valid semantic version"),
])
def test_plan_refuses_bad_plugin_names_and_versions(config_dir: Path, name: str, min_version: str | None,
                                                    message: str) -> None:
    from ocisign.errors import VerificationError
    from ocisign.extplugin.verification import plan_verification
    from ocisign.manager import get_plugin_manager
    from ocisign.types import EnvelopeContent

    write_test_plugin(config_dir, "kms")
    pm = get_plugin_manager(load_entrypoints=False)
    content = EnvelopeContent(media_type="application/jose+json", payload=b"{}", payload_content_type="x",
                              signing_scheme="notary.x509", signature_algorithm="ECDSA-SHA-256",
                              certificate_chain=(), signature=b"", verification_plugin=name,
                              verification_plugin_min_version=min_version)
    with pytest.raises(VerificationError, match=message):
        plan_verification(content, lambda n: pm.verification_plugin(n, config_dir), None)
    assert not (config_dir / "bin").exists()
