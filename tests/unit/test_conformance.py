"""Every case of ``../shared/conformance/cases.json``: same verdict as notation, at the same check.

Layout cases run through the CLI (``ocisign verify --oci-layout … --scope … -o json``) with the
case's policy and trust store copied into the test's config dir; the layouts are read in place
(read-only). Detached-envelope cases have no CLI form in notation 1.x and run through
:func:`ocisign.verify.verification.verify_envelope`. Encoding vectors are compared by the envelope tests.

Four cases (``network`` in cases.json) need online revocation checks of the GlobalSign TSA chain
(the timestamp itself verifies). Tests never leave loopback, so every non-loopback OCSP/CRL host
is refused (:data:`ocisign.verify.revocation_http.network_guard`) and these cases must reach notation's
*offline* verdict exactly: authenticTimestamp fails with "timestamping certificate with subject
… revocation status is unknown" after OCSP and then the CRL were tried for the TSA certificates
(:data:`OFFLINE_RESULT`), as the conformance README allows.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CONFORMANCE = Path(os.environ.get("OCISIGN_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared")) \
    / "conformance"

_GLOBALSIGN_TSA = "CN=Globalsign TSA for Advanced - G4 - 202311,O=GlobalSign nv-sa,C=BE"
#: case id -> notation's verdict without network access (the TSA chain's OCSP/CRL servers are unreachable)
OFFLINE_RESULT = {
    case_id: f'timestamping certificate with subject "{_GLOBALSIGN_TSA}" revocation status is unknown'
    for case_id in ("ng-ts-jws-valid", "ng-ts-cose-valid", "ng-ts-jws-expired-signing-cert-timestamped",
                    "ng-ts-cose-expired-signing-cert-timestamped")
}
#: the TSA chain's servers: OCSP first, then the CRL, for the TSA certificate and its CA
GLOBALSIGN_HOSTS = {"ocsp.globalsign.com", "crl.globalsign.com", "ocsp2.globalsign.com"}


@pytest.fixture(autouse=True)
def refused_hosts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keep revocation checks on loopback: record and refuse every other host."""
    import ocisign.verify.revocation_http

    seen: list[str] = []

    def guard(host: str) -> str | None:
        if host in ("127.0.0.1", "::1", "localhost"):
            return None
        seen.append(host)
        return f"network access to {host} is disabled in tests"

    monkeypatch.setattr(ocisign.verify.revocation_http, "network_guard", guard)
    return seen


def _cases() -> list[Any]:
    path = CONFORMANCE / "cases.json"
    if not path.is_file():
        return []
    return [pytest.param(c, id=c["id"]) for c in json.loads(path.read_text())["cases"]]


def _install(case: dict[str, Any], conformance: Path, config_dir: Path) -> None:
    """The case's policy file (or inline policy) and trust stores, in the config dir."""
    tp = case["trust_policy"]
    name = "trustpolicy.blob.json" if case.get("blob") else "trustpolicy.json"
    if "file" in tp:
        shutil.copyfile(conformance / tp["file"], config_dir / name)
    else:
        (config_dir / name).write_text(json.dumps(tp["inline"]))
    for ref, files in case["trust_store"].items():
        store_type, store = ref.split(":", 1)
        d = config_dir / "truststore" / "x509" / store_type / store
        d.mkdir(parents=True)
        for f in files:
            shutil.copyfile(conformance / f, d / Path(f).name)


def _check_offline(case: dict[str, Any], verified: bool, failed: str | None, sigs: list[dict[str, Any]],
                   refused: list[str]) -> None:
    """A ``network`` case: notation's offline verdict, reached after really trying OCSP then CRL."""
    assert case.get("network"), case["id"]
    assert not verified and failed == "authenticTimestamp", (case["id"], failed)
    check = next(c for c in sigs[-1]["checks"] if c["check"] == "authenticTimestamp")
    assert check["result"] == "fail" and check["action"] == "enforce"
    assert check["message"].startswith(OFFLINE_RESULT[case["id"]] + " ("), check["message"]
    certs = check["details"]["timestampRevocation"]["certificates"]
    assert [(c["result"], c["method"]) for c in certs] == [
        ("unknown", "OCSPFallbackCRL"), ("unknown", "OCSPFallbackCRL"), ("nonRevocable", "root")]
    assert [s["method"] for s in certs[0]["servers"]] == ["OCSP", "CRL"]
    assert set(refused) == GLOBALSIGN_HOSTS
    # the checks after authenticTimestamp never ran
    assert [c["check"] for c in sigs[-1]["checks"]][-1] == "authenticTimestamp"


def _check_expected(case: dict[str, Any], verified: bool, failed: str | None, sigs: list[dict[str, Any]],
                    refused: list[str]) -> None:
    exp = case["expected"]
    if exp.get("skipped"):
        assert verified, case["id"]
        return
    if case["id"] in OFFLINE_RESULT:
        _check_offline(case, verified, failed, sigs, refused)
        return
    assert not refused, (case["id"], refused)
    assert ("pass" if verified else "fail") == exp["outcome"], (case["id"], failed, sigs)
    if exp["outcome"] == "fail":
        assert failed == exp["failing_check"], (case["id"], failed, sigs)
    else:
        assert failed is None
        passing = sigs[-1] if sigs else {}
        assert sorted(passing.get("loggedFailures", [])) == sorted(exp.get("logged_failures") or []), case["id"]
    if exp["outcome"] == "fail" and exp.get("logged_failures"):
        assert set(exp["logged_failures"]) <= set(sigs[-1]["loggedFailures"]), case["id"]


@pytest.mark.parametrize("case", _cases())
def test_case(case: dict[str, Any], conformance: Path, config_dir: Path, run_cli: Callable[..., Any], pm: Any,
              refused_hosts: list[str]) -> None:
    if case["kind"] == "encoding-vector":
        pytest.skip("encoding vectors compare signer output byte for byte (envelope tests), no verification")
    _install(case, conformance, config_dir)
    policy_error = case["expected"].get("failing_check") == "policy"
    if case["kind"] == "oci-layout":
        art = case["artifact"]
        ref = art["reference"]
        sep = "@" if ref.startswith("sha256:") else ":"
        args = ["verify", "--oci-layout", f"{conformance / art['layout']}{sep}{ref}", "--scope", case["scope"],
                "-o", "json"]
        for k, v in (case.get("user_metadata") or {}).items():
            args += ["-m", f"{k}={v}"]
        res = run_cli(*args)
        out = json.loads(res.out)
        assert res.rc == (2 if policy_error else 0 if out["verified"] else 1), res.err
        if out["artifact"] is not None:
            assert out["artifact"] == art["resolved_descriptor"]
            assert [s["digest"] for s in out["signatures"]] == art["signature_manifests"][: len(out["signatures"])]
        _check_expected(case, out["verified"], out["failedCheck"], out["signatures"], refused_hosts)
        return
    # detached envelope
    from ocisign.config.configdir import ConfigDir
    from ocisign.config.trustpolicy import PolicyError
    from ocisign.oci.model import Descriptor
    from ocisign.verify.verification import verify_envelope

    env, target = case["envelope"], case["target"]
    if "file" in target:
        assert Path(conformance / target["file"]).stat().st_size == target["size"]
    try:
        report = verify_envelope(
            pm, ConfigDir(config_dir), (conformance / env["file"]).read_bytes(), env["media_type"],
            Descriptor(media_type=target["mediaType"], digest=target["digest"], size=target["size"]),
            scope=case["scope"], policy_name=case["trust_policy"].get("policy_name"),
            kind="blob" if case.get("blob") else "oci", user_metadata=case.get("user_metadata"),
        )
    except PolicyError:
        assert policy_error, case["id"]
        return
    assert not policy_error, case["id"]
    _check_expected(case, report.verified, report.failed_check, report.signatures, refused_hosts)


def test_every_case_is_covered() -> None:
    cases = _cases()
    if not cases:
        pytest.skip("conformance set not found")
    assert len(cases) == 111
    assert set(OFFLINE_RESULT) == {p.id for p in cases if p.values[0].get("network")}
